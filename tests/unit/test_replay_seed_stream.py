"""The replay sampler draws from the run's own replay stream (seeding.REPLAY), not the raw seed."""

from __future__ import annotations

import numpy as np

from rlfrontier import seeding
from rlfrontier.algorithms.soft_q import SoftQConfig
from rlfrontier.offpolicy import make_replay_buffer
from rlfrontier.replay import ACTIONS, INDEXES, NEXT_OBS, OBS, REWARDS, TransitionReplayBuffer


def filled(buffer: TransitionReplayBuffer) -> TransitionReplayBuffer:
    n = 100
    buffer.add({OBS: np.zeros((n, 1), np.float32), ACTIONS: np.zeros(n, np.int64),
                REWARDS: np.zeros(n, np.float32), NEXT_OBS: np.zeros((n, 1), np.float32)})
    return buffer


def test_make_replay_buffer_samples_from_the_replay_stream():
    config = SoftQConfig().environment("CartPole-v1").debugging(seed=5).training(replay_capacity=100)
    buffer = filled(make_replay_buffer(config))
    expected = seeding.rng(5, seeding.REPLAY).integers(0, 100, size=64)
    np.testing.assert_array_equal(buffer.sample(64)[INDEXES], expected)
    raw = filled(TransitionReplayBuffer(capacity=100, seed=5))
    assert not np.array_equal(raw.sample(64)[INDEXES], expected)


def test_make_replay_buffer_uses_the_configs_n_step_and_gamma():
    config = SoftQConfig().environment("CartPole-v1").training(n_step=4, gamma=0.9, replay_capacity=10)
    buffer = make_replay_buffer(config)
    assert (buffer.n_step, buffer.gamma, buffer.capacity) == (4, 0.9, 10)
