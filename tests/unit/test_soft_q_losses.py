"""Soft Q-learning losses: hand-computed cases and properties over random tensors."""

from __future__ import annotations

import math

import pytest
import torch

from rlfrontier.algorithms.soft_q import losses

from rlfrontier.algorithms.soft_q.losses import (
    boltzmann_log_probs,
    default_target_entropy,
    hard_bellman_target,
    policy_entropy,
    soft_bellman_target,
    soft_n_step_target,
    soft_value,
    td_loss,
    temperature_loss,
    twin_priority_td_error,
)

E = math.e
# q = [[1, 2], [0, 0]] is the running example of the hand-computed tests.
Q = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)


def assert_close_to(actual: torch.Tensor, expected, *, atol: float = 1e-9) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0.0)


# ----------------------------------------------------------------------------
# Hand-computed values
# ----------------------------------------------------------------------------


def test_soft_value_alpha_one_is_log_sum_exp():
    # alpha=1: V = log(e^1 + e^2) for row 0 and log(e^0 + e^0) = log 2 for row 1.
    assert_close_to(soft_value(q=Q, alpha=1.0), [math.log(E + E**2), math.log(2.0)])


def test_soft_value_alpha_half_scales_inside_and_outside():
    # alpha=0.5: V = 0.5 * log(e^(1/0.5) + e^(2/0.5)) = 0.5 * log(e^2 + e^4);
    # row 1: 0.5 * log(1 + 1) = 0.5 * log 2.
    assert_close_to(soft_value(q=Q, alpha=0.5), [0.5 * math.log(E**2 + E**4), 0.5 * math.log(2.0)])


def test_soft_value_accepts_tensor_alpha_and_keeps_its_gradient():
    # V = alpha * log(e^(1/alpha) + e^(2/alpha)); at alpha=1:
    # dV/dalpha = log(e + e^2) - (1 * e + 2 * e^2) / (e + e^2) = log(e + e^2) - (1 + 2e) / (1 + e).
    alpha = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    soft_value(q=Q[:1], alpha=alpha).sum().backward()
    assert_close_to(alpha.grad, math.log(E + E**2) - (1 + 2 * E) / (1 + E))


def test_boltzmann_log_probs_hand_computed():
    # log pi = (Q - V) / alpha with alpha=1:
    # row 0: [1 - log(e + e^2), 2 - log(e + e^2)] = [-log(1 + e), -log(1 + 1/e)];
    # row 1: [-log 2, -log 2].
    expected = [
        [-math.log(1 + E), -math.log(1 + 1 / E)],
        [-math.log(2.0), -math.log(2.0)],
    ]
    assert_close_to(boltzmann_log_probs(q=Q, alpha=1.0), expected)


def test_boltzmann_log_probs_low_temperature_sharpens():
    # alpha=0.5: row 0 is softmax([2, 4]) -> p(a=0) = 1 / (1 + e^2).
    log_pi = boltzmann_log_probs(q=Q, alpha=0.5)
    assert_close_to(log_pi[0].exp(), [1 / (1 + E**2), E**2 / (1 + E**2)])


def test_policy_entropy_hand_computed():
    # Row 0: p = 1 / (1 + e), H = -p log p - (1 - p) log(1 - p); row 1 is uniform: log 2.
    p = 1 / (1 + E)
    h0 = -p * math.log(p) - (1 - p) * math.log(1 - p)
    assert_close_to(policy_entropy(q=Q, alpha=1.0), [h0, math.log(2.0)])


def test_policy_entropy_of_a_peaked_policy_is_near_zero():
    # Q gap of 100 at alpha=1: p(other) = 1 / (1 + e^100) ~ 4e-44, H ~ 100 * 4e-44 ~ 0.
    q = torch.tensor([[100.0, 0.0, 0.0]], dtype=torch.float64)
    assert_close_to(policy_entropy(q=q, alpha=1.0), [0.0], atol=1e-30)


