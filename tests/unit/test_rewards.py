"""Reward transforms: the configured object, the replay-time seam and the episode (learner connector) seam."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics import LEARNER_RESULTS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rlfrontier import rewards
from rlfrontier.replay import REWARDS, TransitionReplayBuffer, transitions_from_episodes
from tests.unit.test_replay import make_episode

GAMMA = 0.9


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "bonus"}, "reward_transform type 'bonus' is unknown: choose one of affine, airl, clip, gail, gcl"),
        ({"scale": 2}, "reward_transform type None is unknown"),
        ({"type": "affine", "scael": 2}, "reward_transform affine has no setting 'scael': it takes scale, shift"),
        ({"type": "affine", "scale": "big"}, "reward_transform affine scale='big' must be a finite number"),
        ({"type": "affine", "shift": float("nan")}, "reward_transform affine shift=nan must be a finite number"),
        ({"type": "clip", "low": 2, "high": 1}, "reward_transform clip low=2 is above high=1"),
        ("affine", "reward_transform must be a mapping with a 'type', got 'affine'"),
    ],
)
def test_a_bad_transform_names_the_bad_part(spec, message):
    with pytest.raises(ValueError) as caught:
        rewards.build(spec)
    assert str(caught.value).startswith(message)


def test_no_transform_is_none():
    assert rewards.build(None) is None
    assert rewards.replay_hook(object()) is None


def test_affine_and_clip_rewrite_elementwise_in_any_shape():
    r = np.array([[-3.0, 0.5], [2.0, 0.0]], dtype=np.float32)
    affine = rewards.build({"type": "affine", "scale": 2, "shift": -1})
    np.testing.assert_allclose(affine({REWARDS: r}), 2 * r - 1)
    np.testing.assert_allclose(rewards.build({"type": "clip"})({REWARDS: r}), [[-1, 0.5], [1, 0]])


def test_a_transform_that_changes_the_shape_is_refused():
    class Broken(rewards.RewardTransform):
        kind = "broken"

        def rewrite(self, columns):
            return columns[REWARDS].ravel()[:1]

    with pytest.raises(ValueError, match="returned shape"):
        Broken()({REWARDS: np.zeros((2, 3))})


def test_the_replay_hook_rewrites_each_step_before_folding():
    # One episode, rewards 1..5, terminated; n = 3 windows fold sum_j gamma^j (2 r_{t+j} - 1).
    episode = make_episode([1.0, 2.0, 3.0, 4.0, 5.0], terminated=True)
    buffer = TransitionReplayBuffer(capacity=100, n_step=3, gamma=GAMMA, seed=0)
    buffer.add(transitions_from_episodes([episode]))
    hook = rewards.ReplayRewardHook(rewards.build({"type": "affine", "scale": 2, "shift": -1}))
    folded = buffer.fold(np.arange(5), reward_hook=hook)
    r = 2 * np.arange(1.0, 6.0) - 1
    expected = [r[t] + GAMMA * r[t + 1] + GAMMA**2 * r[t + 2] for t in range(3)]
    expected += [r[3] + GAMMA * r[4], r[4]]  # windows cut by the termination
    np.testing.assert_allclose(folded[REWARDS], expected, rtol=1e-6)
    # Means over the steps inside the windows: 3 + 3 + 3 + 2 + 1 steps.
    inside = [1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 5]
    assert hook.extrinsic_mean == pytest.approx(np.mean(inside))
    assert hook.transformed_mean == pytest.approx(2 * np.mean(inside) - 1)
    assert (hook.low, hook.high) == (1.0, 9.0)
    metrics = MetricsLogger()
    hook.log(metrics)
    logged = metrics.peek((LEARNER_RESULTS, DEFAULT_MODULE_ID))
    assert logged[rewards.REWARD_EXTRINSIC_MEAN] == pytest.approx(np.mean(inside))
    assert logged[rewards.REWARD_TRANSFORMED_MEAN] == pytest.approx(2 * np.mean(inside) - 1)


def test_the_replay_hook_also_runs_for_one_step_replay():
    episode = make_episode([1.0, 2.0], terminated=False)
    buffer = TransitionReplayBuffer(capacity=10, n_step=1, gamma=GAMMA, seed=0)
    buffer.add(transitions_from_episodes([episode]))
    hook = rewards.ReplayRewardHook(rewards.build({"type": "affine", "shift": 10}))
    np.testing.assert_allclose(buffer.fold(np.arange(2), reward_hook=hook)[REWARDS], [11.0, 12.0])


def _episodes():
    done = make_episode([1.0, 0.0, 2.0], terminated=True)
    done.rewards.data.flags.writeable = False  # as after Ray's object store
    cut = make_episode([5.0, -5.0], obs_offset=10.0)
    listed = SingleAgentEpisode(  # not yet numpy'ized: rewards are a list
        observations=[np.zeros(1, np.float32)] * 3, actions=[0, 1], rewards=[3.0, 4.0], len_lookback_buffer=0
    )
    return [done, cut, listed]


def test_the_connector_rewrites_episode_rewards_in_place_and_logs_both_means():
    episodes = _episodes()
    connector = rewards.RewardTransformConnector(transform=rewards.build({"type": "affine", "scale": 3, "shift": 1}))
    metrics = MetricsLogger()
    batch = {"untouched": 1}
    out = connector(rl_module=None, batch=batch, episodes=episodes, metrics=metrics)
    assert out is batch
    np.testing.assert_allclose(episodes[0].get_rewards(), [4.0, 1.0, 7.0])
    np.testing.assert_allclose(episodes[1].get_rewards(), [16.0, -14.0])
    np.testing.assert_allclose(np.asarray(episodes[2].get_rewards()), [10.0, 13.0])
    logged = metrics.peek(DEFAULT_MODULE_ID)
    extrinsic = np.mean([1.0, 0.0, 2.0, 5.0, -5.0, 3.0, 4.0])
    assert logged[rewards.REWARD_EXTRINSIC_MEAN] == pytest.approx(extrinsic)
    assert logged[rewards.REWARD_TRANSFORMED_MEAN] == pytest.approx(3 * extrinsic + 1)


def test_the_connector_rewrites_numpy_episodes_without_a_warning_per_chunk():
    # RLlib's set_rewards asks the rewards' Box whether it contains a numpy scalar; gymnasium warns
    # "Casting input x to numpy array." for each, which filled the Pendulum benchmark's log.
    import warnings

    connector = rewards.RewardTransformConnector(transform=rewards.build({"type": "affine", "shift": 1}))
    episodes = _episodes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        connector(rl_module=None, batch={}, episodes=episodes)
    assert [str(w.message) for w in caught] == []
    np.testing.assert_allclose(episodes[0].get_rewards(), [2.0, 1.0, 3.0])  # rewritten all the same


def test_the_connector_sees_the_steps_the_env_produced():
    # A transform of the next observation: the connector hands (s, a, r, s', terminated) per step.
    class NextObs(rewards.RewardTransform):
        kind = "next_obs"

        def rewrite(self, columns):
            assert columns["terminateds"].tolist() == [False, False, True]
            return columns["new_obs"][:, 0] - columns["obs"][:, 0] + columns["actions"]

    episode = make_episode([0.0, 0.0, 0.0], terminated=True)
    rewards.RewardTransformConnector(transform=NextObs())(rl_module=None, batch={}, episodes=[episode])
    np.testing.assert_allclose(episode.get_rewards(), [1.0, 2.0, 1.0])  # obs i -> i + 1, actions 0, 1, 0


def test_configs_carry_the_field_and_validate_it():
    from rlfrontier.algorithms.boot_dqn import BootDQNConfig
    from rlfrontier.algorithms.soft_q import SoftQConfig

    for config in (SoftQConfig(), BootDQNConfig(), rewards.PPOWithRewardTransform()):
        assert config.reward_transform is None
        config.training(reward_transform={"type": "clip"})
        assert config.reward_transform == {"type": "clip"}
        config.environment("CartPole-v1")
        config.reward_transform = {"type": "nope"}
        with pytest.raises(ValueError, match="'nope' is unknown"):
            config.validate()
    assert rewards.PPOWithRewardTransform().learner_class is rewards.PPOTransformedLearner
