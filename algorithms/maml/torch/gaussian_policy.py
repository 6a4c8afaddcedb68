"""MAML's policy: a Gaussian MLP whose forward pass can take explicit parameters (torch.func.functional_call).

The learner evaluates the same network under many parameter sets (theta and
each task's adapted theta'_i) without copying modules: `log_prob(obs,
actions, params)` runs the network `pi` with `params` in place of its own
(a dict keyed as `pi.named_parameters()`), and gradients reach theta through
params that are functions of theta. The EnvRunners act with the module's own
weights, the meta-policy's or a task's adapted ones set through `set_state`
(`state_with`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.torch_utils import mlp

# model_config keys and defaults: Finn et al. 2017's policy for 2-D navigation (two hidden layers of 100 ReLU).
HIDDEN_SIZES = "hidden_sizes"
INITIAL_LOG_STD = "initial_log_std"
DEFAULT_MODEL_CONFIG = {HIDDEN_SIZES: [100, 100], INITIAL_LOG_STD: 0.0}
POLICY_PREFIX = "pi."  # state-dict keys of the policy network's parameters


class GaussianMLP(nn.Module):
    """obs [B, obs_dim] -> [mean, log_std] [B, 2 * act_dim]; log_std is state-independent (a parameter)."""

    def __init__(self, *, obs_dim: int, act_dim: int, hidden_sizes: list[int], initial_log_std: float):
        super().__init__()
        self.mean = mlp([obs_dim, *hidden_sizes, act_dim])
        self.log_std = nn.Parameter(torch.full((act_dim,), float(initial_log_std)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean = self.mean(obs)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)


class GaussianPolicyModule(TorchRLModule):
    """A diagonal-Gaussian policy for Box actions (RLlib's TorchDiagGaussian takes its [mean, log_std]).

    With RLlib's default normalize_actions the actions are in [-1, 1] units
    that the EnvRunner rescales to the env's bounds (PointNav: x 0.1), so
    log_std = 0 starts the policy with moves of the env's full step size.

    model_config keys: hidden_sizes (list[int]), initial_log_std (float).
    """

    def setup(self):
        if not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"maml's Gaussian policy needs a Box action space, got {self.action_space}")
        cfg = {**DEFAULT_MODEL_CONFIG, **{k: v for k, v in (self.model_config or {}).items()
                                          if k in DEFAULT_MODEL_CONFIG}}
        self.obs_dim = int(math.prod(self.observation_space.shape))
        self.act_dim = int(math.prod(self.action_space.shape))
        self.pi = GaussianMLP(obs_dim=self.obs_dim, act_dim=self.act_dim,
                              hidden_sizes=[int(h) for h in cfg[HIDDEN_SIZES]],
                              initial_log_std=float(cfg[INITIAL_LOG_STD]))

    def policy_params(self) -> dict[str, torch.Tensor]:
        """theta: the policy network's parameters by name (the keys `params` take)."""
        return dict(self.pi.named_parameters())

    def dist_inputs(self, obs: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """[mean, log_std], [B, 2 * act_dim], under the module's own parameters or `params`."""
        flat = obs.reshape(obs.shape[0], -1)
        if params is None:
            return self.pi(flat)
        return torch.func.functional_call(self.pi, dict(params), (flat,))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor,
                 params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """log pi(a|s) summed over action dimensions, [B] (what TorchDiagGaussian.logp gives the EnvRunners)."""
        mean, log_std = self.dist_inputs(obs, params).chunk(2, dim=-1)
        dist = torch.distributions.Normal(mean, log_std.exp())
        return dist.log_prob(actions.reshape(mean.shape)).sum(dim=-1)

    def state_with(self, params: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The module's state (as `get_state` gives it) with the policy's parameters replaced by `params`."""
        state = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        for name, value in params.items():
            key = POLICY_PREFIX + name
            if key not in state:
                raise KeyError(f"{name!r} is not a parameter of the policy network")
            state[key] = value.detach().cpu().numpy().astype(state[key].dtype)
        return state

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.dist_inputs(batch[Columns.OBS])}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # The learner evaluates the policy under theta and every task's theta' itself (log_prob with params).
        return {}
