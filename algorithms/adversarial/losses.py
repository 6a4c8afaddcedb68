"""The equations of adversarial imitation, one a function (torch tensors, any leading shape [B]).

Conventions (imitation's): the discriminator's logit is high for expert
transitions (`logits_expert_is_high`), D = sigmoid(logit) is its probability
that a transition is the expert's, and expert rows carry label 1
(`labels_expert_is_one`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gail_reward(*, logits_expert_is_high: torch.Tensor) -> torch.Tensor:
    """GAIL's policy reward -log(1 - D(s, a)), [B] (Ho & Ermon 2016, eq. 17 with the sign of D flipped).

    With D = sigmoid(l): -log(1 - sigmoid(l)) = log(1 + e^l) = softplus(l), finite
    for every l (the naive form is -inf/nan once sigmoid(l) rounds to 1). Always
    positive: a reward for merely surviving where an episode can end early
    (rlfrontier/CartPoleFixedHorizon-v0 cannot).
    """
    return F.softplus(logits_expert_is_high)


def airl_f(*, g: torch.Tensor, h: torch.Tensor, next_h: torch.Tensor, terminateds: torch.Tensor,
           gamma: float) -> torch.Tensor:
    """AIRL's f(s, a, s') = g(s, a) + gamma * (1 - done) * h(s') - h(s), [B] (Fu et al. 2018, eq. 4).

    g is the reward approximator (state-only g(s) for the disentangled reward),
    h the shaping potential; a terminal step has no h(s') (the episode's value ends).
    """
    return g + shaping(h=h, next_h=next_h, terminateds=terminateds, gamma=gamma)


def shaping(*, h: torch.Tensor, next_h: torch.Tensor, terminateds: torch.Tensor, gamma: float) -> torch.Tensor:
    """Potential-based shaping gamma * (1 - done) * h(s') - h(s), [B] (Ng et al. 1999).

    Summed over a closed loop s0 -> s1 -> ... -> s0 with gamma = 1 it is zero,
    so it changes no policy's ranking (Fu et al. 2018, section 5).
    """
    return gamma * (1.0 - terminateds.float()) * next_h - h


def airl_logits(*, f: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """AIRL's discriminator logit f - log pi(a|s), [B]: D = exp(f) / (exp(f) + pi(a|s)) (Fu et al. 2018, eq. 3).

    log D - log(1 - D) = f - log pi, which is also the reward AIRL hands the policy.
    """
    return f - log_pi


def airl_reward(*, f: torch.Tensor, log_pi: torch.Tensor, entropy_weight: float = 1.0) -> torch.Tensor:
    """AIRL's policy reward f - entropy_weight * log pi(a|s), [B].

    With entropy_weight 1 it is log D - log(1 - D) (Fu et al. 2018, section 4): an entropy-regularised
    reward, f plus the policy's own -log pi. 0 hands the policy f alone (the `imitation` library's AIRL,
    which leaves the entropy to the RL algorithm's own bonus).
    """
    return f - entropy_weight * log_pi


def discriminator_loss(*, logits_expert: torch.Tensor, logits_policy: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the discriminator, labels_expert_is_one, mean over both halves ([B] each).

    -(E_expert[log D] + E_policy[log(1 - D)]) / 2 with D = sigmoid(logit), in the
    stable form softplus(-l) = -log sigmoid(l), softplus(l) = -log(1 - sigmoid(l))
    (Goodfellow et al. 2014's discriminator objective, Ho & Ermon 2016, algorithm 1).
    """
    return 0.5 * (F.softplus(-logits_expert).mean() + F.softplus(logits_policy).mean())


def accuracy(*, logits_expert_is_high: torch.Tensor, expert: bool) -> torch.Tensor:
    """The share of rows the discriminator classifies right: logit > 0 for expert rows, < 0 for the policy's."""
    right = logits_expert_is_high > 0 if expert else logits_expert_is_high < 0
    return right.float().mean()
