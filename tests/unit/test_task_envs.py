"""Task distributions for meta-RL (issue 10 part 1): sampling, setting, the physics and rewards a task changes.

Also how a task reaches the sub-envs of a vector env and of an EnvRunner
(rlfrontier.meta_tasks), here without Ray: a plain gymnasium SyncVectorEnv,
and one real SingleAgentEnvRunner built in this process.
"""

from __future__ import annotations

import json
import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers.vector import DictInfoToList

from rlfrontier import meta_tasks
from rlfrontier.envs import register_envs, register_with_ray
from rlfrontier.envs.bandit import BanditEnv
from rlfrontier.envs.point_nav import PointNavEnv, SparsePointNavEnv
from rlfrontier.envs.random_dynamics import RandomCartPoleEnv, RandomPendulumEnv
from rlfrontier.envs.tasks import is_task_env
from rlfrontier.validation import BadInput

IDS = {
    "rlfrontier/PointNav-v0": PointNavEnv,
    "rlfrontier/SparsePointNav-v0": SparsePointNavEnv,
    "rlfrontier/Bandit-v0": BanditEnv,
    "rlfrontier/RandomCartPole-v0": RandomCartPoleEnv,
    "rlfrontier/RandomPendulum-v0": RandomPendulumEnv,
}


def make(env_id: str, **env_config) -> gym.Env:
    register_envs()
    return gym.make(env_id, **env_config)


def rollout(env: gym.Env, actions, *, seed: int) -> list[tuple]:
    """(obs, reward, terminated, truncated) of each step of `actions` after reset(seed), up to the episode's end."""
    env.reset(seed=seed)
    steps = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        steps.append((np.asarray(obs).tolist(), float(reward), terminated, truncated))
        if terminated or truncated:
            break
    return steps


# Sampling -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(IDS))
def test_sample_tasks_follows_the_rng_only(env_id):
    env = make(env_id).unwrapped
    first = env.sample_tasks(20, np.random.default_rng(3))
    env.reset(seed=99)  # the env's own stream plays no part
    assert env.sample_tasks(20, np.random.default_rng(3)) == first
    assert make(env_id).unwrapped.sample_tasks(20, np.random.default_rng(3)) == first
    assert env.sample_tasks(20, np.random.default_rng(4)) != first
    assert len({json.dumps(task, sort_keys=True) for task in first}) == 20
    assert env.sample_tasks(0, np.random.default_rng(3)) == []


@pytest.mark.parametrize("env_id", sorted(IDS))
def test_a_task_is_a_plain_dict_that_survives_json_and_pickle(env_id):
    env = make(env_id).unwrapped
    for task in env.sample_tasks(5, np.random.default_rng(0)):
        assert json.loads(json.dumps(task)) == task
        assert pickle.loads(pickle.dumps(task)) == task
        env.set_task(json.loads(json.dumps(task)))
        assert env.get_task() == task
        assert env.task == task
        returned = env.get_task()
        for value in returned.values():
            if isinstance(value, list):
                value.append(0.0)
        returned.clear()
        assert env.get_task() == task, "get_task returns a copy"


