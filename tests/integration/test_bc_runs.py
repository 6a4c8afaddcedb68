"""bc end to end: clone the scripted CartPole expert into soft_q's module, then start soft_q from the clone.

Measured here (seeds 0, 1, 2; 20 expert episodes; 10 iterations of 100 updates, ~5 s of training):
greedy evaluation 500 on every seed, action accuracy 0.964-0.970; soft_q restored from the clone
evaluates at 500 after its first iteration, a fresh soft_q at 9.4-10.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cli, last_json

pytestmark = pytest.mark.integration

ITERATIONS = 10


@pytest.fixture(scope="module")
def cloned(tmp_path_factory):
    """(folder, the JSON line of a bc run on 20 expert episodes)."""
    cwd = tmp_path_factory.mktemp("bc")
    proc = cli("demos", "record", "--scripted", "cartpole", "--env", "CartPole-v1", "--episodes", "20",
                   "--out", str(cwd / "demos"), cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli("train", "bc", "--env", "CartPole-v1", "--demos", str(cwd / "demos"), "--stop-iters",
                   str(ITERATIONS), "--eval-interval", "5", "--seed", "0", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, last_json(proc.stdout)


def test_the_clone_plays_as_the_expert_without_an_env_step_of_training(cloned):
    _, summary = cloned
    assert summary["iterations"] == ITERATIONS and summary["env_steps"] == 0
    assert summary["eval_return_mean"] >= 475
    assert summary["metrics"]["action_accuracy"] > 0.95
    meta = json.loads(Path(summary["checkpoint"], "rlfrontier.json").read_text())
    assert (meta["algo"], meta["module_of"]) == ("bc", "soft_q")


def test_soft_q_restored_from_the_clone_starts_far_above_a_fresh_one(cloned):
    cwd, summary = cloned
    first = ["--env", "CartPole-v1", "--stop-iters", "1", "--eval-interval", "1", "--seed", "0", "--json"]
    restored = cli("train", "soft_q", "--restore", summary["checkpoint"], *first, cwd=cwd)
    assert restored.returncode == 0, restored.stderr[-3000:]
    fresh = cli("train", "soft_q", *first, cwd=cwd)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    restored_eval, fresh_eval = (last_json(p.stdout)["eval_return_mean"] for p in (restored, fresh))
    assert restored_eval >= 475 and restored_eval >= fresh_eval + 300, (restored_eval, fresh_eval)


def test_ppo_cannot_take_a_clone_of_soft_qs_module_and_says_whose_it_is(cloned, tmp_path):
    _, summary = cloned
    proc = cli("train", "ppo", "--env", "CartPole-v1", "--restore", summary["checkpoint"], "--stop-iters", "1",
                   cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert all(name in lines[0] for name in (summary["checkpoint"], "bc", "soft_q", "ppo")), lines[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_a_box_action_clone_learns_and_records_in_the_right_units(tmp_path):
    """Pendulum: demonstrations hold torques in [-2, 2], RLlib's module acts in [-1, 1] units
    (normalize_actions) that the EnvRunner unsquashes. bc fits the demonstrated torques in the module's
    units (raw torques as targets would double every torque the env receives), and recording from its
    checkpoint stores the torques the env received, so the recorded actions replay the recorded episode."""
    import gymnasium as gym
    import numpy as np

    from rlfrontier import demos
    from rlfrontier.algorithms.bc import BCConfig
    from tests.conftest import shared_ray, stop_shared_ray

    proc = cli("demos", "record", "--scripted", "pendulum", "--env", "Pendulum-v1", "--episodes", "2",
               "--out", str(tmp_path / "expert"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    torques = demos.load(tmp_path / "expert").transitions()[demos.ACTION]
    assert np.abs(torques).max() > 1.0
    shared_ray()
    for normalize in (True, False):
        algo = (BCConfig().environment("Pendulum-v1", normalize_actions=normalize)
                .training(demos=str(tmp_path / "expert")).env_runners(num_env_runners=0).build_algo())
        try:
            np.testing.assert_allclose(algo._actions, torques / 2.0 if normalize else torques, atol=1e-6)
        finally:
            algo.stop()
    stop_shared_ray()

    proc = cli("train", "bc", "--env", "Pendulum-v1", "--demos", str(tmp_path / "expert"), "--stop-iters", "2",
               "--eval-interval", "0", "--seed", "0", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli("demos", "record", last_json(proc.stdout)["checkpoint"], "--env", "Pendulum-v1", "--episodes", "2",
               "--seed", "100", "--explore", "--out", str(tmp_path / "clone"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    episodes = demos.load(tmp_path / "clone").episodes()
    for i, episode in enumerate(episodes):
        env = gym.make("Pendulum-v1")
        obs, _ = env.reset(seed=100 + i)
        for t, action in enumerate(episode["action"]):
            obs, *_ = env.step(action)
            np.testing.assert_allclose(episode["next_obs"][t], obs, atol=1e-3)  # float32 torques: rounding
    recorded = np.concatenate([e["action"] for e in episodes])
    assert np.abs(recorded).max() <= 2.0 and np.abs(recorded).max() > 1.0  # sampled: some beyond 1 N m
