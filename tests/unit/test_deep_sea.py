"""Unit tests for the DeepSea exploration environment."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlfrontier.envs import register_envs
from rlfrontier.envs.deep_sea import DeepSeaEnv


def run_episode(env: DeepSeaEnv, actions: list[int]) -> tuple[float, int, bool]:
    """Plays `actions` from a reset; returns (return, steps taken, terminated at the last step)."""
    env.reset()
    total, terminated = 0.0, False
    for step, action in enumerate(actions, start=1):
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
        assert not truncated
        assert terminated == (step == len(actions))
    return total, len(actions), terminated


def path_actions(env: DeepSeaEnv, moves: list[bool]) -> list[int]:
    """Actions that carry out `moves` (True = right) from the top-left cell."""
    actions, column = [], 0
    for row, right in enumerate(moves):
        action = env.right_action(row, column)
        actions.append(action if right else 1 - action)
        column = min(column + 1, env.size - 1) if right else max(column - 1, 0)
    return actions


def test_spaces_and_one_hot_observations() -> None:
    env = DeepSeaEnv(size=4)
    assert env.action_space == gym.spaces.Discrete(2)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (16,), np.float32)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32 and obs.shape == (16,)
    assert obs[0] == 1.0 and obs.sum() == 1.0
    assert info == {"row": 0, "column": 0}
    obs, _, _, _, info = env.step(env.right_action(0, 0))
    assert info == {"row": 1, "column": 1}
    assert obs[1 * 4 + 1] == 1.0 and obs.sum() == 1.0
    obs, _, _, _, info = env.step(1 - env.right_action(1, 1))
    assert info == {"row": 2, "column": 0}
    assert obs[2 * 4 + 0] == 1.0 and obs.sum() == 1.0


@pytest.mark.parametrize("size", [2, 5, 10])
def test_episode_lasts_exactly_size_steps_and_ends_with_zero_observation(size: int) -> None:
    env = DeepSeaEnv(size=size)
    env.reset()
    rng = np.random.default_rng(0)
    for step in range(1, size + 1):
        obs, _, terminated, truncated, info = env.step(int(rng.integers(2)))
        assert not truncated
        assert terminated == (step == size)
    assert info["row"] == size
    assert not obs.any()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize("size", [5, 10, 20])
def test_optimal_path_returns_0_99(size: int) -> None:
    env = DeepSeaEnv(size=size, mapping_seed=size)
    assert env.optimal_return == pytest.approx(0.99)
    assert env.optimal_actions() == path_actions(env, [True] * size)
    total, steps, terminated = run_episode(env, env.optimal_actions())
    assert steps == size and terminated
    assert total == pytest.approx(0.99)
    assert total == pytest.approx(1.0 - size * (0.01 / size))


@pytest.mark.parametrize("size", [5, 10])
def test_always_left_returns_zero(size: int) -> None:
    env = DeepSeaEnv(size=size)
    total, _, _ = run_episode(env, path_actions(env, [False] * size))
    assert total == 0.0


@pytest.mark.parametrize("size", [2, 5, 10])
def test_one_left_step_anywhere_misses_the_treasure(size: int) -> None:
    env = DeepSeaEnv(size=size, mapping_seed=1)
    for left_at in range(size):
        moves = [step != left_at for step in range(size)]
        total, _, _ = run_episode(env, path_actions(env, moves))
        assert total == pytest.approx(-(size - 1) * 0.01 / size), left_at
        assert total < 0.0


def test_mapping_is_fixed_by_mapping_seed_only() -> None:
    env = DeepSeaEnv(size=10, mapping_seed=7)
    before = env.action_mapping.copy()
    env.reset(seed=1)
    optimal_1 = env.optimal_actions()
    env.reset(seed=12345)
    np.testing.assert_array_equal(env.action_mapping, before)
    assert env.optimal_actions() == optimal_1
    assert run_episode(env, optimal_1)[0] == pytest.approx(0.99)

    np.testing.assert_array_equal(DeepSeaEnv(size=10, mapping_seed=7).action_mapping, before)
    other = DeepSeaEnv(size=10, mapping_seed=8).action_mapping
    assert not np.array_equal(other, before)
    assert set(np.unique(before)) == {0, 1}


def test_randomize_actions_false_makes_action_1_right_everywhere() -> None:
    env = DeepSeaEnv(size=6, mapping_seed=3, randomize_actions=False)
    assert all(env.right_action(r, c) == 1 for r in range(6) for c in range(6))
    assert env.optimal_actions() == [1] * 6
    assert run_episode(env, [1] * 6)[0] == pytest.approx(0.99)
    assert run_episode(env, [0] * 6)[0] == 0.0


def test_uniform_random_policy_essentially_never_finds_the_treasure() -> None:
    env = DeepSeaEnv(size=10)
    rng = np.random.default_rng(2024)
    found = 0
    for _ in range(2000):
        total, _, _ = run_episode(env, [int(a) for a in rng.integers(0, 2, size=10)])
        found += total > 0.5
    assert found <= 2


def test_gymnasium_make_after_register() -> None:
    register_envs()
    register_envs()
    env = gym.make("rlfrontier/DeepSea-v0", size=8)
    try:
        assert isinstance(env.unwrapped, DeepSeaEnv)
        assert env.observation_space.shape == (64,)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (64,)
    finally:
        env.close()


@pytest.mark.parametrize("size", [1, 0, -3, 2.5, "10", True, None])
def test_bad_size_raises(size: object) -> None:
    with pytest.raises(ValueError, match="size"):
        DeepSeaEnv(size=size)  # type: ignore[arg-type]


def test_gymnasium_env_checker_passes() -> None:
    register_envs()
    env = gym.make("rlfrontier/DeepSea-v0", size=5)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
