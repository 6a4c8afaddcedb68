"""Framework-agnostic learner hooks of bootstrapped DQN: target sync in gradient updates."""

from __future__ import annotations

from rlfrontier import offpolicy

# Metric keys, defined once beside their owner.
QF_LOSS = "qf_loss"
Q_MEAN = "q_mean"
HEAD_DISAGREEMENT = "head_disagreement"  # losses.head_disagreement: greedy actions differ
HEAD_Q_STD = "head_q_std"  # losses.head_q_std: spread of Q(s, a) across heads
MASK_MEAN = "bootstrap_mask_mean"


class BootDQNLearner(offpolicy.TargetSyncLearner):
    """Bootstrapped DQN's learner: every head's target network syncs every
    `target_update_interval` gradient updates (one batched ensemble target)."""
