"""CartPoleFixedHorizon: no termination, truncation at the horizon, reward only while the pole is up."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlfrontier import demos, envs
from rlfrontier.validation import BadInput

ENV = "rlfrontier/CartPoleFixedHorizon-v0"


def make(**env_config) -> gym.Env:
    envs.register_envs()
    return gym.make(ENV, **env_config)


def play(env: gym.Env, policy, *, seed: int) -> tuple[float, int, list]:
    """(return, steps, the (obs, reward, terminated, truncated) of every step)."""
    obs, _ = env.reset(seed=seed)
    steps = []
    while not (steps and steps[-1][3]):
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        steps.append((obs, reward, terminated, truncated))
        assert len(steps) <= 10_000
    return sum(s[1] for s in steps), len(steps), steps


def test_never_terminates_and_truncates_exactly_at_the_horizon():
    env = make(horizon=300)
    _, length, steps = play(env, lambda obs: 0, seed=0)  # always left: the pole falls within ~10 steps
    assert length == 300
    assert not any(s[2] for s in steps)
    assert [s[3] for s in steps] == [False] * 299 + [True]


def test_the_reward_is_zero_while_out_of_bounds_and_one_while_up():
    env = make(horizon=200)
    _, _, steps = play(env, lambda obs: 1, seed=1)
    for obs, reward, _, _ in steps:
        up = abs(obs[0]) <= 2.4 and abs(obs[2]) <= 12 * 2 * np.pi / 360
        assert reward == float(up)
    assert steps[-1][1] == 0.0 and steps[0][1] == 1.0


@pytest.mark.parametrize("policy", ["left", "right", "random", "sticky"])
def test_observations_stay_finite_and_inside_the_declared_space(policy):
    env = make(horizon=2000)
    rng = np.random.default_rng(0)
    choose = {
        "left": lambda obs: 0,
        "right": lambda obs: 1,
        "random": lambda obs: int(rng.integers(2)),
        "sticky": lambda obs: int(obs[1] < 0) if rng.random() < 0.05 else int(obs[1] >= 0),  # pushes along
    }[policy]
    _, _, steps = play(env, choose, seed=2)
    for obs, *_ in steps:
        assert env.observation_space.contains(obs), obs
    # The stops bound the velocities as well (measured up to ~14 and ~5 under such play).
    assert np.abs(np.stack([s[0] for s in steps])[:, [1, 3]]).max() < 50


def test_the_space_is_cartpoles_so_its_expert_demos_and_checkpoints_fit():
    env, cartpole = make(), gym.make("CartPole-v1")
    assert env.observation_space == cartpole.observation_space and env.action_space == cartpole.action_space


def test_the_scripted_controller_scores_the_horizon_and_a_random_policy_far_less():
    env = make()
    rng = np.random.default_rng(0)
    expert = [play(env, demos.cartpole_action, seed=s)[0] for s in range(5)]
    random = [play(env, lambda obs: int(rng.integers(2)), seed=s)[0] for s in range(5)]
    assert min(expert) >= 495
    assert max(random) < 150


def test_a_bad_horizon_is_bad_input_naming_it():
    with pytest.raises(BadInput, match="horizon=0"):
        envs.check_env(ENV, {"horizon": 0})
