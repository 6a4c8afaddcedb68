"""Replay ratio arithmetic: SGD updates per training step and the credit carried over."""

from __future__ import annotations

import pytest

from rlfrontier.offpolicy import updates_due


def test_one_update_per_env_step_at_intensity_equal_to_the_batch():
    # 128 env steps * 64 / (64 * 1) = 128 updates, nothing left over.
    assert updates_due(
        credit=0.0, num_sampled=128, training_intensity=64.0, batch_size_per_learner=64, num_learners=0
    ) == (128, 0.0)


def test_several_learners_share_the_replayed_transitions():
    # 128 * 64 / (64 * 2) = 64 updates: each update replays one minibatch on every learner.
    assert updates_due(
        credit=0.0, num_sampled=128, training_intensity=64.0, batch_size_per_learner=64, num_learners=2
    ) == (64, 0.0)


def test_fractional_updates_are_carried_over():
    # 10 * 16 / 64 = 2.5 per step: 2, then 0.5 + 2.5 = 3, then 2, then 3 ...
    credit, done = 0.0, []
    for _ in range(4):
        num, credit = updates_due(
            credit=credit, num_sampled=10, training_intensity=16.0, batch_size_per_learner=64, num_learners=1
        )
        done.append(num)
    assert done == [2, 3, 2, 3]
    assert credit == pytest.approx(0.0)


@pytest.mark.parametrize(("num_sampled", "intensity", "batch", "learners"), [(7, 3.0, 64, 1), (33, 100.0, 32, 3), (1, 0.5, 256, 0)])
def test_total_updates_match_the_replay_ratio_over_many_steps(num_sampled, intensity, batch, learners):
    credit, total = 0.0, 0
    steps = 1000
    for _ in range(steps):
        num, credit = updates_due(
            credit=credit, num_sampled=num_sampled, training_intensity=intensity,
            batch_size_per_learner=batch, num_learners=learners,
        )
        total += num
        assert 0.0 <= credit < 1.0
    exact = steps * num_sampled * intensity / (batch * max(learners, 1))
    assert abs(total - exact) < 1.0
