"""The bootstrapped DQN loss: gathers batch and fwd_out, calls losses.py; the prior's memo."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.typing import ModuleID

from rlfrontier import offpolicy, replay
from rlfrontier.torch_utils import register_fused_adam
from rlfrontier.algorithms.boot_dqn import losses
from rlfrontier.algorithms.boot_dqn.boot_dqn import BOOTSTRAP_MASK
from rlfrontier.algorithms.boot_dqn.boot_dqn_learner import (
    HEAD_DISAGREEMENT,
    HEAD_Q_STD,
    MASK_MEAN,
    Q_MEAN,
    QF_LOSS,
    BootDQNLearner,
)
from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_rl_module import (
    HEAD_KEEP,
    HEAD_ROWS,
    PRIOR_Q,
    Q_VALUES,
)

# Training-batch column the learner adds: prior_scale * p_k(next obs), [B, K, A] (see PriorMemo).
NEXT_PRIOR_Q = "next_prior_q"
# Above this many entries per memo (replay slots x observation size, float32: 256 MiB; two memos,
# s and s') the learner computes the prior at every replay instead (image observations).
MAX_PRIOR_MEMO_FLOATS = 1 << 26


class PriorMemo:
    """The fixed prior's outputs per replay slot: computed once per stored transition, not once per replay.

    Every transition is replayed about training_intensity times (128 by
    default) and its prior prior_scale * p_k(s) never changes, yet it was 2 of
    the 5 ensemble passes of every update (the prior at s and at s'): with K
    heads the passes, not Python, are what grows with K (issue 8). The memo
    keeps, per replay slot, the prior and the observation it was computed
    from; a slot is served only while the batch brings the same observation
    (a slot overwritten by a newer transition, or an n-step window's next
    observation that changed, is recomputed), and every entry is dropped when
    the prior's weights change (a restore; detected by the parameters'
    version counters, which a direct `p.data.copy_` would bypass). So the
    values are the prior's own, up to float rounding (a row computed in a
    smaller batch can differ in the last bit, ~1e-7).
    """

    def __init__(self, *, capacity: int, obs_dim: int, num_heads: int, num_actions: int,
                 device: torch.device | str | None = None):
        self._obs = torch.full((capacity, obs_dim), math.nan, device=device)  # nan: never equal, empty
        self._values = torch.zeros((capacity, num_heads, num_actions), device=device)
        self._weights_key: tuple | None = None

    def lookup(self, *, slots: torch.Tensor, obs: torch.Tensor, prior_net: torch.nn.Module,
               prior_q: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """prior_q(obs) as [B, K, A], computing only the rows the memo lacks.

        Args:
            slots: replay slots of the batch's rows, [B] (replay.INDEXES).
            obs: the rows' observations, [B, ...].
            prior_net: the prior network (its weights' identity and version key the memo).
            prior_q: the prior, obs [b, D] -> [K, b, A].
        """
        key = tuple((p.data_ptr(), p._version) for p in prior_net.parameters())
        if key != self._weights_key:
            self._obs.fill_(math.nan)
            self._weights_key = key
        x = obs.reshape(obs.shape[0], -1).to(self._obs.dtype)
        # A row differs from its slot's unless |difference| sums to exactly 0 (nan, an empty slot, never
        # does). Float arithmetic and index_select: 2-4x and 5x faster on a CPU here than != and [slots].
        miss = (torch.index_select(self._obs, 0, slots) - x).abs_().sum(dim=1) != 0
        if bool(miss.any()):
            missed = slots[miss]
            self._values[missed] = prior_q(x[miss]).transpose(0, 1)
            self._obs[missed] = x[miss]
        return torch.index_select(self._values, 0, slots)


def head_rows(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each head's own rows of a batch: (HEAD_ROWS [K, M], HEAD_KEEP [K, M]), or None when every head keeps all.

    A head's loss is a mean over the transitions its bootstrap mask keeps
    (losses.masked_td_loss), so a row it drops adds exactly 0 to its loss and
    its gradient, yet every pass (online at s, its backward, target and
    online at s') computed all K heads on all B rows. With mask_prob 0.5
    each head keeps about half: computing head k on its kept rows only,
    padded to M, the most any head keeps (about 0.57 B for K = 10, B = 128),
    gives the same loss and gradients for ~0.57 of the arithmetic, which
    with K heads is most of an update's cost on a CPU (issue 8). Kept rows
    come first, in batch order; a padding row (keep 0) is a dropped row.

    Args:
        masks: bootstrap masks, [B, K] (the batch column; {0, 1}, any dtype). HEAD_KEEP
            holds the kept rows' own mask values (0 on padding).
    """
    m = masks.t()  # [K, B]
    kept = (m != 0).to(torch.int32)  # counted, not summed: a mask value is a weight, not a count
    most = int(kept.sum(dim=1).max())
    if most == m.shape[1]:
        return None
    rows = torch.argsort(kept, dim=1, descending=True, stable=True)[:, :max(most, 1)]
    return rows, m.gather(1, rows).to(torch.float32)


class BootDQNTorchLearner(BootDQNLearner, TorchLearner):
    def build(self) -> None:
        super().build()
        self._prior_memos: dict[str, PriorMemo] = {}
        module = self.module[DEFAULT_MODULE_ID].unwrapped()
        obs_dim = math.prod(module.observation_space.shape)
        capacity = self.config.replay_capacity
        # CPU only: on a GPU the prior's pass is a few kernel launches, no dearer than the
        # memo's gathers and its host sync (measured on CPU only; see the README).
        on_cpu = torch.device(self._device).type == "cpu"
        # Each head on its kept rows (head_rows): CPU only, where the arithmetic is the cost (on a GPU
        # it would add a host sync a step), and not with prioritised replay, whose priorities need
        # every transition's TD error.
        self._select_head_rows = on_cpu and not self.config.prioritized_replay
        if module.prior_scale and on_cpu and capacity * obs_dim <= MAX_PRIOR_MEMO_FLOATS:
            self._prior_memos = {
                column: PriorMemo(capacity=capacity, obs_dim=obs_dim, num_heads=module.num_heads,
                                  num_actions=module.num_actions, device=self._device)
                for column in (PRIOR_Q, NEXT_PRIOR_Q)
            }

    def _update(self, batch: dict[str, Any], **kwargs):
        policy = batch.get(DEFAULT_MODULE_ID)
        if self._prior_memos and policy is not None and replay.INDEXES in policy:
            module = self.module[DEFAULT_MODULE_ID].unwrapped()
            slots = policy[replay.INDEXES].long()
            priors = {
                column: self._prior_memos[column].lookup(
                    slots=slots, obs=policy[obs_column], prior_net=module.prior, prior_q=module.prior_q)
                for column, obs_column in ((PRIOR_Q, replay.OBS), (NEXT_PRIOR_Q, replay.NEXT_OBS))
            }
            policy = {**policy, **priors}
        if self._select_head_rows and policy is not None and BOOTSTRAP_MASK in policy:
            selected = head_rows(policy[BOOTSTRAP_MASK])
            if selected is not None:
                policy = {**policy, HEAD_ROWS: selected[0], HEAD_KEEP: selected[1]}
        if policy is not None:
            batch = {**batch, DEFAULT_MODULE_ID: policy}
        return super()._update(batch, **kwargs)

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
        q = fwd_out[Q_VALUES]  # [K, B, A], or [K, M, A] on each head's own rows
        rows = batch.get(HEAD_ROWS)
        if rows is None:
            def per_head(column: torch.Tensor) -> torch.Tensor:  # [B], shared by the heads
                return column
            masks = batch[BOOTSTRAP_MASK]
        else:
            def per_head(column: torch.Tensor) -> torch.Tensor:  # [B] -> [K, M], each head's rows
                return torch.index_select(column, 0, rows.reshape(-1)).view(rows.shape)
            masks = batch[HEAD_KEEP].t()  # [M, K]: see losses.masked_td_loss
        num_heads, width, _ = q.shape
        actions = batch[Columns.ACTIONS].long()
        actions = (actions.view(1, width) if rows is None else per_head(actions)).expand(num_heads, width)
        q_taken = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        next_prior = batch.get(NEXT_PRIOR_Q)
        next_q_online, next_q_target = module.online_and_target_q(
            batch[replay.NEXT_OBS], prior=None if next_prior is None else next_prior.transpose(0, 1),
            online=config.double_q, rows=rows)
        rewards, discounts = per_head(batch[replay.REWARDS]), per_head(batch[replay.DISCOUNTS])
        if config.double_q:
            targets = losses.double_q_targets(
                rewards=rewards, discounts=discounts, next_q_online=next_q_online, next_q_target=next_q_target)
        else:
            targets = losses.max_q_targets(rewards=rewards, discounts=discounts, next_q_target=next_q_target)
        weights = batch.get(replay.WEIGHTS)
        loss, td_error = losses.masked_td_loss(
            q_taken=q_taken,
            targets=targets,
            masks=masks,
            weights=None if weights is None else per_head(weights),
            huber_delta=config.huber_delta,
        )
        if self.metrics_due:  # window-1 metrics: the last step of a learner call reports them
            if rows is not None:  # every head on every row, as without the selection
                with torch.no_grad():
                    q = module.forward_train({k: v for k, v in batch.items() if k != HEAD_ROWS})[Q_VALUES]
                actions = batch[Columns.ACTIONS].long().view(1, -1, 1).expand(num_heads, -1, 1)
                q_taken = q.gather(-1, actions).squeeze(-1)
            self.metrics.log_dict(
                {
                    QF_LOSS: loss.detach(),
                    Q_MEAN: q_taken.detach().mean(),
                    # The ensemble's disagreement on the replayed batch (every head on every row).
                    HEAD_DISAGREEMENT: losses.head_disagreement(q.detach()),
                    HEAD_Q_STD: losses.head_q_std(q_taken.detach()),
                    MASK_MEAN: batch[BOOTSTRAP_MASK].float().mean(),
                },
                key=module_id,
                window=1,
            )
        if config.prioritized_replay:
            offpolicy.log_priority_inputs(self, module_id, td_error, batch[replay.INDEXES])
        return loss
