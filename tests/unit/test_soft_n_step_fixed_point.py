"""The n-step soft backup, through the buffer's folding and the real loss function, has the soft fixed point.

Toy MDP: one state, two actions, reward 0, gamma = 0.99. Under the soft backup with
temperature alpha, Q(s, a) = q for both actions and V = q + alpha log 2, H = log 2, so
the fixed point is q* = gamma * alpha * log 2 / (1 - gamma) (68.62 for alpha = 1) for
every horizon n. The regression: without the intermediate entropy terms an n-step
window gives q = gamma^n alpha log 2 / (1 - gamma^n) (22.64 for n = 3).

The buffer stores float32 discounts (0.99 -> 0.99000001), which moves q* by about
1e-6 / (1 - gamma) = 1e-4 relative (0.007 at 68.62): the tolerance below is 0.02.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rlfrontier import replay
from rlfrontier.algorithms.soft_q import losses

GAMMA = 0.99


def toy_chunks(*, num_steps: int, chunk_length: int, seed: int) -> list[SingleAgentEpisode]:
    """One long episode of the one-state MDP, cut into chunks as an EnvRunner would, truncated at the end."""
    rng = np.random.default_rng(seed)
    episode = SingleAgentEpisode(len_lookback_buffer=0)
    episode.add_env_reset(np.zeros(1, np.float32))
    chunks = []
    for t in range(num_steps):
        if t > 0 and t % chunk_length == 0:
            chunks.append(episode)
            episode = episode.cut(len_lookback_buffer=1)
        action = int(rng.integers(0, 2)) if t > 1 else t  # both actions occur
        episode.add_env_step(np.zeros(1, np.float32), action, 0.0, truncated=(t == num_steps - 1))
    chunks.append(episode)
    for chunk in chunks:
        chunk.to_numpy()
    return chunks


def folded_batch(*, n_step: int, seed: int) -> dict[str, torch.Tensor]:
    buffer = replay.TransitionReplayBuffer(capacity=1000, n_step=n_step, gamma=GAMMA, seed=seed)
    for chunk in toy_chunks(num_steps=120, chunk_length=7, seed=seed):
        buffer.add(replay.transitions_from_episodes([chunk]))
    batch = buffer.fold(np.arange(len(buffer)))  # every window once; sample() draws from these
    return {k: torch.as_tensor(v) for k, v in batch.items()}


def iterate_tabular_q(batch, *, n_step: int, alpha: float, with_entropy_terms: bool = True) -> torch.Tensor:
    """Q <- per-action mean of the soft n-step targets of the batch, until it stops changing."""
    q = torch.zeros(2, dtype=torch.float64)
    actions = batch[replay.ACTIONS].long()
    rewards = batch[replay.REWARDS].double()
    discounts = batch[replay.DISCOUNTS].double()
    size = len(actions)
    chosen = [actions == a for a in (0, 1)]
    for _ in range(10_000):
        intermediate = {}
        if n_step > 1 and with_entropy_terms:
            intermediate = dict(
                intermediate_q_target=q.expand(size, n_step - 1, 2),
                intermediate_discounts=batch[replay.INTERMEDIATE_DISCOUNTS].double(),
            )
        targets = losses.soft_n_step_target(
            rewards=rewards, discounts=discounts, next_q_target=q.expand(size, 2), alpha=alpha, **intermediate
        )
        new_q = torch.stack([targets[mask].mean() for mask in chosen])
        if torch.max(torch.abs(new_q - q)) < 1e-9:
            return new_q
        q = new_q
    raise AssertionError(f"no convergence: {q}")


@pytest.mark.parametrize("n_step", [1, 3, 5])
@pytest.mark.parametrize(("seed", "alpha"), [(0, 1.0), (1, 0.3)])
def test_n_step_soft_backup_converges_to_the_soft_fixed_point(seed, n_step, alpha):
    batch = folded_batch(n_step=n_step, seed=seed)
    # The batch mixes full windows with shorter ones at the truncated end; each has the same fixed point.
    k = np.round(np.log(batch[replay.DISCOUNTS].numpy()) / np.log(GAMMA)).astype(int)
    assert set(k.tolist()) == set(range(1, n_step + 1))
    q = iterate_tabular_q(batch, n_step=n_step, alpha=alpha)
    expected = GAMMA * alpha * math.log(2) / (1 - GAMMA)
    if alpha == 1.0:
        assert expected == pytest.approx(68.62, abs=0.005)
    torch.testing.assert_close(q, torch.full((2,), expected, dtype=torch.float64), atol=0.02, rtol=0)


@pytest.mark.parametrize("n_step", [3, 5])
def test_n_step_backup_without_entropy_terms_has_a_smaller_fixed_point(n_step):
    # What the backup did before the fix: only full windows, so k = n everywhere.
    batch = folded_batch(n_step=n_step, seed=0)
    full = torch.isclose(batch[replay.DISCOUNTS].double(), torch.tensor(GAMMA**n_step, dtype=torch.float64))
    batch = {k: v[full] for k, v in batch.items()}
    q = iterate_tabular_q(batch, n_step=n_step, alpha=1.0, with_entropy_terms=False)
    wrong = GAMMA**n_step * math.log(2) / (1 - GAMMA**n_step)
    if n_step == 3:
        assert wrong == pytest.approx(22.64, abs=0.005)
    torch.testing.assert_close(q, torch.full((2,), wrong, dtype=torch.float64), atol=0.02, rtol=0)
