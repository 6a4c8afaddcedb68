"""PEARL's learner: one meta-batch a gradient step (losses.pearl_losses), then Polyak-averages the target V."""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.typing import ModuleID

from rlfrontier.algorithms.pearl import losses

class PEARLTorchLearner(TorchLearner):
    """Trains the encoder, policy, Q1, Q2 and V of each PEARLTorchRLModule on task-major meta-batches.

    The batch of one update: losses.CONTEXT [T, C, context_dim]; Columns.OBS
    and NEXT_OBS [T, B, obs_dim]; ACTIONS [T, B, act_dim] in [-1, 1];
    REWARDS and TERMINATEDS [T, B]. Every column's first dimension is the
    task, so the batch has one length (T); run it whole (no minibatch_size,
    one epoch): RLlib would otherwise slice it by tasks.

    The default optimiser (one Adam over the module's parameters, config.lr)
    is oyster's five Adams at one learning rate: Adam is per parameter, and
    pearl_losses routes each term to its parameters only. The target V is
    built after the optimiser is registered (`build`), so the optimiser never
    holds it; every parameter it does hold gets a gradient each step, which
    TorchLearner.apply_gradients needs (it calls torch.isfinite on each
    parameter's gradient: a None would raise).
    """

    def build(self) -> None:
        super().build()
        self.module.foreach_module(
            lambda mid, mod: mod.make_target_networks() if isinstance(mod, TargetNetworkAPI) else None
        )

    def compute_loss_for_module(self, *, module_id: ModuleID, config: AlgorithmConfig, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        total, metrics = losses.pearl_losses(
            module=self.module[module_id].unwrapped(),
            context=batch[losses.CONTEXT],
            obs=batch[Columns.OBS],
            actions=batch[Columns.ACTIONS],
            rewards=batch[Columns.REWARDS],
            next_obs=batch[Columns.NEXT_OBS],
            terminateds=batch[Columns.TERMINATEDS],
            reward_scale=float(config.reward_scale),
            kl_lambda=float(config.kl_lambda),
            gamma=float(config.gamma),
            policy_mean_reg_weight=float(config.policy_mean_reg_weight),
            policy_std_reg_weight=float(config.policy_std_reg_weight),
            policy_pre_activation_weight=float(config.policy_pre_activation_weight),
        )
        self.metrics.log_dict(metrics, key=module_id, window=1)
        return total

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """target V <- tau * V + (1 - tau) * target V (config.tau), once per `update()` call.

        RLlib calls this hook once per update(), after all its minibatches and
        epochs; the driver calls update() once per gradient step with one
        meta-batch, so this is oyster's soft update after every step.
        """
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            if not isinstance(module, TargetNetworkAPI):
                continue
            tau = float(self.config.get_config_for_module(module_id).tau)
            for main_net, target_net in module.get_target_network_pairs():
                update_target_network(main_net=main_net, target_net=target_net, tau=tau)
