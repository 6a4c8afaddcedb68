"""PPO's exploration bonuses in real runs: they reach what PPO learns from, are logged, and are checkpointed.

From the command line (`rlfrontier train ppo --bonus count|rnd`), tracked in
the default SQLite store: count's bonus is in the rewards the learner saw
(transformed - extrinsic = the logged intrinsic mean, every iteration); rnd
logs its predictor's and its intrinsic value head's losses. Through the
Python API: a checkpoint holds the count table, and restoring it restores it.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from rlfrontier import bonuses, ppo_bonus, rnd
from rlfrontier.rewards import REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN
from tests.conftest import cli, last_json
from tests.integration.test_bonus_runs import history

pytestmark = pytest.mark.integration

BETA = 0.5
# Small iterations (500 env steps, 10 SGD steps): two of them take a few seconds.
SMALL = ["--set", "train_batch_size_per_learner=500", "--set", "minibatch_size=100", "--set", "num_epochs=2"]
RUNS = {
    "count": ["--bonus-config", f"beta={BETA}"],
    "rnd": ["--bonus-config", "hidden_sizes=[16]", "--bonus-config", "embedding_dim=8"],
}


@pytest.mark.parametrize("bonus", sorted(RUNS))
def test_the_bonus_reaches_ppo_and_is_logged(bonus, tmp_path):
    proc = cli("train", "ppo", "--env", "CartPole-v1", "--seed", "3", "--eval-interval", "0", "--stop-iters", "2",
                   *SMALL, "--bonus", bonus, *RUNS[bonus], "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert "| bonus " in proc.stderr.split("iter 2")[-1]  # the progress line shows it
    assert summary["metrics"][f"{bonuses.RESULTS}/{bonuses.INTRINSIC_MEAN}"] > 0
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    prefix = "learners/default_policy/"
    extrinsic = history(client, run_id, prefix + REWARD_EXTRINSIC_MEAN)
    seen = history(client, run_id, prefix + REWARD_TRANSFORMED_MEAN)
    intrinsic = history(client, run_id, f"{bonuses.RESULTS}/{bonuses.INTRINSIC_MEAN}")
    assert len(extrinsic) == 2 and extrinsic.keys() == seen.keys() == intrinsic.keys()
    assert all(value > 0 for value in intrinsic.values())
    if bonus == "count":
        for step in extrinsic:
            # One reward stream: what the learner saw exceeds the env's rewards by the logged bonus.
            assert seen[step] - extrinsic[step] == pytest.approx(intrinsic[step], abs=1e-5), step
            assert intrinsic[step] <= BETA  # beta / sqrt(n), n >= 1
        cells = history(client, run_id, f"{bonuses.RESULTS}/{bonuses.CELLS}")
        assert list(cells.values()) == sorted(cells.values()) and 1 < max(cells.values()) <= 1000
        assert summary["metrics"][f"{bonuses.RESULTS}/{bonuses.CELLS}"] == max(cells.values())
    else:
        # Two streams: the rewards stay extrinsic; the intrinsic one has its own value head and predictor.
        assert seen == extrinsic
        for key in (f"learners/{rnd.MODULE_ID}/{rnd.PREDICTOR_LOSS}", prefix + ppo_bonus.VF_LOSS_INTRINSIC):
            values = history(client, run_id, key)
            assert len(values) == 2 and all(np.isfinite(v) for v in values.values()), key
        assert np.isfinite(summary["metrics"][ppo_bonus.VF_LOSS_INTRINSIC])


def test_a_bad_rnd_setting_exits_2_naming_it(tmp_path):
    proc = cli("train", "ppo", "--env", "CartPole-v1", "--bonus", "rnd", "--bonus-config", "int_coef=1",
                   "--stop-iters", "1", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'int_coef'" in lines[0] and "int_coeff" in lines[0], proc.stderr


def test_a_ppo_checkpoint_holds_the_counts_and_restores_them(local_ray, tmp_path):
    def config():
        return (
            ppo_bonus.PPOBonusConfig()
            .environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
            .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1,
                      bonus={"type": "count", "beta": BETA})
            .debugging(seed=5)
        )

    algo = config().build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        saved = algo._bonus().get_state()
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        algo.save_to_path(tmp_path / "checkpoint")
    finally:
        algo.stop()
    assert sum(saved["counts"]) == sampled >= 400  # one count per sampled step

    restored = config().build_algo()
    try:
        assert restored._bonus().metrics()[bonuses.CELLS] == 0
        restored.restore_from_path(tmp_path / "checkpoint")
        state = restored._bonus().get_state()
        assert state["keys"] == saved["keys"]
        np.testing.assert_array_equal(state["counts"], saved["counts"])
        np.testing.assert_array_equal(state["projection"], saved["projection"])
        result = restored.train()  # counting goes on from there
        new_steps = result["env_runners"]["num_env_steps_sampled"]
        assert sum(restored._bonus().get_state()["counts"]) == sum(saved["counts"]) + new_steps >= sampled + 200
        assert result[bonuses.RESULTS][bonuses.CELLS] >= len(saved["keys"])
    finally:
        restored.stop()
