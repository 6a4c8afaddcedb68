"""`rlfrontier train` and `evaluate` end to end: real Ray, real Tune, real MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from tests.conftest import cli, last_json

pytestmark = pytest.mark.integration

SHORT = ["--stop-timesteps", "3000", "--eval-interval", "2", "--eval-episodes", "5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short soft_q run in its own folder, default tracking (sqlite:///mlflow.db)."""
    cwd = tmp_path_factory.mktemp("train")
    proc = cli("train", "soft_q", "--env", "CartPole-v1", "--seed", "3", *SHORT, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, last_json(proc.stdout), proc


def test_train_reports_the_json_contract(trained):
    _, summary, _ = trained
    for key in ("algo", "env", "seed", "env_steps", "iterations", "episode_return_mean",
                "eval_return_mean", "best_eval_return_mean", "wall_s", "env_steps_per_s", "checkpoint",
                "best_checkpoint", "mlflow_run_id", "metrics"):
        assert key in summary, key
    assert summary["algo"] == "soft_q" and summary["env"] == "CartPole-v1" and summary["seed"] == 3
    assert summary["env_steps"] >= 3000
    assert summary["status"] == "FINISHED"
    assert summary["eval_return_mean"] is not None
    assert {"alpha", "policy_entropy"} <= set(summary["metrics"])
    assert Path(summary["checkpoint"], "rlfrontier.json").is_file()


def test_train_keeps_the_best_evaluated_checkpoint(trained):
    cwd, summary, _ = trained
    best = summary["best_eval_return_mean"]
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    evaluations = [m.value for m in client.get_metric_history(summary["mlflow_run_id"], "eval_return_mean")]
    assert evaluations and best >= max(evaluations) >= summary["eval_return_mean"]
    assert best == max(evaluations), "the best is one of the evaluations reported"
    meta = json.loads(Path(summary["best_checkpoint"], "rlfrontier.json").read_text())
    assert meta["eval_return_mean"] == best == meta["best_eval_return_mean"]
    proc = cli("evaluate", summary["best_checkpoint"], "--episodes", "10", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = last_json(proc.stdout)
    # Other start states than the run's own evaluation: the same policy, not the same episodes.
    assert abs(out["return_mean"] - best) <= max(0.5 * best, 3 * out["return_std"]), (out["returns"], best)


def test_train_shows_progress_and_where_things_are(trained):
    _, summary, proc = trained
    assert "steps/s" in proc.stderr and "ETA" in proc.stderr
    assert "(best " in proc.stderr, "the progress line shows the best evaluation so far"
    assert summary["checkpoint"] in proc.stdout and summary["best_checkpoint"] in proc.stdout
    done = next(line for line in proc.stdout.splitlines() if line.startswith("done:"))
    assert f"(best {summary['best_eval_return_mean']:.4g})" in done
    assert summary["mlflow_run_id"] in proc.stdout


def test_default_tracking_store_holds_the_run(trained):
    cwd, summary, _ = trained
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["algo"] == "soft_q" and tags["env"] == "CartPole-v1" and tags["seed"] == "3"
    for key in ("git_commit", "ray_version", "torch_version"):
        assert tags[key]
    assert float(run.data.params["gamma"]) == pytest.approx(0.99)
    assert len(run.data.params) > 50
    history = client.get_metric_history(run.info.run_id, "episode_return_mean")
    assert len(history) >= 2 and sorted(m.step for m in history) == [m.step for m in history]
    assert "learners/default_policy/qf_loss" in run.data.metrics
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"checkpoint", "best_checkpoint", "config.yaml", "summary.json", "learning_curve.png"} <= top
    ckpt = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert "checkpoint/rlfrontier.json" in ckpt and "checkpoint/learner_group" in ckpt
    best = {a.path for a in client.list_artifacts(run.info.run_id, "best_checkpoint")}
    assert "best_checkpoint/rlfrontier.json" in best and "best_checkpoint/learner_group" in best
    best_meta = json.loads(Path(client.download_artifacts(
        run.info.run_id, "best_checkpoint/rlfrontier.json", str(cwd))).read_text())
    assert best_meta["eval_return_mean"] == summary["best_eval_return_mean"]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    summary_json = json.loads(Path(client.download_artifacts(run.info.run_id, "summary.json", str(cwd))).read_text())
    assert summary_json["status"] == "FINISHED" and summary_json["env_steps"] == summary["env_steps"]


def test_evaluate_is_deterministic_for_a_seed(trained):
    cwd, summary, _ = trained
    proc = cli("evaluate", summary["checkpoint"], "--episodes", "5", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = last_json(proc.stdout)
    assert out["episodes"] == 5 and len(out["returns"]) == 5
    assert out["algo"] == "soft_q" and out["env"] == "CartPole-v1" and not out["explore"]
    # (That it matches the run's own final evaluation is checked on a trained
    # policy in tests/learning: after 3,000 steps returns vary too much by
    # start state to compare two sets of episodes.)
    again = last_json(cli("evaluate", summary["checkpoint"], "--episodes", "5", "--json", cwd=cwd).stdout)
    assert again["returns"] == out["returns"], "same seed, same greedy policy: same returns"


def test_evaluate_plays_the_checkpoint_on_set_env_settings(trained):
    cwd, summary, _ = trained
    args = ("evaluate", summary["checkpoint"], "--episodes", "5", "--json")
    base = last_json(cli(*args, cwd=cwd).stdout)
    # RandomCartPole with no task set is CartPole-v1 step for step: the same greedy returns.
    nominal = last_json(cli(*args, "--env", "rlfrontier/RandomCartPole-v0", cwd=cwd).stdout)
    assert nominal["returns"] == base["returns"] and "env_config" not in nominal
    # Pinned held-out physics (a pole three times as long): another env, the same spaces.
    proc = cli(*args, "--env", "rlfrontier/RandomCartPole-v0", "--env-config", "resample_on_reset=true",
               "length_range=[1.5,1.5]", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shifted = last_json(proc.stdout)
    assert shifted["env_config"] == {"resample_on_reset": True, "length_range": [1.5, 1.5]}
    assert shifted["returns"] != base["returns"]
    # Settings that change the spaces are refused, naming them.
    bad = cli(*args, "--env", "rlfrontier/DeepSea-v0", "--env-config", "size=6", cwd=cwd)
    assert bad.returncode == 2 and "spaces differ" in bad.stderr.strip().splitlines()[-1]


def test_evaluate_metrics_needs_an_algorithm_with_its_own_evaluation(trained):
    cwd, summary, _ = trained
    # soft_q's evaluation is the greedy return `evaluate` plays; it has no hook, and the error names those that do.
    proc = cli("evaluate", summary["checkpoint"], "--metrics", cwd=cwd)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "soft_q has no evaluation of its own" in lines[0] and "pearl" in lines[0], lines[0]
    # --set changes the algorithm's evaluation only; greedy episodes' flags do not mix with --metrics.
    for args, needle in ((("--set", "held_out_tasks=5"), "only with --metrics"),
                         (("--metrics", "--episodes", "3"), "--episodes")):
        proc = cli("evaluate", summary["checkpoint"], *args, cwd=cwd)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_restore_continues_the_run(trained):
    cwd, summary, _ = trained
    proc = cli(
        "train", "soft_q", "--env", "CartPole-v1", "--seed", "3", "--restore", summary["checkpoint"],
        "--stop-timesteps", "5000", "--eval-interval", "0", "--json", cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = last_json(proc.stdout)
    # Counters come back with the state: the run goes on from where it stopped.
    assert summary["env_steps"] < resumed["env_steps"] < summary["env_steps"] + 4000


def test_restore_fine_tunes_on_another_env_with_the_same_spaces(trained):
    cwd, summary, _ = trained
    # No learning (warm-up longer than the run): the fine-tuned checkpoint must
    # hold exactly the restored weights, so its greedy returns match.
    proc = cli(
        "train", "soft_q", "--env", "CartPole-v0", "--seed", "4", "--restore", summary["checkpoint"],
        "--stop-iters", "1", "--eval-interval", "0",
        "--set", "num_steps_sampled_before_learning_starts=100000", "--json", cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tuned = last_json(proc.stdout)
    assert tuned["env"] == "CartPole-v0" and tuned["env_steps"] < 2000
    base = last_json(cli("evaluate", summary["checkpoint"], "--env", "CartPole-v0", "--episodes", "5", "--json", cwd=cwd).stdout)
    new = last_json(cli("evaluate", tuned["checkpoint"], "--episodes", "5", "--json", cwd=cwd).stdout)
    assert new["env"] == "CartPole-v0"
    assert new["returns"] == base["returns"]


def test_rllib_baselines_train_by_name(tmp_path):
    # On a project env: DeepSea's all-zero terminal observation used to crash RLlib's
    # epsilon-greedy with its tuned (zero-bias) settings (rlfrontier.baselines).
    proc = cli("train", "dqn", "--env", "rlfrontier/DeepSea-v0", "--env-config", "size=6", "--seed", "0",
                   "--stop-iters", "2", "--eval-interval", "0", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = last_json(proc.stdout)
    assert out["algo"] == "dqn" and out["iterations"] == 2 and out["env_steps"] > 0
    assert Path(out["checkpoint"]).is_dir()
