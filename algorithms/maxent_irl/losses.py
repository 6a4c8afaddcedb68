"""MaxEnt IRL's loss: one equation, unit-tested by hand (tests/unit/test_maxent_irl.py)."""

from __future__ import annotations

import torch


def maxent_loss(state_reward: torch.Tensor, occupancy_gap: torch.Tensor, *, scale: float) -> torch.Tensor:
    """The negative log-likelihood surrogate whose gradient is MaxEnt IRL's.

    d/dtheta of the expert's log-likelihood is sum_s (mu_E(s) - D(s)) d r_theta(s)/dtheta
    (Ziebart et al. 2008; Wulfmeier et al. 2015 for a network r_theta), with
    mu_E the expert's visitation counts and D those of the soft-optimal
    policy of r_theta, held fixed. So -(mu_E - D) . r_theta, divided by
    `scale` (the expert's total visitation count, sum_s mu_E(s): T undiscounted,
    sum_t gamma^t with a discount, 1 / (1 - gamma) when stationary), has that gradient,
    negated, for a minimiser.

    Args:
        state_reward: r_theta(s) for every state, [S].
        occupancy_gap: mu_E - D, [S], no gradient.
        scale: positive normaliser.
    """
    return -(occupancy_gap.detach() * state_reward).sum() / scale
