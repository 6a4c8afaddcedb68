"""Framework-agnostic learner hooks of soft Q-learning: target sync and temperature."""

from __future__ import annotations

from rlfrontier import offpolicy

# Metric keys, defined once beside their owner.
QF_LOSS = "qf_loss"  # the first Q head's TD loss
QF_TWIN_LOSS = "qf_twin_loss"  # the twin head's (clipped double Q)
ALPHA_LOSS = "alpha_loss"
ALPHA = "alpha"
ENTROPY = "policy_entropy"
Q_MEAN = offpolicy.Q_MEAN
# With demonstrations (DQfD): the supervised term as it enters the loss before
# its coefficient (sum over the minibatch's demonstration rows / minibatch
# size, first Q head), and the share of demonstration rows in the minibatch.
DEMO_LOSS = "demo_loss"
DEMO_FRACTION_SAMPLED = "demo_fraction_sampled"


class SoftQLearner(offpolicy.TargetSyncLearner):
    """Soft Q-learning's learner: gradient updates counted, target sync in updates.

    The target sync period is `target_update_interval` gradient updates
    (offpolicy.sync_target_networks says why); with tau < 1 it is Polyak
    averaging. The temperature lives in the module (see the RLModule).
    """
