"""Guided cost learning's objective, one function each (torch tensors).

Finn, Levine & Abbeel 2016 (GCL), section 4, with the reward r = -c:
MaxEnt IRL models trajectories as p(tau) = exp(R(tau)) / Z, R(tau) the sum
of the per-step rewards r_psi(s_t, a_t), and maximises the demonstrations'
likelihood, -(1/N) sum_demo R(tau_i) + log Z. Z is estimated by importance
sampling from M trajectories tau_j of a known density mu(tau_j), the
demonstrations mixed into the samples:

    Z ~ (1/M) sum_j exp(R(tau_j)) / mu(tau_j),
    dL/dpsi = -(1/N) sum_demo dR(tau_i) + sum_j w_j dR(tau_j),
    w_j = [exp(R(tau_j)) / mu(tau_j)] / sum_k [exp(R(tau_k)) / mu(tau_k)]   (self-normalised).

The dynamics' factor p(s_0) prod p(s'|s, a) is in exp(R)'s model and in every
sampling density, so it cancels: a density is the product of the acting
policy's pi(a_t|s_t), log q(tau) = sum_t log pi(a_t|s_t).

The sampling density of the mixed set. Half of it is demonstrations, whose
own density is unknown; weighting a demonstration by exp(R) / pi(tau) under
the current policy alone gives it all the weight as soon as the policy
strays from the expert (measured: 100% of the weight on the demonstrations,
effective sample size 1 of 32, and a reward that rose on the samples and fell
on the demonstrations). GCL uses the mixture of the data and the samples'
distributions, mu = 1/2 p + 1/2 q, with the unknown data density p
approximated by the current model p~ = exp(R) / Z (as Finn, Christiano,
Abbeel & Levine 2016 spell out, section 3). Then

    exp(R_j) / mu_j = 2 Z D_j,   D_j = exp(R_j) / (exp(R_j) + Z q_j) = sigmoid(R_j - log q_j - log Z),

so no weight exceeds 2Z, and Z's own estimate is self-consistent exactly when
the mean of D over the mixed set is 1/2 (a unique log Z: the mean falls
monotonically in log Z; `log_partition` solves it). With N demonstrations
and N samples the weights are w_j = D_j / N, and the gradient above is
that of the logistic loss of a discriminator D (expert = 1) at that log Z:
GCL's sample-based MaxEnt IRL is a GAN whose discriminator is exp(R) / Z
against the sampler's density ("IRL as a GAN", Finn et al. 2016, section 3).
"""

from __future__ import annotations

import torch

# Bisection steps of `log_partition`: the bracket [min x, max x] halves each time.
BISECTION_STEPS = 60


def trajectory_returns(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """R(tau) = sum_t r_t over each row's real steps, [B] from [B, T] rewards and a [B, T] 0/1 mask."""
    return (rewards * mask).sum(dim=-1)


@torch.no_grad()
def log_partition(x: torch.Tensor) -> torch.Tensor:
    """log Z with mean_j sigmoid(x_j - log Z) = 1/2, x_j = R_j - log q_j over the mixed set (module docstring).

    The mean is continuous and decreasing in log Z, at least 1/2 at min x and at
    most 1/2 at max x: bisection on that bracket, in float64, returned in x's dtype.
    """
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"gcl: a trajectory's R - log q is not finite ({x.tolist()}): a reward or a "
                         "log-probability overflowed")
    x64 = x.double()
    low, high = x64.min(), x64.max()
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        if torch.sigmoid(x64 - mid).mean() > 0.5:
            low = mid
        else:
            high = mid
    return ((low + high) / 2).to(x.dtype)


def ioc_loss(*, returns_demo: torch.Tensor, log_q_demo: torch.Tensor, returns_sample: torch.Tensor,
             log_q_sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(surrogate, nll, w): a loss whose gradient is GCL's, the demonstrations' NLL and the weights.

    N demonstrations and N samples, each with its return R [N] and its density
    log q [N] (the demonstrations': under the current policy). w [2N]
    (demonstrations first) are the self-normalised weights of the mixed set,
    detached; nll = -(1/N) sum_demo R + log Z, per trajectory, detached.
    The surrogate -(1/N) sum_demo R + sum_j w_j R_j has the module
    docstring's gradient (its value means nothing: use nll).
    """
    returns = torch.cat([returns_demo, returns_sample])
    x = (returns - torch.cat([log_q_demo, log_q_sample])).detach().double()
    log_z = log_partition(x)
    d = torch.sigmoid(x - log_z)
    weights = (d / d.sum()).to(returns.dtype)
    surrogate = -returns_demo.mean() + (weights * returns).sum()
    return surrogate, (-returns_demo.mean() + log_z.to(returns.dtype)).detach(), weights


def effective_sample_fraction(weights: torch.Tensor) -> torch.Tensor:
    """Kish's effective sample size of normalised weights over their count: 1 / (M sum w^2), in (0, 1]."""
    return 1.0 / (weights.numel() * weights.pow(2).sum())
