"""PEARL's equations (Rakelly et al. 2019, "Efficient Off-Policy Meta-RL via Probabilistic Context Variables").

The task belief q(z|c) is a product of one Gaussian factor per context
transition (section 4.1, eq. 3's permutation-invariant encoder); the
actor-critic is SAC with a state-value network (Haarnoja et al. 2018, v1),
every network conditioned on z (section 4.2, algorithm 1). The encoder learns
from the critic's Bellman error - the ELBO's reconstruction term - plus the KL
of q(z|c) to the prior N(0, I); the actor and V see z detached.

Shapes: T tasks in the meta-batch, C context transitions per task, B RL rows
per task, N = T * B rows flattened task-major, d = latent_dim. Losses are
minimised. Only torch is imported, so the driver can import the column name.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

import torch
import torch.nn.functional as F

# Batch column beside RLlib's Columns: the context transitions q(z|c) conditions on, [T, C, context_dim].
CONTEXT = "context"

# Metric keys of pearl_losses.
QF_LOSS = "qf_loss"  # both Q heads' squared Bellman errors, summed
VF_LOSS = "vf_loss"
POLICY_LOSS = "policy_loss"  # with its regularisers, as oyster reports it
KL_DIVERGENCE = "kl_divergence"  # KL(q(z|c) || N(0, I)), mean over tasks
Q_MEAN = "q_mean"  # Q1 at the batch's actions
V_MEAN = "v_mean"
LOG_PI_MEAN = "log_pi_mean"
Z_MEAN_ABS = "z_mean_abs"  # mean |posterior mean|
Z_VAR_MEAN = "z_var_mean"  # mean posterior variance

# Factor variances below this are clamped: one near-certain factor would otherwise make the product's 1/var blow up.
MIN_VAR = 1e-7


class PEARLNetworks(Protocol):
    """What pearl_losses calls (PEARLTorchRLModule); rows are [N, .], latents [T, d] or [N, d]."""

    def posterior(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def sample_latent(self, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor: ...

    def policy_sample(self, obs: torch.Tensor, z: torch.Tensor, deterministic: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor, z: torch.Tensor, *,
                 detach_params: bool = False) -> tuple[torch.Tensor, torch.Tensor]: ...

    def value(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...

    def target_value(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


def product_of_gaussians(mu: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised product of C diagonal Gaussian factors per task (Rakelly et al. 2019, eq. 3).

    var_post = 1 / sum_c (1 / var_c), mu_post = var_post * sum_c (mu_c / var_c);
    factor variances are clamped at MIN_VAR as in oyster. With no factors
    (C = 0) the posterior is the prior N(0, I): an empty context tells nothing.

    Args:
        mu: factor means, [T, C, d].
        var: factor variances (positive), [T, C, d].

    Returns:
        The posterior's mean and variance, each [T, d].
    """
    if mu.shape[-2] == 0:
        shape = mu.shape[:-2] + mu.shape[-1:]
        return mu.new_zeros(shape), mu.new_ones(shape)
    precision = 1.0 / torch.clamp(var, min=MIN_VAR)
    var_post = 1.0 / precision.sum(dim=-2)
    return var_post * (mu * precision).sum(dim=-2), var_post


def kl_to_standard_normal(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag var) || N(0, I)) = 0.5 * sum_d (var + mu^2 - 1 - log var), [T, d] -> [T]."""
    return 0.5 * (var + mu.square() - 1.0 - torch.log(var)).sum(dim=-1)


def tanh_gaussian_log_prob(*, pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over action dimensions (SAC, appendix C).

    log pi(a) = log N(u) - sum_i log(1 - tanh(u_i)^2), the Jacobian term in
    its stable form 2 (log 2 - u - softplus(-2u)) (torch's TanhTransform's), not
    oyster's log(1 - a^2 + 1e-6), which floors each term at log 1e-6 once tanh
    saturates in float32.

    Args:
        pre_tanh: u, [N, A].
        mean: the Gaussian's mean, [N, A].
        log_std: its log standard deviation, [N, A].

    Returns:
        Log-densities of the squashed actions, [N].
    """
    gaussian = -0.5 * ((pre_tanh - mean) * torch.exp(-log_std)).square() - log_std - 0.5 * math.log(2 * math.pi)
    log_det_jacobian = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
    return (gaussian - log_det_jacobian).sum(dim=-1)


def critic_target(*, rewards: torch.Tensor, terminateds: torch.Tensor, next_value: torch.Tensor,
                  reward_scale: float, gamma: float) -> torch.Tensor:
    """Q's regression target reward_scale * r + (1 - terminated) * gamma * V_target(s', z), all [N].

    SAC with the temperature fixed at 1, as PEARL uses it: reward_scale is the
    inverse temperature (Haarnoja et al. 2018, section 5.2).
    """
    return reward_scale * rewards + (1.0 - terminateds) * gamma * next_value


def policy_regularizer(*, mean: torch.Tensor, log_std: torch.Tensor, pre_tanh: torch.Tensor, mean_weight: float,
                       std_weight: float, pre_activation_weight: float) -> torch.Tensor:
    """oyster's penalty on the pre-tanh Gaussian, [N, A] -> []: it keeps the mean and log_std from drifting far.

    mean_weight * mean(mean^2) + std_weight * mean(log_std^2)
    + pre_activation_weight * mean over rows of sum_i u_i^2.
    """
    return (mean_weight * mean.square().mean() + std_weight * log_std.square().mean()
            + pre_activation_weight * pre_tanh.square().sum(dim=-1).mean())


