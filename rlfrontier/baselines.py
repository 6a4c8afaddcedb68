"""RLlib's own algorithms as baselines, with the least change that lets them run on every env here.

`EpsilonGreedyDQNModule` is RLlib's default DQN torch module with one fix to
its exploration. RLlib 2.60 draws epsilon-greedy's random action among the
actions whose Q-value is not exactly 0 (its way of skipping actions masked to
-inf); with the zero bias initialisation of RLlib's tuned CartPole settings,
an all-zero observation (DeepSea's, or any env's that starts at the origin)
gives Q = 0 for every action and `torch.multinomial` fails with "invalid
multinomial distribution". Here the random action is uniform over the
actions whose Q-value is finite (all of them, if none is).
"""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.core.columns import Columns


def epsilon_greedy(q_values: torch.Tensor, epsilon: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per row of `q_values` [B, A]: a uniform random allowed action with probability epsilon, else the argmax.

    Allowed: a finite Q-value (RLlib masks actions with -inf); a row with none allows every action.
    """
    allowed = torch.isfinite(q_values)
    allowed = torch.where(allowed.any(dim=-1, keepdim=True), allowed, torch.ones_like(allowed))
    scores = torch.rand(q_values.shape, device=q_values.device, generator=generator)
    random_actions = torch.where(allowed, scores, torch.full_like(scores, -1.0)).argmax(dim=-1)
    greedy = q_values.argmax(dim=-1)
    explore = torch.rand(q_values.shape[0], device=q_values.device, generator=generator) < epsilon
    return torch.where(explore, random_actions, greedy)


class EpsilonGreedyDQNModule(DefaultDQNTorchRLModule):
    """RLlib's DQN module; exploration by `epsilon_greedy` (see the module docstring)."""

    def _forward_exploration(self, batch: dict[str, Any], t: int) -> dict[str, Any]:
        qf_outs = self.compute_q_values(batch)
        q_values = qf_outs[QF_PREDS]
        self.epsilon_schedule.update(t)
        epsilon = self.epsilon_schedule.get_current_value()
        actions = epsilon_greedy(q_values.reshape(-1, q_values.shape[-1]), epsilon).reshape(q_values.shape[:-1])
        output = {Columns.ACTIONS: actions}
        if Columns.STATE_OUT in qf_outs:
            output[Columns.STATE_OUT] = qf_outs[Columns.STATE_OUT]
        return output
