"""The best-evaluated checkpoint: chosen, scored, kept by Tune, resumed (no Ray started)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rlfrontier import registry
from rlfrontier import trainable as T
from rlfrontier.spec import StopCriteria


def test_best_checkpoint_is_the_highest_scored_and_ignores_the_unscored():
    kept = [("a", {T.CHECKPOINT_SCORE: 120.0}), ("b", {T.CHECKPOINT_SCORE: T.NOT_BEST}), ("f", {T.CHECKPOINT_SCORE: -1e9}),
            ("c", {T.CHECKPOINT_SCORE: 480.0}), ("d", {}), ("e", {T.CHECKPOINT_SCORE: float("nan")})]
    assert T.best_checkpoint(kept) == ("c", 480.0)
    assert T.best_checkpoint([("a", {T.CHECKPOINT_SCORE: T.NOT_BEST}), ("b", {}),
                              ("c", {T.CHECKPOINT_SCORE: float("-inf")})]) == (None, None)
    assert T.best_checkpoint([("a", {T.CHECKPOINT_SCORE: -1e9}), ("b", {T.CHECKPOINT_SCORE: T.NOT_BEST})]) == ("a", -1e9)
    assert T.best_checkpoint([]) == (None, None)


def test_results_hold_no_infinity_for_tensorboard():
    """TensorBoard's logger prints "NaN or Inf found in input tensor." for each one."""
    assert math.isfinite(T.NOT_BEST)


def test_a_new_best_must_beat_the_old_one_strictly():
    assert T.is_new_best(10.0, None) and T.is_new_best(11.0, 10.0)
    assert not T.is_new_best(10.0, 10.0) and not T.is_new_best(9.0, 10.0)
    assert not T.is_new_best(None, 10.0) and not T.is_new_best(None, None)


def test_tune_keeps_the_best_checkpoint_and_the_latest_and_deletes_the_rest(tmp_path):
    """Tune's own checkpoint manager with our CheckpointConfig (num_to_keep=3, as `train`)."""
    from ray.train import Checkpoint
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult

    manager = _CheckpointManager(T.checkpoint_config(num_to_keep=3))
    # Periodic checkpoints (NOT_BEST) between new bests, as train_loop reports them.
    scores = [T.NOT_BEST, 50.0, T.NOT_BEST, 120.0] + [T.NOT_BEST] * 6 + [200.0] + [T.NOT_BEST] * 5
    dirs = []
    for i, score in enumerate(scores):
        d = tmp_path / f"checkpoint_{i:06d}"
        d.mkdir()
        dirs.append(d)
        manager.register_checkpoint(_TrainingResult(Checkpoint.from_directory(str(d)), {T.CHECKPOINT_SCORE: score}))
        best = max(range(i + 1), key=lambda j: scores[j])
        assert dirs[best].is_dir(), f"the best checkpoint was deleted after {i + 1} checkpoints"
        assert d.is_dir(), "the latest checkpoint was deleted"
    # The three best-evaluated and the latest; every other periodic one is gone.
    assert [d.name for d in dirs if d.is_dir()] == [dirs[i].name for i in (1, 3, 10, len(dirs) - 1)]
    kept = [(r.checkpoint, r.metrics) for r in manager.best_checkpoint_results]
    assert T.best_checkpoint(kept) == (str(dirs[10]), 200.0)


class FakeAlgo:
    """What train_loop uses of an RLlib Algorithm; evaluation returns scripted."""

    def __init__(self, evals):
        self.evals = list(evals)
        self.iteration = 0
        self.restored = None

    def train(self):
        self.iteration += 1
        ret = self.evals[self.iteration - 1]
        result = {"training_iteration": self.iteration,
                  "env_runners": {"num_env_steps_sampled_lifetime": 1000 * self.iteration,
                                  "num_env_steps_sampled": 1000, "episode_return_mean": 20.0}}
        if ret is not None:
            result["evaluation"] = {"env_runners": {"episode_return_mean": ret}}
        return result

    def evaluate(self):
        return {"env_runners": {"episode_return_mean": 77.0}}

    def save_to_path(self, path):
        Path(path, "weights").write_text(str(self.iteration))

    def restore_from_path(self, path):
        self.restored = path

    def stop(self):
        pass


class FakeConfig:
    evaluation_interval = 2

    def __init__(self, algo):
        self.algo = algo

    def copy(self, copy_frozen=False):
        return self

    def update_from_dict(self, params):
        pass

    def build_algo(self):
        return self.algo