@pytest.mark.parametrize("env_id", sorted(IDS))
def test_sample_tasks_rejects_bad_arguments(env_id):
    env = make(env_id).unwrapped
    with pytest.raises(ValueError, match="n=-1"):
        env.sample_tasks(-1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n=2.5"):
        env.sample_tasks(2.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng=7"):
        env.sample_tasks(2, 7)


def test_the_distributions_are_the_papers():
    rng = np.random.default_rng(0)
    goals = np.array([t["goal"] for t in PointNavEnv().sample_tasks(2000, rng)])
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    assert goals.min() < -0.49 and goals.max() > 0.49  # uniform over the whole square
    sparse = np.array([t["goal"] for t in SparsePointNavEnv().sample_tasks(2000, rng)])
    np.testing.assert_allclose(np.linalg.norm(sparse, axis=1), 1.0)
    angles = np.arctan2(sparse[:, 1], sparse[:, 0])
    assert angles.min() >= 0.0 and angles.max() <= math.pi
    assert angles.min() < 0.01 and angles.max() > math.pi - 0.01  # the whole half-circle
    means = np.array([t["means"] for t in BanditEnv(arms=7).sample_tasks(2000, rng)])
    assert means.shape == (2000, 7) and means.min() >= 0.0 and means.max() <= 1.0
    # Uniform [0, 1]: mean 1/2, 14,000 draws with std 0.29: 6 standard errors is 0.015.
    assert abs(means.mean() - 0.5) < 0.015


def test_dynamics_are_drawn_inside_their_ranges_and_a_point_range_fixes_one():
    ranges = {"length_range": (0.3, 0.4), "masspole_range": (0.2, 0.2), "masscart_range": (2.0, 3.0),
              "gravity_range": [5.0, 6.0]}
    tasks = RandomCartPoleEnv(**ranges).sample_tasks(500, np.random.default_rng(1))
    for key in ("length", "masspole", "masscart", "gravity"):
        low, high = ranges[f"{key}_range"]
        values = [t[key] for t in tasks]
        assert low <= min(values) and max(values) <= high, key
    assert {t["masspole"] for t in tasks} == {0.2}
    tasks = RandomPendulumEnv(length_range=(2.0, 3.0), mass_range=(0.1, 0.2), gravity_range=(1.0, 2.0)).sample_tasks(
        500, np.random.default_rng(1))
    assert all(2.0 <= t["length"] <= 3.0 and 0.1 <= t["mass"] <= 0.2 and 1.0 <= t["gravity"] <= 2.0 for t in tasks)


# Nominal physics --------------------------------------------------------------------------------------------------


def test_random_cartpole_nominal_task_is_gymnasium_s_cartpole():
    env = RandomCartPoleEnv()
    gymnasium_s = CartPoleEnv()
    assert env.nominal_task() == env.get_task() == {"length": 0.5, "masspole": 0.1, "masscart": 1.0, "gravity": 9.8}
    assert env.get_task() == {k: getattr(gymnasium_s, k) for k in ("length", "masspole", "masscart", "gravity")}
    actions = np.random.default_rng(0).integers(0, 2, 500).tolist()
    ours = make("rlfrontier/RandomCartPole-v0")
    assert rollout(ours, actions, seed=5) == rollout(gym.make("CartPole-v1"), actions, seed=5)
    # After another task, setting the nominal one back restores the derived quantities as well.
    ours.unwrapped.set_task({"length": 1.0, "masspole": 0.5, "masscart": 2.0, "gravity": 5.0})
    ours.unwrapped.set_task(env.nominal_task())
    assert ours.unwrapped.total_mass == gymnasium_s.total_mass
    assert ours.unwrapped.polemass_length == gymnasium_s.polemass_length
    assert rollout(ours, actions, seed=6) == rollout(gym.make("CartPole-v1"), actions, seed=6)
    assert ours.spec.max_episode_steps == gym.spec("CartPole-v1").max_episode_steps == 500


def test_random_pendulum_nominal_task_is_gymnasium_s_pendulum():
    env = RandomPendulumEnv()
    gymnasium_s = PendulumEnv()
    assert env.nominal_task() == env.get_task() == {"length": 1.0, "mass": 1.0, "gravity": 10.0}
    assert env.get_task() == {"length": gymnasium_s.l, "mass": gymnasium_s.m, "gravity": gymnasium_s.g}
    actions = np.random.default_rng(0).uniform(-2, 2, (200, 1)).astype(np.float32)
    assert rollout(make("rlfrontier/RandomPendulum-v0"), actions, seed=5) == rollout(
        gym.make("Pendulum-v1"), actions, seed=5)


# A task changes the dynamics or the reward ------------------------------------------------------------------------


def _next_state(env, state, action):
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    return np.asarray(env.step(action)[0])


@pytest.mark.parametrize("key, value", [("length", 0.8), ("masspole", 0.3), ("masscart", 0.4), ("gravity", 12.0)])
def test_random_cartpole_task_changes_the_next_state(key, value):
    env = RandomCartPoleEnv()
    state, action = (0.01, -0.2, 0.05, 0.3), 1
    nominal = _next_state(env, state, action)
    np.testing.assert_array_equal(_next_state(env, state, action), nominal)  # same task, same step
    env.set_task({**env.nominal_task(), key: value})
    changed = _next_state(env, state, action)
    assert not np.allclose(changed, nominal, rtol=0, atol=1e-7), key
    # The cart's position only moves with its velocity in the first Euler step: identical.
    assert changed[0] == nominal[0]


@pytest.mark.parametrize("key, value", [("length", 1.5), ("mass", 0.5), ("gravity", 12.0)])
def test_random_pendulum_task_changes_the_next_state(key, value):
    env = RandomPendulumEnv()
    state, action = (0.7, -0.4), np.array([1.5], np.float32)
    nominal = _next_state(env, state, action)
    env.set_task({**env.nominal_task(), key: value})
    assert not np.allclose(_next_state(env, state, action), nominal, rtol=0, atol=1e-7), key


def test_a_longer_cartpole_pole_falls_more_slowly():
    # Sanity of the physics: angular acceleration under gravity scales like 1 / length.
    env = RandomCartPoleEnv()
    speeds = {}
    for length in (0.25, 0.5, 1.0):
        env.set_task({**env.nominal_task(), "length": length})
        speeds[length] = _next_state(env, (0.0, 0.0, 0.1, 0.0), 0)[3]
    assert speeds[0.25] > speeds[0.5] > speeds[1.0] > 0.0
    assert speeds[0.25] / speeds[1.0] == pytest.approx(4.0, rel=0.05)


def test_point_nav_reward_is_minus_the_distance_after_a_clipped_move_and_the_goal_is_hidden():
    env = PointNavEnv()
    env.set_task({"goal": [0.3, -0.4]})
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    assert info["distance"] == pytest.approx(0.5)
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, -0.05], np.float32))  # x clipped to 0.1
    np.testing.assert_allclose(obs, [0.1, -0.05], rtol=0, atol=1e-7)
    assert reward == pytest.approx(-math.hypot(0.2, 0.35)) and info["distance"] == pytest.approx(-reward)
    assert not terminated and not truncated
    env.set_task({"goal": [-0.3, 0.4]})
    env.reset(seed=0)
    obs_2, reward_2, *_ = env.step(np.array([1.0, -0.05], np.float32))
    np.testing.assert_array_equal(obs_2, obs)  # the same observation under another goal: the goal is not observed
    assert reward_2 == pytest.approx(-math.hypot(0.4, 0.45))


