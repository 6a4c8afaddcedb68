"""The bootstrapped DQN loss: gathers batch and fwd_out, calls losses.py."""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.typing import ModuleID

from rlfrontier import offpolicy, replay
from rlfrontier.torch_utils import register_fused_adam
from rlfrontier.algorithms.boot_dqn import losses
from rlfrontier.algorithms.boot_dqn.boot_dqn import BOOTSTRAP_MASK
from rlfrontier.algorithms.boot_dqn.boot_dqn_learner import (
    HEAD_DIVERSITY,
    MASK_MEAN,
    Q_MEAN,
    QF_LOSS,
    BootDQNLearner,
)
from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_rl_module import Q_VALUES


class BootDQNTorchLearner(BootDQNLearner, TorchLearner):
    def configure_optimizers_for_module(self, module_id: ModuleID, config: AlgorithmConfig = None) -> None:
        module = self._module[module_id].unwrapped()
        # The trained heads only: not the fixed prior, not the target.
        register_fused_adam(self, module_id, "qf", list(module.qf.parameters()), config.lr)

    def compute_loss_for_module(
        self,
        *,
        module_id: ModuleID,
        config: AlgorithmConfig,
        batch: dict[str, Any],
        fwd_out: dict[str, Any],
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        q = fwd_out[Q_VALUES]  # [K, B, A]
        num_heads, batch_size, _ = q.shape
        actions = batch[Columns.ACTIONS].long().view(1, batch_size, 1).expand(num_heads, batch_size, 1)
        q_taken = q.gather(-1, actions).squeeze(-1)
        next_q_online, next_q_target = module.online_and_target_q(batch[replay.NEXT_OBS])
        targets = losses.double_q_targets(
            rewards=batch[replay.REWARDS],
            discounts=batch[replay.DISCOUNTS],
            next_q_online=next_q_online,
            next_q_target=next_q_target,
        )
        masks = batch[BOOTSTRAP_MASK]
        loss, td_error = losses.masked_td_loss(
            q_taken=q_taken,
            targets=targets,
            masks=masks,
            weights=batch.get(replay.WEIGHTS),
            huber_delta=config.huber_delta,
        )
        self.metrics.log_dict(
            {
                QF_LOSS: loss.detach(),
                Q_MEAN: q_taken.detach().mean(),
                HEAD_DIVERSITY: losses.head_diversity(q.detach()),
                MASK_MEAN: masks.float().mean(),
            },
            key=module_id,
            window=1,
        )
        if config.prioritized_replay:
            offpolicy.log_priority_inputs(self, module_id, td_error, batch[replay.INDEXES])
        return loss
