"""Behavioural cloning's loss and its accuracy measure, unit-tested by hand (tests/unit/test_bc.py)."""

from __future__ import annotations

import torch


def negative_log_likelihood(*, action_dist, actions: torch.Tensor) -> torch.Tensor:
    """-1/N sum_i log pi(a_i | s_i): maximum likelihood of the demonstrated actions (behavioural
    cloning, Pomerleau 1991), under the module's own action distribution.

    Args:
        action_dist: the policy at the demonstrated states, an RLlib distribution (Categorical: logits
            [N, A]; diagonal Gaussian: mean and log std [N, 2d]).
        actions: the demonstrated actions, [N] (Discrete) or [N, d] (Box).
    """
    return -action_dist.logp(actions).mean()


def action_accuracy(*, action_dist, actions: torch.Tensor) -> torch.Tensor:
    """The fraction of demonstrated actions that the policy's most likely action matches ([N] discrete actions).

    One minus it is the error on the expert's states that bounds the cloned policy's cost, times the
    horizon squared (Ross and Bagnell 2010): on CartPole's 500 steps it must be small indeed.
    """
    return (action_dist.to_deterministic().sample() == actions).float().mean()