class PEARLLossTerms(NamedTuple):
    """pearl_loss_terms' result: the four terms (with their graphs) and detached metrics."""

    qf_loss: torch.Tensor
    kl_loss: torch.Tensor
    vf_loss: torch.Tensor
    policy_loss: torch.Tensor
    metrics: dict[str, torch.Tensor]

    @property
    def total(self) -> torch.Tensor:
        return self.qf_loss + self.kl_loss + self.vf_loss + self.policy_loss


def pearl_loss_terms(
    *,
    module: PEARLNetworks,
    context: torch.Tensor,
    obs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    next_obs: torch.Tensor,
    terminateds: torch.Tensor,
    reward_scale: float,
    kl_lambda: float,
    gamma: float,
    policy_mean_reg_weight: float = 1e-3,
    policy_std_reg_weight: float = 1e-3,
    policy_pre_activation_weight: float = 0.0,
) -> PEARLLossTerms:
    """One PEARL update's loss terms (algorithm 1; oyster's PEARLSoftActorCritic._take_step).

    oyster steps five optimisers on four losses; RLlib backprops one total
    and steps the module's optimiser(s) once, so each term reaches only the
    parameters its oyster optimiser owns:

    - qf_loss = mean((Q1(s, a, z) - y)^2) + mean((Q2(s, a, z) - y)^2),
      y = critic_target(...) without gradient; z is sampled from q(z|c) by
      reparameterisation (one per task, repeated over its B rows) and not
      detached: Q1, Q2 and the encoder learn from it.
    - kl_loss = kl_lambda * sum over tasks of KL(q(z|c) || N(0, I)): the sum,
      as oyster's compute_kl_div and algorithm 1 (sum_i L_KL^i), beside a
      critic loss that is a mean over all N rows. Encoder only.
    - vf_loss = mean((V(s, z') - (min_j Q_j(s, a~, z') - log pi(a~|s, z')))^2),
      the target without gradient, z' = z detached. V only.
    - policy_loss = mean(log pi(a~|s, z') - min_j Q_j(s, a~, z')) + the
      regularisers, a~ ~ pi(.|s, z') reparameterised, Q evaluated under detached
      parameters: dQ/da~ reaches the policy, no gradient reaches Q. Policy only.

    Args:
        module: the networks (PEARLTorchRLModule, its target V built).
        context: context transitions, [T, C, context_dim].
        obs: [T, B, obs_dim]. actions: [T, B, act_dim], in the policy's [-1, 1] units.
        rewards: [T, B]. next_obs: [T, B, obs_dim]. terminateds: [T, B], bool or float.
        reward_scale: multiplies rewards in the critic target (the inverse temperature).
        kl_lambda: weight of the KL term (beta in the paper).
        gamma: discount.
        policy_mean_reg_weight, policy_std_reg_weight, policy_pre_activation_weight: see policy_regularizer.

    Returns:
        The terms and their metrics (this module's metric keys).
    """
    num_tasks, batch_size = obs.shape[:2]
    rows = num_tasks * batch_size
    obs, actions, next_obs = (x.reshape(rows, -1) for x in (obs, actions, next_obs))
    rewards = rewards.reshape(rows)
    terminateds = terminateds.reshape(rows).to(rewards.dtype)

    mu, var = module.posterior(context)
    z = module.sample_latent(mu, var).repeat_interleave(batch_size, dim=0)
    z_detached = z.detach()

    q1, q2 = module.q_values(obs, actions, z)
    with torch.no_grad():
        q_target = critic_target(rewards=rewards, terminateds=terminateds,
                                 next_value=module.target_value(next_obs, z),
                                 reward_scale=reward_scale, gamma=gamma)
    qf_loss = F.mse_loss(q1, q_target) + F.mse_loss(q2, q_target)
    kl = kl_to_standard_normal(mu, var)
    kl_loss = kl_lambda * kl.sum()

    new_actions, log_pi, mean, log_std, pre_tanh = module.policy_sample(obs, z_detached)
    q_new = torch.minimum(*module.q_values(obs, new_actions, z_detached, detach_params=True))
    v = module.value(obs, z_detached)
    vf_loss = F.mse_loss(v, (q_new - log_pi).detach())
    policy_loss = (log_pi - q_new).mean() + policy_regularizer(
        mean=mean, log_std=log_std, pre_tanh=pre_tanh, mean_weight=policy_mean_reg_weight,
        std_weight=policy_std_reg_weight, pre_activation_weight=policy_pre_activation_weight)

    metrics = {
        QF_LOSS: qf_loss, VF_LOSS: vf_loss, POLICY_LOSS: policy_loss, KL_DIVERGENCE: kl.mean(),
        Q_MEAN: q1.mean(), V_MEAN: v.mean(), LOG_PI_MEAN: log_pi.mean(),
        Z_MEAN_ABS: mu.abs().mean(), Z_VAR_MEAN: var.mean(),
    }
    return PEARLLossTerms(qf_loss, kl_loss, vf_loss, policy_loss, {k: m.detach() for k, m in metrics.items()})


def pearl_losses(**kwargs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """pearl_loss_terms (same keywords) as RLlib's learner wants it: the total loss, [], and the metrics."""
    terms = pearl_loss_terms(**kwargs)
    return terms.total, terms.metrics
