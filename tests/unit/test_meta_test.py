"""The shared meta-test (rlfrontier.meta_test): the reference policies on the real task envs, the metrics, the plot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlfrontier import meta_test
from rlfrontier.envs.bandit import BanditEnv
from rlfrontier.envs.point_nav import PointNavEnv, SparsePointNavEnv
from rlfrontier.envs.random_dynamics import RandomCartPoleEnv


def test_point_nav_oracle_walks_straight_to_the_goal_and_the_blind_policy_stays_home():
    env = PointNavEnv()
    goal = [0.35, -0.12]
    oracle, = meta_test.rollout_returns(env, [{"goal": goal}], policy="oracle", episodes=1, seed=0)
    # Hand computation: each step moves min(0.1, remaining) per axis; then it stays on the goal (distance 0).
    position, expected = np.zeros(2), 0.0
    for _ in range(100):
        position = position + np.clip(np.array(goal) - position, -0.1, 0.1)
        expected -= float(np.linalg.norm(position - goal))
    assert oracle == pytest.approx(expected, abs=1e-5)  # the policy sees the float32 position
    blind, = meta_test.rollout_returns(env, [{"goal": goal}], policy="task_blind", episodes=1, seed=0)
    assert blind == pytest.approx(-100 * math.hypot(*goal))
    assert blind < oracle < 0


def test_play_episode_keeps_each_steps_transition_in_order():
    env = PointNavEnv()
    env.set_task({"goal": [0.35, -0.12]})
    rows = meta_test.play_episode(env, env.oracle_action, seed=0)
    assert sorted(rows) == sorted(meta_test.EPISODE_COLUMNS) and {len(v) for v in rows.values()} == {100}
    np.testing.assert_array_equal(rows["obs"][0], np.zeros(2))  # the start, at the origin
    for t in range(99):  # each step's next observation is the next step's observation
        np.testing.assert_array_equal(rows["next_obs"][t], rows["obs"][t + 1])
    np.testing.assert_allclose(rows["next_obs"][0], rows["obs"][0] + rows["actions"][0], atol=1e-6)
    returned, = meta_test.rollout_returns(env, [{"goal": [0.35, -0.12]}], policy="oracle", episodes=1, seed=0)
    assert sum(float(r) for r in rows["rewards"]) == returned


def test_the_blind_policy_is_the_best_fixed_point_on_point_nav():
    """Staying at the origin beats staying at any other point, on average over the task distribution
    (the expectation by the midpoint rule on a 200 x 200 grid of the goal square, not by sampling)."""
    cells = (np.arange(200) + 0.5) / 200 - 0.5
    goals = np.stack(np.meshgrid(cells, cells), axis=-1).reshape(-1, 2)
    at_origin = np.linalg.norm(goals, axis=1).mean()
    for point in ([0.1, 0.0], [0.0, -0.1], [0.05, 0.05], [0.2, 0.2]):
        assert np.linalg.norm(goals - point, axis=1).mean() > at_origin


def test_sparse_references_reach_the_goal_and_the_blind_target():
    env = SparsePointNavEnv()
    goal = [math.cos(2.5), math.sin(2.5)]  # far from the blind target at 45 degrees: the blind policy never scores
    oracle, = meta_test.rollout_returns(env, [{"goal": goal}], policy="oracle", episodes=1, seed=0)
    blind, = meta_test.rollout_returns(env, [{"goal": goal}], policy="task_blind", episodes=1, seed=0)
    assert blind == 0.0
    # Within 0.2 of the goal after at most 10 moves of <= 0.1 per axis: rewarded for at least the last 11 steps.
    assert 11 <= oracle <= 20
    on_target = [math.cos(math.pi / 4), math.sin(math.pi / 4)]
    assert meta_test.rollout_returns(env, [{"goal": on_target}], policy="task_blind", episodes=1, seed=0)[0] > 10


def test_the_sparse_blind_target_beats_heading_for_the_middle():
    """Over goals spread evenly on the half-circle, the 45-degree target scores more than (0, 1) would."""
    env = SparsePointNavEnv()
    tasks = [{"goal": [math.cos(a), math.sin(a)]} for a in np.linspace(0, math.pi, 181)]
    blind = np.mean(meta_test.rollout_returns(env, tasks, policy="task_blind", episodes=1, seed=0))
    middle = 0.0
    for task in tasks:
        position, goal = np.zeros(2), np.array(task["goal"])
        for _ in range(20):
            position = position + np.clip(np.array([0.0, 1.0]) - position, -0.1, 0.1)
            middle += float(np.linalg.norm(position - goal) <= 0.2)
    assert blind > middle / len(tasks)


def test_bandit_oracle_pulls_the_best_arm_and_has_no_regret():
    env = BanditEnv(arms=5, pulls=10)
    task = {"means": [0.1, 0.9, 0.3, 0.5, 0.2]}
    env.set_task(task)
    obs, _ = env.reset(seed=0)
    regrets = []
    for _ in range(10):
        action = env.oracle_action(obs)
        assert action == 1
        obs, _, _, _, info = env.step(action)
        regrets.append(info["regret"])
    assert regrets == [0.0] * 10
    returns = meta_test.rollout_returns(env, [task], policy="oracle", episodes=200, seed=0)
    # 2,000 Bernoulli(0.9) pulls: the mean per pull is within 5 standard errors (0.0067) of 0.9.
    assert abs(np.mean(returns) / 10 - 0.9) < 5 * math.sqrt(0.9 * 0.1 / 2000)
    blind = meta_test.rollout_returns(env, [task], policy="task_blind", episodes=200, seed=0)
    assert abs(np.mean(blind) / 10 - 0.1) < 5 * math.sqrt(0.1 * 0.9 / 2000)


def test_reference_metrics_leave_out_what_an_env_does_not_define():
    env = PointNavEnv()
    tasks = env.sample_tasks(3, np.random.default_rng(1))
    refs = meta_test.reference_metrics(env, tasks, episodes=1, seed=0)
    assert set(refs) == {meta_test.ORACLE_RETURN_MEAN, meta_test.TASK_BLIND_RETURN_MEAN}
    assert refs[meta_test.TASK_BLIND_RETURN_MEAN] < refs[meta_test.ORACLE_RETURN_MEAN]
    cartpole = RandomCartPoleEnv()
    try:
        assert meta_test.reference_metrics(cartpole, [cartpole.get_task()], episodes=1, seed=0) == {}
    finally:
        cartpole.close()


def test_adaptation_metrics_and_the_gap_closed():
    refs = {meta_test.ORACLE_RETURN_MEAN: -10.0, meta_test.TASK_BLIND_RETURN_MEAN: -40.0}
    out = meta_test.adaptation_metrics({0: -30.0, 1: -20.0, 3: -15.0}, refs)
    assert out[meta_test.RETURN_K.format(0)] == -30.0 and out[meta_test.RETURN_K.format(3)] == -15.0
    assert out[meta_test.ADAPTATION_GAIN] == 15.0
    assert out[meta_test.GAP_CLOSED] == pytest.approx(15.0 / 20.0)  # the largest k against k = 0
    assert meta_test.returns_by_k(out) == {0: -30.0, 1: -20.0, 3: -15.0}
    assert meta_test.GAP_CLOSED not in meta_test.adaptation_metrics({0: 1.0, 1: 2.0}, {})
    assert math.isnan(meta_test.gap_closed(before=-5.0, after=-4.0, oracle=-5.0))  # no gap to close
    with pytest.raises(ValueError, match="k = 0"):
        meta_test.adaptation_metrics({1: -20.0, 2: -10.0}, refs)


def test_plot_needs_two_ks(tmp_path):
    metrics = meta_test.adaptation_metrics(
        {0: -30.0, 1: -20.0}, {meta_test.ORACLE_RETURN_MEAN: -10.0, meta_test.TASK_BLIND_RETURN_MEAN: -40.0})
    assert meta_test.plot_meta_test(metrics, tmp_path / "m.png", title="t")
    assert (tmp_path / "m.png").stat().st_size > 1000
    assert not meta_test.plot_meta_test({meta_test.RETURN_K.format(0): -3.0}, tmp_path / "n.png", title="t")
    assert not (tmp_path / "n.png").exists()
