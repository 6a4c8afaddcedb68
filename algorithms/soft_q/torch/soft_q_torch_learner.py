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
    DEMO_FRACTION_SAMPLED,
    DEMO_LOSS,
    ENTROPY,
    Q_MEAN,
    QF_LOSS,
    QF_TWIN_LOSS,
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

        next_q_target, intermediate_q_target = _target_q_values(module, batch)
        q_target_soft = losses.soft_n_step_target(
            rewards=batch[replay.REWARDS],
            discounts=batch[replay.DISCOUNTS],
            next_q_target=next_q_target,
            alpha=alpha,
            intermediate_q_target=intermediate_q_target,
            intermediate_discounts=batch.get(replay.INTERMEDIATE_DISCOUNTS),
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
        metrics = {}
        if Q_VALUES_TWIN in fwd_out:
            q_twin_taken = fwd_out[Q_VALUES_TWIN].gather(-1, actions).squeeze(-1)
            twin_loss, twin_td = losses.td_loss(
                q_taken=q_twin_taken,
                q_target_soft=q_target_soft,
                weights=weights,
                huber_delta=config.huber_delta,
            )
            total = total + twin_loss
            metrics[QF_TWIN_LOSS] = twin_loss
            td_error = losses.twin_priority_td_error(td_error=td_error, td_error_twin=twin_td)

        is_demo = batch.get(replay.IS_DEMO)
        if is_demo is not None:
            heads = [q] + ([fwd_out[Q_VALUES_TWIN]] if Q_VALUES_TWIN in fwd_out else [])
            head_losses = [
                losses.demo_supervised_loss(
                    per_row=_demo_per_row(config, q=head, expert_actions=batch[Columns.ACTIONS], alpha=alpha),
                    is_demo=is_demo,
                )
                for head in heads
            ]
            # Every head learns the expert's preference, as every head gets the TD loss.
            total = total + config.demo_loss_coeff * sum(head_losses)
            metrics[DEMO_LOSS] = head_losses[0]
            metrics[DEMO_FRACTION_SAMPLED] = is_demo.mean()

        log_metrics = self.metrics_due  # window-1 metrics: the last step of a learner call reports them
        entropy = losses.policy_entropy(q=q.detach(), alpha=alpha) if log_metrics or config.learn_alpha else None
        if config.learn_alpha:
            alpha_loss = losses.temperature_loss(
                log_alpha=log_alpha,
                entropy=entropy,
                target_entropy=config.resolved_target_entropy(module.action_space.n),
            )
            total = total + alpha_loss
            metrics[ALPHA_LOSS] = alpha_loss
        if log_metrics:
            metrics |= {
                QF_LOSS: qf_loss,
                ALPHA: alpha,
                ENTROPY: entropy.mean(),
                Q_MEAN: q_taken.detach().mean(),
            }
            self.metrics.log_dict(
                {k: v.detach() for k, v in metrics.items()}, key=module_id, window=1
            )
        if config.prioritized_replay:
            offpolicy.log_priority_inputs(self, module_id, td_error, batch[replay.INDEXES])
        return total


def _demo_per_row(config, *, q: torch.Tensor, expert_actions: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The configured supervised loss per row, [B] (config.demo_loss; alpha comes detached)."""
    if config.demo_loss == "nll":
        return losses.expert_nll_loss(q=q, expert_actions=expert_actions, alpha=alpha)
    return losses.large_margin_loss(q=q, expert_actions=expert_actions, margin=config.demo_margin)


def _target_q_values(module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Target Q at NEXT_OBS [B, A] and at INTERMEDIATE_OBS [B, n-1, A] (None when n = 1), in one pass."""
    next_obs = batch[replay.NEXT_OBS]
    intermediate_obs = batch.get(replay.INTERMEDIATE_OBS)
    if intermediate_obs is None:
        return module.forward_target({Columns.OBS: next_obs})[Q_VALUES], None
    batch_size, num_intermediate = intermediate_obs.shape[:2]
    obs = torch.cat([next_obs, intermediate_obs.reshape(batch_size * num_intermediate, *next_obs.shape[1:])])
    q = module.forward_target({Columns.OBS: obs})[Q_VALUES]
    return q[:batch_size], q[batch_size:].reshape(batch_size, num_intermediate, -1)
