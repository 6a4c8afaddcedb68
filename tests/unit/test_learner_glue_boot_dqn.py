"""The bootstrapped DQN learner's loss glue on real DeepSea batches, through the real learner and module.

Each test builds BootDQNTorchLearner in this process (no Ray) from
BootDQNConfig and DeepSea's spaces, feeds it one-step replay batches
(n_step=1) from the env plus a bootstrap mask column [B, K], and compares what
the learner computes - loss, TD errors handed back as priorities, gradients,
weights after an update - with a hand computation from the module's own
networks. Network states that a property needs (a target net whose greedy
action differs from the online one) are set by construction.
"""

from __future__ import annotations

import types

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_batches import (
    MID,
    build_learner,
    env_transitions,
    loss_and_priorities,
    module_of,
    params,
    peek,
    same,
    single_torch_thread,
    update,
)
from rlfrontier import offpolicy, replay
from rlfrontier.algorithms.boot_dqn.boot_dqn import BOOTSTRAP_MASK, BootDQN, BootDQNConfig
from rlfrontier.algorithms.boot_dqn.boot_dqn_learner import HEAD_DISAGREEMENT, HEAD_Q_STD, MASK_MEAN
from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_learner import NEXT_PRIOR_Q, PriorMemo, head_rows
from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_rl_module import PRIOR_Q, Q_VALUES
from rlfrontier.envs import register_envs

GAMMA = 0.99
HEADS = 4
PRIOR_SCALE = 3.0
BATCH = 40  # eight DeepSea-5 episodes
SIZE = 5


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def env():
    register_envs()
    return gym.make("rlfrontier/DeepSea-v0", size=SIZE)


def make_learner(env, **training):
    settings = dict(num_heads=HEADS, prior_scale=PRIOR_SCALE, hidden_sizes=[16], huber_delta=None,
                    prioritized_replay=True, target_update_interval=10_000, lr=1e-2, gamma=GAMMA)
    settings.update(training)
    torch.manual_seed(0)
    return build_learner(BootDQNConfig().training(**settings), env)


def deep_sea_batch(env, masks: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    batch = env_transitions(env, BATCH, gamma=GAMMA, seed=seed)
    assert (batch[replay.DISCOUNTS] == 0).sum() == BATCH // SIZE  # every episode ends in the batch
    batch[BOOTSTRAP_MASK] = masks.astype(np.float32)
    return batch


def random_masks(seed: int, prob: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).random((BATCH, HEADS)) < prob).astype(np.float32)


def q_all(module, net, obs) -> torch.Tensor:
    """Q_k = f_k + prior_scale * p_k for every head, [K, B, A], from the module's nets."""
    x = torch.as_tensor(obs)
    with torch.no_grad():
        return net(x) + PRIOR_SCALE * module.prior(x)


def hand_double_q_targets(module, batch) -> torch.Tensor:
    """y_k = r + discount * Q'_k(s', argmax_a Q_k(s', a)), written out here, [K, B]."""
    online = q_all(module, module.qf, batch[replay.NEXT_OBS])
    target = q_all(module, module.target_qf, batch[replay.NEXT_OBS])
    best = online.argmax(-1, keepdim=True)
    return torch.as_tensor(batch[replay.REWARDS]) + torch.as_tensor(batch[replay.DISCOUNTS]) * (
        target.gather(-1, best).squeeze(-1)
    )


def hand_q_taken(module, batch) -> torch.Tensor:
    q = q_all(module, module.qf, batch[replay.OBS])
    actions = torch.as_tensor(batch[replay.ACTIONS]).view(1, -1, 1).expand(HEADS, -1, 1)
    return q.gather(-1, actions).squeeze(-1)  # [K, B]


def hand_masked_loss(td: torch.Tensor, batch) -> torch.Tensor:
    """(1/K) sum_k sum_b w_b m_bk td_kb^2 / 2 / max(1, sum_b m_bk) (squared error)."""
    m = torch.as_tensor(batch[BOOTSTRAP_MASK]).t()
    w = torch.as_tensor(batch[replay.WEIGHTS])
    per_head = (0.5 * td**2 * w * m).sum(1) / m.sum(1).clamp(min=1)
    return per_head.mean()