def test_point_nav_starts_at_the_origin_unless_told_to_start_at_random_in_a_square():
    assert not PointNavEnv().reset(seed=0)[0].any()
    env = PointNavEnv(start_half_width=0.5)
    starts = np.array([env.reset(seed=seed)[0] for seed in range(200)])
    assert np.abs(starts).max() <= 0.5 and np.abs(starts).min(axis=0).max() < 0.05
    assert starts.std(axis=0) == pytest.approx([0.5 / np.sqrt(3)] * 2, rel=0.2)  # uniform's std: w / sqrt(3)
    np.testing.assert_array_equal(env.reset(seed=7)[0], PointNavEnv(start_half_width=0.5).reset(seed=7)[0])
    # The task-blind reference heads for the origin and stays there; the oracle heads for the goal.
    env.set_task({"goal": [0.3, -0.2]})
    obs = np.array([0.45, 0.02], np.float32)
    np.testing.assert_allclose(env.task_blind_action(obs), [-0.1, -0.02], atol=1e-7)
    np.testing.assert_allclose(env.oracle_action(obs), [-0.1, -0.1], atol=1e-7)


@pytest.mark.parametrize("offset, expected", [(-1e-9, 1.0), (0.0, 1.0), (1e-9, 0.0), (-0.15, 1.0), (0.3, 0.0)])
def test_sparse_point_nav_reward_is_one_exactly_within_radius_0_2(offset, expected):
    env = SparsePointNavEnv()
    assert env.goal_radius == 0.2
    env.set_task({"goal": [0.2 + offset, 0.0]})
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(2, np.float32))  # stays at the origin
    assert reward == expected
    assert info["distance"] == pytest.approx(0.2 + offset, abs=1e-12)
    assert info["dense_reward"] == -info["distance"]


