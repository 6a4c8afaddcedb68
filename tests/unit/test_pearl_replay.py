"""PEARL's driver side without Ray: per-task replay, episodes to transitions, contexts, config checks."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rlfrontier.algorithms.pearl import PEARLConfig
from rlfrontier.algorithms.pearl.pearl import TaskReplay, check_info_key, context_rows, episode_transitions, resampled
from rlfrontier.validation import BadInput


def transitions(start: int, n: int) -> dict[str, np.ndarray]:
    values = np.arange(start, start + n, dtype=np.float32)
    return {"obs": np.stack([values, -values], 1), "actions": values[:, None], "rewards": values,
            "critic_rewards": -values, "next_obs": np.stack([values + 1, -values - 1], 1),
            "terminateds": np.zeros(n, np.float32)}


def test_task_replay_keeps_each_task_apart_and_the_last_capacity_transitions():
    replay = TaskReplay(num_tasks=3, capacity=5)
    replay.add(0, transitions(0, 3))
    replay.add(2, transitions(100, 2))
    assert [replay.size(t) for t in range(3)] == [3, 0, 2]
    replay.add(0, transitions(3, 4))  # 7 in all: the first 2 are overwritten
    assert replay.size(0) == 5
    drawn = replay.sample(0, 2_000, np.random.default_rng(0))
    assert set(drawn["rewards"].tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}
    np.testing.assert_array_equal(drawn["critic_rewards"], -drawn["rewards"])  # rows stay whole
    assert set(replay.sample(2, 100, np.random.default_rng(1))["rewards"].tolist()) == {100.0, 101.0}
    replay.add(1, transitions(0, 12))  # more than fit at once: the last 5
    assert set(replay.sample(1, 500, np.random.default_rng(2))["rewards"].tolist()) == {7.0, 8.0, 9.0, 10.0, 11.0}
    replay.clear(0)
    assert replay.size(0) == 0
    with pytest.raises(RuntimeError, match="task 0"):
        replay.sample(0, 1, np.random.default_rng(0))


def episode(terminated: bool) -> SingleAgentEpisode:
    ep = SingleAgentEpisode()
    ep.add_env_reset(observation=np.zeros(2, np.float32), infos={"distance": 1.0})
    for t in range(1, 4):
        ep.add_env_step(observation=np.full(2, t, np.float32), action=np.full(2, -t / 10, np.float32),
                        reward=float(t == 3), infos={"distance": 1.0 - t / 4, "dense_reward": -(1.0 - t / 4)},
                        terminated=terminated and t == 3)
    return ep.to_numpy()


@pytest.mark.parametrize("terminated", [False, True])
def test_episode_transitions_pair_each_action_with_its_step(terminated):
    out = episode_transitions(episode(terminated), "reward")
    np.testing.assert_array_equal(out["obs"][:, 0], [0, 1, 2])
    np.testing.assert_array_equal(out["next_obs"][:, 0], [1, 2, 3])
    np.testing.assert_allclose(out["actions"][:, 0], [-0.1, -0.2, -0.3])
    np.testing.assert_array_equal(out["rewards"], [0, 0, 1])
    np.testing.assert_array_equal(out["critic_rewards"], out["rewards"])
    np.testing.assert_array_equal(out["terminateds"], [0, 0, float(terminated)])
    dense = episode_transitions(episode(terminated), "dense_reward")
    np.testing.assert_allclose(dense["critic_rewards"], [-0.75, -0.5, -0.25])
    np.testing.assert_array_equal(dense["rewards"], [0, 0, 1])  # the encoder's stay the env's
    with pytest.raises(RuntimeError, match="'nope'"):
        episode_transitions(episode(terminated), "nope")


def test_context_rows_are_obs_action_env_reward_then_next_obs():
    out = episode_transitions(episode(False), "dense_reward")
    rows = context_rows(out, use_next_obs=False)
    np.testing.assert_allclose(rows[2], [2, 2, -0.3, -0.3, 1.0])
    with_next = context_rows(out, use_next_obs=True)
    np.testing.assert_allclose(with_next[2], [2, 2, -0.3, -0.3, 1.0, 3, 3])


def test_critic_reward_must_be_a_key_of_the_step_info():
    check_info_key("rlfrontier/SparsePointNav-v0", None, "dense_reward")
    with pytest.raises(BadInput, match="critic_reward='dense'.*has no such key"):
        check_info_key("rlfrontier/SparsePointNav-v0", None, "dense")
    config = PEARLConfig().environment("rlfrontier/SparsePointNav-v0").training(critic_reward="dense")
    with pytest.raises(BadInput, match="critic_reward='dense'"):
        config.validate()


@pytest.mark.parametrize("field, value", [("meta_batch_size", 0), ("context_episodes", 0), ("tau", 1.5),
                                          ("num_tasks_sample", 81), ("reward_scale", 0.0), ("kl_lambda", -1.0),
                                          ("policy_pre_activation_weight", -0.1),
                                          ("meta_test_context", "all")])
def test_out_of_range_fields_name_themselves(field, value):
    config = PEARLConfig().environment("rlfrontier/PointNav-v0").training(**{field: value})
    with pytest.raises((BadInput, ValueError), match=field):
        config.validate()


def test_resampled_contexts_draw_their_size_with_replacement_and_none_keeps_every_row():
    rows = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert resampled(rows, None, np.random.default_rng(0)) is rows
    out = resampled(rows, 512, np.random.default_rng(0))
    assert out.shape == (512, 2)
    # Every drawn row is one of the context's, whole; with 512 draws of 10 every row turns up.
    assert {tuple(r) for r in out} == {tuple(r) for r in rows}
    few = resampled(rows, 4, np.random.default_rng(1))
    assert few.shape == (4, 2) and all(tuple(r) in {tuple(x) for x in rows} for r in few)