def head_slices(net) -> list[list[torch.Tensor]]:
    """Per head k, that head's slices of every ensemble layer's parameters."""
    return [[p.detach()[k].clone() for p in net.parameters()] for k in range(HEADS)]


# 7. Masks -----------------------------------------------------------------------------
def test_algorithm_stores_one_mask_per_transition_and_head():
    config = BootDQNConfig().training(num_heads=HEADS, mask_prob=0.5)
    stub = types.SimpleNamespace(config=config, _mask_rng=np.random.default_rng(0))
    masks = BootDQN._bootstrap_masks(stub, {replay.OBS: np.zeros((500, 1))})[BOOTSTRAP_MASK]
    assert masks.shape == (500, HEADS) and masks.dtype == np.float32
    assert set(np.unique(masks)) == {0.0, 1.0}
    # 2000 Bernoulli(0.5) draws: the mean is within 5 standard deviations (0.011 each) of 0.5.
    assert masks.mean() == pytest.approx(0.5, abs=0.056)


def test_learner_takes_masks_as_batch_by_heads(env):
    learner = make_learner(env)
    masks = random_masks(1)
    _, indexes, _, results = loss_and_priorities(learner, deep_sea_batch(env, masks))
    assert peek(results, MASK_MEAN) == pytest.approx(masks.mean())
    assert len(indexes) == BATCH
    # Heads-by-batch (transposed) masks are refused, not silently broadcast.
    with pytest.raises(RuntimeError):
        loss_and_priorities(learner, deep_sea_batch(env, masks.T.copy()))


# 7. Gradients: masked-out head, priors ------------------------------------------------
def test_head_masked_out_on_every_row_and_the_priors_get_no_gradient(env):
    learner = make_learner(env)
    module = module_of(learner)
    idle = 2
    masks = np.ones((BATCH, HEADS), np.float32)
    masks[:, idle] = 0.0
    masks[::3, 0] = 0.0  # a partial mask on another head
    batch = deep_sea_batch(env, masks)

    loss, _, _, _ = loss_and_priorities(learner, batch)
    loss.backward()
    for p in module.qf.parameters():
        assert not p.grad[idle].any()
        assert all(p.grad[k].abs().sum() > 0 for k in range(HEADS) if k != idle)
    assert all(p.grad is None and not p.requires_grad for p in module.prior.parameters())
    assert all(p.grad is None for p in module.target_qf.parameters())
    # No optimizer holds a prior or target parameter.
    optimized = {id(p) for _, opt in learner.get_optimizers_for_module(MID)
                 for g in opt.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in module.qf.parameters()}

    # Through a real update: the idle head and the priors stay as they were, the others move.
    heads_before, prior_before = head_slices(module.qf), params(module.prior)
    update(learner, batch)
    heads_after = head_slices(module.qf)
    assert same(heads_before[idle], heads_after[idle])
    assert all(not same(heads_before[k], heads_after[k]) for k in range(HEADS) if k != idle)
    assert same(prior_before, params(module.prior))


# 7. Per-head double-DQN targets --------------------------------------------------------
def make_greedy_actions_disagree(module) -> None:
    """Online heads prefer action 0 everywhere; target heads prefer action 1 and
    value action 0 at online + 7 (k + 1), a different amount per head.

    Then per head the double-DQN value Q'_k(s', 0), the target max Q'_k(s', 1),
    the online value Q_k(s', 0) and another head's Q'_j(s', 0) all differ.
    """
    with torch.no_grad():
        last = module.qf.layers[-1]
        last.bias[:, :, 0] += 100.0
        module.target_qf.load_state_dict(module.qf.state_dict())
        target_last = module.target_qf.layers[-1]
        target_last.bias[:, :, 1] += 200.0
        target_last.bias[:, 0, 0] += 7.0 * torch.arange(1, HEADS + 1)


