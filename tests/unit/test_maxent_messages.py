"""MaxEnt IRL's messages (rlfrontier.tabular) against brute-force enumeration on a 3-state MDP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlfrontier import tabular

S, A, T = 3, 2, 4


def _mdp(*, deterministic: bool, seed: int = 0) -> tabular.TabularMDP:
    rng = np.random.default_rng(seed)
    if deterministic:
        nxt = rng.integers(0, S, size=(S, A))
        transitions = np.eye(S)[nxt]
    else:
        transitions = rng.dirichlet(np.ones(S), size=(S, A))
    features = rng.normal(size=(S, 2))
    reward = features @ np.array([0.7, -0.4])
    initial = rng.dirichlet(np.ones(S))
    return tabular.TabularMDP(transitions, features, reward, initial, T)


def _trajectories(mdp: tabular.TabularMDP, policy: np.ndarray):
    """Every (states, actions, probability) of a time-indexed policy over the horizon."""
    for states in itertools.product(range(S), repeat=T):
        for actions in itertools.product(range(A), repeat=T):
            p = mdp.initial[states[0]]
            for t in range(T):
                p *= policy[t, states[t], actions[t]]
                if t + 1 < T:
                    p *= mdp.transitions[states[t], actions[t], states[t + 1]]
            if p > 0:
                yield states, actions, p


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_deterministic_dynamics_give_trajectories_weighted_by_exp_return_given_the_start(alpha):
    """For deterministic dynamics, p(tau | s_0) is proportional to exp(return / alpha) (telescoping soft values)."""
    mdp = _mdp(deterministic=True)
    _, v, pi = tabular.soft_value_iteration(mdp.transitions, mdp.reward, horizon=T, gamma=1.0, alpha=alpha)
    # Brute force: every action sequence from each start, weighted by exp(return / alpha).
    svf = np.zeros(S)
    for s0 in range(S):
        weights, visits = [], []
        for actions in itertools.product(range(A), repeat=T):
            states = [s0]
            for a in actions[:-1]:
                states.append(int(np.argmax(mdp.transitions[states[-1], a])))
            weights.append(np.exp(sum(mdp.reward[s] for s in states) / alpha))
            visits.append(np.bincount(states, minlength=S))
        weights = np.array(weights)
        # The soft value is the log-partition function of the start state.
        np.testing.assert_allclose(v[0, s0], alpha * np.log(weights.sum()), rtol=1e-10)
        svf += mdp.initial[s0] * (weights[:, None] * np.array(visits)).sum(0) / weights.sum()
    np.testing.assert_allclose(tabular.visitation(mdp.transitions, pi, mdp.initial, horizon=T), svf, rtol=1e-10)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_stochastic_dynamics_messages_match_enumeration(gamma):
    """Forward messages equal the enumerated visitation of the soft policy, and the soft value equals
    the enumerated expected return plus the policy's causal entropy (the soft Bellman identity)."""
    mdp = _mdp(deterministic=False, seed=3)
    _, v, pi = tabular.soft_value_iteration(mdp.transitions, mdp.reward, horizon=T, gamma=gamma)
    svf, soft_value = np.zeros(S), 0.0
    for states, actions, p in _trajectories(mdp, pi):
        for t in range(T):
            svf[states[t]] += p * gamma**t
            soft_value += p * gamma**t * (mdp.reward[states[t]] - np.log(pi[t, states[t], actions[t]]))
    np.testing.assert_allclose(tabular.visitation(mdp.transitions, pi, mdp.initial, horizon=T, gamma=gamma), svf,
                               rtol=1e-10)
    np.testing.assert_allclose(mdp.initial @ v[0], soft_value, rtol=1e-10)


def test_soft_policy_beats_every_other_policy_on_the_entropy_regularised_objective():
    mdp = _mdp(deterministic=False, seed=5)
    _, v, pi = tabular.soft_value_iteration(mdp.transitions, mdp.reward, horizon=T)
    rng = np.random.default_rng(0)

    def objective(policy):
        total = 0.0
        for states, actions, p in _trajectories(mdp, policy):
            total += p * sum(mdp.reward[states[t]] - np.log(policy[t, states[t], actions[t]]) for t in range(T))
        return total

    best = objective(pi)
    np.testing.assert_allclose(best, mdp.initial @ v[0], rtol=1e-10)
    for _ in range(5):
        other = rng.dirichlet(np.ones(A), size=(T, S))
        assert objective(other) < best


@pytest.mark.parametrize("gamma", [1.0, 0.95])
def test_visitation_frequencies_sum_to_the_discounted_horizon(gamma):
    mdp = _mdp(deterministic=False, seed=1)
    d = tabular.expected_visitation(mdp, mdp.reward, gamma=gamma)
    np.testing.assert_allclose(d.sum(), sum(gamma**t for t in range(T)), rtol=1e-12)


