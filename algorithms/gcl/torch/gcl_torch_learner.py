"""GCL's learner: soft_q's torch learner that also holds and trains the learned reward."""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from rlfrontier import offpolicy
from rlfrontier.algorithms.gcl.torch import cost
from rlfrontier.algorithms.soft_q.torch.soft_q_torch_learner import SoftQTorchLearner


class GCLTorchLearner(SoftQTorchLearner):
    """Two kinds of update reach it (gcl.GCL.training_step):

    - the reward's: paired trajectories under cost.MODULE_ID only. The learner
      first writes each demonstration's log-density under the current policy
      (cost.DEMO_LOG_Q) with its policy module. Such an update is not one of
      soft_q's: it neither counts as a Q update nor moves the target networks;
    - soft_q's: replayed rows under the policy module, whose rewards the
      Algorithm's replay hook already set to the current r_psi. The reward
      module does not get these rows (it learns from trajectories only).
    """

    def build(self) -> None:
        super().build()
        self._learner_only_ids = tuple(m for m in self._learner_only_ids if m != cost.MODULE_ID)

    def policy_log_q(self, *, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """sum_t log pi(a_t|s_t) over each row's real steps under the policy module's Boltzmann policy, [B]."""
        policy = self.module[DEFAULT_MODULE_ID].unwrapped()
        rows, steps = actions.shape[:2]
        with torch.no_grad():
            logits = policy.forward_exploration({Columns.OBS: obs.reshape(rows * steps, *obs.shape[2:])})[
                Columns.ACTION_DIST_INPUTS]
            logp = policy.get_exploration_action_dist_cls().from_logits(logits).logp(actions.reshape(-1).long())
        return (logp.reshape(rows, steps) * mask.float()).sum(dim=-1)

    def _update(self, batch: dict[str, Any], **kwargs):
        rows = batch.get(cost.MODULE_ID)
        if rows is None:
            return super()._update(batch, **kwargs)
        rows[cost.DEMO_LOG_Q] = self.policy_log_q(obs=rows[cost.DEMO_OBS], actions=rows[cost.DEMO_ACTIONS],
                                                  mask=rows[cost.DEMO_MASK])
        if DEFAULT_MODULE_ID in batch:
            return super()._update(batch, **kwargs)
        # The reward alone: TorchLearner's step, without TargetSyncLearner's update count and target sync.
        return super(offpolicy.TargetSyncLearner, self)._update(batch, **kwargs)