def expected_priorities(td: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """Mean |TD error| over the heads that kept each row; over all heads for a row none kept."""
    m = torch.as_tensor(masks).t()
    kept = m.sum(0)
    return torch.where(kept > 0, (td.abs() * m).sum(0) / kept.clamp(min=1), td.abs().mean(0))


def test_per_head_target_is_double_dqn_online_argmax_target_evaluation(env):
    learner = make_learner(env)
    module = module_of(learner)
    make_greedy_actions_disagree(module)
    # Row b kept by head b % K only, the last row by no head: each priority is one head's |TD error|.
    masks = np.zeros((BATCH, HEADS), np.float32)
    masks[np.arange(BATCH), np.arange(BATCH) % HEADS] = 1.0
    masks[-1] = 0.0
    batch = deep_sea_batch(env, masks, seed=1)

    targets = hand_double_q_targets(module, batch)
    q_taken = hand_q_taken(module, batch)
    td = q_taken - targets  # [K, B]
    loss, indexes, priority, _ = loss_and_priorities(learner, batch)
    np.testing.assert_array_equal(indexes, batch[replay.INDEXES])
    rows = np.arange(BATCH - 1)
    torch.testing.assert_close(torch.as_tensor(priority[:-1], dtype=torch.float32),
                               td[rows % HEADS, rows].abs(), rtol=1e-5, atol=1e-4)
    # No head kept it: the mean over all heads (never 0, which would leave it at epsilon).
    assert priority[-1] == pytest.approx(td[:, -1].abs().mean().item(), rel=1e-5)
    torch.testing.assert_close(loss.detach(), hand_masked_loss(td, batch), rtol=1e-5, atol=1e-4)

    # The check tells double DQN from the other targets: each gives another loss.
    next_online = q_all(module, module.qf, batch[replay.NEXT_OBS])
    next_target = q_all(module, module.target_qf, batch[replay.NEXT_OBS])
    r, d = torch.as_tensor(batch[replay.REWARDS]), torch.as_tensor(batch[replay.DISCOUNTS])
    alternatives = {
        "target max": r + d * next_target.max(-1).values,
        "online max": r + d * next_online.max(-1).values,
        "head 0's target for all": (r + d * next_target[0].gather(
            -1, next_online[0].argmax(-1, keepdim=True)).squeeze(-1)).expand(HEADS, -1),
    }
    for name, other in alternatives.items():
        assert abs(hand_masked_loss(q_taken - other, batch) - loss.detach()) > 1.0, name


def test_double_q_false_bootstraps_each_head_from_its_own_target_max(env):
    learner = make_learner(env, double_q=False)
    module = module_of(learner)
    make_greedy_actions_disagree(module)
    batch = deep_sea_batch(env, random_masks(4), seed=4)
    next_target = q_all(module, module.target_qf, batch[replay.NEXT_OBS])
    r, d = torch.as_tensor(batch[replay.REWARDS]), torch.as_tensor(batch[replay.DISCOUNTS])
    q_taken = hand_q_taken(module, batch)
    loss, _, _, _ = loss_and_priorities(learner, batch)
    torch.testing.assert_close(loss.detach(), hand_masked_loss(q_taken - (r + d * next_target.max(-1).values), batch),
                               rtol=1e-5, atol=1e-4)
    assert abs(hand_masked_loss(q_taken - hand_double_q_targets(module, batch), batch) - loss.detach()) > 1.0


def test_masked_loss_is_each_heads_mean_over_its_kept_rows_averaged_over_heads(env):
    learner = make_learner(env)
    module = module_of(learner)
    masks = random_masks(2)
    masks[:, 1] = 0.0  # a head that keeps nothing adds 0 (its mean over no rows)
    masks[5, :] = 0.0
    batch = deep_sea_batch(env, masks, seed=2)
    td = hand_q_taken(module, batch) - hand_double_q_targets(module, batch)

    loss, _, priority, _ = loss_and_priorities(learner, batch)
    torch.testing.assert_close(loss.detach(), hand_masked_loss(td, batch), rtol=1e-5, atol=1e-6)
    # Priorities: mean |TD error| over the heads that kept the row, over all heads where none did.
    expected = expected_priorities(td, masks)
    torch.testing.assert_close(torch.as_tensor(priority, dtype=torch.float32), expected, rtol=1e-5, atol=1e-6)
    assert priority[5] == pytest.approx(td[:, 5].abs().mean().item(), rel=1e-5)


def test_update_hands_back_priorities_matched_with_buffer_indexes(env):
    learner = make_learner(env)
    module = module_of(learner)
    masks = random_masks(3)
    batch = deep_sea_batch(env, masks, seed=3)
    td = hand_q_taken(module, batch) - hand_double_q_targets(module, batch)
    expected = expected_priorities(td, masks)

    results = update(learner, batch)
    indexes, priority = offpolicy.pop_priority_inputs([results])
    np.testing.assert_array_equal(indexes, batch[replay.INDEXES])
    torch.testing.assert_close(torch.as_tensor(priority, dtype=torch.float32), expected, rtol=1e-5, atol=1e-6)


# Head disagreement, logged from the loss's own forward pass ---------------------------------
def set_constant_heads(module, q_by_head: list[list[float]]) -> None:
    """A hand-made ensemble: head k's Q(s, a) = q_by_head[k][a] in every state (last layer's weights 0)."""
    with torch.no_grad():
        last = module.qf.layers[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor(q_by_head).unsqueeze(1))  # [K, 1, A]


@pytest.mark.parametrize(
    ("q_by_head", "disagreement"),
    [
        # Heads 0-2 prefer action 0, head 3 action 1: they disagree in every state.
        ([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 8.0]], 1.0),
        # All prefer action 0, with different values.
        ([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]], 0.0),
    ],
)
def test_learner_logs_head_disagreement_and_q_spread_of_a_hand_made_ensemble(env, q_by_head, disagreement):
    learner = make_learner(env, prior_scale=0.0)
    set_constant_heads(module_of(learner), q_by_head)
    batch = deep_sea_batch(env, random_masks(4), seed=4)
    _, _, _, results = loss_and_priorities(learner, batch)

    # Population std across the 4 heads of Q(s, a) at the replayed action, averaged over the batch.
    per_action_std = np.asarray(q_by_head).std(axis=0)  # [A]
    expected_std = per_action_std[batch[replay.ACTIONS]].mean()
    assert 0 < (batch[replay.ACTIONS] == 0).mean() < 1  # both actions in the batch
    assert peek(results, HEAD_Q_STD) == pytest.approx(expected_std, rel=1e-5)
    assert peek(results, HEAD_DISAGREEMENT) == pytest.approx(disagreement)


