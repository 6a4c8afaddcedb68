"""Framework-agnostic learner hooks of bootstrapped DQN: target sync in gradient updates."""

from __future__ import annotations

from rlfrontier import offpolicy

# Metric keys, defined once beside their owner.
QF_LOSS = "qf_loss"
Q_MEAN = "q_mean"
HEAD_DIVERSITY = "head_disagreement"
MASK_MEAN = "bootstrap_mask_mean"


class BootDQNLearner(offpolicy.TargetSyncLearner):
    """Bootstrapped DQN's learner: every head's target network syncs every
    `target_update_interval` gradient updates (one batched ensemble target)."""
