"""The adversarial learner: RLlib's PPO torch learner that also holds and trains the discriminator."""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.algorithms.ppo.ppo_learner import PPOLearner
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch

from rlfrontier import modules
from rlfrontier.algorithms.adversarial.adversarial import ImitationRewardConnector
from rlfrontier.algorithms.adversarial.torch import discriminator as disc
from rlfrontier.rewards import PPOTransformedLearner


class AdversarialPPOLearner(PPOTransformedLearner):
    """Two kinds of update reach it (adversarial.Adversarial.training_step):

    - the discriminator's: a batch of paired rows under disc.MODULE_ID only. For
      AIRL the learner first writes the policy's log pi(a_E|s_E) of the expert
      rows (disc.EXPERT_ACTION_LOGP) with its policy module, which has not yet
      stepped on this iteration's samples, so it is the policy that sampled them;
    - PPO's: the sampled episodes, whose rewards the first connector piece
      (ImitationRewardConnector) sets to their imitation reward.

    Each update trains only the modules in its batch (the others get no
    gradient, and an optimizer skips parameters without one); PPO's
    KL-coefficient and entropy schedules advance only on PPO's updates.

    Env steps trained (learners/__all_modules__/num_env_steps_trained and its
    lifetime count, which RLlib's min_train_timesteps_per_iteration also reads)
    count PPO's update only: the discriminator's rows pair policy steps already
    counted there with expert steps of no env of this run. They stay module
    steps trained (learners/discriminator/num_module_steps_trained).
    """

    def build(self) -> None:
        self._updated_modules: frozenset[str] = frozenset()
        super().build()

    def reward_connector(self):
        return ImitationRewardConnector()

    def configure_optimizers(self) -> None:
        # The discriminator brings its own Adam (rlfrontier.modules); the policy gets PPO's.
        modules.configure_optimizers(self, policy_apis=self.rl_module_required_apis())

    def policy_log_pi(self, *, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) under the policy module's exploration distribution (as Columns.ACTION_LOGP), [B]."""
        policy = self.module[DEFAULT_MODULE_ID].unwrapped()
        with torch.no_grad():
            logits = policy.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
            return policy.get_exploration_action_dist_cls().from_logits(logits).logp(actions)

    def _update(self, batch: dict[str, Any]):
        self._updated_modules = frozenset(batch)
        rows = batch.get(disc.MODULE_ID)
        if rows is not None and self.module[disc.MODULE_ID].unwrapped().needs_log_pi:
            rows[disc.EXPERT_ACTION_LOGP] = self.policy_log_pi(obs=rows[disc.EXPERT_OBS],
                                                               actions=rows[disc.EXPERT_ACTIONS])
        return super()._update(batch)

    @staticmethod
    def _discriminator_only(batch: MultiAgentBatch) -> bool:
        return set(batch.policy_batches) == {disc.MODULE_ID}

    def _log_steps_trained_metrics(self, batch: MultiAgentBatch) -> None:
        if self._discriminator_only(batch):
            batch = MultiAgentBatch(batch.policy_batches, env_steps=0)
        super()._log_steps_trained_metrics(batch)

    def _log_metrics(self, batch: MultiAgentBatch) -> None:
        # RLlib's Prometheus counters of steps trained: the env steps' leaves the discriminator's rows out too
        # (and RLlib's own method would warn at every minibatch of a batch of no env step).
        counter = getattr(self, "_metrics_all_modules_num_module_steps_trained", None)
        if not self._discriminator_only(batch) or counter is None:
            return super()._log_metrics(batch)
        counter.inc(value=sum(len(rows) for rows in batch.policy_batches.values()))

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        if DEFAULT_MODULE_ID in self._updated_modules:
            return super().after_gradient_based_update(timesteps=timesteps)
        # A discriminator-only update: PPOLearner's part would read the policy's KL key, still in the
        # metrics but reduced by the last PPO update (peek gives nan: ray 2.60), warn that the KL is
        # non-finite and re-log the coefficient (nan moves it neither way), and step the policy's
        # entropy schedule. That is PPO's update's business: skip PPO's part, keep the rest (lr schedules).
        return super(PPOLearner, self).after_gradient_based_update(timesteps=timesteps)
