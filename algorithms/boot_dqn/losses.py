"""Bootstrapped DQN with randomised prior functions as pure tensor functions.

Bootstrapped DQN (Osband et al. 2016, "Deep Exploration via Bootstrapped DQN")
trains K Q-functions on K bootstrap resamples of the replayed data (a Bernoulli
mask per transition and head) and acts greedily with one head sampled per
episode: an approximate posterior sample (Thompson sampling over value
functions), so exploration is temporally consistent, unlike epsilon-dithering.
Randomised prior functions (Osband et al. 2018, "Randomized Prior Functions for
Deep Reinforcement Learning") add a fixed, untrained random network to each
head, Q_k = f_k + beta * p_k, which keeps the ensemble diverse where data are
scarce.

Shapes: K heads, B the batch, A the number of discrete actions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def double_q_targets(
    *,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
) -> torch.Tensor:
    """Per-head double-Q targets y_k = r + discount * Q'_k(s', argmax_a Q_k(s', a)).

    Each head bootstraps from its own target head (van Hasselt et al. 2016
    per head, as in Osband et al. 2016).

    Args:
        rewards: n-step returns, [B] (or [K, B]: each head's own rows).
        discounts: gamma^k * (1 - terminated), [B] (or [K, B]).
        next_q_online: online Q-values at the next observations, [K, B, A].
        next_q_target: target Q-values at the next observations, [K, B, A].

    Returns:
        Targets, [K, B] (no gradient).
    """
    best = next_q_online.argmax(dim=-1, keepdim=True)  # [K, B, 1]
    next_value = next_q_target.gather(-1, best).squeeze(-1)  # [K, B]
    return (_per_head(rewards) + _per_head(discounts) * next_value).detach()


def max_q_targets(*, rewards: torch.Tensor, discounts: torch.Tensor, next_q_target: torch.Tensor) -> torch.Tensor:
    """Per-head Q-learning targets y_k = r + discount * max_a Q'_k(s', a) (double_q=False).

    bsuite's bootstrapped DQN (bsuite/baselines/tf/boot_dqn/agent.py) bootstraps
    each head from the max of its own target head; without the online pass at
    s' an update costs one ensemble forward pass less than double_q_targets.

    Args:
        rewards: n-step returns, [B] (or [K, B]: each head's own rows).
        discounts: gamma^k * (1 - terminated), [B] (or [K, B]).
        next_q_target: target Q-values at the next observations, [K, B, A].

    Returns:
        Targets, [K, B] (no gradient).
    """
    next_value = next_q_target.max(dim=-1).values  # [K, B]
    return (_per_head(rewards) + _per_head(discounts) * next_value).detach()


def _per_head(x: torch.Tensor) -> torch.Tensor:
    """A per-transition column, [B] (shared by the heads), or already per head, [K, B], as [1 or K, B]."""
    return x if x.dim() == 2 else x.unsqueeze(0)


def masked_td_loss(
    *,
    q_taken: torch.Tensor,
    targets: torch.Tensor,
    masks: torch.Tensor,
    weights: torch.Tensor | None = None,
    huber_delta: float | None = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bootstrap loss: each head's TD loss over the transitions its mask keeps.

    L = (1/K) sum_k [ sum_b w_b m_bk l(q_kb - y_kb) / max(1, sum_b m_bk) ]:
    head k sees its own resample of the batch, and its loss is a mean over it,
    so a head's gradient does not depend on the mask probability. The 1/K
    makes each head's gradient K times smaller than alone (Osband et al. 2016
    normalise by K too); Adam's per-parameter step cancels the scale, but a
    global grad_clip is shared by all heads.

    Args:
        q_taken: Q_k(s, a) of the replayed actions, [K, B].
        targets: y_k, [K, B].
        masks: bootstrap masks in {0, 1}, [B, K] (as stored per transition).
            On each head's own rows (q_taken and targets [K, M]), HEAD_KEEP
            transposed, [M, K]: the loss is the same, and td_error is then per
            column m, not per transition (prioritised replay takes the full batch).
        weights: importance weights of prioritised replay, [B] (or [K, M]), or None.
        huber_delta: Huber threshold; None for the squared error.

    Returns:
        (loss, td_error): the scalar loss and the per-transition TD error
        averaged over the heads that kept it, [B], for replay priorities;
        where no head kept a transition, the mean over all heads (a zero
        would give it priority epsilon: never replayed again, and pinning the
        minimum probability that every importance weight is normalised by).
    """
    td = q_taken - targets  # [K, B]
    if huber_delta is None:
        per_element = 0.5 * td.pow(2)
    else:
        per_element = F.huber_loss(q_taken, targets, reduction="none", delta=huber_delta)
    m = masks.t().to(per_element.dtype)  # [K, B]
    if weights is not None:
        per_element = per_element * _per_head(weights)
    per_head = (per_element * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
    kept = m.sum(dim=0)  # [B]
    abs_td = td.detach().abs()
    td_error = torch.where(kept > 0, (abs_td * m).sum(dim=0) / kept.clamp(min=1.0), abs_td.mean(dim=0))
    return per_head.mean(), td_error


def vote(q: torch.Tensor) -> torch.Tensor:
    """The ensemble's greedy action: a majority vote of the heads' argmax actions.

    Ties go to the action with the higher mean Q-value across heads.

    Args:
        q: Q-values of all heads, [K, B, A].

    Returns:
        Actions, [B] (int64).
    """
    num_actions = q.shape[-1]
    votes = F.one_hot(q.argmax(dim=-1), num_actions).sum(dim=0).to(q.dtype)  # [B, A]
    mean_q = q.mean(dim=0)
    # A tie-breaker below one vote: mean Q rescaled into [0, 0.5).
    spread = (mean_q - mean_q.min(dim=-1, keepdim=True).values)
    tie_break = 0.5 * spread / (spread.max(dim=-1, keepdim=True).values + 1e-8)
    return (votes + tie_break * 0.999).argmax(dim=-1)


def head_disagreement(q: torch.Tensor) -> torch.Tensor:
    """Fraction of states where the heads disagree on the greedy action, [] in [0, 1].

    A health figure of the ensemble: near 0, posterior sampling explores no
    more than one greedy head.

    Args:
        q: Q-values of all heads, [K, B, A].
    """
    greedy = q.argmax(dim=-1)  # [K, B]
    return (greedy != greedy[:1]).any(dim=0).float().mean()


def head_q_std(q_taken: torch.Tensor) -> torch.Tensor:
    """The heads' spread of value estimates: mean over the batch of std_k Q_k(s_b, a_b), [].

    The width of the approximate posterior over Q that posterior sampling
    draws from (Osband et al. 2016): where it shrinks to 0 the heads act
    alike. The population standard deviation over the K heads (0 for one
    head), at the replayed actions.

    Args:
        q_taken: Q_k(s, a) of the replayed actions, [K, B].
    """
    return q_taken.std(dim=0, correction=0).mean()