def test_sparse_point_nav_reward_agrees_with_the_distance_along_random_walks():
    env = SparsePointNavEnv()
    rng = np.random.default_rng(2)
    inside = 0
    for task in env.sample_tasks(30, rng):
        env.set_task(task)
        env.reset(seed=0)
        for _ in range(env.horizon):
            goal_direction = np.array(task["goal"]) * 0.1 + rng.normal(0.0, 0.03, 2)  # walk roughly to the goal
            _, reward, _, _, info = env.step(goal_direction.astype(np.float32))
            assert reward == float(info["distance"] <= 0.2)
            assert info["dense_reward"] == -info["distance"]
            inside += reward == 1.0
    assert inside > 0


def test_posterior_sampling_reach_starts_at_one_paths_coverage_and_grows_to_every_goal():
    """The first episode's share is a prior hypothesis's coverage, measured here by stepping the env with
    its oracle (not the method's own path code); shares never fall and approach 1 once the arc is covered."""
    env = SparsePointNavEnv()
    shares = env.posterior_sampling_reach(12)
    goals = [{"goal": [math.cos(a), math.sin(a)]} for a in np.linspace(0.0, np.pi, 181)]
    coverage = []
    for hypothesis in goals[::10]:
        env.set_task(hypothesis)
        obs, _ = env.reset(seed=0)
        path = []
        for _ in range(env.horizon):
            obs = env.step(env.oracle_action(obs))[0]
            path.append(obs)
        near = np.linalg.norm(np.asarray(path)[:, None] - np.array([g["goal"] for g in goals])[None], axis=2)
        coverage.append(float((near <= env.goal_radius).any(axis=0).mean()))
    assert abs(shares[0] - np.mean(coverage)) < 0.02  # 20,000 trials: standard error ~0.0024
    assert all(b >= a for a, b in zip(shares, shares[1:])) and shares[-1] > 0.99
    assert 0.33 < shares[2] < 0.40  # why "70% of goals after two context episodes" is out of posterior sampling's reach
    assert SparsePointNavEnv(goal_radius=2.5).posterior_sampling_reach(2) == [1.0, 1.0]


def test_bandit_task_sets_the_arms_success_probabilities():
    env = BanditEnv(arms=3, pulls=3000)
    env.set_task({"means": [1.0, 0.0, 0.5]})
    env.reset(seed=0)
    assert [env.step(0)[1] for _ in range(100)] == [1.0] * 100
    assert [env.step(1)[1] for _ in range(100)] == [0.0] * 100
    rewards = [env.step(2)[1] for _ in range(2000)]
    # Binomial(2000, 0.5) / 2000 has std 0.011; 6 standard errors is 0.067.
    assert abs(np.mean(rewards) - 0.5) < 0.067
    assert env.step(1)[4] == {"regret": 1.0} and env.step(0)[4] == {"regret": 0.0}
    assert env.step(2)[0].tolist() == [0.0]
    with pytest.raises(ValueError, match="action=3"):
        env.step(3)


# Horizons -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id, horizon, action", [
    ("rlfrontier/PointNav-v0", 100, np.zeros(2, np.float32)),
    ("rlfrontier/SparsePointNav-v0", 20, np.zeros(2, np.float32)),
    ("rlfrontier/Bandit-v0", 10, 0),
    ("rlfrontier/RandomPendulum-v0", 200, np.zeros(1, np.float32)),
])
def test_episodes_are_truncated_at_the_horizon_and_never_terminate(env_id, horizon, action):
    env = make(env_id)
    for seed in (0, 1):
        steps = rollout(env, [action] * (horizon + 5), seed=seed)
        assert len(steps) == horizon
        assert [s[3] for s in steps] == [False] * (horizon - 1) + [True]
        assert not any(s[2] for s in steps)