def test_one_head_has_no_disagreement(env):
    learner = make_learner(env, num_heads=1)
    batch = env_transitions(env, BATCH, gamma=GAMMA, seed=5)
    batch[BOOTSTRAP_MASK] = np.ones((BATCH, 1), np.float32)
    _, _, _, results = loss_and_priorities(learner, batch)
    assert peek(results, HEAD_Q_STD) == 0.0
    assert peek(results, HEAD_DISAGREEMENT) == 0.0


# The prior's memo: each stored transition's prior computed once, not at every replay ---------------
def counting_prior(module, rows: list[int]):
    def prior_q(x):
        rows.append(len(x))
        return module.prior_q(x)
    return prior_q


def test_prior_memo_returns_the_priors_own_values_and_recomputes_only_what_changed(env):
    learner = make_learner(env)
    module = module_of(learner)
    batch = deep_sea_batch(env, random_masks(6), seed=6)
    slots = torch.as_tensor(batch[replay.INDEXES])
    obs = torch.as_tensor(batch[replay.OBS])
    memo = PriorMemo(capacity=10 * BATCH, obs_dim=SIZE * SIZE, num_heads=HEADS, num_actions=2)
    rows: list[int] = []

    def lookup(o):
        return memo.lookup(slots=slots, obs=o, prior_net=module.prior, prior_q=counting_prior(module, rows))

    torch.testing.assert_close(lookup(obs), module.prior_q(obs).transpose(0, 1))
    assert rows == [BATCH]
    torch.testing.assert_close(lookup(obs), module.prior_q(obs).transpose(0, 1))
    assert rows == [BATCH], "a replayed slot with the same observation is served from the memo"
    # Slots overwritten by newer transitions (other observations) are recomputed, and only those.
    newer = obs.clone()
    newer[:5] = torch.as_tensor(deep_sea_batch(env, random_masks(7), seed=7)[replay.OBS][:5])
    changed = int((newer != obs).any(dim=1).sum())
    assert changed > 0
    torch.testing.assert_close(lookup(newer), module.prior_q(newer).transpose(0, 1))
    assert rows == [BATCH, changed]
    # New prior weights (a restore) drop every entry.
    with torch.no_grad():
        for p in module.prior.parameters():
            p.mul_(-1.0)
    torch.testing.assert_close(lookup(newer), module.prior_q(newer).transpose(0, 1))
    assert rows == [BATCH, changed, BATCH]


