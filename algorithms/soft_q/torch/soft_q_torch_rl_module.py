"""Q-networks of soft Q-learning and the Boltzmann policy they define."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.torch_utils import TrainModeOnce

# fwd_out keys, defined once beside their owner.
Q_VALUES = "q_values"
Q_VALUES_TWIN = "q_values_twin"
LOG_ALPHA = "log_alpha"

DEFAULT_MODEL_CONFIG = {"hidden_sizes": [128, 128], "twin_q": False, "initial_alpha": 0.05}


def _mlp(in_dim: int, hidden_sizes: list[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_dim, size), nn.ReLU()]
        in_dim = size
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class SoftQTorchRLModule(TrainModeOnce, TorchRLModule, QNetAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Q(s, .) network(s) whose action distribution inputs are Q / alpha.

    The EnvRunner's default action connector then samples the Boltzmann policy
    pi(a|s) = softmax(Q(s, .) / alpha) when exploring and takes argmax_a Q in
    inference. A learnt log_alpha is a parameter of the module, so weight syncs
    carry it to the EnvRunners; a fixed one is a non-persistent buffer set from
    the config on every copy of the module.

    model_config keys: hidden_sizes (list[int]), twin_q (bool, a second Q head
    for clipped double-Q targets; learner only), initial_alpha (float > 0),
    learn_alpha (bool).
    """

    def setup(self):
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(
                f"soft_q needs a Discrete action space, got {self.action_space}"
            )
        cfg = {**DEFAULT_MODEL_CONFIG, **(self.model_config or {})}
        obs_dim = int(math.prod(self.observation_space.shape))
        num_actions = int(self.action_space.n)
        hidden = list(cfg["hidden_sizes"])
        self.qf = _mlp(obs_dim, hidden, num_actions)
        self.twin_q = bool(cfg["twin_q"])
        if self.twin_q and not self.inference_only:
            self.qf_twin = _mlp(obs_dim, hidden, num_actions)
        log_alpha = torch.tensor(math.log(float(cfg["initial_alpha"])))
        if cfg.get("learn_alpha", False):
            self.log_alpha = nn.Parameter(log_alpha)
        else:
            # A fixed temperature is a setting, not state: left out of the state
            # dict, a restored checkpoint (PBT's exploit, fine-tuning) cannot
            # overwrite the alpha this config asks for.
            self.register_buffer("log_alpha", log_alpha, persistent=False)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def _flat_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(obs.shape[0], -1).float()

    # Acting -----------------------------------------------------------------
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        q = self.qf(self._flat_obs(batch[Columns.OBS]))
        return {Columns.ACTION_DIST_INPUTS: q / self.alpha.detach()}

    # Training ---------------------------------------------------------------
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = self._flat_obs(batch[Columns.OBS])
        out = {Q_VALUES: self.qf(obs), LOG_ALPHA: self.log_alpha}
        if self.twin_q:
            out[Q_VALUES_TWIN] = self.qf_twin(obs)
        return out

    # QNetAPI ------------------------------------------------------------------
    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_VALUES: self.qf(self._flat_obs(batch[Columns.OBS]))}

    # TargetNetworkAPI -----------------------------------------------------------
    def make_target_networks(self) -> None:
        self.target_qf = make_target_network(self.qf)
        if self.twin_q:
            self.target_qf_twin = make_target_network(self.qf_twin)

    def get_target_network_pairs(self):
        pairs = [(self.qf, self.target_qf)]
        if self.twin_q:
            pairs.append((self.qf_twin, self.target_qf_twin))
        return pairs

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Target Q-values at batch[OBS] (pass next observations), [B, A].

        With twin Q this is the element-wise minimum of both target heads
        (clipped double-Q, Fujimoto et al. 2018).
        """
        obs = self._flat_obs(batch[Columns.OBS])
        q = self.target_qf(obs)
        if self.twin_q:
            q = torch.minimum(q, self.target_qf_twin(obs))
        return {Q_VALUES: q}

    # InferenceOnlyAPI ---------------------------------------------------------
    def get_non_inference_attributes(self) -> list[str]:
        return ["qf_twin", "target_qf", "target_qf_twin"] if self.twin_q else ["target_qf"]
