"""K Q-heads with randomised priors, batched as one ensemble network."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.algorithms.boot_dqn import losses
from rlfrontier.algorithms.boot_dqn.connectors import BOOTSTRAP_HEAD

# fwd_out keys, defined once beside their owner.
Q_VALUES = "q_values"  # [K, B, A]
# Optional training-batch column: the scaled prior prior_scale * p_k(obs), [B, K, A], when the
# learner already has it (BootDQNTorchLearner's PriorMemo); absent, the module computes it.
PRIOR_Q = "prior_q"

DEFAULT_MODEL_CONFIG = {"num_heads": 10, "hidden_sizes": [64, 64], "prior_scale": 3.0, "epsilon": 0.0}


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul.

    Each head is initialised like torch.nn.Linear (uniform in +-1/sqrt(fan_in)).
    """

    def __init__(self, num_heads: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num_heads, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_heads, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in] (shared by the heads) or [K, B, in]; returns [K, B, out]."""
        if x.dim() == 2:  # a broadcast view, no copy; baddbmm beat einsum here
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    def __init__(self, num_heads: int, in_dim: int, hidden_sizes: list[int], out_dim: int):
        super().__init__()
        sizes = [in_dim, *hidden_sizes, out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(num_heads, a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def epsilon_at(schedule: float | list, t: int | None) -> float:
    """A fixed epsilon, or piecewise-linear [[t0, eps0], [t1, eps1], ...] in env steps."""
    if not isinstance(schedule, (list, tuple)):
        return float(schedule)
    ts, values = zip(*schedule)
    return float(np.interp(t if t is not None else ts[-1], ts, values))


class BootDQNTorchRLModule(TorchRLModule, QNetAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Q_k(s, .) = f_k(s, .) + prior_scale * p_k(s, .) for k < K heads.

    f is trained; p is a fixed random network of the same shape (no gradient,
    but part of the state, so EnvRunners and checkpoints hold the same prior).
    Exploring, each row acts greedily with its episode's head (the batch
    column BOOTSTRAP_HEAD, set once per episode by the env-to-module connector;
    a random head when absent), with optional epsilon-dithering on top (off by
    default; one head with epsilon is plain DQN, the baseline). In inference the
    heads vote (losses.vote).

    model_config keys: num_heads (int), hidden_sizes (list[int]), prior_scale
    (float >= 0), epsilon (float, or [[env_step, value], ...]).
    """

    def setup(self):
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"boot_dqn needs a Discrete action space, got {self.action_space}")
        cfg = {**DEFAULT_MODEL_CONFIG, **(self.model_config or {})}
        obs_dim = int(math.prod(self.observation_space.shape))
        self.num_heads = int(cfg["num_heads"])
        self.num_actions = int(self.action_space.n)
        hidden = list(cfg["hidden_sizes"])
        self.prior_scale = float(cfg["prior_scale"])
        self.epsilon = cfg["epsilon"]
        self.qf = EnsembleMLP(self.num_heads, obs_dim, hidden, self.num_actions)
        self.prior = EnsembleMLP(self.num_heads, obs_dim, hidden, self.num_actions).requires_grad_(False)

    def _flat_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(obs.shape[0], -1).float()

    def _with_prior(self, net: nn.Module, obs: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        q = net(obs)
        if prior is None:
            prior = self.prior_q(obs)
        # Outside no_grad: the gradient flows into net.
        return q if prior is None else q + prior

    @torch.no_grad()
    def prior_q(self, obs: torch.Tensor) -> torch.Tensor | None:
        """The fixed part of every head, prior_scale * p_k(obs), [K, B, A]; None without a prior."""
        if not self.prior_scale:
            return None
        return self.prior_scale * self.prior(self._flat_obs(obs))

    def q_all(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values of every head, [K, B, A]."""
        return self._with_prior(self.qf, self._flat_obs(obs))

    # Acting -----------------------------------------------------------------
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: losses.vote(self.q_all(batch[Columns.OBS]))}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        q = self.q_all(batch[Columns.OBS])
        rows = torch.arange(q.shape[1], device=q.device)
        heads = batch.get(BOOTSTRAP_HEAD)
        if heads is None:
            heads = torch.randint(self.num_heads, (q.shape[1],), device=q.device)
        actions = q[heads.long().reshape(-1), rows].argmax(dim=-1)
        epsilon = epsilon_at(self.epsilon, kwargs.get("t"))
        if epsilon > 0:
            dither = torch.rand(actions.shape, device=q.device) < epsilon
            actions = torch.where(dither, torch.randint_like(actions, self.num_actions), actions)
        return {Columns.ACTIONS: actions}

    # Training ---------------------------------------------------------------
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        prior = batch.get(PRIOR_Q)
        if prior is not None:
            prior = prior.transpose(0, 1)  # [B, K, A] -> [K, B, A]
        return {Q_VALUES: self._with_prior(self.qf, self._flat_obs(batch[Columns.OBS]), prior)}

    # QNetAPI ------------------------------------------------------------------
    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_VALUES: self.q_all(batch[Columns.OBS])}

    # TargetNetworkAPI -----------------------------------------------------------
    def make_target_networks(self) -> None:
        self.target_qf = make_target_network(self.qf)

    def get_target_network_pairs(self):
        return [(self.qf, self.target_qf)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Target Q-values of every head at batch[OBS] (pass next observations), [K, B, A]."""
        return {Q_VALUES: self._with_prior(self.target_qf, self._flat_obs(batch[Columns.OBS]))}

    @torch.no_grad()
    def online_and_target_q(
        self, obs: torch.Tensor, prior: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(online, target) Q-values of every head at `obs`, [K, B, A] each, no gradient.

        What a double-Q target needs at the next observations, with the prior
        (shared by both) computed once, or taken from `prior` ([K, B, A]) when given.
        """
        x = self._flat_obs(obs)
        online, target = self.qf(x), self.target_qf(x)
        if prior is None:
            prior = self.prior_q(x)
        if prior is not None:
            online, target = online + prior, target + prior
        return online, target

    # InferenceOnlyAPI ---------------------------------------------------------
    def get_non_inference_attributes(self) -> list[str]:
        return ["target_qf"]
