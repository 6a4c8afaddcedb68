"""MLflow keeps the last and the best checkpoint, registers the best; the
experiment is tagged as model training (SQLite store, no server, no Ray)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import mlflow

from rlfrontier import tracking
from rlfrontier import trainable as T


def _checkpoint(root: Path, name: str) -> SimpleNamespace:
    path = root / name
    path.mkdir(parents=True)
    (path / T.META_FILE).write_text(json.dumps({"algo": "soft_q", "name": name}))
    return SimpleNamespace(path=str(path))


def _tracker(tmp_path, experiment="exp") -> tracking.MLflowTracking:
    return tracking.MLflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment=experiment,
                                   tags={"algo": "soft_q"}, params={"gamma": 0.99}, config_yaml="gamma: 0.99\n")


def test_experiment_is_tagged_as_model_training_when_created_or_found(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = _tracker(tmp_path, "new").experiment_id()
    assert client.get_experiment(exp_id).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    old = client.create_experiment("made-elsewhere")  # e.g. by an older rlfrontier or by hand
    assert _tracker(tmp_path, "made-elsewhere").experiment_id() == old
    assert client.get_experiment(old).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_run_keeps_last_and_best_checkpoint_and_registers_the_best(tmp_path):
    tracker = _tracker(tmp_path)
    trial = SimpleNamespace(trial_id="t_00000", config={}, checkpoint=None, error_file=None)
    tracker.on_trial_start(0, [], trial)
    ckpts = tmp_path / "trial"
    # iteration 2: a new best (score = its return); 10: periodic; 12: the end.
    for it, ret, score, name in ((2, 480.0, 480.0, "checkpoint_000000"), (10, 200.0, T.NOT_BEST, "checkpoint_000001"),
                                 (12, 130.0, T.NOT_BEST, "checkpoint_000002")):
        result = {T.ENV_STEPS: it * 1000, T.ITERATIONS: it, T.EVAL_RETURN_MEAN: ret,
                  T.BEST_EVAL_RETURN_MEAN: 480.0, T.CHECKPOINT_SCORE: score}
        tracker.on_trial_result(0, [], trial, result)
        tracker.on_checkpoint(0, [], trial, _checkpoint(ckpts, name))
    tracker.on_trial_complete(0, [], trial)
    run_id = tracker.records[trial.trial_id].run_id
    client = tracker.client
    assert {"checkpoint", "best_checkpoint", "summary.json"} <= {a.path for a in client.list_artifacts(run_id)}
    best_meta = json.loads(Path(client.download_artifacts(run_id, f"best_checkpoint/{T.META_FILE}", str(tmp_path))).read_text())
    last_meta = json.loads(Path(client.download_artifacts(run_id, f"checkpoint/{T.META_FILE}", str(tmp_path))).read_text())
    assert best_meta["name"] == "checkpoint_000000" and last_meta["name"] == "checkpoint_000002"
    summary = json.loads(Path(client.download_artifacts(run_id, "summary.json", str(tmp_path))).read_text())
    assert summary["best_checkpoint"].endswith("checkpoint_000000") and summary[T.BEST_EVAL_RETURN_MEAN] == 480.0
    assert client.get_run(run_id).data.metrics[T.BEST_EVAL_RETURN_MEAN] == 480.0

    registered = tracker.mark_best(run_id, metric="eval_return_mean", value=130.0, register="soft-q")
    version = client.get_model_version_by_alias("soft-q", "best")
    assert registered["version"] == version.version
    assert version.source.endswith("/best_checkpoint")


def test_best_checkpoint_of_a_resumed_search_is_found_in_the_trials_own_bookkeeping():
    kept = [SimpleNamespace(checkpoint=SimpleNamespace(path="/r/c1"), metrics={T.CHECKPOINT_SCORE: 300.0}),
            SimpleNamespace(checkpoint=SimpleNamespace(path="/r/c2"), metrics={T.CHECKPOINT_SCORE: T.NOT_BEST})]
    trial = SimpleNamespace(run_metadata=SimpleNamespace(checkpoint_manager=SimpleNamespace(best_checkpoint_results=kept)))
    assert tracking._best_kept_checkpoint(trial) == "/r/c1"
    assert tracking._best_kept_checkpoint(SimpleNamespace()) is None
