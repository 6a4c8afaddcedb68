"""Unit tests for the tabular worlds with known dynamics (GridWorld, ObjectWorld) used by exact MaxEnt IRL."""

from __future__ import annotations

import math
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlfrontier.envs import register_envs
from rlfrontier.envs.gridworld import GridWorldEnv, grid_transitions
from rlfrontier.envs.objectworld import ObjectWorldEnv, levine_reward, nearest_distances

GRID_ID = "rlfrontier/GridWorld-v0"
OBJECT_ID = "rlfrontier/ObjectWorld-v0"
STAY, RIGHT, LEFT, DOWN, UP = range(5)


def small_worlds() -> list:
    return [
        GridWorldEnv(size=4, block=2, slip=0.3),
        GridWorldEnv(size=6, block=3, slip=0.0, features="state"),
        ObjectWorldEnv(size=6, num_objects=6, slip=0.3),
        ObjectWorldEnv(size=5, num_colours=3, features="discrete"),
    ]


@pytest.mark.parametrize("env", small_worlds(), ids=["grid", "grid-state", "object", "object-discrete"])
def test_arrays_have_the_contract_shapes_and_transition_rows_sum_to_one(env) -> None:
    n = env.num_states
    assert env.transition_tensor.shape == (n, 5, n) and env.transition_tensor.dtype == np.float64
    np.testing.assert_allclose(env.transition_tensor.sum(axis=2), 1.0, atol=1e-12)
    assert (env.transition_tensor >= 0).all()
    assert env.state_features.shape[0] == n and env.state_features.dtype == np.float64
    assert env.true_reward.shape == (n,) and env.true_reward.dtype == np.float64
    np.testing.assert_allclose(env.initial_distribution, np.full(n, 1.0 / n))
    assert env.action_space == gym.spaces.Discrete(5)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (n,), np.float32)


def test_slip_zero_moves_as_specified_and_walls_mean_stay() -> None:
    size = 3
    p = grid_transitions(size=size, slip=0.0)
    assert set(np.unique(p)) == {0.0, 1.0}
    target = p.argmax(axis=2)

    def cell(row: int, column: int) -> int:
        return row * size + column

    assert target[cell(0, 0), RIGHT] == cell(0, 1)
    assert target[cell(0, 0), DOWN] == cell(1, 0)
    assert target[cell(0, 0), LEFT] == cell(0, 0)  # wall
    assert target[cell(0, 0), UP] == cell(0, 0)  # wall
    assert target[cell(1, 1), STAY] == cell(1, 1)
    assert target[cell(1, 1), LEFT] == cell(1, 0)
    assert target[cell(1, 1), UP] == cell(0, 1)
    assert target[cell(2, 2), RIGHT] == cell(2, 2) and target[cell(2, 2), DOWN] == cell(2, 2)

    env = GridWorldEnv(size=size, block=1, slip=0.0)
    env.reset(seed=0, options={"state": cell(0, 0)})
    obs, _, _, _, info = env.step(RIGHT)
    assert info == {"state": cell(0, 1)} and env.state == cell(0, 1)
    assert obs[cell(0, 1)] == 1.0 and obs.sum() == 1.0


def test_slip_takes_a_uniform_random_action_with_probability_slip() -> None:
    slip, size = 0.3, 4
    p = grid_transitions(size=size, slip=slip)
    interior = 1 * size + 1
    # Interior: the 5 actions lead to 5 different states.
    assert p[interior, RIGHT, interior + 1] == pytest.approx(1 - slip + slip / 5)
    for other in (interior, interior - 1, interior + size, interior - size):
        assert p[interior, RIGHT, other] == pytest.approx(slip / 5)
    # Corner (0, 0): stay, left and up all stay.
    assert p[0, STAY, 0] == pytest.approx(1 - slip + 3 * slip / 5)
    assert p[0, RIGHT, 0] == pytest.approx(3 * slip / 5)


@pytest.mark.parametrize("state, action", [(0, RIGHT), (5, UP)])
def test_step_frequencies_match_the_transition_tensor(state: int, action: int) -> None:
    env = GridWorldEnv(size=4, block=2, slip=0.4)
    n, num_states = 20_000, env.num_states
    counts = np.zeros(num_states)
    env.reset(seed=123)
    for _ in range(n):
        env.reset(options={"state": state})
        _, _, _, _, info = env.step(action)
        counts[info["state"]] += 1
    # Hoeffding per next state, union over all of them: false failure probability <= 1e-6.
    tolerance = math.sqrt(math.log(2 * num_states / 1e-6) / (2 * n))
    np.testing.assert_array_less(np.abs(counts / n - env.transition_tensor[state, action]), tolerance)
    assert counts[env.transition_tensor[state, action] == 0].sum() == 0


