"""MAML's learner: each task's inner step(s) and the meta-step through them (losses.maml_loss)."""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.typing import ModuleID

from rlfrontier.algorithms.maml import losses
from rlfrontier.algorithms.maml.maml import (
    ADAPTED_LOGP_MISMATCH,
    INNER_LOSS,
    OUTER_CLIP_FRACTION,
    OUTER_LOSS,
    PRE_ADAPTATION,
    TASK_INDEX,
)


def task_rows(batch: Mapping[str, torch.Tensor]) -> list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """The batch's rows as (pre-adaptation, post-adaptation) row dicts per task, in task-index order.

    Columns: Columns.OBS, ACTIONS, ADVANTAGES, ACTION_LOGP (losses.LOGP_OLD:
    of a pre-adaptation row theta's, which inner steps after the first weight
    by; of a post-adaptation row its adapted policy's), TASK_INDEX and
    PRE_ADAPTATION (1 for a pre-adaptation row, else 0); a batch of only
    pre-adaptation rows gives empty post dicts.
    """
    task = batch[TASK_INDEX].long()
    pre = batch[PRE_ADAPTATION] > 0.5
    out = []
    for index in torch.unique(task).tolist():
        rows = []
        for phase in (pre, ~pre):
            mask = (task == index) & phase
            rows.append({losses.OBS: batch[Columns.OBS][mask], losses.ACTIONS: batch[Columns.ACTIONS][mask],
                         losses.ADVANTAGES: batch[Columns.ADVANTAGES][mask],
                         losses.LOGP_OLD: batch[Columns.ACTION_LOGP][mask]})
        out.append((rows[0], rows[1]))
    return out


class MAMLTorchLearner(TorchLearner):
    """Two calls reach it each iteration (maml.MAML.training_step):

    - `adapted_weights(pre_batch)` (through `LearnerGroup.foreach_learner`): each
      task's theta'_i, as module states for the EnvRunners to act with;
    - `update(batch)`: pre- and post-adaptation rows of every task; each of the
      config's `num_epochs` full-batch passes recomputes theta'_i(theta) from the
      pre-adaptation rows (with the graph, or without for first_order) and takes
      one Adam step on the PPO-clip loss of the post-adaptation rows.

    Only one learner (num_learners <= 1, MAMLConfig.validate): RLlib shards a
    batch across learners by rows, which would split tasks.
    """

    def build(self) -> None:
        super().build()
        self._outer_epoch = 0

    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        self._outer_epoch = 0

    def adapted_weights(self, batch: Mapping[str, np.ndarray], module_id: ModuleID = DEFAULT_MODULE_ID
                        ) -> list[dict[str, np.ndarray]]:
        """theta'_i of each task in the pre-adaptation `batch` (numpy columns), as module states, by task index."""
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id].unwrapped()
        tensors = {k: torch.as_tensor(np.asarray(v), device=self._device) for k, v in batch.items()}
        out = []
        for pre, _ in task_rows(tensors):
            # The same inner steps as the meta-step's (losses.maml_loss), so each EnvRunner acts with the
            # theta'_i(theta) the learner recomputes. The values are the same with or without the graph: no
            # second-order graph to keep here.
            step_loss = functools.partial(losses.inner_loss, log_prob=module.log_prob, rows=pre)
            adapted, _ = losses.inner_update(module.policy_params(), loss_fn=step_loss, lr=config.inner_lr,
                                             steps=config.inner_steps, first_order=True)
            out.append(module.state_with(adapted))
        return out

    def compute_loss_for_module(self, *, module_id: ModuleID, config: AlgorithmConfig, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        meta = losses.maml_loss(module.policy_params(), log_prob=module.log_prob, tasks=task_rows(batch),
                                inner_lr=config.inner_lr, inner_steps=config.inner_steps,
                                first_order=config.first_order, clip_param=config.clip_param)
        metrics = {INNER_LOSS: meta.inner_loss, OUTER_LOSS: meta.loss.detach(),
                   OUTER_CLIP_FRACTION: meta.clip_fraction}
        if self._outer_epoch == 0:
            # theta has not moved yet: theta'_i(theta) is the policy each task's post-adaptation episodes
            # were sampled with, so this is ~0 (float32 rounding) unless an EnvRunner acted with other weights.
            metrics[ADAPTED_LOGP_MISMATCH] = meta.logp_mismatch
        self.metrics.log_dict(metrics, key=module_id, window=1)
        self._outer_epoch += 1
        return meta.loss