def test_soft_bellman_target_one_step():
    # rewards [1, 2], discounts [0.9, 0] (second is terminal), next_q = Q, alpha=1:
    # [1 + 0.9 * log(e + e^2), 2 + 0 * log 2] = [1 + 0.9 * log(e + e^2), 2].
    target = soft_bellman_target(
        rewards=torch.tensor([1.0, 2.0], dtype=torch.float64),
        discounts=torch.tensor([0.9, 0.0], dtype=torch.float64),
        next_q_target=Q,
        alpha=1.0,
    )
    assert_close_to(target, [1 + 0.9 * math.log(E + E**2), 2.0])


def test_hard_bellman_target_one_step():
    # max_a Q = [2, 0]: [1 + 0.9 * 2, 2 + 0 * 0] = [2.8, 2].
    target = hard_bellman_target(
        rewards=torch.tensor([1.0, 2.0], dtype=torch.float64),
        discounts=torch.tensor([0.9, 0.0], dtype=torch.float64),
        next_q_target=Q,
    )
    assert_close_to(target, [2.8, 2.0])


def test_soft_bellman_target_n_step_with_a_terminal():
    # gamma = 0.9, n = 3, rewards r = [1, 2, 3, 4] of an episode that terminates after r3.
    # Transition t=0: R = 1 + 0.9 * 2 + 0.81 * 3 = 5.23, bootstraps from s_3 with gamma^3 = 0.729.
    # Transition t=1: R = 2 + 0.9 * 3 + 0.81 * 4 = 7.94, its window reaches the terminal: discount 0.
    # next_q rows: s_3 -> [1, 2] (V = log(e + e^2) at alpha=1), terminal row is ignored ([50, -50]).
    rewards = torch.tensor([1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3 + 0.81 * 4], dtype=torch.float64)
    assert_close_to(rewards, [5.23, 7.94])
    discounts = torch.tensor([0.9**3, 0.0], dtype=torch.float64)
    next_q = torch.tensor([[1.0, 2.0], [50.0, -50.0]], dtype=torch.float64)
    soft = soft_bellman_target(rewards=rewards, discounts=discounts, next_q_target=next_q, alpha=1.0)
    assert_close_to(soft, [5.23 + 0.729 * math.log(E + E**2), 7.94])
    hard = hard_bellman_target(rewards=rewards, discounts=discounts, next_q_target=next_q)
    assert_close_to(hard, [5.23 + 0.729 * 2.0, 7.94])


def test_soft_n_step_target_adds_the_entropy_of_each_intermediate_state():
    # n = 3, gamma = 0.9, alpha = 1, one transition whose window is full:
    # R = 5.23, intermediate states with target Q [0, 0] (H = log 2) and [1, 2]
    # (H = h0, the running example), bootstrap Q [1, 2] with gamma^3 = 0.729:
    # 5.23 + 0.9 log 2 + 0.81 h0 + 0.729 log(e + e^2).
    p = 1 / (1 + E)
    h0 = -p * math.log(p) - (1 - p) * math.log(1 - p)
    target = soft_n_step_target(
        rewards=torch.tensor([5.23], dtype=torch.float64),
        discounts=torch.tensor([0.729], dtype=torch.float64),
        next_q_target=Q[:1],
        alpha=1.0,
        intermediate_q_target=torch.stack([Q[1], Q[0]]).unsqueeze(0),
        intermediate_discounts=torch.tensor([[0.9, 0.81]], dtype=torch.float64),
    )
    assert_close_to(target, [5.23 + 0.9 * math.log(2) + 0.81 * h0 + 0.729 * math.log(E + E**2)])


def test_soft_n_step_target_scales_the_entropy_by_alpha():
    # alpha = 0.5, uniform intermediate policy (Q = [0, 0]): entropy bonus 0.5 * 0.9 * log 2;
    # terminal inside the window: discounts 0, the bootstrap row is ignored.
    target = soft_n_step_target(
        rewards=torch.tensor([1.0], dtype=torch.float64),
        discounts=torch.tensor([0.0], dtype=torch.float64),
        next_q_target=torch.tensor([[50.0, -50.0]], dtype=torch.float64),
        alpha=0.5,
        intermediate_q_target=torch.zeros(1, 1, 2, dtype=torch.float64),
        intermediate_discounts=torch.tensor([[0.9]], dtype=torch.float64),
    )
    assert_close_to(target, [1.0 + 0.5 * 0.9 * math.log(2)])