@pytest.mark.parametrize("env", small_worlds()[::2], ids=["grid", "object"])
def test_step_returns_the_reward_of_the_state_acted_from_and_truncates_at_horizon(env) -> None:
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, info = env.reset(seed=episode)
        state, total = info["state"], 0.0
        assert obs.argmax() == state and obs.sum() == 1.0 and obs.dtype == np.float32
        for step in range(1, env.horizon + 1):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
            assert reward == env.true_reward[state]
            assert not terminated
            assert truncated == (step == env.horizon)
            total += reward
            state = info["state"]
            assert obs.argmax() == state == env.state
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_horizon_defaults_to_twice_the_size_and_is_configurable() -> None:
    assert GridWorldEnv().horizon == 16
    assert ObjectWorldEnv().horizon == 32
    env = GridWorldEnv(size=4, horizon=3)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        GridWorldEnv(size=4).step(0)


def test_reset_seed_replays_and_never_changes_the_mdp() -> None:
    env = ObjectWorldEnv(size=8)
    arrays = [env.transition_tensor.copy(), env.state_features.copy(), env.true_reward.copy()]

    def rollout(seed: int) -> list[int]:
        states = [env.reset(seed=seed)[1]["state"]]
        states += [env.step(i % 5)[4]["state"] for i in range(env.horizon)]
        return states

    assert rollout(1) == rollout(1)
    rollout(2)
    for before, after in zip(arrays, [env.transition_tensor, env.state_features, env.true_reward]):
        np.testing.assert_array_equal(before, after)


def test_equal_configs_give_equal_mdps_and_seeds_change_them() -> None:
    np.testing.assert_array_equal(GridWorldEnv().true_reward, GridWorldEnv().true_reward)
    assert not np.array_equal(GridWorldEnv().true_reward, GridWorldEnv(reward_seed=1).true_reward)
    a, b = ObjectWorldEnv(), ObjectWorldEnv()
    np.testing.assert_array_equal(a.state_features, b.state_features)
    np.testing.assert_array_equal(a.true_reward, b.true_reward)
    np.testing.assert_array_equal(a.transition_tensor, b.transition_tensor)
    other = ObjectWorldEnv(layout_seed=1)
    assert not np.array_equal(a.object_cells, other.object_cells)
    assert not np.array_equal(a.state_features, other.state_features)


def test_grid_reward_is_linear_in_block_and_state_features() -> None:
    block = GridWorldEnv()
    assert block.state_features.shape == (64, 16)
    np.testing.assert_array_equal(block.state_features.sum(axis=1), 1.0)
    np.testing.assert_allclose(block.state_features @ block.reward_weights, block.true_reward)
    state = GridWorldEnv(features="state")
    assert state.state_features.shape == (64, 64)
    np.testing.assert_allclose(state.state_features @ state.reward_weights, state.true_reward)
    np.testing.assert_array_equal(state.true_reward, block.true_reward)
    coords = GridWorldEnv(features="coords")
    assert coords.state_features.shape == (64, 3) and coords.reward_weights is None
    np.testing.assert_allclose(coords.state_features[63], [1.0, 1.0, 1.0])


def test_grid_reward_recipe_is_sparse_with_one_clear_best_macro_cell() -> None:
    for seed in range(5):
        weights = GridWorldEnv(size=8, block=2, reward_seed=seed).reward_weights
        assert (weights == 1.0).sum() == 1
        others = weights[weights < 1.0]
        assert (others <= 0.5).all() and (others >= 0).all()
        assert (weights > 0).sum() == 5  # u >= its 70th percentile: 5 of 16 macro cells
    env = GridWorldEnv(size=4, block=2)
    # Every state of a macro cell has its reward.
    np.testing.assert_array_equal(env.true_reward.reshape(4, 4)[:2, :2], env.reward_weights[0])


def test_nearest_distances_and_levine_reward_by_hand() -> None:
    distances = np.array([[1.0, 2.0, 5.0], [4.0, 3.0, 0.0]])
    nearest = nearest_distances(distances=distances, colours=np.array([0, 0, 2]), num_colours=3, absent=9.0)
    np.testing.assert_array_equal(nearest, [[1.0, 9.0, 5.0], [3.0, 9.0, 0.0]])
    outer = np.array([[3.0, 2.0], [3.0, 2.1], [3.1, 0.0], [10.0, 10.0]])
    np.testing.assert_array_equal(levine_reward(outer_distances=outer), [1.0, -1.0, 0.0, 0.0])


