"""gcl in real runs: the learned reward trains and is logged, soft_q learns on it, bad input exits 2.

From the command line (`rlfrontier train gcl --demos DIR`) on a tabular world,
tracked in the default SQLite store: the reward's metrics are in MLflow, the
rewards soft_q's learner saw are the learned reward's (not the env's), and the
evaluation hook reports maxent_irl's measures of the learned reward. Through
the Python API: a reward update moves only the reward (no Q step, no target
move), the driver's copy is the learners', the demonstrations' log-densities
are the current Boltzmann policy's, replay hands soft_q r_psi(s), and a
checkpoint restores the reward.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from rlfrontier import demos, replay
from rlfrontier.algorithms.gcl import GCLConfig
from rlfrontier.algorithms.gcl.gcl import EXPERT_RETURN_RATIO, REWARD_STEPS, paired_trajectories
from rlfrontier.algorithms.gcl.torch import cost
from rlfrontier.algorithms.maxent_irl.maxent_irl import EVD, EVD_RATIO, REWARD_CORRELATION
from rlfrontier.rewards import REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN
from tests.conftest import cli, last_json
from tests.integration.test_bonus_runs import history

pytestmark = pytest.mark.integration

ENV = "rlfrontier/GridWorld-v0"
# Small iterations: 256 env steps (16 episodes of 16 steps), 4 reward steps of 8 pairs.
SMALL = ["--set", "min_sample_timesteps_per_iteration=256", "--set", "cost_update_interval=64",
         "--set", "cost_batch_size=8", "--set", "num_steps_sampled_before_learning_starts=128"]


@pytest.fixture(scope="module")
def grid_demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "grid"
    demos.record(out=out, env_id=ENV, episodes=10, scripted="optimal", seed=3)
    return out


def test_the_reward_trains_is_logged_and_reaches_soft_q(grid_demos, tmp_path):
    proc = cli("train", "gcl", "--env", ENV, "--demos", str(grid_demos), "--seed", "3", "--stop-iters", "2",
               "--eval-interval", "2", "--eval-episodes", "2", *SMALL, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["iterations"] == 2
    metrics = summary["metrics"]
    expert = demos.load(grid_demos).manifest["return_mean"]
    assert metrics[EXPERT_RETURN_RATIO] == pytest.approx(summary["eval_return_mean"] / expert)
    assert -1.0 <= metrics[REWARD_CORRELATION] <= 1.0 and metrics[EVD] >= -1e-9 and np.isfinite(metrics[EVD_RATIO])

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    for key in (cost.IOC_LOSS, cost.WEIGHT_ESS, cost.DEMO_WEIGHT, cost.REWARD_DEMO_MEAN, cost.REWARD_SAMPLE_MEAN):
        values = history(client, run_id, f"learners/{cost.MODULE_ID}/{key}")
        assert len(values) == 2 and all(np.isfinite(v) for v in values.values()), key
    assert all(0.0 < v <= 1.0 for v in history(client, run_id, f"learners/{cost.MODULE_ID}/{cost.WEIGHT_ESS}").values())
    seen = history(client, run_id, f"learners/{DEFAULT_MODULE_ID}/{REWARD_TRANSFORMED_MEAN}")
    extrinsic = history(client, run_id, f"learners/{DEFAULT_MODULE_ID}/{REWARD_EXTRINSIC_MEAN}")
    assert seen and seen.keys() == extrinsic.keys()
    assert any(seen[step] != pytest.approx(extrinsic[step]) for step in seen)  # soft_q learnt from r_psi
    # The checkpoint's policy plays without its learner-only reward.
    played = cli("evaluate", summary["checkpoint"], "--episodes", "2", "--json", cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    assert last_json(played.stdout)["algo"] == "gcl"
    check_learned_reward(summary["checkpoint"])


def check_learned_reward(checkpoint: str) -> None:
    """`{"type": "gcl", "checkpoint": DIR}` hands a fresh policy the run's r_psi(s), whatever the env paid."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from rlfrontier import rewards
    from rlfrontier.algorithms.adversarial.learned_reward import MODULE_PATH

    transform = rewards.build({"type": "gcl", "checkpoint": checkpoint})
    trained = RLModule.from_checkpoint(str(Path(checkpoint) / MODULE_PATH / cost.MODULE_ID))
    obs = np.eye(64, dtype=np.float32)[[0, 5, 9, 63]].reshape(2, 2, 64)  # a replay window's [B, n, ...] shape
    columns = {replay.OBS: obs, replay.ACTIONS: np.zeros((2, 2), np.int64), replay.REWARDS: np.ones((2, 2), np.float32)}
    with torch.no_grad():
        expected = trained.step_reward(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(transform(columns), expected, rtol=1e-6)
    assert np.ptp(expected) > 0  # a reward that tells states apart, not the env's constant 1
    with pytest.raises(ValueError, match="holds no reward"):
        rewards.build({"type": "gcl", "checkpoint": str(Path(checkpoint).parent)})


@pytest.mark.parametrize("extra, needle", [
    ([], "--demos"),
    (["--demos", "DEMOS", "--bonus", "count"], "bonus"),
    (["--demos", "DEMOS", "--set", "cost_l2=-1"], "cost_l2"),
])
def test_bad_input_exits_2_with_one_line(extra, needle, grid_demos, tmp_path):
    extra = [str(grid_demos) if a == "DEMOS" else a for a in extra]
    proc = cli("train", "gcl", "--env", ENV, "--stop-iters", "1", *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def _weights(algo, module_id):
    return {k: np.array(v, copy=True) for k, v in algo.learner_group.get_weights(module_ids=[module_id])[module_id].items()}


def _moved(before, after) -> bool:
    return any(not np.array_equal(before[k], after[k]) for k in before)


def test_reward_updates_move_only_the_reward_and_replay_hands_soft_q_its_values(grid_demos, local_ray, tmp_path):
    config = (GCLConfig().environment(ENV).env_runners(num_env_runners=0, num_envs_per_env_runner=4)
              .training(demos=str(grid_demos), cost_batch_size=4,
                        num_steps_sampled_before_learning_starts=64)
              .reporting(min_sample_timesteps_per_iteration=128)
              .debugging(seed=5))
    algo = config.build_algo()
    try:
        result = algo.train()  # reward updates and soft_q updates
        # One reward step per cost_update_interval (32) env steps sampled, whatever a sample call brings
        # (here 4 envs x 16 steps: 2 a call); every call completes episodes of 16 steps, so none is skipped.
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert result[REWARD_STEPS] == sampled // 32
        learner = algo.learner_group._learner
        policy_before, reward_before = _weights(algo, DEFAULT_MODULE_ID), _weights(algo, cost.MODULE_ID)
        module = learner.module[DEFAULT_MODULE_ID].unwrapped()
        target_before = {k: v.clone() for k, v in module.target_qf.state_dict().items()}
        updates_before = learner._num_updates

        episodes = algo.env_runner.sample(num_timesteps=64, random_actions=False)
        algo.update_reward(episodes)
        policy_mid, reward_mid = _weights(algo, DEFAULT_MODULE_ID), _weights(algo, cost.MODULE_ID)
        assert _moved(reward_before, reward_mid) and not _moved(policy_before, policy_mid)
        assert learner._num_updates == updates_before, "a reward step is not one of soft_q's updates"
        for k, v in module.target_qf.state_dict().items():
            torch.testing.assert_close(v, target_before[k])
        copy = {k: v.numpy() for k, v in algo._reward.state_dict().items()}
        assert not _moved(reward_mid, copy), "the driver's copy is the learners' reward"

        # The demonstrations' log-density: the current Boltzmann policy's, sum_t log softmax(Q / alpha)[a_t].
        rows = paired_trajectories(list(algo._pool.trajectories), algo._demos, size=3, rng=np.random.default_rng(0))
        tensors = {k: torch.as_tensor(v) for k, v in rows.items()}
        got = learner.policy_log_q(obs=tensors[cost.DEMO_OBS], actions=tensors[cost.DEMO_ACTIONS],
                                   mask=tensors[cost.DEMO_MASK])
        with torch.no_grad():
            logits = module.forward_exploration({Columns.OBS: tensors[cost.DEMO_OBS].reshape(-1, 64)})[
                Columns.ACTION_DIST_INPUTS]
        logp = torch.log_softmax(logits, -1).gather(-1, tensors[cost.DEMO_ACTIONS].reshape(-1, 1)).reshape(3, -1)
        torch.testing.assert_close(got, (logp * tensors[cost.DEMO_MASK]).sum(-1), rtol=1e-5, atol=1e-5)
        # The sampled trajectories' log q is the EnvRunner's: finite, and at most 0.
        assert all(np.isfinite(t.log_q) and t.log_q <= 0 for t in algo._pool.trajectories)

        # Replay's rewards are r_psi(s) of the driver's copy, whatever the env paid.
        window = {replay.OBS: np.eye(64, dtype=np.float32)[:5], replay.ACTIONS: np.zeros(5, np.int64),
                  replay.REWARDS: np.ones(5, np.float32)}
        with torch.no_grad():
            expected = algo._reward.step_reward(torch.as_tensor(window[replay.OBS])).numpy()
        np.testing.assert_allclose(algo._reward_hook(window), expected, rtol=1e-6)

        algo.train()  # soft_q moves again
        assert _moved(policy_mid, _weights(algo, DEFAULT_MODULE_ID))

        path = algo.save_to_path(str(tmp_path / "ckpt"))
        trained = _weights(algo, cost.MODULE_ID)
    finally:
        algo.stop()
    restored = config.build_algo()
    try:
        restored.restore_from_path(path)
        assert not _moved(trained, _weights(restored, cost.MODULE_ID))
        copy = {k: v.numpy() for k, v in restored._reward.state_dict().items()}
        assert not _moved(trained, copy), "a restore refreshes the driver's copy"
    finally:
        restored.stop()