def test_soft_n_step_target_ignores_states_outside_the_window():
    # intermediate_discounts 0: the intermediate Q-values (even huge) add nothing.
    kwargs = dict(
        rewards=torch.tensor([1.0, 2.0], dtype=torch.float64),
        discounts=torch.tensor([0.9, 0.0], dtype=torch.float64),
        next_q_target=Q,
        alpha=1.0,
    )
    with_zeros = soft_n_step_target(
        **kwargs,
        intermediate_q_target=torch.full((2, 2, 2), 1e6, dtype=torch.float64),
        intermediate_discounts=torch.zeros(2, 2, dtype=torch.float64),
    )
    torch.testing.assert_close(with_zeros, soft_bellman_target(**kwargs))
    torch.testing.assert_close(soft_n_step_target(**kwargs), soft_bellman_target(**kwargs))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_soft_n_step_target_tends_to_the_hard_n_step_target_as_alpha_tends_to_zero(seed):
    # alpha -> 0: V -> max Q and alpha * H -> 0, so the n-step soft backup becomes
    # R + gamma^k max_a Q(s_{t+k}, a); the entropy bonus is at most alpha * log|A| * sum gamma^j.
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    inter = torch.randn(16, 2, 5, generator=gen, dtype=torch.float64)
    rewards = torch.randn(16, generator=gen, dtype=torch.float64)
    discounts = torch.full((16,), 0.729, dtype=torch.float64)
    inter_discounts = torch.tensor([[0.9, 0.81]], dtype=torch.float64).expand(16, 2)
    soft = soft_n_step_target(
        rewards=rewards, discounts=discounts, next_q_target=q, alpha=1e-4,
        intermediate_q_target=inter, intermediate_discounts=inter_discounts,
    )
    hard = hard_bellman_target(rewards=rewards, discounts=discounts, next_q_target=q)
    assert torch.all((soft - hard).abs() <= 1e-4 * math.log(5) * (1 + 0.9 + 0.81 + 0.729) + 1e-9)


def test_twin_priority_td_error_does_not_cancel_opposite_signs():
    # Regression: 0.5 * (td1 + td2) gave [0, 0, 0.5] here, starving transitions both heads get wrong.
    td = torch.tensor([1.0, -2.0, 0.5, -4.0], dtype=torch.float64)
    twin = torch.tensor([-1.0, 2.0, 0.5, -2.0], dtype=torch.float64)
    assert_close_to(twin_priority_td_error(td_error=td, td_error_twin=twin), [1.0, 2.0, 0.5, 3.0])


def test_bellman_targets_carry_no_gradient():
    next_q = Q.clone().requires_grad_(True)
    rewards = torch.ones(2, dtype=torch.float64)
    discounts = torch.full((2,), 0.9, dtype=torch.float64)
    soft = soft_bellman_target(rewards=rewards, discounts=discounts, next_q_target=next_q, alpha=1.0)
    hard = hard_bellman_target(rewards=rewards, discounts=discounts, next_q_target=next_q)
    n_step = soft_n_step_target(
        rewards=rewards, discounts=discounts, next_q_target=next_q, alpha=1.0,
        intermediate_q_target=next_q.unsqueeze(1), intermediate_discounts=discounts.unsqueeze(1),
    )
    assert not soft.requires_grad
    assert not hard.requires_grad
    assert not n_step.requires_grad


# td_loss example: q_taken = [0, 0, 0], targets [0.5, 2, -3] -> td_error = [0.5, 2, -3].
Q_TAKEN = torch.zeros(3, dtype=torch.float64)
TARGETS = torch.tensor([0.5, 2.0, -3.0], dtype=torch.float64)
WEIGHTS = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)