def test_updates_through_the_prior_memo_equal_updates_without_it(env):
    with_memo, without = make_learner(env), make_learner(env)
    without._prior_memos = {}
    assert set(with_memo._prior_memos) == {PRIOR_Q, NEXT_PRIOR_Q}
    for seed in (8, 9, 8, 9):  # the second pass replays the same slots: served from the memo
        batch = deep_sea_batch(env, random_masks(seed), seed=seed)
        first, second = update(with_memo, batch), update(without, batch)
        assert peek(first, "qf_loss") == pytest.approx(peek(second, "qf_loss"), rel=1e-5)
    for a, b in zip(params(module_of(with_memo).qf), params(module_of(without).qf), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not with_memo._prior_memos[PRIOR_Q]._obs.isnan().all()


def test_no_prior_no_memo(env):
    assert make_learner(env, prior_scale=0.0)._prior_memos == {}


# Each head on its kept rows (head_rows) ---------------------------------------------------------------------------
def test_head_rows_puts_each_heads_kept_rows_first_in_batch_order_padded_to_the_most_kept():
    masks = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 0, 1], [1, 0, 0]], dtype=torch.float32)  # [B=4, K=3]
    rows, keep = head_rows(masks)
    assert rows.shape == keep.shape == (3, 3)  # head 2 keeps 3 of 4 rows, the most
    assert rows[0, :3].tolist() == [0, 2, 3] and keep[0].tolist() == [1, 1, 1]
    assert keep[1].tolist() == [0, 0, 0]  # a head that keeps nothing: padding only
    assert rows[2].tolist() == [0, 1, 2] and keep[2].tolist() == [1, 1, 1]
    assert head_rows(torch.ones(4, 3)) is None  # every head keeps every row: nothing to select
    # A row is kept when its mask is non-zero, whatever the value, which HEAD_KEEP carries on.
    rows, keep = head_rows(torch.tensor([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]]))
    assert rows.tolist() == [[0, 1], [2, 0]] and keep.tolist() == [[0.5, 0.5], [1.0, 0.0]]


@pytest.mark.parametrize("double_q", [True, False])
@pytest.mark.parametrize("prior_memo", [True, False])
def test_updates_on_each_heads_kept_rows_equal_updates_on_every_row(env, double_q, prior_memo):
    selecting, everything = (make_learner(env, prioritized_replay=False, double_q=double_q) for _ in range(2))
    everything._select_head_rows = False
    assert selecting._select_head_rows
    if not prior_memo:
        selecting._prior_memos = everything._prior_memos = {}
    widths = []  # the rows each head was computed on, per update of `selecting`
    module = module_of(selecting)
    forward_train = module._forward_train
    module._forward_train = lambda batch, **kw: widths.append((out := forward_train(batch, **kw))[Q_VALUES].shape[1]) or out
    masks = [random_masks(seed) for seed in (3, 4)]
    masks[1][:, 1] = 0.0  # head 1 keeps nothing in the second batch
    masks.append(np.ones((BATCH, HEADS), dtype=np.float32))  # a head keeps every row: no selection
    masks[2][:5, 3] = 0.0
    for seed, m in enumerate(masks * 2):
        batch = deep_sea_batch(env, m, seed=seed)
        assert (head_rows(torch.as_tensor(m)) is None) == (seed % 3 == 2)
        first, second = update(selecting, batch), update(everything, batch)
        for key in ("qf_loss", "q_mean", HEAD_DISAGREEMENT, HEAD_Q_STD, MASK_MEAN):
            assert peek(first, key) == pytest.approx(peek(second, key), rel=1e-5, abs=1e-7), key
    for a, b in zip(params(module_of(selecting).qf), params(module_of(everything).qf), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # Per update: the loss's pass on the most any head keeps, then the metrics' pass on every row;
    # one pass on every row where a head keeps them all.
    most = [int(m.sum(0).max()) for m in masks * 2]
    assert widths == [w for k in most for w in ([k, BATCH] if k < BATCH else [BATCH])]
    assert max(most[:2]) < 0.8 * BATCH