def test_stationary_discounted_messages_are_the_fixed_point():
    mdp = _mdp(deterministic=False, seed=2)
    gamma = 0.9
    q, v, pi = tabular.soft_value_iteration(mdp.transitions, mdp.reward, horizon=None, gamma=gamma)
    np.testing.assert_allclose(q, mdp.reward[:, None] + gamma * mdp.transitions @ v, atol=1e-9)
    np.testing.assert_allclose(pi.sum(1), 1.0)
    d = tabular.visitation(mdp.transitions, pi, mdp.initial, horizon=None, gamma=gamma)
    np.testing.assert_allclose(d.sum(), 1 / (1 - gamma), rtol=1e-10)
    # Long finite horizons with the stationary policy converge to it.
    long = tabular.visitation(mdp.transitions, np.broadcast_to(pi, (400, S, A)), mdp.initial, horizon=400, gamma=gamma)
    np.testing.assert_allclose(long, d, rtol=1e-8)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_the_gradient_is_the_experts_causal_log_likelihood_gradient_under_stochastic_dynamics(gamma):
    """F^T (mu_E - D) against finite differences of E_expert[sum_t gamma^t log pi_t(a_t | s_t)], the
    expectation enumerated over every trajectory of an expert that is not soft-optimal (a fixed
    random policy), so nothing here is true by construction; and zero at the reward whose soft
    policy the expert is."""
    mdp = _mdp(deterministic=False, seed=4)
    expert_policy = np.random.default_rng(9).dirichlet(np.ones(A), size=(T, S))
    trajectories = list(_trajectories(mdp, expert_policy))
    expert = tabular.visitation(mdp.transitions, expert_policy, mdp.initial, horizon=T, gamma=gamma)

    def log_likelihood(w):
        _, _, pi = tabular.soft_value_iteration(mdp.transitions, mdp.features @ w, horizon=T, gamma=gamma)
        return sum(p * sum(gamma**t * np.log(pi[t, states[t], actions[t]]) for t in range(T))
                   for states, actions, p in trajectories)

    def gradient(w, mu):
        return mdp.features.T @ (mu - tabular.expected_visitation(mdp, mdp.features @ w, gamma=gamma))

    w = np.array([-0.3, 0.5])
    eps = 1e-6
    numeric = [(log_likelihood(w + eps * e) - log_likelihood(w - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(gradient(w, expert), numeric, rtol=1e-6, atol=1e-9)
    assert np.linalg.norm(gradient(w, expert)) > 1e-3
    # At the reward whose soft-optimal policy made the occupancies, the gradient vanishes.
    true_w = np.array([0.7, -0.4])
    soft_expert = tabular.expected_visitation(mdp, mdp.features @ true_w, gamma=gamma)
    np.testing.assert_allclose(gradient(true_w, soft_expert), 0.0, atol=1e-12)


def test_expected_value_difference_is_zero_for_the_true_reward_and_positive_for_its_negation():
    mdp = _mdp(deterministic=False, seed=6)
    evd, best = tabular.expected_value_difference(mdp, mdp.reward)
    assert evd == pytest.approx(0.0, abs=1e-12)
    worse, _ = tabular.expected_value_difference(mdp, -mdp.reward)
    assert worse > 0
    # The optimal value beats every deterministic stationary policy's.
    for actions in itertools.product(range(A), repeat=S):
        policy = tabular.one_hot_policy(np.broadcast_to(np.array(actions), (T, S)), A)
        assert tabular.policy_value(mdp, policy) <= best + 1e-12


def test_ties_go_to_the_lowest_action_whatever_the_reward_scale():
    mdp = _mdp(deterministic=False, seed=6)
    for scale in (0.0, 1.0, 1000.0):
        actions = tabular.optimal_policy(mdp, np.full(S, scale))
        assert (actions == 0).all(), scale


def test_stationary_value_difference_uses_discounted_infinite_horizon_values():
    mdp = _mdp(deterministic=False, seed=6)
    evd, best = tabular.expected_value_difference(mdp, mdp.reward, gamma=0.9, stationary=True)
    assert evd == pytest.approx(0.0, abs=1e-12)
    policy = np.eye(A)[tabular.optimal_stationary_policy(mdp, gamma=0.9)]
    d = tabular.visitation(mdp.transitions, policy, mdp.initial, horizon=None, gamma=0.9)
    assert best == pytest.approx(d @ mdp.reward)
    assert tabular.expected_value_difference(mdp, -mdp.reward, gamma=0.9, stationary=True)[0] > 0


def test_empirical_visitation_counts_discounted_visits_per_episode():
    mu = tabular.empirical_visitation([np.array([0, 1, 1]), np.array([2, 2, 0])], 3, gamma=0.5)
    np.testing.assert_allclose(mu, [(1 + 0.25) / 2, (0.5 + 0.25) / 2, (1 + 0.5) / 2])
