"""One reward transform, configured the same way, rewrites what soft_q (replay) and PPO (episodes) learn from.

Real runs from the command line, tracked in the default SQLite store: the
transformed and extrinsic reward means both reach MLflow, and they differ
exactly as the transform says (r' = 3 r + 0.5). DeepSea's rewards vary (a
move cost on every right step, the treasure at the end), so the check is not
a constant's; the return that EnvRunners report stays the extrinsic one.
"""

from __future__ import annotations

import mlflow
import pytest

from rlfrontier.rewards import REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN
from tests.conftest import cli, last_json

SCALE, SHIFT = 3.0, 0.5
TRANSFORM = ["--set", f"reward_transform={{type: affine, scale: {SCALE}, shift: {SHIFT}}}"]
DEEP_SEA = ["--env", "rlfrontier/DeepSea-v0", "--env-config", "size=6"]
RUNS = {
    "soft_q": ["--stop-iters", "3", "--set", "n_step=3", "--set", "num_steps_sampled_before_learning_starts=200"],
    "ppo": ["--stop-iters", "2", "--set", "train_batch_size_per_learner=600", "--set", "minibatch_size=200",
            "--set", "num_epochs=2"],
}


@pytest.mark.parametrize("algo", sorted(RUNS))
def test_the_logged_rewards_differ_as_the_transform_says(algo, tmp_path):
    proc = cli("train", algo, *DEEP_SEA, "--seed", "3", "--eval-interval", "0", *RUNS[algo], *TRANSFORM,
                   "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    prefix = "learners/default_policy/"
    extrinsic = {m.step: m.value for m in client.get_metric_history(summary["mlflow_run_id"], prefix + REWARD_EXTRINSIC_MEAN)}
    transformed = {m.step: m.value for m in client.get_metric_history(summary["mlflow_run_id"], prefix + REWARD_TRANSFORMED_MEAN)}
    assert extrinsic and extrinsic.keys() == transformed.keys()
    for step, value in extrinsic.items():
        assert transformed[step] == pytest.approx(SCALE * value + SHIFT, abs=1e-5), step
    # DeepSea's one-step rewards lie in [-0.01/N, 1], so the extrinsic means do
    # too, and r' - r = 2 r + 0.5 >= 0.48: the transformed means are other numbers.
    assert all(-0.01 <= v <= 1.0 for v in extrinsic.values())
    assert all(transformed[s] - extrinsic[s] > 0.45 for s in extrinsic)
    # The return the run reports is the environment's: at most 1 - 0.01 on DeepSea.
    assert summary["episode_return_mean"] <= 1.0