@pytest.mark.parametrize("cls, kwargs, length", [
    (PointNavEnv, {"horizon": 7}, 7), (SparsePointNavEnv, {"horizon": 3}, 3), (BanditEnv, {"pulls": 4}, 4),
])
def test_the_horizon_is_configurable_and_stepping_past_it_is_an_error(cls, kwargs, length):
    env = cls(**kwargs)
    action = 0 if cls is BanditEnv else np.zeros(2, np.float32)
    env.reset(seed=0)
    truncated = [env.step(action)[3] for _ in range(length)]
    assert truncated == [False] * (length - 1) + [True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(action)
    env.reset()
    assert not env.step(action)[3] or length == 1


# Resampling at reset (domain randomisation, RL² trials) ---------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(IDS))
def test_resample_on_reset_draws_a_task_per_reset_from_the_seeded_env_stream(env_id):
    env = make(env_id, resample_on_reset=True).unwrapped

    def tasks_of_resets(seed: int) -> list[dict]:
        env.reset(seed=seed)
        tasks = [env.get_task()]
        for _ in range(4):
            env.reset()
            tasks.append(env.get_task())
        return tasks

    first = tasks_of_resets(11)
    assert len({json.dumps(t, sort_keys=True) for t in first}) == 5
    assert tasks_of_resets(11) == first
    assert tasks_of_resets(12) != first
    env.set_task(first[0])
    env.reset()
    assert env.get_task() != first[0], "a set task lasts until the next reset only"


@pytest.mark.parametrize("env_id", sorted(IDS))
def test_without_resample_a_task_survives_resets(env_id):
    env = make(env_id).unwrapped
    task = env.sample_tasks(1, np.random.default_rng(5))[0]
    env.set_task(task)
    for seed in (1, 2, None):
        env.reset(seed=seed)
        assert env.get_task() == task


# Bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, kwargs, name", [
    (PointNavEnv, {"horizon": 0}, "horizon=0"),
    (PointNavEnv, {"horizon": 2.5}, "horizon=2.5"),
    (PointNavEnv, {"horizon": True}, "horizon=True"),
    (PointNavEnv, {"resample_on_reset": "yes"}, "resample_on_reset='yes'"),
    (PointNavEnv, {"start_half_width": -0.1}, "start_half_width=-0.1"),
    (PointNavEnv, {"start_half_width": float("inf")}, "start_half_width=inf"),
    (SparsePointNavEnv, {"horizon": -3}, "horizon=-3"),
    (SparsePointNavEnv, {"goal_radius": 0.0}, "goal_radius=0.0"),
    (SparsePointNavEnv, {"goal_radius": float("nan")}, "goal_radius=nan"),
    (BanditEnv, {"arms": 1}, "arms=1"),
    (BanditEnv, {"arms": "5"}, "arms='5'"),
    (BanditEnv, {"pulls": 0}, "pulls=0"),
    (RandomCartPoleEnv, {"length_range": (0.75, 0.25)}, r"length_range=\(0.75, 0.25\)"),
    (RandomCartPoleEnv, {"length_range": (0.0, 0.5)}, r"length_range\[0\]=0.0"),
    (RandomCartPoleEnv, {"masspole_range": (0.1,)}, r"masspole_range=\(0.1,\)"),
    (RandomCartPoleEnv, {"masscart_range": "ab"}, "masscart_range='ab'"),
    (RandomCartPoleEnv, {"gravity_range": (9.0, float("inf"))}, r"gravity_range\[1\]=inf"),
    (RandomCartPoleEnv, {"resample_on_reset": 1}, "resample_on_reset=1"),
    (RandomPendulumEnv, {"mass_range": (-1.0, 1.0)}, r"mass_range\[0\]=-1.0"),
    (RandomPendulumEnv, {"gravity_range": (1.0, float("nan"))}, r"gravity_range\[1\]=nan"),
    (RandomPendulumEnv, {"length_range": None}, "length_range=None"),
])
def test_bad_constructor_values_raise_naming_them(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


@pytest.mark.parametrize("cls, task, name", [
    (PointNavEnv, {"goal": [0.1]}, "task\\['goal'\\]=\\[0.1\\]"),
    (PointNavEnv, {"goal": [0.1, float("nan")]}, "task\\['goal'\\]\\[1\\]=nan"),
    (PointNavEnv, {"goal": "ab"}, "task\\['goal'\\]='ab'"),
    (PointNavEnv, {"gaol": [0.1, 0.2]}, "missing 'goal'; unknown 'gaol'"),
    (PointNavEnv, [0.1, 0.2], "task=\\[0.1, 0.2\\]"),
    (SparsePointNavEnv, {"goal": [0.0, 1.0], "radius": 1}, "unknown 'radius'"),
    (BanditEnv, {"means": [0.1, 0.2]}, "must have 5 numbers"),
    (BanditEnv, {"means": [0.1, 0.2, 1.5, 0.3, 0.4]}, "task\\['means'\\]\\[2\\]=1.5"),
    (RandomCartPoleEnv, {"length": -1.0, "masspole": 0.1, "masscart": 1.0, "gravity": 9.8}, "task\\['length'\\]=-1.0"),
    (RandomCartPoleEnv, {"length": 0.5, "masspole": 0.1, "masscart": 1.0}, "missing 'gravity'"),
    (RandomPendulumEnv, {"length": 1.0, "mass": 0.0, "gravity": 10.0}, "task\\['mass'\\]=0.0"),
    (RandomPendulumEnv, {"length": 1.0, "mass": 1.0, "gravity": True}, "task\\['gravity'\\]=True"),
])
def test_bad_tasks_raise_naming_the_value_and_leave_the_task_alone(cls, task, name):
    env = cls()
    before = env.get_task()
    with pytest.raises(ValueError, match=name):
        env.set_task(task)
    assert env.get_task() == before


def test_tasks_outside_the_sampling_ranges_are_allowed_for_transfer():
    env = RandomCartPoleEnv()
    env.set_task({"length": 2.0, "masspole": 1.0, "masscart": 5.0, "gravity": 20.0})
    assert env.get_task()["length"] == 2.0
    env = PointNavEnv()
    env.set_task({"goal": [3.0, -2.0]})
    assert env.get_task() == {"goal": [3.0, -2.0]}


# gymnasium's checker ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resample", [False, True])
@pytest.mark.parametrize("env_id", sorted(IDS))
def test_gymnasium_env_checker_passes(env_id, resample):
    env = make(env_id, resample_on_reset=resample)
    try:
        assert isinstance(env.unwrapped, IDS[env_id]) and is_task_env(env)
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
    assert not is_task_env(gym.make("CartPole-v1"))


# Reaching the sub-envs of a vector env ------------------------------------------------------------------------------


def vector_env(env_id: str, num_envs: int = 3, **env_config) -> gym.vector.VectorEnv:
    """Sub-envs as RLlib's EnvRunner holds them: gym.make'd, in a SyncVectorEnv wrapped by DictInfoToList."""
    register_envs()
    return DictInfoToList(gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **env_config)] * num_envs))


