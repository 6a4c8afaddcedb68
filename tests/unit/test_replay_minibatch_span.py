"""Every SGD minibatch of a replayed batch is drawn from the whole buffer (prioritised or not).

Regression: stratified prioritised sampling returned indexes in buffer order, and the
learner group cuts the batch into minibatches in order, so each minibatch of 64 out of
a 1024 batch covered about 1/16 of the buffer (median span 386 of 50,000 slots), and each
of two learners saw only half the buffer.

Bound: the rows come in random order, so a minibatch's 64 slots are spread like 64
independent draws over the buffer's priority mass (random order without replacement
from stratified draws spreads them at least as well). Random i.i.d. priorities make a
quarter of the buffer hold a quarter of the mass up to a relative error of about 1%,
so P(span < 3/4 of the buffer) is close to that of 64 uniform draws,
64 * 0.75^63 - 63 * 0.75^64 ~ 2e-7 per minibatch: about 2e-5 over the 96 minibatches
checked per mode. A minibatch of the old sampling spans about 1/16 of the buffer.
"""

from __future__ import annotations

import numpy as np
import pytest

from rlfrontier.replay import INDEXES, NEXT_OBS, OBS, REWARDS, TERMINATEDS, ACTIONS, TransitionReplayBuffer

CAPACITY = 50_000
MINIBATCH = 64
BATCH = MINIBATCH * 16


def filled_buffer(*, prioritized: bool, seed: int) -> TransitionReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = TransitionReplayBuffer(capacity=CAPACITY, prioritized=prioritized, seed=seed)
    buffer.add(
        {
            OBS: rng.random((CAPACITY, 4)).astype(np.float32),
            ACTIONS: rng.integers(0, 2, CAPACITY),
            REWARDS: np.ones(CAPACITY, np.float32),
            NEXT_OBS: rng.random((CAPACITY, 4)).astype(np.float32),
            TERMINATEDS: np.zeros(CAPACITY, bool),
        }
    )
    if prioritized:
        buffer.update_priorities(np.arange(CAPACITY), rng.uniform(0.01, 1.0, CAPACITY))
    return buffer


def minibatch_spans(indexes: np.ndarray) -> np.ndarray:
    """max - min slot of each consecutive minibatch, as the learner group cuts them."""
    chunks = indexes.reshape(-1, MINIBATCH)
    return chunks.max(axis=1) - chunks.min(axis=1)


@pytest.mark.parametrize("prioritized", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_minibatch_spans_most_of_the_buffer(prioritized, seed):
    buffer = filled_buffer(prioritized=prioritized, seed=seed)
    spans = np.concatenate([minibatch_spans(buffer.sample(BATCH)[INDEXES]) for _ in range(10)])
    # 64 uniform draws: expected span (63/65) N ~ 0.97 N; P(span < 0.75 N) ~ 2e-7 per minibatch.
    assert spans.min() > 0.75 * CAPACITY, spans.min()
    assert np.median(spans) > 0.9 * CAPACITY


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_learner_shard_covers_the_whole_buffer(seed):
    # Two learners: the batch is split into two contiguous halves; each must reach both
    # halves of the buffer (before the fix the first learner saw only slots < N / 2).
    buffer = filled_buffer(prioritized=True, seed=seed)
    indexes = buffer.sample(BATCH)[INDEXES]
    for shard in np.split(indexes, 2):
        low, high = np.mean(shard < CAPACITY // 2), np.mean(shard >= CAPACITY // 2)
        # Binomial(512, ~0.5): more than 0.35 on each side fails with probability < 1e-11.
        assert low > 0.35 and high > 0.35


def test_prioritized_sampling_stays_stratified_over_the_priority_mass():
    # The shuffle reorders the stratified draws but keeps them: sorted, they still hit
    # one slot per 1/B of the (here uniform) mass, so the sorted slots step by about N / B.
    buffer = filled_buffer(prioritized=False, seed=0)
    prioritized = TransitionReplayBuffer(capacity=CAPACITY, prioritized=True, seed=0)
    prioritized.add({k: v for k, v in buffer._storage.items()})
    indexes = np.sort(prioritized.sample(BATCH)[INDEXES])
    np.testing.assert_array_less(np.abs(indexes - (np.arange(BATCH) + 0.5) * CAPACITY / BATCH), CAPACITY / BATCH)
