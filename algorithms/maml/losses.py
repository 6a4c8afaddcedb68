"""The equations of MAML for RL (Finn et al. 2017, algorithm 3), one a function (torch tensors).

Conventions: a task's rows are its sampled steps, [N]; `params` is a dict of
the policy network's named parameters (torch.func.functional_call's), and
`log_prob(obs, actions, params)` the policy's log-density of the actions
under those parameters, [N]. Losses are minimised.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, NamedTuple, Sequence

import torch

Params = dict[str, torch.Tensor]
LogProb = Callable[[torch.Tensor, torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]

# Keys of a task's rows (the learner's batch columns, split per task).
OBS = "obs"
ACTIONS = "actions"
ADVANTAGES = "advantages"
LOGP_OLD = "logp_old"  # log pi(a|s) of the policy that sampled the row (pre-adaptation rows: theta's)


def reinforce_loss(*, logp: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """The inner loss -mean(log pi(a|s) * A), [N] -> [] (Williams 1992, with a baseline in A).

    Its gradient is minus the policy-gradient estimate MAML's inner step
    descends (Finn et al. 2017, eq. 4 and algorithm 3, line 6).
    """
    return -(logp * advantages).mean()


def importance_weighted_pg_loss(*, logp: torch.Tensor, logp_old: torch.Tensor,
                                advantages: torch.Tensor) -> torch.Tensor:
    """The policy-gradient surrogate of rows sampled by another policy, negated: -mean(exp(logp - logp_old) A),
    [N] -> [] (the importance-sampled objective of Kakade & Langford 2002 / TRPO's surrogate, unclipped).

    Its gradient is the importance-weighted REINFORCE estimate
    -mean(w A grad log pi), w = pi / pi_old (pi_old a constant): an unbiased
    estimate of the policy gradient of pi from rows that pi_old sampled.
    """
    return -(torch.exp(logp - logp_old) * advantages).mean()


def inner_loss(params: Mapping[str, torch.Tensor], step: int, *, log_prob: LogProb,
               rows: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The loss of inner step `step` (0-based) on one task's pre-adaptation rows, sampled with theta.

    Step 0, at theta itself: reinforce_loss, on-policy. Steps >= 1, at
    theta_k (k >= 1; `params`): importance_weighted_pg_loss with logp_old
    = rows[LOGP_OLD], the log pi_theta(a|s) the EnvRunner recorded. Finn et
    al. 2017 (and maml_rl, ProMP) sample fresh episodes with every
    intermediate theta_k; reusing theta's episodes instead is an off-policy
    approximation of that, and without the weight pi_theta_k / pi_theta it
    would be biased.

    Step 0 is REINFORCE weighted by pi_theta / pi_old held constant,
    -mean(sg[exp(logp - logp_old)] A log pi) (reinforce_loss with the
    weights): at the theta that sampled the rows the weights are 1, so its
    value, gradient and Hessian are REINFORCE's (Finn et al.'s estimator; the
    surrogate exp(logp - logp_old) A would add -mean(A grad log pi grad log
    pi^T) to the Hessian and change the second-order meta-gradient). The
    weights matter from the second outer epoch on: the learner's later epochs
    recompute theta' at an updated theta from rows the first theta sampled,
    and unweighted REINFORCE would be biased there (a review measured the
    inner gradient 6-17% off the weighted one at the defaults).
    """
    logp = log_prob(rows[OBS], rows[ACTIONS], params)
    if step == 0:
        weights = torch.exp(logp - rows[LOGP_OLD]).detach()
        return reinforce_loss(logp=logp, advantages=weights * rows[ADVANTAGES])
    return importance_weighted_pg_loss(logp=logp, logp_old=rows[LOGP_OLD], advantages=rows[ADVANTAGES])


def ppo_clip_loss(*, logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                  clip_param: float) -> torch.Tensor:
    """PPO's clipped surrogate, negated: -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = pi / pi_old, [N] -> []
    (Schulman et al. 2017, eq. 7).

    MAML's outer step here: pi is the adapted policy pi_theta' (a function of
    theta through the inner step) and pi_old the adapted policy that sampled
    the post-adaptation rows, so r = 1 at the first outer epoch.
    """
    ratio = torch.exp(logp - logp_old)
    clipped = ratio.clamp(1.0 - clip_param, 1.0 + clip_param)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def inner_update(params: Mapping[str, torch.Tensor], *, loss_fn: Callable[[Params, int], torch.Tensor],
                 lr: float, steps: int, first_order: bool) -> tuple[Params, list[torch.Tensor]]:
    """theta_{k+1} = theta_k - lr * grad L_k(theta_k), k = 0..steps-1, theta_0 = theta (Finn et al. 2017, eq. 1).

    `loss_fn(params, k)` is step k's loss (inner_loss: REINFORCE at k = 0,
    importance-weighted after).

    Second order (first_order False): the gradients keep their graph
    (create_graph), so a loss of theta' differentiates through the update,
    Hessian-vector products included. First order: the gradients are
    constants, so d theta' / d theta is the identity and the meta-gradient is
    the outer loss's gradient at theta' (first-order MAML, Finn et al. 2017,
    section 5.2).

    A parameter the loss does not reach (gradient None) keeps its value; RLlib's
    TorchDifferentiableLearner would call torch.isfinite on the None.

    Returns:
        (theta' as a dict with params' keys, the loss before each step).
    """
    current: Params = dict(params)
    losses: list[torch.Tensor] = []
    for step in range(steps):
        loss = loss_fn(current, step)
        names = [k for k, v in current.items() if v.requires_grad]
        grads = torch.autograd.grad(loss, [current[k] for k in names], create_graph=not first_order,
                                    allow_unused=True)
        for name, grad in zip(names, grads):
            if grad is not None:
                current[name] = current[name] - lr * grad
        losses.append(loss.detach())
    return current, losses


class MetaLoss(NamedTuple):
    loss: torch.Tensor  # the outer loss, mean over tasks (with its graph)
    inner_loss: torch.Tensor  # the inner loss at theta, mean over tasks (detached)
    logp_mismatch: torch.Tensor  # max |log pi_theta'(a|s) - logp_old| over post-adaptation rows (detached)
    clip_fraction: torch.Tensor  # share of post-adaptation rows with |r - 1| > clip_param (detached)


def maml_loss(params: Mapping[str, torch.Tensor], *, log_prob: LogProb,
              tasks: Sequence[tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]], inner_lr: float,
              inner_steps: int, first_order: bool, clip_param: float) -> MetaLoss:
    """MAML's meta-objective: the mean over tasks of the outer loss of each task's adapted policy.

    For each task i: theta'_i = inner_update(theta) on its pre-adaptation rows
    with inner_loss (reinforce_loss at the first step, the importance-weighted
    surrogate at later ones), then ppo_clip_loss of pi_theta'_i on its
    post-adaptation rows (Finn et al. 2017, algorithm 3, line 10, with
    PPO-clip for TRPO as the outer step).

    Args:
        params: theta, the policy's named parameters.
        log_prob: the policy's log pi(a|s) under given parameters, [N].
        tasks: (pre, post) row dicts per task with OBS, ACTIONS, ADVANTAGES and
            LOGP_OLD (pre: theta's log pi, read only when inner_steps > 1; post:
            the adapted policy's that sampled them).
    """
    outer, inner, mismatch, clipped = [], [], [], []
    for pre, post in tasks:
        step_loss = functools.partial(inner_loss, log_prob=log_prob, rows=pre)
        adapted, inner_losses = inner_update(params, loss_fn=step_loss, lr=inner_lr, steps=inner_steps,
                                             first_order=first_order)
        logp = log_prob(post[OBS], post[ACTIONS], adapted)
        outer.append(ppo_clip_loss(logp=logp, logp_old=post[LOGP_OLD], advantages=post[ADVANTAGES],
                                   clip_param=clip_param))
        inner.append(inner_losses[0])
        with torch.no_grad():
            gap = logp - post[LOGP_OLD]
            mismatch.append(gap.abs().max())
            clipped.append(((gap.exp() - 1.0).abs() > clip_param).float().mean())
    return MetaLoss(torch.stack(outer).mean(), torch.stack(inner).mean(), torch.stack(mismatch).max(),
                    torch.stack(clipped).mean())