@pytest.fixture
def reports(monkeypatch):
    """tune.report captured: (result, the checkpoint's meta, its iteration) per call."""
    out = []

    def report(result, checkpoint=None):
        meta = weights = None
        if checkpoint is not None:
            meta = json.loads(Path(checkpoint.path, T.META_FILE).read_text())
            weights = Path(checkpoint.path, "weights").read_text()
        out.append((dict(result), meta, weights))

    monkeypatch.setattr(T.tune, "report", report)
    monkeypatch.setattr(T.tune, "get_checkpoint", lambda: None)
    monkeypatch.setitem(registry.ALGORITHMS, "fake", fake_spec())
    return out


def fake_spec(**kwargs) -> registry.AlgoSpec:
    return registry.AlgoSpec("fake", "a fake", "rlfrontier", ("Discrete",), lambda: None, **kwargs)


def _run(evals, *, stop_iters, checkpoint_every=100):
    T.train_loop({}, base_config=FakeConfig(FakeAlgo(evals)), stop=StopCriteria(iterations=stop_iters),
                 meta={"algo": "fake"}, checkpoint_every=checkpoint_every)


def test_train_loop_checkpoints_every_new_best_evaluation(reports):
    evals = [None, 100.0, None, 300.0, None, 300.0, None, 120.0]
    _run(evals, stop_iters=8)
    results = [r for r, _, _ in reports]
    for i, result in enumerate(results[1:], start=2):  # best so far >= every evaluation so far
        assert result[T.BEST_EVAL_RETURN_MEAN] == max(e for e in evals[:i] if e is not None)
    assert results[-1][T.EVAL_RETURN_MEAN] == 120.0
    assert T.BEST_EVAL_RETURN_MEAN not in results[0]  # absent until the first evaluation
    saved = {int(w): (r[T.CHECKPOINT_SCORE], m) for r, m, w in reports if m is not None}
    # New bests at 2 and 4 (the tie at 6 is not one), and the end at 8.
    assert sorted(saved) == [2, 4, 8]
    assert all(math.isfinite(r[T.CHECKPOINT_SCORE]) for r in results if T.CHECKPOINT_SCORE in r)
    assert saved[2][0] == 100.0 and saved[4][0] == 300.0 and saved[8][0] == T.NOT_BEST
    assert saved[4][1][T.EVAL_RETURN_MEAN] == 300.0 and saved[4][1][T.BEST_EVAL_RETURN_MEAN] == 300.0
    assert saved[8][1][T.BEST_EVAL_RETURN_MEAN] == 300.0
    kept = [({"path": str(w)}, r) for r, m, w in reports if m is not None]
    assert T.best_checkpoint((k["path"], r) for k, r in kept) == ("4", 300.0)


def test_train_loop_counts_the_final_evaluation_as_a_candidate(reports):
    _run([None, 50.0, None], stop_iters=3)  # the end is evaluated by algo.evaluate(): 77
    last, meta, _ = reports[-1]
    assert last[T.EVAL_RETURN_MEAN] == 77.0 and last[T.BEST_EVAL_RETURN_MEAN] == 77.0
    assert last[T.CHECKPOINT_SCORE] == 77.0 and meta[T.BEST_EVAL_RETURN_MEAN] == 77.0


def test_a_resumed_trial_compares_with_the_best_before_the_failure(reports, monkeypatch, tmp_path):
    (tmp_path / T.META_FILE).write_text(json.dumps({T.BEST_EVAL_RETURN_MEAN: 400.0}))
    from ray.tune import Checkpoint

    monkeypatch.setattr(T.tune, "get_checkpoint", lambda: Checkpoint.from_directory(str(tmp_path)))
    _run([None, 300.0, None, 450.0], stop_iters=4)
    results = [r for r, _, _ in reports]
    assert results[0][T.BEST_EVAL_RETURN_MEAN] == 400.0
    assert results[1][T.BEST_EVAL_RETURN_MEAN] == 400.0 and T.CHECKPOINT_SCORE not in results[1]
    assert results[3][T.BEST_EVAL_RETURN_MEAN] == 450.0 and results[3][T.CHECKPOINT_SCORE] == 450.0


class RepeatingEvalAlgo(FakeAlgo):
    """As RLlib 2.60 does (seen in a real run's result.json): every result after an
    evaluation repeats that evaluation's metrics, evaluated or not."""

    def train(self):
        result = super().train()
        if "evaluation" in result:
            self.last_evaluation = result["evaluation"]
        elif getattr(self, "last_evaluation", None) is not None:
            result["evaluation"] = self.last_evaluation
        return result


