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
from rlfrontier.envs.deep_sea import MOVE_COST, TREASURE, DeepSeaEnv
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


# bsuite's stochastic DeepSea (bsuite/environments/deep_sea.py, deterministic=False) --------------------------------
STOCHASTIC_ID = "rlfrontier/DeepSeaStochastic-v0"


def test_stochastic_right_fails_with_probability_one_over_n_and_then_stays_in_its_column() -> None:
    # Every "right" taken in a column < N - 1 is one Bernoulli(1/N) trial whose
    # failure shows as an unchanged column (bsuite: no move, not a move left);
    # at column N - 1 the clamp hides it, so those steps are not counted.
    # failures ~ Binomial(20,000, 1/10): the exact interval below has a
    # false-failure probability (a correct env failing for an arbitrary,
    # unpicked reset seed) below ALPHA = 1e-6.
    size, trials, alpha = 10, 20_000, 1e-6
    lo, hi = binomial_acceptance_interval(trials, 1.0 / size, alpha)
    assert (lo, hi) == (1796, 2211)  # the interval for these numbers, for the reader
    env = DeepSeaEnv(size=size, mapping_seed=4, stochastic=True)
    assert env.right_failure_probability == pytest.approx(0.1)
    env.reset(seed=0)
    counted = failures = 0
    while counted < trials:
        _, info = env.reset()
        for _ in range(size):
            row, column = info["row"], info["column"]
            _, reward, _, _, info = env.step(env.right_action(row, column))
            assert info["column"] in (column, min(column + 1, size - 1))
            if row < size - 1:  # no noise, no treasure: just the move cost, moved or not
                assert reward == pytest.approx(-MOVE_COST / size)
            if column < size - 1 and counted < trials:
                counted += 1
                failures += info["column"] == column
    assert lo <= failures <= hi, (failures, lo, hi)


def test_stochastic_left_always_moves_left() -> None:
    env = DeepSeaEnv(size=6, mapping_seed=2, stochastic=True)
    env.reset(seed=1)
    for _ in range(200):
        _, info = env.reset()
        for _ in range(6):
            column = info["column"]
            _, _, _, _, info = env.step(1 - env.right_action(info["row"], column))
            assert info["column"] == max(column - 1, 0)


def _rewards_from_cell(env: DeepSeaEnv, row: int, column: int, action: int, repeats: int) -> np.ndarray:
    """Rewards of `repeats` steps taken from cell (row, column); the state is set directly (white box)."""
    rewards = np.empty(repeats)
    for i in range(repeats):
        env._row, env._column = row, column
        rewards[i] = env.step(action)[1]
    return rewards


def test_stochastic_noise_is_standard_normal_at_the_bottom_corners_only() -> None:
    # bsuite adds N(0, 1) to the reward of the last step from (N-1, 0) and
    # (N-1, N-1), whatever the action, and nowhere else. Elsewhere the reward
    # is exactly the deterministic one. At the corners, 4,000 draws per
    # (cell, action): the mean within 6 standard errors of 0 and the sample
    # std within 0.1 of 1 (about 9 standard errors of it): false-failure
    # probability below 1e-8 per check under the normal approximation.
    size, repeats = 5, 4_000
    env = DeepSeaEnv(size=size, mapping_seed=3, stochastic=True)
    env.reset(seed=11)
    for row, column in ((r, c) for r in range(size) for c in range(r + 1)):
        for action in (0, 1):
            right = action == env.right_action(row, column)
            exact = (-MOVE_COST / size if right else 0.0) + (
                TREASURE if right and (row, column) == (size - 1, size - 1) else 0.0)
            corner = row == size - 1 and column in (0, size - 1)
            rewards = _rewards_from_cell(env, row, column, action, repeats if corner else 50)
            if corner:
                noise = rewards - exact
                assert abs(noise.mean()) < 6 / math.sqrt(repeats), (row, column, action, noise.mean())
                assert abs(noise.std() - 1.0) < 0.1, (row, column, action, noise.std())
            else:
                np.testing.assert_array_equal(rewards, exact, err_msg=str((row, column, action)))


