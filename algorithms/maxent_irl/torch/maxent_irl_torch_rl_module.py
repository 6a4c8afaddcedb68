"""MaxEnt IRL's module: a reward of state features, and the soft-optimal policy it implies."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

# model_config keys.
NUM_STATES = "num_states"
NUM_FEATURES = "num_features"
REWARD_MODEL = "reward_model"
HIDDEN_SIZES = "hidden_sizes"
LINEAR, MLP = "linear", "mlp"

STATE_REWARD = "state_reward"


class MaxEntIRLTorchRLModule(TorchRLModule):
    """r_theta(features(s)) and a table of policy logits that the learner fills in.

    The reward is linear in the state features (Ziebart et al. 2008), or an MLP
    of them (deep MaxEnt IRL, Wulfmeier et al. 2015). The learner computes two
    tables exactly (rlfrontier.tabular) after each reward update, kept as
    buffers, so weight syncs and checkpoints carry them and EnvRunners,
    evaluation and `rlfrontier evaluate` act with them: exploring samples the
    soft-optimal policy of the learned reward, pi(a|s) = exp(Q(s, a) - V(s))
    (`policy_logits`), and inference takes the action optimal for it
    (`greedy_actions`: the policy the expected value difference judges; the
    soft Q's argmax lost 13% of the true value on a 10 x 10 ObjectWorld). The
    observation is the one-hot state of a tabular world. Both are stationary:
    the first step's of a finite horizon (the longest look-ahead), or the
    discounted fixed point.

    model_config: num_states, num_features, reward_model ("linear" | "mlp"),
    hidden_sizes (the MLP's).
    """

    def setup(self):
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"maxent_irl needs a Discrete action space, got {self.action_space}")
        cfg = self.model_config or {}
        num_states, num_features = int(cfg[NUM_STATES]), int(cfg[NUM_FEATURES])
        if self.observation_space.shape != (num_states,):
            raise ValueError(
                f"maxent_irl needs one-hot states of a {num_states}-state world, got {self.observation_space}"
            )
        if cfg.get(REWARD_MODEL, LINEAR) == LINEAR:
            # No bias: a constant reward changes no policy on a fixed horizon.
            self.reward_net = nn.Linear(num_features, 1, bias=False)
            nn.init.zeros_(self.reward_net.weight)
        else:
            layers: list[nn.Module] = []
            width = num_features
            for size in cfg.get(HIDDEN_SIZES, [32, 32]):
                layers += [nn.Linear(width, size), nn.ReLU()]
                width = size
            layers.append(nn.Linear(width, 1))
            self.reward_net = nn.Sequential(*layers)
        # Uniform, and "stay" (action 0), until the learner sets them.
        self.register_buffer("policy_logits", torch.zeros(num_states, int(self.action_space.n)))
        self.register_buffer("greedy_actions", torch.zeros(num_states, dtype=torch.int64))

    def state_reward(self, features: torch.Tensor) -> torch.Tensor:
        """r_theta for each row of `features`, [S]."""
        return self.reward_net(features.float()).squeeze(-1)

    def set_policy_logits(self, logits: torch.Tensor, *, greedy_actions: torch.Tensor | None = None) -> None:
        with torch.no_grad():
            self.policy_logits.copy_(logits.to(self.policy_logits))
            if greedy_actions is not None:
                self.greedy_actions.copy_(greedy_actions.to(self.greedy_actions))

    def _states(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch[Columns.OBS].argmax(dim=-1)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.policy_logits[self._states(batch)]}

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Logits whose argmax is the greedy action (RLlib's connector takes the argmax in inference).
        actions = self.greedy_actions[self._states(batch)]
        logits = torch.nn.functional.one_hot(actions, self.policy_logits.shape[1]).float()
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._forward_exploration(batch, **kwargs)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {}