def test_a_repeated_earlier_evaluation_is_neither_the_final_one_nor_a_checkpoints_own(reports):
    # Regression: the repeated 50.0 at iteration 3 was taken for the final policy's
    # evaluation, so the end was never evaluated and its checkpoint carried 50.0.
    T.train_loop({}, base_config=FakeConfig(RepeatingEvalAlgo([None, 50.0, None])),
                 stop=StopCriteria(iterations=3), meta={"algo": "fake"}, checkpoint_every=100)
    last, meta, _ = reports[-1]
    assert last[T.EVAL_RETURN_MEAN] == 77.0  # algo.evaluate() on the final policy
    assert meta[T.EVAL_RETURN_MEAN] == 77.0


def test_the_registry_evaluation_hook_reports_at_each_evaluation_and_keeps_its_last(reports, monkeypatch):
    # The algorithm's own measure of the evaluated policy (e.g. reward correlation)
    # rides in every later result, so Tune's metric and MLflow always have it.
    calls = []

    def hook(algo):
        calls.append(algo.iteration)
        return {"reward_correlation": algo.iteration / 10}

    monkeypatch.setitem(registry.ALGORITHMS, "fake", fake_spec(evaluation_hook=hook, policy_module_id="actor"))
    _run([None, 100.0, None, 300.0, None], stop_iters=5, checkpoint_every=100)
    assert calls == [2, 4, 5]  # evaluations at 2 and 4 (interval 2), and the final one
    metrics = [r.get(registry.EVALUATION_METRICS) for r, _, _ in reports]
    assert metrics == [None, {"reward_correlation": 0.2}, {"reward_correlation": 0.2},
                       {"reward_correlation": 0.4}, {"reward_correlation": 0.5}]
    assert all(meta["module_id"] == "actor" for _, meta, _ in reports if meta is not None)


def test_a_new_best_under_mode_min_must_be_strictly_lower():
    assert T.is_new_best(5.0, None, "min") and T.is_new_best(4.0, 5.0, "min")
    assert not T.is_new_best(5.0, 5.0, "min") and not T.is_new_best(6.0, 5.0, "min")
    assert not T.is_new_best(None, 5.0, "min")


def test_rank_value_reads_a_nested_metric_as_tune_flattens_it_and_skips_what_is_not_a_number():
    result = {"eval_return_mean": 3.0, "metrics": {"gain": 0.5, "nan": float("nan"), "flag": True}}
    assert T.rank_value(result, "eval_return_mean") == 3.0
    assert T.rank_value(result, "metrics/gain") == 0.5
    assert T.rank_value(result, "metrics/nan") is None and T.rank_value(result, "metrics/flag") is None
    assert T.rank_value(result, "metrics/absent") is None and T.rank_value(result, "nope/gain") is None


def _hooked(monkeypatch, values, **spec):
    """The fake algorithm with a hook that reports `values[iteration]` as metrics/score."""
    def hook(algo):
        value = values.get(algo.iteration)
        return {} if value is None else {"score": value}

    monkeypatch.setitem(registry.ALGORITHMS, "fake", fake_spec(evaluation_hook=hook, **spec))


def _saved(reports):
    """{iteration: (checkpoint score, meta)} of the checkpoints reported."""
    return {int(w): (r[T.CHECKPOINT_SCORE], m) for r, m, w in reports if m is not None}


def test_the_best_checkpoint_is_best_by_the_algorithms_primary_metric_not_the_eval_return(reports, monkeypatch):
    # PEARL, MAML, RL², GAIL...: the registry's primary metric is the hook's, which can peak where the
    # RLlib evaluation return (on training tasks) does not.
    _hooked(monkeypatch, {2: 0.3, 4: 0.9, 6: 0.5, 8: 0.7}, primary_metric="metrics/score")
    _run([None, 100.0, None, 50.0, None, 400.0, None, 300.0], stop_iters=8)
    saved = _saved(reports)
    assert sorted(saved) == [2, 4, 8]  # new bests by the score at 2 and 4 (not at 6: eval 400), and the end
    assert saved[4][0] == 0.9 and saved[8][0] == T.NOT_BEST
    assert saved[4][1][T.RANKED_BY] == "metrics/score" and saved[4][1][T.RANK_VALUE] == 0.9
    assert saved[8][1][T.RANK_VALUE] == 0.7 and saved[8][1][T.BEST_RANK_VALUE] == 0.9
    assert reports[-1][0][T.BEST_EVAL_RETURN_MEAN] == 400.0  # still the highest evaluation return
    kept = [(w, r) for r, m, w in reports if m is not None]
    assert T.best_checkpoint(kept) == ("4", 0.9)


