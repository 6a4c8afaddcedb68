"""Behavioural cloning's learner: gathers the module's action distribution and the demonstrated actions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.typing import ModuleID

from rlfrontier.algorithms.bc import losses
from rlfrontier.algorithms.bc.bc import ACTION_ACCURACY, BC_LOSS


class BCTorchLearner(TorchLearner):
    """Trains another algorithm's module (bc.BCConfig.module_of) by maximum likelihood.

    Its checkpoint must hold the module as that algorithm's own learner holds
    it, so that a weights-only restore leaves nothing at a fresh initialisation:
    a module with target networks (soft_q) gets them here, and they are set to
    the trained networks after every update (else fine-tuning would bootstrap
    from random targets).
    """

    def build(self) -> None:
        super().build()
        # After the optimizers are made (super().build()): target networks take no gradient step.
        self.module.foreach_module(
            lambda mid, mod: mod.make_target_networks() if isinstance(mod, TargetNetworkAPI) else None
        )

    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: AlgorithmConfig, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        logits = fwd_out.get(Columns.ACTION_DIST_INPUTS)
        if logits is None:
            # forward_inference would give the same inputs, but without a graph (TorchRLModule runs it in no_grad).
            logits = module._forward(batch)[Columns.ACTION_DIST_INPUTS]
        action_dist = module.get_train_action_dist_cls().from_logits(logits)
        actions = batch[Columns.ACTIONS]
        loss = losses.negative_log_likelihood(action_dist=action_dist, actions=actions)
        metrics = {BC_LOSS: loss.detach()}
        if isinstance(module.action_space, gym.spaces.Discrete):
            metrics[ACTION_ACCURACY] = losses.action_accuracy(action_dist=action_dist, actions=actions)
        # The mean over this iteration's minibatches.
        self.metrics.log_dict(metrics, key=module_id, window=config.updates_per_iteration)
        return loss

    def compute_gradients(self, loss_per_module: dict[ModuleID, torch.Tensor], **kwargs) -> dict:
        # Heads the likelihood does not reach (soft_q's twin Q, ppo's value function) get no gradient, and
        # RLlib's apply_gradients calls torch.isfinite on every one: a zero gradient keeps Adam's step at zero.
        grads = super().compute_gradients(loss_per_module, **kwargs)
        return {ref: torch.zeros_like(self._params[ref]) if g is None else g for ref, g in grads.items()}

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            if isinstance(module, TargetNetworkAPI):
                for online, target in module.get_target_network_pairs():
                    target.load_state_dict(online.state_dict())
