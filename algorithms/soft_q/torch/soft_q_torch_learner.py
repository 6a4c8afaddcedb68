"""The soft Q loss: gathers batch and fwd_out, calls losses.py."""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.typing import ModuleID

from rlfrontier import offpolicy, replay
from rlfrontier.torch_utils import register_fused_adam
from rlfrontier.algorithms.soft_q import losses
from rlfrontier.algorithms.soft_q.soft_q_learner import (
    ALPHA,
    ALPHA_LOSS,
    ENTROPY,
    Q_MEAN,
    QF_LOSS,
    SoftQLearner,
)
from rlfrontier.algorithms.soft_q.torch.soft_q_torch_rl_module import (
    LOG_ALPHA,
    Q_VALUES,
    Q_VALUES_TWIN,
)


class SoftQTorchLearner(SoftQLearner, TorchLearner):
    def configure_optimizers_for_module(self, module_id: ModuleID, config: AlgorithmConfig = None) -> None:
        module = self._module[module_id].unwrapped()
        q_params = [p for n, p in module.named_parameters() if n != "log_alpha"]
        register_fused_adam(self, module_id, "qf", q_params, config.lr)
        if config.learn_alpha:
            register_fused_adam(self, module_id, "alpha", [module.log_alpha], config.alpha_lr)

    def compute_loss_for_module(
        self,
        *,
        module_id: ModuleID,
        config: AlgorithmConfig,
        batch: dict[str, Any],
        fwd_out: dict[str, Any],
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        log_alpha = fwd_out[LOG_ALPHA]
        alpha = log_alpha.detach().exp()
        actions = batch[Columns.ACTIONS].long().unsqueeze(-1)

        next_q_target = module.forward_target({Columns.OBS: batch[replay.NEXT_OBS]})[Q_VALUES]
        q_target_soft = losses.soft_bellman_target(
            rewards=batch[replay.REWARDS],
            discounts=batch[replay.DISCOUNTS],
            next_q_target=next_q_target,
            alpha=alpha,
        )
        weights = batch.get(replay.WEIGHTS)
        q = fwd_out[Q_VALUES]
        q_taken = q.gather(-1, actions).squeeze(-1)
        qf_loss, td_error = losses.td_loss(
            q_taken=q_taken,
            q_target_soft=q_target_soft,
            weights=weights,
            huber_delta=config.huber_delta,
        )
        total = qf_loss
        if Q_VALUES_TWIN in fwd_out:
            q_twin_taken = fwd_out[Q_VALUES_TWIN].gather(-1, actions).squeeze(-1)
            twin_loss, twin_td = losses.td_loss(
                q_taken=q_twin_taken,
                q_target_soft=q_target_soft,
                weights=weights,
                huber_delta=config.huber_delta,
            )
            total = total + twin_loss
            td_error = 0.5 * (td_error + twin_td)

        entropy = losses.policy_entropy(q=q.detach(), alpha=alpha)
        metrics = {
            QF_LOSS: qf_loss,
            ALPHA: alpha,
            ENTROPY: entropy.mean(),
            Q_MEAN: q_taken.detach().mean(),
        }
        if config.learn_alpha:
            alpha_loss = losses.temperature_loss(
                log_alpha=log_alpha,
                entropy=entropy,
                target_entropy=config.resolved_target_entropy(module.action_space.n),
            )
            total = total + alpha_loss
            metrics[ALPHA_LOSS] = alpha_loss

        self.metrics.log_dict(
            {k: v.detach() for k, v in metrics.items()}, key=module_id, window=1
        )
        if config.prioritized_replay:
            offpolicy.log_priority_inputs(self, module_id, td_error, batch[replay.INDEXES])
        return total
