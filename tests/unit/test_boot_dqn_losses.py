"""Bootstrapped DQN losses against hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from rlfrontier.algorithms.boot_dqn import losses


def test_double_q_targets_take_each_heads_online_argmax_from_its_own_target():
    # K=2 heads, B=2, A=3.
    next_q_online = torch.tensor([[[1.0, 5.0, 2.0], [0.0, 0.0, 9.0]],
                                  [[7.0, 1.0, 2.0], [3.0, 4.0, 1.0]]])
    next_q_target = torch.tensor([[[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]],
                                  [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]])
    rewards = torch.tensor([1.0, 2.0])
    discounts = torch.tensor([0.5, 0.0])
    targets = losses.double_q_targets(rewards=rewards, discounts=discounts,
                                      next_q_online=next_q_online, next_q_target=next_q_target)
    # head 0: argmax (1, 2) -> target 20, 60; head 1: argmax (0, 1) -> -1, -5.
    expected = torch.tensor([[1.0 + 0.5 * 20.0, 2.0 + 0.0 * 60.0],
                             [1.0 + 0.5 * -1.0, 2.0 + 0.0 * -5.0]])
    torch.testing.assert_close(targets, expected)
    assert not targets.requires_grad


def test_max_q_targets_take_each_heads_own_target_max():
    next_q_target = torch.tensor([[[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]],
                                  [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]])
    targets = losses.max_q_targets(rewards=torch.tensor([1.0, 2.0]), discounts=torch.tensor([0.5, 0.0]),
                                   next_q_target=next_q_target)
    torch.testing.assert_close(targets, torch.tensor([[1.0 + 0.5 * 30.0, 2.0], [1.0 + 0.5 * -1.0, 2.0]]))


def test_masked_td_loss_is_the_mean_over_heads_of_each_heads_masked_mean():
    q_taken = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], requires_grad=True)  # [K=2, B=3]
    targets = torch.tensor([[0.0, 0.0, 0.0], [1.0, 3.0, -2.0]])
    masks = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # [B, K]
    loss, td_error = losses.masked_td_loss(q_taken=q_taken, targets=targets, masks=masks, huber_delta=None)
    # head 0 keeps b0, b1: 0.5*(1 + 4)/2 = 1.25; head 1 keeps b1, b2: 0.5*(9 + 4)/2 = 3.25.
    assert loss.item() == pytest.approx((1.25 + 3.25) / 2)
    # |td| averaged over the heads that kept each transition.
    torch.testing.assert_close(td_error, torch.tensor([1.0, (2.0 + 3.0) / 2, 2.0]))
    loss.backward()
    # A masked-out element gets no gradient.
    assert q_taken.grad[0, 2] == 0 and q_taken.grad[1, 0] == 0


def test_masked_td_loss_with_all_masks_on_and_one_head_is_plain_td_loss():
    q_taken = torch.tensor([[0.5, -1.0, 4.0]])
    targets = torch.tensor([[0.0, 1.0, 1.0]])
    loss, _ = losses.masked_td_loss(q_taken=q_taken, targets=targets, masks=torch.ones(3, 1), huber_delta=1.0)
    expected = torch.nn.functional.huber_loss(q_taken[0], targets[0], delta=1.0)
    assert loss.item() == pytest.approx(expected.item())


def test_importance_weights_scale_each_transition():
    q_taken = torch.tensor([[1.0, 1.0]])
    targets = torch.zeros(1, 2)
    weights = torch.tensor([1.0, 0.0])
    loss, _ = losses.masked_td_loss(q_taken=q_taken, targets=targets, masks=torch.ones(2, 1),
                                    weights=weights, huber_delta=None)
    assert loss.item() == pytest.approx(0.5 * 1.0 / 2)


def test_a_head_with_no_kept_transition_contributes_zero_not_nan():
    loss, td_error = losses.masked_td_loss(q_taken=torch.ones(2, 2), targets=torch.zeros(2, 2),
                                           masks=torch.tensor([[1.0, 0.0], [1.0, 0.0]]), huber_delta=None)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.5 * 1.0 / 2)
    assert torch.isfinite(td_error).all()


def test_vote_takes_the_majority_and_breaks_ties_by_mean_q():
    # 3 heads, 2 states, 2 actions.
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],
                      [[1.0, 0.0], [0.0, 5.0]],
                      [[0.0, 9.0], [1.0, 0.0]]])
    # state 0: votes 2 for action 0 though action 1 has the higher mean Q.
    # state 1: votes 2 for action 1.
    torch.testing.assert_close(losses.vote(q), torch.tensor([0, 1]))
    tie = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]]])  # one vote each; mean Q favours action 1
    torch.testing.assert_close(losses.vote(tie), torch.tensor([1]))


def test_head_disagreement_counts_states_where_heads_disagree():
    agree = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 3.0]]])
    assert losses.head_disagreement(agree).item() == 0.0
    half = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [3.0, 0.0]]])
    assert losses.head_disagreement(half).item() == pytest.approx(0.5)


def test_head_q_std_is_the_batch_mean_of_the_population_std_across_heads():
    # K = 3 heads, B = 2: std of (1, 2, 3) is sqrt(2/3); of (4, 4, 4) is 0.
    q_taken = torch.tensor([[1.0, 4.0], [2.0, 4.0], [3.0, 4.0]])
    assert losses.head_q_std(q_taken).item() == pytest.approx(math.sqrt(2 / 3) / 2)
    # One head: no spread (not nan, as the unbiased estimate would give).
    assert losses.head_q_std(torch.tensor([[1.0, -5.0]])).item() == 0.0


def test_a_transition_no_head_kept_gets_the_mean_td_error_of_all_heads_as_priority():
    # Priority |td| + eps with td 0 would leave it at eps for ever (never replayed,
    # and the smallest probability that normalises every importance weight).
    q_taken = torch.tensor([[1.0, 2.0], [3.0, 6.0]])  # [K=2, B=2]
    masks = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # b1 kept by no head
    _, td_error = losses.masked_td_loss(q_taken=q_taken, targets=torch.zeros(2, 2), masks=masks, huber_delta=None)
    torch.testing.assert_close(td_error, torch.tensor([1.0, (2.0 + 6.0) / 2]))