def test_set_env_tasks_reaches_each_sub_env_behind_its_wrappers():
    envs = vector_env("rlfrontier/PointNav-v0")
    tasks = PointNavEnv().sample_tasks(3, np.random.default_rng(0))
    meta_tasks.set_env_tasks(envs, tasks)
    assert meta_tasks.get_env_tasks(envs) == tasks
    assert [sub.unwrapped.get_task() for sub in envs.unwrapped.envs] == tasks
    # Each sub-env's reward follows its own goal.
    envs.reset(seed=0)
    _, rewards, *_ = envs.step(np.zeros((3, 2), np.float32))
    np.testing.assert_allclose(rewards, [-np.linalg.norm(t["goal"]) for t in tasks])
    envs.close()


def test_set_env_tasks_refuses_a_wrong_count_a_bad_task_and_a_plain_env():
    envs = vector_env("rlfrontier/Bandit-v0", arms=2)
    before = meta_tasks.get_env_tasks(envs)
    with pytest.raises(BadInput, match="list of 3 tasks"):
        meta_tasks.set_env_tasks(envs, [{"means": [0.1, 0.2]}] * 2)
    with pytest.raises(BadInput, match="list of 3 tasks"):
        meta_tasks.set_env_tasks(envs, {"means": [0.1, 0.2]})
    with pytest.raises(BadInput, match=r"task\['means'\]\[1\]=2.0"):
        meta_tasks.set_env_tasks(envs, [{"means": [0.1, 0.2]}] * 2 + [{"means": [0.1, 2.0]}])
    assert meta_tasks.get_env_tasks(envs) == before, "the sub-envs before the bad task are restored"
    with pytest.raises(BadInput, match=r"task=\[0.1, 0.2\]"):
        meta_tasks.set_env_tasks(envs, [[0.1, 0.2]] * 3)
    plain = DictInfoToList(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 3))
    with pytest.raises(BadInput, match="not task distributions"):
        meta_tasks.set_env_tasks(plain, [{"means": [0.1, 0.2]}] * 3)
    assert not any(hasattr(sub, "task") for sub in plain.unwrapped.envs), "no stray attribute on a wrapper"
    with pytest.raises(BadInput, match="not task distributions"):
        meta_tasks.get_env_tasks(plain)


