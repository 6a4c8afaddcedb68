"""Unit tests for the DeepSea exploration environment."""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlfrontier.configure import build_config
from rlfrontier.envs import register_envs, with_run_seed
from rlfrontier.envs.deep_sea import DeepSeaEnv
from rlfrontier.seeding import ENV_MAPPING, derive_seed

ENV_ID = "rlfrontier/DeepSea-v0"


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


def test_uniform_random_policy_finds_the_treasure_with_probability_exactly_2_to_the_minus_n() -> None:
    # Under a uniform random policy every one of the 2^N action sequences is
    # equally likely, so P(treasure) = (sequences that find it) / 2^N. Exactly
    # one does (the optimal path), for any mapping: P = 2^-N, N = 10 -> 1/1024.
    size = 10
    for mapping_seed in (0, 1, 2):
        env = DeepSeaEnv(size=size, mapping_seed=mapping_seed)
        finders = [
            bits for bits in itertools.product((0, 1), repeat=size)
            if run_episode(env, list(bits))[0] > 0.5
        ]
        assert finders == [tuple(env.optimal_actions())], mapping_seed
        assert len(finders) / 2**size == 2.0**-size


def binomial_acceptance_interval(n: int, p: float, alpha: float) -> tuple[int, int]:
    """[lo, hi] with P(X < lo) <= alpha / 2 and P(X > hi) <= alpha / 2 for X ~ Binomial(n, p), exactly."""
    pmf = [
        math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
                 + (n - k) * math.log1p(-p))
        for k in range(n + 1)
    ]
    lo, below = 0, 0.0
    while below + pmf[lo] <= alpha / 2:
        below += pmf[lo]
        lo += 1
    hi, above = n, 0.0
    while above + pmf[hi] <= alpha / 2:
        above += pmf[hi]
        hi -= 1
    return lo, hi


def test_uniform_random_policy_empirical_rate_matches_2_to_the_minus_n() -> None:
    # 5 mappings x 4,000 random episodes at N = 10: finds ~ Binomial(20,000, 2^-10),
    # mean 19.5. The interval below is exact, and its false-failure probability
    # (a correct env failing the test for an arbitrary choice of seeds) is
    # below ALPHA = 1e-6; the seeds are 0-4, not picked to pass.
    size, per_mapping, alpha = 10, 4_000, 1e-6
    n, p = 5 * per_mapping, 2.0**-size
    lo, hi = binomial_acceptance_interval(n, p, alpha)
    assert (lo, hi) == (2, 45)  # the interval for these numbers, for the reader
    found = 0
    for seed in range(5):
        env = DeepSeaEnv(size=size, mapping_seed=seed)
        rng = np.random.default_rng(seed)
        for actions in rng.integers(0, 2, size=(per_mapping, size)):
            found += run_episode(env, actions.tolist())[0] > 0.5
    assert lo <= found <= hi, (found, lo, hi)


def test_a_run_seed_gives_its_own_mapping_shared_by_all_env_copies() -> None:
    first = with_run_seed(ENV_ID, {"size": 10}, 1)
    second = with_run_seed(ENV_ID, {"size": 10}, 2)
    assert first["mapping_seed"] == derive_seed(1, ENV_MAPPING)
    assert not np.array_equal(DeepSeaEnv(**first).action_mapping, DeepSeaEnv(**second).action_mapping)
    # Deterministic in the seed: every copy made from the run's env_config is the same MDP.
    assert with_run_seed(ENV_ID, {"size": 10}, 1) == first
    assert with_run_seed(ENV_ID, {"size": 10}, None) == {"size": 10}
    assert with_run_seed("CartPole-v1", {}, 1) == {}


def test_an_explicit_mapping_seed_wins_over_the_run_seed() -> None:
    assert with_run_seed(ENV_ID, {"size": 10, "mapping_seed": 7}, 1) == {"size": 10, "mapping_seed": 7}
    given = {"size": 5}
    with_run_seed(ENV_ID, given, 1)
    assert given == {"size": 5}, "the caller's dict is not changed"


def test_build_config_writes_the_run_mapping_into_env_config() -> None:
    _, config, _ = build_config(algo="boot_dqn", env=ENV_ID, env_config={"size": 6}, seed=3, evaluation_interval=0)
    assert config.env_config == {"size": 6, "mapping_seed": derive_seed(3, ENV_MAPPING)}
    _, pinned, _ = build_config(algo="boot_dqn", env=ENV_ID, env_config={"size": 6, "mapping_seed": 0}, seed=3,
                                evaluation_interval=0)
    assert pinned.env_config["mapping_seed"] == 0


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