def test_stochastic_optimal_return_is_bsuite_s_and_matches_always_right() -> None:
    # bsuite: (1 - 1/N)^(N-1) - 0.01, the expected return of taking "right" in
    # every cell. 10,000 such episodes: returns have std < 1.2 (treasure
    # Bernoulli plus corner noise), so 6 standard errors is < 0.072; the
    # false-failure probability is about 2e-9 (normal approximation).
    size, episodes = 10, 10_000
    env = DeepSeaEnv(size=size, mapping_seed=0, stochastic=True)
    assert env.optimal_return == pytest.approx((1 - 1 / size) ** (size - 1) - 0.01)
    assert DeepSeaEnv(size=size).optimal_return == pytest.approx(0.99)
    env.reset(seed=5)
    returns = np.empty(episodes)
    for e in range(episodes):
        _, info = env.reset()
        total = 0.0
        for _ in range(size):
            _, reward, _, _, info = env.step(env.right_action(info["row"], info["column"]))
            total += reward
        returns[e] = total
    assert returns.std() < 1.2
    assert abs(returns.mean() - env.optimal_return) < 6 * 1.2 / math.sqrt(episodes), returns.mean()


def _trajectory(env: gym.Env, seed: int | None, actions: np.ndarray) -> list[tuple]:
    """(reward, row, column) of every step of episodes played with `actions` rows, after reset(seed)."""
    env.reset(seed=seed)
    steps = []
    for episode_actions in actions:
        env.reset()
        for action in episode_actions:
            _, reward, _, _, info = env.step(int(action))
            steps.append((reward, info["row"], info["column"]))
    return steps


def test_stochastic_randomness_follows_the_reset_seed() -> None:
    actions = np.random.default_rng(0).integers(0, 2, size=(300, 6))
    env = DeepSeaEnv(size=6, mapping_seed=1, stochastic=True)
    first = _trajectory(env, 3, actions)
    assert _trajectory(DeepSeaEnv(size=6, mapping_seed=1, stochastic=True), 3, actions) == first
    assert _trajectory(env, 4, actions) != first


def test_deterministic_variant_draws_nothing_from_np_random() -> None:
    # The default stays bsuite's deterministic DeepSea: no reset seed changes
    # an episode, and the env's random stream is never touched.
    actions = np.random.default_rng(1).integers(0, 2, size=(200, 6))
    env = DeepSeaEnv(size=6, mapping_seed=1)
    assert not env.stochastic and env.right_failure_probability == 0.0
    first = _trajectory(env, 3, actions)
    assert _trajectory(env, 4, actions) == first
    assert _trajectory(env, None, actions) == first
    env.reset(seed=9)
    state = env.np_random.bit_generator.state
    for episode_actions in actions:
        env.reset()
        for action in episode_actions:
            env.step(int(action))
    assert env.np_random.bit_generator.state == state


@pytest.mark.parametrize("stochastic", [1, "yes", None])
def test_bad_stochastic_raises(stochastic: object) -> None:
    with pytest.raises(ValueError, match="stochastic"):
        DeepSeaEnv(size=4, stochastic=stochastic)  # type: ignore[arg-type]


def test_stochastic_id_is_registered_with_its_switch_on_and_passes_the_env_checker() -> None:
    register_envs()
    env = gym.make(STOCHASTIC_ID, size=5)
    try:
        assert isinstance(env.unwrapped, DeepSeaEnv) and env.unwrapped.stochastic
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
    assert not gym.make(ENV_ID, size=5).unwrapped.stochastic
    assert gym.make(ENV_ID, size=5, stochastic=True).unwrapped.stochastic


@pytest.mark.parametrize("env_id", [ENV_ID, STOCHASTIC_ID])
def test_the_mapping_follows_the_run_seed_for_both_variants(env_id: str) -> None:
    _, config, _ = build_config(algo="boot_dqn", env=env_id, env_config={"size": 6}, seed=3, evaluation_interval=0)
    assert config.env_config == {"size": 6, "mapping_seed": derive_seed(3, ENV_MAPPING)}
    register_envs()
    made = gym.make(env_id, **config.env_config).unwrapped
    np.testing.assert_array_equal(made.action_mapping, DeepSeaEnv(size=6, mapping_seed=derive_seed(3, ENV_MAPPING))
                                  .action_mapping)
    other = with_run_seed(env_id, {"size": 6}, 4)
    assert not np.array_equal(gym.make(env_id, **other).unwrapped.action_mapping, made.action_mapping)