def test_td_loss_squared_error_unweighted():
    # 0.5 * x^2 = [0.125, 2, 4.5]; mean = 6.625 / 3.
    loss, td_error = td_loss(q_taken=Q_TAKEN, q_target_soft=TARGETS, huber_delta=None)
    assert_close_to(loss, 6.625 / 3)
    assert_close_to(td_error, [0.5, 2.0, -3.0])


def test_td_loss_squared_error_weighted():
    # [0.125 * 1, 2 * 2, 4.5 * 0.5] = [0.125, 4, 2.25]; mean = 6.375 / 3 = 2.125.
    loss, _ = td_loss(q_taken=Q_TAKEN, q_target_soft=TARGETS, weights=WEIGHTS, huber_delta=None)
    assert_close_to(loss, 2.125)


def test_td_loss_huber_weighted():
    # Huber(delta=1): |x| < 1 -> 0.5 x^2, else |x| - 0.5: [0.125, 1.5, 2.5];
    # weighted [0.125, 3, 1.25]; mean = 4.375 / 3.
    loss, td_error = td_loss(q_taken=Q_TAKEN, q_target_soft=TARGETS, weights=WEIGHTS, huber_delta=1.0)
    assert_close_to(loss, 4.375 / 3)
    assert_close_to(td_error, [0.5, 2.0, -3.0])


def test_td_loss_huber_delta_two():
    # Huber(delta=2): 0.5 x^2 if |x| <= 2 else 2 (|x| - 1): [0.125, 2, 4]; mean = 6.125 / 3.
    loss, _ = td_loss(q_taken=Q_TAKEN, q_target_soft=TARGETS, huber_delta=2.0)
    assert_close_to(loss, 6.125 / 3)


def test_td_loss_gradient_and_detached_td_error():
    # Squared error: d loss / d q_i = -(target_i - q_i) * w_i / B
    # = [-0.5 * 1, -2 * 2, 3 * 0.5] / 3 = [-1/6, -4/3, 1/2].
    q_taken = Q_TAKEN.clone().requires_grad_(True)
    loss, td_error = td_loss(q_taken=q_taken, q_target_soft=TARGETS, weights=WEIGHTS, huber_delta=None)
    loss.backward()
    assert_close_to(q_taken.grad, [-1 / 6, -4 / 3, 0.5])
    assert not td_error.requires_grad


def test_td_loss_huber_gradient_is_clipped_at_delta():
    # Huber(delta=1): gradient -x * w / B inside, -sign(x) * w / B outside:
    # [-0.5 * 1, -1 * 2, +1 * 0.5] / 3.
    q_taken = Q_TAKEN.clone().requires_grad_(True)
    loss, _ = td_loss(q_taken=q_taken, q_target_soft=TARGETS, weights=WEIGHTS, huber_delta=1.0)
    loss.backward()
    assert_close_to(q_taken.grad, [-0.5 / 3, -2 / 3, 0.5 / 3])


def test_temperature_loss_value():
    # log_alpha = log 0.5, mean entropy (0.1 + 0.3) / 2 = 0.2, target 0.5: loss = log 0.5 * (-0.3).
    log_alpha = torch.tensor(math.log(0.5), dtype=torch.float64)
    loss = temperature_loss(
        log_alpha=log_alpha, entropy=torch.tensor([0.1, 0.3], dtype=torch.float64), target_entropy=0.5
    )
    assert_close_to(loss, math.log(0.5) * -0.3)


def test_temperature_loss_raises_alpha_when_entropy_below_target():
    # d loss / d log_alpha = mean H - H_target = 0.2 - 0.5 = -0.3 < 0: descent raises alpha.
    log_alpha = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    entropy = torch.tensor([0.1, 0.3], dtype=torch.float64)
    temperature_loss(log_alpha=log_alpha, entropy=entropy, target_entropy=0.5).backward()
    assert_close_to(log_alpha.grad, -0.3)
    assert log_alpha.grad < 0
    optimizer = torch.optim.SGD([log_alpha], lr=0.1)
    optimizer.step()
    assert log_alpha.item() > 0.0