def test_object_world_defaults_have_both_signs_and_a_nonlinear_reward() -> None:
    start = time.perf_counter()
    env = ObjectWorldEnv()
    assert time.perf_counter() - start < 1.0
    assert env.num_states == 256 and env.transition_tensor.shape == (256, 5, 256)
    assert env.state_features.shape == (256, 4) and len(env.feature_names) == 4
    assert len(env.object_cells) == 16 and len(set(env.object_cells.tolist())) == 16
    assert env.slip == 0.3
    assert set(np.unique(env.true_reward)) == {-1.0, 0.0, 1.0}
    design = np.column_stack([env.state_features, np.ones(env.num_states)])
    _, residual, _, _ = np.linalg.lstsq(design, env.true_reward, rcond=None)
    total = ((env.true_reward - env.true_reward.mean()) ** 2).sum()
    assert residual[0] > 0.5 * total  # a linear reward explains under half the variance


def test_object_world_features_are_distances_to_coloured_objects() -> None:
    env = ObjectWorldEnv(size=6, num_objects=5, num_colours=3)
    for column, colours in enumerate([env.inner_colours, env.outer_colours]):
        for c in range(3):
            feature = env.state_features[:, column * 3 + c]
            cells = env.object_cells[colours == c]
            if cells.size == 0:
                np.testing.assert_allclose(feature, 6 * math.sqrt(2))
            else:
                np.testing.assert_allclose(feature[cells], 0.0)
                assert (feature >= 0).all() and (feature < 5 * math.sqrt(2) + 1e-9).all()
    discrete = ObjectWorldEnv(size=6, num_objects=5, num_colours=3, features="discrete")
    assert discrete.state_features.shape == (36, 2 * 3 * 6)
    radii = np.arange(1, 7)
    expected = (env.state_features[:, :, None] <= radii).reshape(36, -1)
    np.testing.assert_array_equal(discrete.state_features, expected)
    np.testing.assert_array_equal(discrete.true_reward, env.true_reward)


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: GridWorldEnv(size=1), "size=1"),
        (lambda: GridWorldEnv(size=8, block=3), "block=3"),
        (lambda: GridWorldEnv(block=0), "block=0"),
        (lambda: GridWorldEnv(slip=1.5), "slip=1.5"),
        (lambda: GridWorldEnv(slip=-0.1), "slip=-0.1"),
        (lambda: GridWorldEnv(horizon=0), "horizon=0"),
        (lambda: GridWorldEnv(size=4.0), "size=4.0"),
        (lambda: GridWorldEnv(features="pixels"), "features='pixels'"),
        (lambda: GridWorldEnv(reward_seed=-1), "reward_seed=-1"),
        (lambda: ObjectWorldEnv(size=4, num_objects=17), "num_objects=17"),
        (lambda: ObjectWorldEnv(num_objects=0), "num_objects=0"),
        (lambda: ObjectWorldEnv(num_colours=1), "num_colours=1"),
        (lambda: ObjectWorldEnv(slip=2), "slip=2"),
        (lambda: ObjectWorldEnv(features="block"), "features='block'"),
        (lambda: ObjectWorldEnv(layout_seed=True), "layout_seed=True"),
    ],
)
def test_bad_config_raises_value_error_naming_the_value(make, text: str) -> None:
    with pytest.raises(ValueError) as error:
        make()
    assert text in str(error.value) and "\n" not in str(error.value)


def test_bad_reset_state_and_action_raise() -> None:
    env = GridWorldEnv(size=2, block=1)
    with pytest.raises(ValueError, match="4"):
        env.reset(options={"state": 4})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action=5"):
        env.step(5)


@pytest.mark.parametrize("env_id, config", [(GRID_ID, {}), (OBJECT_ID, {}), (OBJECT_ID, {"size": 8})])
def test_registered_envs_pass_gymnasiums_checker_without_a_time_limit(env_id: str, config: dict) -> None:
    register_envs()
    register_envs()
    env = gym.make(env_id, **config)
    try:
        assert gym.spec(env_id).max_episode_steps is None
        wrapper = env
        while isinstance(wrapper, gym.Wrapper):
            assert not isinstance(wrapper, gym.wrappers.TimeLimit)
            wrapper = wrapper.env
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
