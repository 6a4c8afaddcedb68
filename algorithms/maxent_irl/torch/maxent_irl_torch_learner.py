"""MaxEnt IRL's learner: exact messages for the current reward, then one gradient step on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.typing import ModuleID

from rlfrontier import tabular
from rlfrontier.algorithms.maxent_irl import losses
from rlfrontier.algorithms.maxent_irl.maxent_irl import (
    EXPERT_NLL,
    EXPERT_VISITATION,
    FEATURE_GAP,
    REWARD_MEAN,
    REWARD_STD,
    world_of,
)


class MaxEntIRLTorchLearner(TorchLearner):
    """Holds the tabular world (dynamics, features, start distribution) beside the reward module.

    Each update: r_theta for every state; backward messages (soft value
    iteration) and forward messages (visitation D) under it, in float64 on
    the CPU; the loss -(mu_E - D) . r_theta / sum(mu_E) (losses.maxent_loss) with the
    expert's visitation mu_E from the batch; then, after the step, the policy
    table of the updated reward for the EnvRunners.

    The whole state space is one batch: a second learner would see half the
    states, so the config allows one (local or remote, CPU or GPU).
    """

    def build(self) -> None:
        super().build()
        self._mdp = world_of(self.config)
        self._features = torch.as_tensor(self._mdp.features, dtype=torch.float32, device=self._device)

    def _horizon(self, config) -> int | None:
        return None if config.stationary else self._mdp.horizon

    def _messages(self, reward: np.ndarray, config) -> tuple[np.ndarray, float, np.ndarray]:
        """(soft Q of the first step [S, A], p_0 . V_0, expected visitation D [S]) of the soft-optimal
        policy of `reward`."""
        horizon = self._horizon(config)
        q, v, pi = tabular.soft_value_iteration(self._mdp.transitions, reward, horizon=horizon, gamma=config.gamma)
        d = tabular.visitation(self._mdp.transitions, pi, self._mdp.initial, horizon=horizon, gamma=config.gamma)
        if horizon is not None:
            q, v = q[0], v[0]
        return q, float(self._mdp.initial @ v), d

    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: AlgorithmConfig, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        reward = module.state_reward(self._features)
        reward_np = reward.detach().double().cpu().numpy()
        _, start_value, expected = self._messages(reward_np, config)
        expert = batch[EXPERT_VISITATION][0].double().cpu().numpy()
        gap = torch.as_tensor(expert - expected, dtype=reward.dtype, device=reward.device)
        scale = float(expert.sum())
        loss = losses.maxent_loss(reward, gap, scale=scale)
        if config.reward_l2:
            loss = loss + config.reward_l2 * sum((p**2).sum() for p in module.reward_net.parameters())
        feature_gap = np.abs(self._mdp.features.T @ (expert - expected)).sum() / scale
        self.metrics.log_dict(
            {
                # The surrogate's value means nothing; this is the likelihood it climbs (an
                # estimate from demonstrations: exact for the expert's expected counts).
                EXPERT_NLL: -(expert @ reward_np - start_value) / scale,
                FEATURE_GAP: float(feature_gap),
                REWARD_MEAN: reward.detach().mean(),
                REWARD_STD: reward.detach().std(),
            },
            key=module_id,
            window=1,
        )
        return loss

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """The updated reward's policy tables for acting: the soft Q of the first step (sampled when
        exploring) and the optimal Q of the first step (argmax in inference: the policy optimal for
        the learned reward, which the expected value difference judges, as a stationary policy)."""
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            config = self.config.get_config_for_module(module_id)
            with torch.no_grad():
                reward = module.state_reward(self._features).double().cpu().numpy()
            soft_q, _, _ = self._messages(reward, config)
            if config.stationary:
                policy = tabular.optimal_stationary_policy(self._mdp, reward, gamma=config.gamma)
            else:
                policy = tabular.optimal_policy(self._mdp, reward, gamma=config.gamma)[0]
            module.set_policy_logits(torch.as_tensor(soft_q, dtype=torch.float32),
                                     greedy_actions=torch.as_tensor(policy))
