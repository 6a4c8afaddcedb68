"""GCL's learned reward r_psi: a learner-only module beside soft_q's policy (rlfrontier.modules).

It trains on paired rows, each one of the policy's trajectories beside one
demonstration, padded to a common length T with a 0/1 step mask:

    SAMPLE_OBS [B, T, ...obs], SAMPLE_ACTIONS [B, T], SAMPLE_MASK [B, T], SAMPLE_LOG_Q [B]
    DEMO_OBS, DEMO_ACTIONS, DEMO_MASK, and DEMO_LOG_Q (written by the learner: the current policy's)

and steps on GCL's IOC gradient (losses.ioc_loss) over each minibatch, plus
`l2` times the sum of its squared parameters (a Gaussian prior, as
maxent_irl's reward_l2: a state the demonstrations never show is otherwise
free to drift once the policy matches them). Its own Adam. With no hidden
layer the reward is linear in the (one-hot: tabular) observation.

r_psi(s) (state_only, the default: a reward of the state, like the tabular
worlds' and AIRL's disentangled one) or r_psi(s, a); Discrete actions enter
one-hot, observations standardised by their running statistics unless they
lie in [0, 1] already (normalize_obs "auto"; the adversarial discriminators'
RunningNorm).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.core.rl_module.apis import SelfSupervisedLossAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.algorithms.adversarial.torch.discriminator import RunningNorm
from rlfrontier.algorithms.gcl import losses
from rlfrontier.modules import OwnOptimizersAPI
from rlfrontier.torch_utils import mlp, register_fused_adam

MODULE_ID = "gcl_reward"

# Batch columns of a cost update: one row = one sampled trajectory and one demonstration.
SAMPLE_OBS = "sample_obs"
SAMPLE_ACTIONS = "sample_actions"
SAMPLE_MASK = "sample_mask"
SAMPLE_LOG_Q = "sample_log_q"  # sum_t log pi(a_t|s_t) of the policy that acted, as the EnvRunner sampled
DEMO_OBS = "demo_obs"
DEMO_ACTIONS = "demo_actions"
DEMO_MASK = "demo_mask"
DEMO_LOG_Q = "demo_log_q"  # sum_t log pi(a_t|s_t) under the current policy: written by the learner

# fwd_out keys.
RETURNS_SAMPLE = "returns_sample"
RETURNS_DEMO = "returns_demo"

# Metric keys (under learners/gcl_reward/).
IOC_LOSS = "ioc_loss"  # the demonstrations' negative log-likelihood per trajectory, Z importance-sampled
WEIGHT_ESS = "importance_ess_fraction"
DEMO_WEIGHT = "demo_weight_share"
REWARD_DEMO_MEAN = "reward_demo_step_mean"
REWARD_SAMPLE_MEAN = "reward_sample_step_mean"

# model_config keys and defaults (GCLConfig's cost_* fields set them).
HIDDEN_SIZES = "hidden_sizes"
LR = "lr"
L2 = "l2"
STATE_ONLY = "state_only"
NORMALIZE_OBS = "normalize_obs"
DEFAULTS = {HIDDEN_SIZES: [32, 32], LR: 1e-3, L2: 0.5, STATE_ONLY: True, NORMALIZE_OBS: "auto"}
NORMALIZE_CHOICES = (True, False, "auto")


def normalizes(setting: bool | str, observation_space: gym.Space) -> bool:
    """Whether the reward standardises its observations: "auto" does unless they lie in [0, 1] already.

    One-hot observations (the tabular worlds) are left alone: standardising
    them blows a rarely visited state's 1 up towards the clip (GridWorld-v0,
    seeds 0-2, 10,240 env steps: the learned reward's expected value difference
    3.7-6.0% of the optimal value with standardising, 2.8-4.6% without;
    correlation with the true reward 0.22-0.44 against 0.38-0.46); CartPole's columns differ
    in scale by orders of magnitude (CartPoleFixedHorizon-v0, seed 0: a
    greedy 500 from 26,000 env steps with standardising, at most 82 up to 60,000
    without).
    """
    if setting != "auto":
        return bool(setting)
    box = isinstance(observation_space, gym.spaces.Box)
    return not (box and np.all(observation_space.low >= 0.0) and np.all(observation_space.high <= 1.0))


class GCLReward(TorchRLModule, SelfSupervisedLossAPI, OwnOptimizersAPI):
    """r_psi(s) or r_psi(s, a) and the IOC loss on paired trajectories (module docstring)."""

    def setup(self):
        self.settings = {**DEFAULTS, **{k: v for k, v in (self.model_config or {}).items() if k in DEFAULTS}}
        self.obs_dim = int(math.prod(self.observation_space.shape))
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"gcl's reward takes Discrete actions (soft_q's), got {self.action_space}")
        self.num_actions = int(self.action_space.n)
        self.state_only = bool(self.settings[STATE_ONLY])
        self.obs_norm = RunningNorm(self.obs_dim) if normalizes(self.settings[NORMALIZE_OBS],
                                                                self.observation_space) else None
        inputs = self.obs_dim + (0 if self.state_only else self.num_actions)
        self.net = mlp([inputs, *[int(h) for h in self.settings[HIDDEN_SIZES]], 1])

    def step_reward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """r_psi of each step, shape obs.shape[:-len(obs space shape)] (actions of that shape)."""
        lead = obs.shape[:obs.dim() - len(self.observation_space.shape)]
        x = obs.reshape(-1, self.obs_dim).float()
        if self.obs_norm is not None:
            x = self.obs_norm(x)
        if not self.state_only:
            x = torch.cat([x, nn.functional.one_hot(actions.reshape(-1).long(), self.num_actions).float()], dim=-1)
        return self.net(x).reshape(lead)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        sample_mask, demo_mask = batch[SAMPLE_MASK].float(), batch[DEMO_MASK].float()
        if self.obs_norm is not None:
            steps = torch.cat([batch[SAMPLE_OBS].reshape(-1, self.obs_dim)[sample_mask.reshape(-1) > 0],
                               batch[DEMO_OBS].reshape(-1, self.obs_dim)[demo_mask.reshape(-1) > 0]])
            self.obs_norm.update(steps.float())
        sample = self.step_reward(batch[SAMPLE_OBS], batch[SAMPLE_ACTIONS])
        demo = self.step_reward(batch[DEMO_OBS], batch[DEMO_ACTIONS])
        return {
            RETURNS_SAMPLE: losses.trajectory_returns(sample, sample_mask),
            RETURNS_DEMO: losses.trajectory_returns(demo, demo_mask),
        }

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not act: it is a learner-only module")

    def compute_self_supervised_loss(self, *, learner, module_id, config, batch, fwd_out, **kwargs) -> torch.Tensor:
        returns_demo, returns_sample = fwd_out[RETURNS_DEMO], fwd_out[RETURNS_SAMPLE]
        surrogate, nll, weights = losses.ioc_loss(returns_demo=returns_demo, log_q_demo=batch[DEMO_LOG_Q],
                                                  returns_sample=returns_sample, log_q_sample=batch[SAMPLE_LOG_Q])
        total = surrogate
        if self.settings[L2]:
            total = total + float(self.settings[L2]) * sum(p.pow(2).sum() for p in self.net.parameters())
        n_demo = returns_demo.numel()
        learner.metrics.log_dict({
            IOC_LOSS: nll,
            WEIGHT_ESS: losses.effective_sample_fraction(weights),
            DEMO_WEIGHT: weights[:n_demo].sum(),
            REWARD_DEMO_MEAN: returns_demo.detach().sum() / batch[DEMO_MASK].sum().clamp(min=1.0),
            REWARD_SAMPLE_MEAN: returns_sample.detach().sum() / batch[SAMPLE_MASK].sum().clamp(min=1.0),
        }, key=module_id, window=1)
        return total

    def configure_optimizers(self, *, learner, module_id, config) -> None:
        register_fused_adam(learner, module_id, "reward", list(self.parameters()), float(self.settings[LR]))