class FakeRunner:
    def __init__(self, worker_index: int, env) -> None:
        self.worker_index, self.env = worker_index, env


class FakeGroup:
    """EnvRunnerGroup.foreach_env_runner without Ray; the function is pickled as Ray ships it to remote runners."""

    def __init__(self, runners) -> None:
        self.runners = runners

    def foreach_env_runner(self, func):
        return [pickle.loads(pickle.dumps(func))(runner) for runner in self.runners]


def test_set_tasks_gives_each_env_runner_its_own_list_by_worker_index():
    group = FakeGroup([FakeRunner(0, None), FakeRunner(1, vector_env("rlfrontier/Bandit-v0", 2)),
                       FakeRunner(2, vector_env("rlfrontier/Bandit-v0", 3))])
    assert set(meta_tasks.get_tasks(group)) == {1, 2}, "the driver's runner without envs is left out"
    tasks = BanditEnv().sample_tasks(5, np.random.default_rng(0))
    meta_tasks.set_tasks(group, {1: tasks[:2], 2: tasks[2:]})
    assert meta_tasks.get_tasks(group) == {1: tasks[:2], 2: tasks[2:]}
    assert [sub.unwrapped.get_task() for sub in group.runners[2].env.unwrapped.envs] == tasks[2:]


ONE = {"means": [0.5] * 5}


@pytest.mark.parametrize("tasks_per_runner, message", [
    ({1: "ab", 2: [ONE] * 3}, r"tasks_per_runner\[1\] must be a list of 2 tasks"),
    ({1: [ONE] * 3, 2: [ONE] * 3}, r"tasks_per_runner\[1\] must be a list of 2 tasks"),
    ({1: [ONE] * 2}, r"missing \[2\]"),
    ({0: [], 1: [ONE] * 2, 2: [ONE] * 3}, r"unknown \[0\]"),
])
def test_set_tasks_checks_the_layout_before_sending_anything(tasks_per_runner, message):
    group = FakeGroup([FakeRunner(0, None), FakeRunner(1, vector_env("rlfrontier/Bandit-v0", 2)),
                       FakeRunner(2, vector_env("rlfrontier/Bandit-v0", 3))])
    before = meta_tasks.get_tasks(group)
    with pytest.raises(BadInput, match=message):
        meta_tasks.set_tasks(group, tasks_per_runner)
    assert meta_tasks.get_tasks(group) == before


