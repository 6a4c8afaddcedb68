"""TargetSyncLearner.update's plain minibatch loop against RLlib's own Learner.update.

Replay's learner call (one pass, in-order minibatches) goes through the
project's loop; everything else through RLlib's. On the same weights and the
same batch both must produce the same weights, target weights, per-row TD
errors and counters: to the bit, since both run the same `_update` on the
same rows in the same order.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from learner_batches import MID, build_learner, env_transitions, multi_agent, single_torch_thread
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.utils.metrics import ALL_MODULES, NUM_MODULE_STEPS_TRAINED, NUM_MODULE_STEPS_TRAINED_LIFETIME

from rlfrontier import offpolicy
from rlfrontier.algorithms.boot_dqn.boot_dqn import BOOTSTRAP_MASK, BootDQNConfig
from rlfrontier.algorithms.soft_q.soft_q import SoftQConfig
from rlfrontier.envs import register_envs

MINIBATCH = 32
COUNT = 6


@pytest.fixture(autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


def _state(learner) -> list[torch.Tensor]:
    module = learner.module[MID].unwrapped()
    tensors = [p.detach().clone() for p in module.parameters()]
    for main, target in module.get_target_network_pairs():
        tensors += [p.detach().clone() for p in target.parameters()]
    return tensors


def _twins(config, env):
    """Two learners built from the same seed: the same initial weights, separate tensors."""
    torch.manual_seed(0)
    ours = build_learner(config, env)
    torch.manual_seed(0)
    theirs = build_learner(config, env)
    for a, b in zip(_state(ours), _state(theirs)):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    return ours, theirs


def _rllib_update(learner, batch, **kwargs):
    """RLlib's Learner.update itself, past TargetSyncLearner's override."""
    return Learner.update(learner, batch=multi_agent(batch), **kwargs)


def _compare(config, env, batch, updates: int = 2):
    ours, theirs = _twins(config, env)
    kwargs = dict(minibatch_size=MINIBATCH, num_epochs=1, shuffle_batch_per_epoch=False)
    for _ in range(updates):
        mine = ours.update(batch=multi_agent(batch), **kwargs)
        rllib = _rllib_update(theirs, batch, **kwargs)
    for a, b in zip(_state(ours), _state(theirs)):
        assert torch.equal(a, b)
    mine_idx, mine_td = offpolicy.pop_priority_inputs([mine])
    rllib_idx, rllib_td = offpolicy.pop_priority_inputs([rllib])
    np.testing.assert_array_equal(mine_idx, rllib_idx)
    np.testing.assert_array_equal(mine_td, rllib_td)
    assert len(mine_td) == MINIBATCH * COUNT
    for key in (offpolicy.NUM_UPDATES, offpolicy.NUM_TARGET_UPDATES, NUM_MODULE_STEPS_TRAINED,
                NUM_MODULE_STEPS_TRAINED_LIFETIME):
        assert mine[MID][key].peek() == rllib[MID][key].peek(), key
    assert mine[MID][offpolicy.NUM_UPDATES].peek() == COUNT  # a learner reports each call's own counts
    assert mine[ALL_MODULES][NUM_MODULE_STEPS_TRAINED].peek() == MINIBATCH * COUNT
    assert ours._num_updates == theirs._num_updates == updates * COUNT
    return mine, rllib


def test_soft_q_weights_td_errors_and_counts_match_rllibs_loop():
    env = gym.make("CartPole-v1")
    batch = env_transitions(env, MINIBATCH * COUNT, gamma=0.99, seed=3)
    mine, rllib = _compare(SoftQConfig().training(target_update_interval=4, tau=0.5, prioritized_replay=True), env, batch)
    # Window-1 metrics, which the fast loop logs at its last minibatch only: the same reported values.
    for key in ("qf_loss", "qf_twin_loss", "q_mean", "policy_entropy", "alpha", "gradients_qf_global_norm"):
        assert mine[MID][key].peek() == rllib[MID][key].peek(), key


def test_learnt_alpha_trains_at_every_minibatch_of_the_fast_loop():
    """The temperature loss needs the entropy at every step, logged or not."""
    env = gym.make("CartPole-v1")
    batch = env_transitions(env, MINIBATCH * COUNT, gamma=0.99, seed=6)
    mine, rllib = _compare(SoftQConfig().training(learn_alpha=True, alpha_lr=0.1, prioritized_replay=True), env, batch)
    for key in ("alpha", "alpha_loss", "policy_entropy"):
        assert mine[MID][key].peek() == rllib[MID][key].peek(), key


def test_boot_dqn_weights_td_errors_and_counts_match_rllibs_loop():
    register_envs()
    env = gym.make("rlfrontier/DeepSea-v0", size=6)
    config = BootDQNConfig().training(num_heads=3, target_update_interval=2, prioritized_replay=True)
    batch = env_transitions(env, MINIBATCH * COUNT, gamma=0.99, seed=4)
    batch[BOOTSTRAP_MASK] = np.random.default_rng(0).random((MINIBATCH * COUNT, 3)) < 0.5
    mine, rllib = _compare(config, env, batch)
    for key in ("qf_loss", "q_mean", "head_disagreement", "head_q_std"):
        assert mine[MID][key].peek() == rllib[MID][key].peek(), key


def _plan(learner, batch, minibatch_size, num_total_minibatches=0):
    return learner._plain_minibatch_plan(TrainingData(batch=multi_agent(batch)), minibatch_size,
                                         num_total_minibatches)


def test_other_cases_go_through_rllibs_loop():
    env = gym.make("CartPole-v1")
    learner = build_learner(SoftQConfig(), env)
    batch = env_transitions(env, MINIBATCH * COUNT, gamma=0.99, seed=5)
    assert _plan(learner, batch, MINIBATCH)[1] == COUNT
    assert _plan(learner, batch, MINIBATCH, num_total_minibatches=COUNT)[1] == COUNT
    # A ragged last minibatch (RLlib wraps around), more minibatches than one pass: RLlib's loop.
    assert _plan(learner, batch, 5 * MINIBATCH // 2) is None
    assert _plan(learner, batch, MINIBATCH, num_total_minibatches=COUNT + 1) is None
    # Two epochs: RLlib's loop, and it still trains (counts say two passes).
    before = learner._num_updates
    learner.update(batch=multi_agent(batch), minibatch_size=MINIBATCH, num_epochs=2)
    assert learner._num_updates - before == 2 * COUNT
