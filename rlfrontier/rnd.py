"""Random network distillation (Burda et al. 2018): the learner-only predictor module.

A fixed, randomly initialised target network f maps a normalised observation
to an embedding; a predictor f^ is trained to match it on the observations
the agent has seen. Its error ||f^(s') - f(s')||^2 is large where the agent
has rarely been: the intrinsic reward of `rlfrontier.bonuses.RNDBonus`.

The module lives beside the policy in the learners (rlfrontier.modules),
trained on the replayed minibatch's one-step next observations. It holds the
observation normaliser as buffers (mean, variance: part of its state, hence of
every checkpoint); the Algorithm owns the running statistics, from every
EnvRunner's transitions, and writes them into every learner's module before
each update, so all learners normalise alike (RNDBonus.before_update).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ray.rllib.core.rl_module.apis import SelfSupervisedLossAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier import replay
from rlfrontier.modules import OwnOptimizersAPI
from rlfrontier.torch_utils import mlp, register_fused_adam

MODULE_ID = "rnd"
# fwd_out and metric keys.
RND_ERROR = "rnd_error"
PREDICTOR_LOSS = "rnd_predictor_loss"
# model_config defaults (the bonus settings of the same names set them).
DEFAULTS = {"hidden_sizes": [64, 64], "embedding_dim": 32, "lr": 1e-3, "obs_clip": 5.0}


class RNDModule(TorchRLModule, SelfSupervisedLossAPI, OwnOptimizersAPI):
    """Target f (fixed) and predictor f^ (trained) on normalised, clipped observations.

    model_config: hidden_sizes (the target's; the predictor has one more
    hidden layer, as in the paper, so it can fit the target), embedding_dim,
    lr (the predictor's Adam step), obs_clip (normalised observations are
    clipped to +-obs_clip, as the paper's to [-5, 5]).
    """

    def setup(self):
        cfg = {**DEFAULTS, **(self.model_config or {})}
        self.obs_dim = int(math.prod(self.observation_space.shape))
        hidden, emb = list(cfg["hidden_sizes"]), int(cfg["embedding_dim"])
        self.obs_clip = float(cfg["obs_clip"])
        self.lr = float(cfg["lr"])
        self.target = mlp([self.obs_dim, *hidden, emb], nn.LeakyReLU)
        self.predictor = mlp([self.obs_dim, *hidden, hidden[-1] if hidden else emb, emb], nn.LeakyReLU)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim))
        self.register_buffer("obs_var", torch.ones(self.obs_dim))

    def normalise(self, obs: torch.Tensor) -> torch.Tensor:
        flat = obs.reshape(obs.shape[0], -1).float()
        return ((flat - self.obs_mean) / torch.sqrt(self.obs_var + 1e-8)).clamp(-self.obs_clip, self.obs_clip)

    def errors(self, obs: torch.Tensor) -> torch.Tensor:
        """||f^(x) - f(x)||^2 / embedding_dim of each observation, [B]; gradients reach the predictor only."""
        x = self.normalise(obs)
        with torch.no_grad():
            target = self.target(x)
        return (self.predictor(x) - target).pow(2).mean(dim=-1)

    def set_obs_stats(self, mean, var) -> None:
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).reshape(-1))
        self.obs_var.copy_(torch.as_tensor(var, dtype=torch.float32).reshape(-1))

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # The one-step next observation s_{t+1}: what the bonus is charged on.
        # With n-step replay NEXT_OBS is s_{t+k}; training on it would never
        # distil an episode's states 1..n-1, whose bonus would then never decay.
        obs = batch[replay.STEP_NEXT_OBS] if replay.STEP_NEXT_OBS in batch else batch[replay.NEXT_OBS]
        return {RND_ERROR: self.errors(obs)}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._forward(batch)

    def compute_self_supervised_loss(self, *, learner, module_id, config, batch, fwd_out, **kwargs) -> torch.Tensor:
        loss = fwd_out[RND_ERROR].mean()
        learner.metrics.log_value((module_id, PREDICTOR_LOSS), loss.detach(), window=1)
        return loss

    def configure_optimizers(self, *, learner, module_id, config) -> None:
        register_fused_adam(learner, module_id, "rnd_predictor", list(self.predictor.parameters()), self.lr)