def test_temperature_loss_lowers_alpha_when_entropy_above_target():
    # d loss / d log_alpha = 0.6 - 0.5 = 0.1 > 0: descent lowers alpha.
    log_alpha = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    entropy = torch.tensor([0.6], dtype=torch.float64)
    temperature_loss(log_alpha=log_alpha, entropy=entropy, target_entropy=0.5).backward()
    assert_close_to(log_alpha.grad, 0.1)


def test_temperature_loss_sends_no_gradient_into_the_q_values():
    q = Q.clone().requires_grad_(True)
    log_alpha = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    entropy = policy_entropy(q=q, alpha=log_alpha.exp())
    temperature_loss(log_alpha=log_alpha, entropy=entropy, target_entropy=0.1).backward()
    assert q.grad is None
    # Only the explicit log_alpha factor: H(alpha=1) - 0.1, not dH/dalpha.
    assert_close_to(log_alpha.grad, entropy.detach().mean() - 0.1)


def test_default_target_entropy():
    # 0.5 * log 2.
    assert default_target_entropy(num_actions=2, ratio=0.5) == pytest.approx(0.5 * math.log(2))
    assert default_target_entropy(num_actions=6, ratio=1.0) == pytest.approx(math.log(6))
    assert default_target_entropy(num_actions=4, ratio=0.0) == 0.0


def test_default_target_entropy_matches_config_resolution():
    from rlfrontier.algorithms.soft_q import SoftQConfig

    config = SoftQConfig().training(target_entropy_ratio=0.3)
    assert config.resolved_target_entropy(5) == pytest.approx(
        default_target_entropy(num_actions=5, ratio=0.3)
    )


# ----------------------------------------------------------------------------
# Properties over random Q-values
# ----------------------------------------------------------------------------

SEEDS = [0, 1, 2, 3]
SCALES = [0.01, 1.0, 30.0]
ALPHAS = [1e-3, 0.05, 1.0, 10.0, 1e3]


