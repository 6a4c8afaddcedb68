"""PEARL's networks: the context encoder q(z|c), a tanh-Gaussian policy pi(a|s, z), twin Q(s, a, z), V(s, z).

EnvRunners build the module inference_only: the encoder and the policy, which
acts with the latent(s) set through `set_latent` (the driver samples them from
the prior or from q(z|c) of each task's context so far). The learner's copy
also holds Q1, Q2, V and, once the learner has built it, the target V.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.algorithms.pearl import losses
from rlfrontier.torch_utils import mlp

# model_config keys and defaults (oyster uses three layers of 300 for the actor-critic, 200 for the encoder).
HIDDEN_SIZES = "hidden_sizes"  # policy, Q and V
ENCODER_HIDDEN_SIZES = "encoder_hidden_sizes"
LATENT_DIM = "latent_dim"
USE_NEXT_OBS_IN_CONTEXT = "use_next_obs_in_context"  # for tasks that differ in dynamics, not only in reward
DEFAULT_MODEL_CONFIG = {HIDDEN_SIZES: [128, 128], ENCODER_HIDDEN_SIZES: [128, 128], LATENT_DIM: 5,
                        USE_NEXT_OBS_IN_CONTEXT: False}

# forward_target's input (beside Columns.OBS) and output keys.
LATENTS = "latents"  # z per row, [N, latent_dim]
TARGET_VALUES = "target_values"  # [N]

# SAC's (and oyster's) bounds on the policy's log standard deviation.
LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0


def _flat_box_dim(space: gym.Space, what: str) -> int:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"pearl needs a flat (1-D) Box {what} space, got {space}")
    return int(space.shape[0])


class PEARLTorchRLModule(TorchRLModule, TargetNetworkAPI, InferenceOnlyAPI):
    """The encoder and actor-critic of PEARL for flat Box observations and Box actions.

    A context transition is concat(obs, action, reward[, next_obs]),
    `context_dim` wide, with the action in the policy's [-1, 1] units (what
    the episodes store). The encoder maps each to a Gaussian factor (mean,
    softplus variance); `posterior` multiplies a task's factors
    (losses.product_of_gaussians).

    Actions are tanh(u) in [-1, 1]: RLlib's EnvRunner rescales them to the
    env's bounds (NormalizeAndClipActions with the default
    normalize_actions=True) and stores the module's own action in the episode.
    The forward passes return Columns.ACTIONS themselves, so RLlib's GetActions
    connector passes them through and never builds an action distribution.

    model_config keys: hidden_sizes (list[int]), encoder_hidden_sizes
    (list[int]), latent_dim (int), use_next_obs_in_context (bool).
    """

    def setup(self):
        cfg = {**DEFAULT_MODEL_CONFIG, **(self.model_config or {})}
        self.obs_dim = _flat_box_dim(self.observation_space, "observation")
        self.act_dim = _flat_box_dim(self.action_space, "action")
        self.latent_dim = int(cfg[LATENT_DIM])
        self.use_next_obs_in_context = bool(cfg[USE_NEXT_OBS_IN_CONTEXT])
        hidden = [int(h) for h in cfg[HIDDEN_SIZES]]
        self.encoder = mlp([self.context_dim, *[int(h) for h in cfg[ENCODER_HIDDEN_SIZES]], 2 * self.latent_dim])
        self.pi = mlp([self.obs_dim + self.latent_dim, *hidden, 2 * self.act_dim])
        if not self.inference_only:
            q_in = self.obs_dim + self.act_dim + self.latent_dim
            self.qf1 = mlp([q_in, *hidden, 1])
            self.qf2 = mlp([q_in, *hidden, 1])
            self.vf = mlp([self.obs_dim + self.latent_dim, *hidden, 1])
        # The acting z is this EnvRunner's, set by the driver, not a weight: kept out of the state dict so that
        # weight syncs from the learner (whose latent is the prior's zeros) leave it alone.
        self.register_buffer("latent", torch.zeros(1, self.latent_dim), persistent=False)

    @property
    def context_dim(self) -> int:
        """Width of a context transition: obs, action, reward and, with use_next_obs_in_context, next obs."""
        return self.obs_dim * (2 if self.use_next_obs_in_context else 1) + self.act_dim + 1

    # Task inference -------------------------------------------------------------
    def posterior(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|c): mean and variance, each [T, latent_dim], of each task's context [T, C, context_dim]."""
        mu, raw_var = self.encoder(context).chunk(2, dim=-1)
        return losses.product_of_gaussians(mu, F.softplus(raw_var))

    def sample_latent(self, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """z = mu + sqrt(var) * eps, eps ~ N(0, I) (reparameterised: gradients reach mu and var), like mu."""
        return mu + var.sqrt() * torch.randn_like(mu)

    def set_latent(self, z: np.ndarray | torch.Tensor) -> None:
        """Sets the z the policy acts with: [latent_dim] or [1, latent_dim] for every batch row, or
        [K, latent_dim], one per row of a K-row batch (an EnvRunner's rows are its sub-envs, in order)."""
        z = torch.as_tensor(z, dtype=self.latent.dtype, device=self.latent.device)
        if z.dim() == 1:
            z = z[None]
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"set_latent needs shape ({self.latent_dim},) or (K, {self.latent_dim}), "
                             f"got {tuple(z.shape)}")
        self.latent = z.clone()

    # Networks ---------------------------------------------------------------------
    def policy_sample(self, obs: torch.Tensor, z: torch.Tensor, deterministic: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """a = tanh(u), u ~ N(mean, std^2) reparameterised (u = mean when deterministic), from obs and z [N, .].

        Returns:
            action [N, act_dim] in [-1, 1], log pi(a|s, z) [N] (with the tanh
            correction), mean and clamped log_std of u [N, act_dim], u [N, act_dim].
        """
        mean, log_std = self.pi(torch.cat([obs, z], dim=-1)).chunk(2, dim=-1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        pre_tanh = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        log_prob = losses.tanh_gaussian_log_prob(pre_tanh=pre_tanh, mean=mean, log_std=log_std)
        return torch.tanh(pre_tanh), log_prob, mean, log_std, pre_tanh

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor, z: torch.Tensor, *, detach_params: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Q1(s, a, z) and Q2(s, a, z), each [N].

        With detach_params the networks run on detached copies of their
        parameters: gradients reach the inputs (the policy's actions) but not Q.
        """
        x = torch.cat([obs, actions, z], dim=-1)
        if not detach_params:
            return self.qf1(x).squeeze(-1), self.qf2(x).squeeze(-1)
        return tuple(
            torch.func.functional_call(net, {n: p.detach() for n, p in net.named_parameters()}, (x,)).squeeze(-1)
            for net in (self.qf1, self.qf2)
        )

    def value(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """V(s, z), [N]."""
        return self.vf(torch.cat([obs, z], dim=-1)).squeeze(-1)

    def target_value(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The target network's V(s, z), [N] (Polyak-averaged V; needs make_target_networks)."""
        return self.target_vf(torch.cat([obs, z], dim=-1)).squeeze(-1)

    # RLlib forward passes ------------------------------------------------------
    def _act(self, batch: dict[str, Any], deterministic: bool) -> tuple[torch.Tensor, torch.Tensor]:
        obs = batch[Columns.OBS].float()
        rows, latents = obs.shape[0], self.latent.shape[0]
        if latents not in (1, rows):
            raise ValueError(f"{latents} latents set (set_latent) for a batch of {rows} rows")
        with torch.no_grad():
            action, log_prob, *_ = self.policy_sample(obs, self.latent.expand(rows, -1), deterministic)
        return action, log_prob

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        action, log_prob = self._act(batch, deterministic=False)
        return {Columns.ACTIONS: action, Columns.ACTION_LOGP: log_prob}

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        action, _ = self._act(batch, deterministic=True)
        return {Columns.ACTIONS: action}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # losses.pearl_losses runs every network itself: the policy and Q on several inputs each.
        return {}

    # TargetNetworkAPI ---------------------------------------------------------------
    def make_target_networks(self) -> None:
        """Builds the target V. The learner calls this after registering its optimiser, so the optimiser never holds it."""
        self.target_vf = make_target_network(self.vf)

    def get_target_network_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(self.vf, self.target_vf)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        """target_value of batch[Columns.OBS] and batch[LATENTS], under TARGET_VALUES."""
        return {TARGET_VALUES: self.target_value(batch[Columns.OBS], batch[LATENTS])}

    # InferenceOnlyAPI ---------------------------------------------------------------
    def get_non_inference_attributes(self) -> list[str]:
        return ["qf1", "qf2", "vf", "target_vf"]
