"""Framework-agnostic learner hooks of soft Q-learning: target sync and temperature."""

from __future__ import annotations

from typing import Any

from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI

# Metric keys, defined once beside their owner.
QF_LOSS = "qf_loss"
ALPHA_LOSS = "alpha_loss"
ALPHA = "alpha"
ENTROPY = "policy_entropy"
Q_MEAN = "q_mean"
TD_ERROR = "td_error"
TD_INDEXES = "td_error_buffer_indexes"
NUM_UPDATES = "num_gradient_updates"
NUM_TARGET_UPDATES = "num_target_updates"


class SoftQLearner(Learner):
    """Counts gradient updates and syncs target networks in units of updates.

    RLlib's DQN counts `target_network_update_freq` in sampled env steps, so
    the number of updates between syncs silently changes with the replay ratio;
    here one call of `_update` is one SGD step and the sync period is
    `target_update_interval` of them. With tau < 1 the sync is Polyak
    averaging, applied every `target_update_interval` updates.
    """

    def build(self) -> None:
        super().build()
        self.module.foreach_module(
            lambda mid, mod: mod.make_target_networks()
            if isinstance(mod, TargetNetworkAPI)
            else None
        )
        self._num_updates = 0

    def _update(self, batch: dict[str, Any], **kwargs):
        result = super()._update(batch, **kwargs)
        self._num_updates += 1
        for module_id, module in self.module._rl_modules.items():
            config = self.config.get_config_for_module(module_id)
            if self._num_updates % config.target_update_interval == 0:
                for main_net, target_net in module.unwrapped().get_target_network_pairs():
                    update_target_network(
                        main_net=main_net, target_net=target_net, tau=config.tau
                    )
                self.metrics.log_value(
                    (module_id, NUM_TARGET_UPDATES), 1, reduce="lifetime_sum"
                )
            self.metrics.log_value((module_id, NUM_UPDATES), 1, reduce="lifetime_sum")
        return result

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        state["soft_q_num_updates"] = self._num_updates
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        self._num_updates = state.get("soft_q_num_updates", self._num_updates)

    @classmethod
    def rl_module_required_apis(cls) -> list[type]:
        return [QNetAPI, TargetNetworkAPI]