def _random_q(seed: int, scale: float, *, batch: int = 64, actions: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, actions, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_soft_value_tends_to_max_as_alpha_tends_to_zero(seed, scale):
    # 0 <= V - max Q <= alpha * log|A| = 1e-4 * log 5.
    q = _random_q(seed, scale)
    v = soft_value(q=q, alpha=1e-4)
    max_q = q.max(dim=-1).values
    tol = 1e-4 * math.log(5) + 1e-9 * (1 + scale)
    assert torch.all((v - max_q).abs() <= tol)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_soft_target_tends_to_hard_target_as_alpha_tends_to_zero(seed, scale):
    q = _random_q(seed, scale)
    gen = torch.Generator().manual_seed(seed + 100)
    rewards = torch.randn(q.shape[0], generator=gen, dtype=torch.float64)
    discounts = torch.rand(q.shape[0], generator=gen, dtype=torch.float64)
    discounts[::3] = 0.0  # some terminals
    soft = soft_bellman_target(rewards=rewards, discounts=discounts, next_q_target=q, alpha=1e-4)
    hard = hard_bellman_target(rewards=rewards, discounts=discounts, next_q_target=q)
    tol = 1e-4 * math.log(5) + 1e-9 * (1 + scale)
    assert torch.all((soft - hard).abs() <= tol)
    # Terminal transitions get exactly the reward in both backups.
    torch.testing.assert_close(soft[::3], rewards[::3], atol=0.0, rtol=0.0)
    torch.testing.assert_close(hard[::3], rewards[::3], atol=0.0, rtol=0.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_soft_value_is_between_max_and_max_plus_alpha_log_a(seed, alpha):
    # max_a Q <= V = alpha * logsumexp(Q / alpha) <= max_a Q + alpha * log|A|.
    for scale in SCALES:
        q = _random_q(seed, scale)
        v = soft_value(q=q, alpha=alpha)
        max_q = q.max(dim=-1).values
        slack = 1e-12 * (1 + scale + alpha)
        assert torch.all(v >= max_q - slack)
        assert torch.all(v <= max_q + alpha * math.log(q.shape[-1]) + slack)


@pytest.mark.parametrize("seed", SEEDS)
def test_entropy_tends_to_log_num_actions_as_alpha_grows(seed):
    # |Q| <~ 4 * 10 = 40, alpha = 1e4: logits within 4e-3 of each other, H within ~1e-5 of log 5.
    q = _random_q(seed, 10.0)
    h = policy_entropy(q=q, alpha=1e4)
    assert torch.all((h - math.log(5)).abs() < 1e-4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_entropy_is_between_zero_and_log_num_actions(seed, alpha):
    q = _random_q(seed, 5.0)
    h = policy_entropy(q=q, alpha=alpha)
    assert torch.all(h >= -1e-12)
    assert torch.all(h <= math.log(5) + 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_boltzmann_probabilities_sum_to_one_and_match_the_soft_value(seed, alpha):
    q = _random_q(seed, 3.0)
    log_pi = boltzmann_log_probs(q=q, alpha=alpha)
    torch.testing.assert_close(log_pi.exp().sum(dim=-1), torch.ones(q.shape[0], dtype=q.dtype))
    # log pi(a|s) = (Q(s, a) - V(s)) / alpha.
    v = soft_value(q=q, alpha=alpha)
    torch.testing.assert_close(log_pi, (q - v[:, None]) / alpha, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_boltzmann_policy_prefers_higher_q(seed):
    q = _random_q(seed, 3.0)
    log_pi = boltzmann_log_probs(q=q, alpha=0.7)
    assert torch.equal(log_pi.argmax(dim=-1), q.argmax(dim=-1))


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_value_shifts_with_q_and_entropy_does_not(seed):
    # V(Q + c) = V(Q) + c and pi is shift-invariant.
    q = _random_q(seed, 3.0)
    torch.testing.assert_close(soft_value(q=q + 7.5, alpha=0.3), soft_value(q=q, alpha=0.3) + 7.5)
    torch.testing.assert_close(policy_entropy(q=q + 7.5, alpha=0.3), policy_entropy(q=q, alpha=0.3))


def test_soft_value_is_stable_for_large_q_in_float32():
    # logsumexp, not log(sum(exp)): Q = 1000 at alpha = 0.01 would overflow exp(1e5).
    q = torch.tensor([[1000.0, 999.0]])
    v = soft_value(q=q, alpha=0.01)
    assert torch.isfinite(v).all()
    assert v.item() == pytest.approx(1000.0, abs=1e-3)


def test_soft_q_bounds_on_cartpole_and_the_toy_mdp_hold_the_soft_fixed_points():
    lower, upper = losses.soft_q_bounds(reward_min=1.0, reward_max=1.0, gamma=0.99, alpha=0.05, num_actions=2)
    # A terminal next state gives Q = r = 1; never terminating gives (1 + gamma alpha log 2) / (1 - gamma).
    assert lower == pytest.approx(1.0)
    assert upper == pytest.approx((1 + 0.99 * 0.05 * math.log(2)) / 0.01)
    assert upper == pytest.approx(103.43, abs=0.01)
    # The one-state, two-action toy MDP (r = 0, alpha = 1): its soft fixed point 68.62 (a uniform
    # policy, the largest entropy) is the upper end itself.
    lower, upper = losses.soft_q_bounds(reward_min=0.0, reward_max=0.0, gamma=0.99, alpha=1.0, num_actions=2)
    assert lower == 0.0 and upper == pytest.approx(99 * math.log(2))
    assert 0.99 * math.log(2) / 0.01 == pytest.approx(upper)
    # Negative rewards: the lower end is the discounted sum, the upper end a terminal step's reward.
    lower, upper = losses.soft_q_bounds(reward_min=-1.0, reward_max=-1.0, gamma=0.9, alpha=0.01, num_actions=4)
    assert lower == pytest.approx(-10.0) and upper == pytest.approx(-1.0)