def test_a_bad_task_on_a_runner_comes_back_as_bad_input_naming_it_and_changes_nothing_there():
    # Raised inside a remote runner, it would take the runner out of service (RLlib marks an EnvRunner whose call
    # raises unhealthy); the runner returns it, and the driver raises it. FakeGroup would pass a raise through.
    group = FakeGroup([FakeRunner(1, vector_env("rlfrontier/Bandit-v0", 2)),
                       FakeRunner(2, vector_env("rlfrontier/Bandit-v0", 2))])
    before = meta_tasks.get_tasks(group)
    with pytest.raises(BadInput, match=r"EnvRunner 2: task\['means'\]\[0\]=-0.5"):
        meta_tasks.set_tasks(group, {1: [ONE] * 2, 2: [ONE, {"means": [-0.5, 0.0, 0.0, 0.0, 0.0]}]})
    after = meta_tasks.get_tasks(group)
    assert after[2] == before[2]
    assert after[1] == [ONE] * 2, "runners set before the bad one keep their new tasks"
    plain = FakeGroup([FakeRunner(1, DictInfoToList(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")])))])
    with pytest.raises(BadInput, match="EnvRunner 1: the sub-envs .* are not task distributions"):
        meta_tasks.get_tasks(plain)


def test_tasks_reach_the_envs_of_a_real_env_runner(monkeypatch):
    # RLlib's SingleAgentEnvRunner, built in this process as `evaluate` builds it: its sub-envs are the project's
    # env behind two gym.make wrapper stacks in a DictInfoToList(SyncVectorEnv). Ray must not start.
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    def no_ray(*args, **kwargs):
        raise AssertionError("this unit test must not start Ray")

    # In `make test` the unit tier runs after tiers that leave a shared Ray up in this process: what
    # matters is that this test starts none (ray.init raises) and changes nothing.
    ray_was_up = ray.is_initialized()
    monkeypatch.setattr(ray, "init", no_ray)
    env_id = "rlfrontier/PointNav-v0"
    register_with_ray(env_id)
    config = (PPOConfig().environment(env_id, env_config={"horizon": 4})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=3).debugging(seed=0))
    runner = SingleAgentEnvRunner(config=config, worker_index=0, num_workers=0)
    try:
        group = FakeGroup([runner])
        tasks = [{"goal": [0.3, 0.0]}, {"goal": [0.0, -0.3]}, {"goal": [-0.2, -0.2]}]
        meta_tasks.set_tasks(group, {0: tasks})
        assert meta_tasks.get_tasks(group) == {0: tasks}
        episodes = runner.sample(num_episodes=6, explore=True, force_reset=True)
        goals_seen = set()
        for episode in episodes:
            obs = np.asarray(episode.get_observations())[1:]
            rewards = np.asarray(episode.get_rewards())
            # Which sub-env ran the episode is not recorded; its rewards fit exactly one of the goals.
            fits = [i for i, t in enumerate(tasks)
                    if np.allclose(rewards, -np.linalg.norm(obs - np.array(t["goal"]), axis=1), atol=1e-6)]
            assert len(fits) == 1, (rewards, obs)
            goals_seen.add(fits[0])
        assert goals_seen == {0, 1, 2}
        assert ray.is_initialized() == ray_was_up
    finally:
        runner.stop()


def test_set_reset_seed_gives_each_sample_call_its_own_draws(monkeypatch):
    """RLlib's EnvRunner reseeds every sample(num_episodes=...) call alike; set_reset_seed gives calls their own."""
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    def no_ray(*args, **kwargs):
        raise AssertionError("this unit test must not start Ray")

    monkeypatch.setattr(ray, "init", no_ray)
    env_id = "rlfrontier/Bandit-v0"
    register_with_ray(env_id)
    config = (PPOConfig().environment(env_id, env_config={"arms": 2, "pulls": 40})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=2).debugging(seed=0))
    runner = SingleAgentEnvRunner(config=config, worker_index=0, num_workers=0)
    try:
        # Both arms pay with probability 0.5, so an episode's rewards are its env's reward draws only.
        meta_tasks.set_env_tasks(runner.env, [{"means": [0.5, 0.5]}] * 2)

        def draws():
            episodes = runner.sample(num_episodes=2, explore=True, force_reset=True)
            return sorted(tuple(e.get_rewards()) for e in episodes)

        assert draws() == draws(), "RLlib's own behaviour: the same seed at every call, the same draws"
        meta_tasks.set_reset_seed(runner, 123)
        first = draws()
        meta_tasks.set_reset_seed(runner, 124)
        assert draws() != first
        meta_tasks.set_reset_seed(runner, 123)
        assert draws() == first, "a seed gives the same draws again"
        meta_tasks.set_reset_seed(runner, None)  # leaves the runner's seed
        assert draws() == first
    finally:
        runner.stop()
