"""The discriminators of GAIL and AIRL: learner-only modules beside the policy (rlfrontier.modules).

One base, `Discriminator`, owns the training pass and the loss (the logistic
loss of losses.discriminator_loss on paired rows: a policy transition and an
expert transition per row) and its own Adam. GAIL and AIRL differ only in
their logits and in the reward they hand the policy:

- GAIL (Ho & Ermon 2016): logit = net(s, a); reward -log(1 - D) = softplus(logit).
- AIRL (Fu et al. 2018): logit = f(s, a, s') - log pi(a|s) with
  f = g + gamma * (1 - done) * h(s') - h(s); reward f - log pi (the logit).
  g is state-only, g(s), by default: the paper's disentangled reward, the one
  that transfers to new dynamics (section 5); `state_only: False` gives g(s, a).

Discrete actions enter the networks one-hot, Box actions as their flat values.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import gymnasium as gym
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import SelfSupervisedLossAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.algorithms.adversarial import losses
from rlfrontier.modules import OwnOptimizersAPI
from rlfrontier.torch_utils import mlp, register_fused_adam

MODULE_ID = "discriminator"

# Batch columns of the discriminator's update, one row = one policy and one expert transition.
# The policy's: RLlib's Columns.OBS, ACTIONS, NEXT_OBS, TERMINATEDS and ACTION_LOGP (at sampling time).
EXPERT_OBS = "expert_obs"
EXPERT_ACTIONS = "expert_actions"
EXPERT_NEXT_OBS = "expert_new_obs"
EXPERT_TERMINATEDS = "expert_terminateds"
# log pi(a_E|s_E) under the policy that sampled this iteration: written by the learner (AIRL only).
EXPERT_ACTION_LOGP = "expert_action_logp"

# fwd_out keys.
LOGITS_POLICY = "logits_policy"
LOGITS_EXPERT = "logits_expert"

# Metric keys (under learners/discriminator/).
DISC_LOSS = "disc_loss"
DISC_ACCURACY_EXPERT = "disc_accuracy_expert"
DISC_ACCURACY_POLICY = "disc_accuracy_policy"

# model_config keys and defaults (AdversarialConfig's disc_* fields and gamma set them).
HIDDEN_SIZES = "hidden_sizes"
LR = "lr"
GAMMA = "gamma"
STATE_ONLY = "state_only"
ENTROPY_WEIGHT = "entropy_weight"
NORMALIZE_OBS = "normalize_obs"
# The run's normalize_actions: recorded for a run that reuses the learned reward (learned_reward), not a setting.
NORMALIZE_ACTIONS = "normalize_actions"
DEFAULTS = {HIDDEN_SIZES: [32, 32], LR: 1e-3, GAMMA: 0.99, STATE_ONLY: True, ENTROPY_WEIGHT: None, NORMALIZE_OBS: True}


class RunningNorm(nn.Module):
    """Standardises observations by the running mean and variance of all it was trained on.

    The statistics are buffers (part of the module's state, hence of the
    weights the Algorithm fetches and of checkpoints), updated from every
    training batch, expert and policy rows alike (Chan et al.'s parallel
    update); standardised values are clipped to +-`clip`. Why: CartPole's
    pole angle, which tells the expert apart, spans a few hundredths of a
    radian in the demonstrations against metres and metres per second in the
    cart's columns.
    """

    def __init__(self, size: int, *, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros(()))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Takes a batch [B, size] into the statistics; with several learners (torch.distributed), every
        learner's batch, so all of them keep the same statistics (DDP syncs gradients, not these)."""
        x = x.double()
        sums = torch.cat([torch.tensor([float(x.shape[0])], dtype=torch.float64, device=x.device),
                          x.sum(dim=0), x.pow(2).sum(dim=0)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
        n, size = sums[0], x.shape[1]
        if n == 0:
            return
        batch_mean = sums[1:1 + size] / n
        batch_var = (sums[1 + size:] / n - batch_mean.pow(2)).clamp(min=0.0)
        batch_mean, batch_var, n = batch_mean.float(), batch_var.float(), n.float()
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)


class Discriminator(TorchRLModule, SelfSupervisedLossAPI, OwnOptimizersAPI, abc.ABC):
    """The adversarial base: paired rows in, logits out, the logistic loss, its own Adam.

    Subclasses implement `logits_expert_is_high` and `policy_reward`, each
    taking one-step columns as tensors: obs [B, ...], actions [B] (Discrete) or
    [B, ...] (Box), next_obs [B, ...], terminateds [B], log_pi [B] (the policy's
    log-probability of the action; None where `needs_log_pi` is False).
    """

    needs_log_pi: ClassVar[bool] = False

    def setup(self):
        self.settings = {**DEFAULTS, **{k: v for k, v in (self.model_config or {}).items() if k in DEFAULTS}}
        self.obs_dim = int(math.prod(self.observation_space.shape))
        if isinstance(self.action_space, gym.spaces.Discrete):
            self.num_actions: int | None = int(self.action_space.n)
            self.action_dim = self.num_actions
        else:
            self.num_actions = None
            self.action_dim = int(math.prod(self.action_space.shape))
        self.hidden_sizes = [int(h) for h in self.settings[HIDDEN_SIZES]]
        self.obs_norm = RunningNorm(self.obs_dim) if self.settings[NORMALIZE_OBS] else None
        self.build_networks()

    @abc.abstractmethod
    def build_networks(self) -> None:
        """Makes the networks (called by setup once the input sizes are known)."""

    @abc.abstractmethod
    def logits_expert_is_high(self, *, obs, actions, next_obs, terminateds, log_pi=None) -> torch.Tensor:
        """The discriminator's logit of each transition, [B]; D = sigmoid(logit) is P(expert)."""

    @abc.abstractmethod
    def policy_reward(self, *, obs, actions, next_obs, terminateds, log_pi=None) -> torch.Tensor:
        """The reward the policy learns from, [B]."""

    # Inputs --------------------------------------------------------------------------------
    def flat_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations as the networks take them: flat, standardised (when normalize_obs), [B, obs_dim]."""
        flat = obs.reshape(obs.shape[0], -1).float()
        return flat if self.obs_norm is None else self.obs_norm(flat)

    def flat_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """One-hot for Discrete actions, the flat values for Box ones, [B, action_dim]."""
        if self.num_actions is not None:
            return nn.functional.one_hot(actions.long().reshape(-1), self.num_actions).float()
        return actions.reshape(actions.shape[0], -1).float()

    # Training ------------------------------------------------------------------------------
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        if self.obs_norm is not None:
            self.obs_norm.update(torch.cat([batch[Columns.OBS], batch[EXPERT_OBS]]).reshape(
                2 * len(batch[Columns.OBS]), -1))
        policy = self.logits_expert_is_high(
            obs=batch[Columns.OBS], actions=batch[Columns.ACTIONS], next_obs=batch[Columns.NEXT_OBS],
            terminateds=batch[Columns.TERMINATEDS], log_pi=batch.get(Columns.ACTION_LOGP))
        expert = self.logits_expert_is_high(
            obs=batch[EXPERT_OBS], actions=batch[EXPERT_ACTIONS], next_obs=batch[EXPERT_NEXT_OBS],
            terminateds=batch[EXPERT_TERMINATEDS], log_pi=batch.get(EXPERT_ACTION_LOGP))
        return {LOGITS_POLICY: policy, LOGITS_EXPERT: expert}

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not act: it is a learner-only module")

    def compute_self_supervised_loss(self, *, learner, module_id, config, batch, fwd_out, **kwargs) -> torch.Tensor:
        expert, policy = fwd_out[LOGITS_EXPERT], fwd_out[LOGITS_POLICY]
        loss = losses.discriminator_loss(logits_expert=expert, logits_policy=policy)
        learner.metrics.log_dict({
            DISC_LOSS: loss.detach(),
            DISC_ACCURACY_EXPERT: losses.accuracy(logits_expert_is_high=expert.detach(), expert=True),
            DISC_ACCURACY_POLICY: losses.accuracy(logits_expert_is_high=policy.detach(), expert=False),
        }, key=module_id, window=1)
        return loss

    def configure_optimizers(self, *, learner, module_id, config) -> None:
        register_fused_adam(learner, module_id, "discriminator", list(self.parameters()), float(self.settings[LR]))


class GAILDiscriminator(Discriminator):
    """D(s, a) = sigmoid(net(s, a)); the policy's reward -log(1 - D) (Ho & Ermon 2016)."""

    def build_networks(self) -> None:
        self.net = mlp([self.obs_dim + self.action_dim, *self.hidden_sizes, 1])

    def logits_expert_is_high(self, *, obs, actions, next_obs, terminateds, log_pi=None) -> torch.Tensor:
        return self.net(torch.cat([self.flat_obs(obs), self.flat_actions(actions)], dim=-1)).squeeze(-1)

    def policy_reward(self, *, obs, actions, next_obs, terminateds, log_pi=None) -> torch.Tensor:
        logits = self.logits_expert_is_high(obs=obs, actions=actions, next_obs=next_obs, terminateds=terminateds)
        return losses.gail_reward(logits_expert_is_high=logits)


def entropy_weight(setting: float | None, action_space: gym.Space) -> float:
    """AIRL's weight of -log pi in the policy's reward: the setting, or by default (None) 1 with Discrete
    actions (the paper's log D - log(1 - D); a categorical's entropy is bounded) and 0 with Box actions (f
    alone: a Gaussian's entropy is not, and where the env clips the action a wider Gaussian costs nothing)."""
    if setting is not None:
        return float(setting)
    return 1.0 if isinstance(action_space, gym.spaces.Discrete) else 0.0


class AIRLDiscriminator(Discriminator):
    """D = exp(f) / (exp(f) + pi(a|s)), f = g + gamma * (1 - done) * h(s') - h(s) (Fu et al. 2018).

    g(s) (state_only, the default) or g(s, a); h(s) the shaping potential; gamma the config's.
    """

    needs_log_pi = True

    def build_networks(self) -> None:
        self.state_only = bool(self.settings[STATE_ONLY])
        self.entropy_weight = entropy_weight(self.settings[ENTROPY_WEIGHT], self.action_space)
        self.gamma = float(self.settings[GAMMA])
        self.g = mlp([self.obs_dim + (0 if self.state_only else self.action_dim), *self.hidden_sizes, 1])
        self.h = mlp([self.obs_dim, *self.hidden_sizes, 1])

    def reward_g(self, *, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """g(s) (state-only) or g(s, a), [B]: the learned reward without its shaping."""
        x = self.flat_obs(obs)
        if not self.state_only:
            x = torch.cat([x, self.flat_actions(actions)], dim=-1)
        return self.g(x).squeeze(-1)

    def potential(self, obs: torch.Tensor) -> torch.Tensor:
        """h(s), [B]."""
        return self.h(self.flat_obs(obs)).squeeze(-1)

    def f(self, *, obs, actions, next_obs, terminateds) -> torch.Tensor:
        """f(s, a, s'), [B]."""
        return losses.airl_f(g=self.reward_g(obs=obs, actions=actions), h=self.potential(obs),
                             next_h=self.potential(next_obs), terminateds=terminateds, gamma=self.gamma)

    def logits_expert_is_high(self, *, obs, actions, next_obs, terminateds, log_pi=None) -> torch.Tensor:
        if log_pi is None:
            raise ValueError("AIRL's logit f - log pi needs the policy's log-probabilities of the actions")
        f = self.f(obs=obs, actions=actions, next_obs=next_obs, terminateds=terminateds)
        return losses.airl_logits(f=f, log_pi=log_pi)

    def policy_reward(self, *, obs, actions, next_obs, terminateds, log_pi=None) -> torch.Tensor:
        if log_pi is None:
            raise ValueError("AIRL's reward f - log pi needs the policy's log-probabilities of the actions")
        f = self.f(obs=obs, actions=actions, next_obs=next_obs, terminateds=terminateds)
        return losses.airl_reward(f=f, log_pi=log_pi, entropy_weight=self.entropy_weight)