def test_a_minimised_primary_metric_ranks_lower_values_higher(reports, monkeypatch):
    # maxent_irl: the expected value difference, mode "min".
    _hooked(monkeypatch, {2: 3.0, 4: 1.0, 6: 2.0}, primary_metric="metrics/score", mode="min")
    _run([None, 100.0, None, 100.0, None, 100.0], stop_iters=6)
    saved = _saved(reports)
    assert sorted(saved) == [2, 4, 6]
    assert saved[2][0] == -3.0 and saved[4][0] == -1.0 and saved[6][0] == T.NOT_BEST
    assert T.best_checkpoint((w, r) for r, m, w in reports if m is not None) == ("4", -1.0)


def test_the_runs_own_metric_and_mode_rank_the_checkpoints_when_given(reports, monkeypatch):
    # A search that optimises another metric than the registry's keeps the checkpoint best by that one.
    _hooked(monkeypatch, {2: 0.3, 4: 0.9}, primary_metric="metrics/score")
    T.train_loop({}, base_config=FakeConfig(FakeAlgo([None, 100.0, None, 50.0])),
                 stop=StopCriteria(iterations=4), meta={"algo": "fake"}, checkpoint_every=100,
                 rank_by=("eval_return_mean", "max"))
    saved = _saved(reports)
    assert saved[2][0] == 100.0 and saved[4][0] == T.NOT_BEST
    assert saved[4][1][T.RANKED_BY] == "eval_return_mean" and saved[4][1][T.BEST_RANK_VALUE] == 100.0


def test_an_evaluation_whose_hook_reports_nothing_is_not_ranked_by_the_last_ones(reports, monkeypatch):
    # The result carries the last hook metrics on; a checkpoint must not take them for its own.
    _hooked(monkeypatch, {2: 0.5}, primary_metric="metrics/score")
    _run([None, 100.0, None, 200.0], stop_iters=4)
    saved = _saved(reports)
    assert saved[2][0] == 0.5 and saved[4][0] == T.NOT_BEST and saved[4][1][T.RANK_VALUE] is None
    assert reports[-1][0][registry.EVALUATION_METRICS] == {"score": 0.5}


@pytest.mark.parametrize("meta,expected", [
    ({T.RANKED_BY: "metrics/score", T.BEST_RANK_VALUE: 0.8, T.BEST_EVAL_RETURN_MEAN: 999.0}, 0.8),
    # A checkpoint ranked by another metric, or written before ranking by the primary metric: no best yet.
    ({T.RANKED_BY: "eval_return_mean", T.BEST_RANK_VALUE: 0.8}, None),
    ({T.BEST_EVAL_RETURN_MEAN: 999.0}, None),
])
def test_a_resumed_trial_compares_with_the_best_rank_value_of_its_metric(reports, monkeypatch, tmp_path, meta,
                                                                          expected):
    (tmp_path / T.META_FILE).write_text(json.dumps(meta))
    from ray.tune import Checkpoint

    monkeypatch.setattr(T.tune, "get_checkpoint", lambda: Checkpoint.from_directory(str(tmp_path)))
    _hooked(monkeypatch, {2: 0.5, 4: 0.9}, primary_metric="metrics/score")
    _run([None, 100.0, None, 100.0], stop_iters=4)
    saved = _saved(reports)
    if expected is None:
        assert saved[2][0] == 0.5 and saved[4][0] == 0.9
    else:
        assert sorted(saved) == [4] and saved[4][0] == 0.9  # 0.5 at 2 does not beat the resumed 0.8
        assert T.CHECKPOINT_SCORE not in reports[1][0]


def test_algos_json_says_what_ranks_each_algorithms_checkpoints_and_which_bonuses_it_takes(capsys):
    from rlfrontier import cli

    assert cli.main(["algos", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["algorithms"]}
    for name, spec in registry.ALGORITHMS.items():
        assert (rows[name]["primary_metric"], rows[name]["mode"]) == (spec.primary_metric, spec.mode)
        assert rows[name]["bonuses"] == list(spec.bonuses) and rows[name]["needs"] == list(spec.needs)
    assert rows["pearl"]["primary_metric"] == "metrics/held_out_adapted_return_mean"
    assert rows["maxent_irl"]["mode"] == "min" and "rnd" in rows["soft_q"]["bonuses"]
