"""Exact inference on tabular MDPs with known dynamics: the messages of MaxEnt IRL.

Control as inference on a finite horizon T, in its causal form (maximum
causal entropy: Ziebart 2010; Levine 2018, sect. 3-4, the variational form;
not Ziebart et al. 2008's algorithm 1, whose backward pass is non-causal and
optimistic under stochastic dynamics). With a state reward r(s), optimality variables p(O_t | s_t) =
exp(r(s_t) / alpha) and a uniform action prior, the backward messages are
soft value iteration,

    Q_t(s, a) = r(s) + gamma * sum_s' P(s' | s, a) V_{t+1}(s'),   V_T = 0,
    V_t(s)    = alpha * log sum_a exp(Q_t(s, a) / alpha),

the policy is pi_t(a | s) = exp((Q_t(s, a) - V_t(s)) / alpha), and the forward
messages are the state visitation frequencies under it,

    d_0 = p_0,   d_{t+1}(s') = sum_{s, a} d_t(s) pi_t(a | s) P(s' | s, a),
    D(s) = sum_{t < T} gamma^t d_t(s)       (sums to T when gamma = 1).

The log-likelihood gradient of a reward r_theta is then
sum_s (mu_E(s) - D(s)) d r_theta(s) / d theta, with mu_E the expert's
(discounted) visitation counts: for a linear reward r = F w, the expert's
feature counts minus the expected ones.

`horizon=None` gives the infinite-horizon discounted variant: a stationary
soft policy (soft value iteration to a fixed point, gamma < 1) and the
discounted visitation D = (I - gamma P_pi^T)^{-1} p_0, which sums to
1 / (1 - gamma).

Rewards here are state rewards, and a step's reward is that of the state the
agent acts from (rlfrontier.envs.gridworld's convention): an episode's return
is sum_{t < T} r(s_t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import warnings

import numpy as np

# Ties among actions: within this fraction of the largest |Q| (at least absolute 1e-9).
TIE_TOLERANCE = 1e-9
# Infinite-horizon soft value iteration stops when the largest change is below this.
FIXED_POINT_TOL = 1e-10
FIXED_POINT_MAX_ITERS = 100_000


@dataclass(frozen=True)
class TabularMDP:
    """A tabular world's known parts.

    Attributes:
        transitions: P[s, a, s'], shape (S, A, S).
        features: state features, shape (S, F).
        reward: the true state reward, shape (S,), for evaluation only.
        initial: the start distribution p_0, shape (S,).
        horizon: the episode length T.
    """

    transitions: np.ndarray
    features: np.ndarray
    reward: np.ndarray
    initial: np.ndarray
    horizon: int

    @classmethod
    def from_env(cls, env: Any) -> "TabularMDP":
        base = getattr(env, "unwrapped", env)
        return cls(
            transitions=np.asarray(base.transition_tensor, dtype=np.float64),
            features=np.asarray(base.state_features, dtype=np.float64),
            reward=np.asarray(base.true_reward, dtype=np.float64),
            initial=np.asarray(base.initial_distribution, dtype=np.float64),
            horizon=int(base.horizon),
        )

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[1]


def _logsumexp(q: np.ndarray, alpha: float) -> np.ndarray:
    top = q.max(axis=-1, keepdims=True)
    return (top + alpha * np.log(np.exp((q - top) / alpha).sum(axis=-1, keepdims=True)))[..., 0]


def soft_value_iteration(
    transitions: np.ndarray, reward: np.ndarray, *, horizon: int | None, gamma: float = 1.0, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward messages.

    Returns:
        (Q, V, pi): with a horizon, shapes (T, S, A), (T + 1, S) (V[T] = 0) and
        (T, S, A), indexed by time; without, (S, A), (S,) and (S, A).
    """
    reward = np.asarray(reward, dtype=np.float64)
    if horizon is None:
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma={gamma} needs to be in [0, 1) without a horizon")
        v = np.zeros(transitions.shape[0])
        for _ in range(FIXED_POINT_MAX_ITERS):
            q = reward[:, None] + gamma * transitions @ v
            v_new = _logsumexp(q, alpha)
            if np.max(np.abs(v_new - v)) < FIXED_POINT_TOL:
                v = v_new
                break
            v = v_new
        else:
            warnings.warn(f"soft value iteration did not converge in {FIXED_POINT_MAX_ITERS} iterations "
                          f"(gamma={gamma})", RuntimeWarning, stacklevel=2)
        q = reward[:, None] + gamma * transitions @ v
        v = _logsumexp(q, alpha)  # so that pi sums to 1 to rounding
        return q, v, np.exp((q - v[:, None]) / alpha)
    num_states, num_actions = transitions.shape[:2]
    q = np.empty((horizon, num_states, num_actions))
    v = np.zeros((horizon + 1, num_states))
    for t in reversed(range(horizon)):
        q[t] = reward[:, None] + gamma * transitions @ v[t + 1]
        v[t] = _logsumexp(q[t], alpha)
    return q, v, np.exp((q - v[:-1, :, None]) / alpha)


def visitation(
    transitions: np.ndarray, policy: np.ndarray, initial: np.ndarray, *, horizon: int | None, gamma: float = 1.0
) -> np.ndarray:
    """Forward messages: D(s) = sum_t gamma^t d_t(s) under `policy` (time-indexed with a horizon)."""
    if horizon is None:
        step = np.einsum("sa,sax->sx", policy, transitions)  # P_pi[s, s']
        return np.linalg.solve(np.eye(len(initial)) - gamma * step.T, initial)
    d = np.asarray(initial, dtype=np.float64)
    total = np.zeros_like(d)
    for t in range(horizon):
        total += gamma**t * d
        d = np.einsum("s,sa,sax->x", d, policy[t], transitions)
    return total


def expected_visitation(mdp: TabularMDP, reward: np.ndarray, *, gamma: float = 1.0,
                        stationary: bool = False, alpha: float = 1.0) -> np.ndarray:
    """D under the soft-optimal policy of `reward` (both messages)."""
    horizon = None if stationary else mdp.horizon
    _, _, pi = soft_value_iteration(mdp.transitions, reward, horizon=horizon, gamma=gamma, alpha=alpha)
    return visitation(mdp.transitions, pi, mdp.initial, horizon=horizon, gamma=gamma)


def greedy(q: np.ndarray) -> np.ndarray:
    """argmax over the last axis, ties (within TIE_TOLERANCE of the scale of q) to the lowest action,
    so that float noise does not break them differently in different states."""
    top = q.max(axis=-1, keepdims=True)
    tolerance = TIE_TOLERANCE * np.maximum(1.0, np.abs(top))
    return np.argmax(q >= top - tolerance, axis=-1)


def hard_value_iteration(mdp: TabularMDP, reward: np.ndarray | None = None, *,
                         gamma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(Q, actions): the optimal finite-horizon Q, shape (T, S, A), and greedy actions, shape (T, S)
    (ties: the lowest action), of `reward` (default: the true reward)."""
    reward = mdp.reward if reward is None else np.asarray(reward, dtype=np.float64)
    q = np.empty((mdp.horizon, mdp.num_states, mdp.num_actions))
    v = np.zeros(mdp.num_states)
    for t in reversed(range(mdp.horizon)):
        q[t] = reward[:, None] + gamma * mdp.transitions @ v
        v = q[t].max(axis=1)
    return q, greedy(q)


def optimal_policy(mdp: TabularMDP, reward: np.ndarray | None = None, *, gamma: float = 1.0) -> np.ndarray:
    """The deterministic optimal finite-horizon policy, shape (T, S) of actions (ties: the lowest action)."""
    return hard_value_iteration(mdp, reward, gamma=gamma)[1]


def optimal_stationary_policy(mdp: TabularMDP, reward: np.ndarray | None = None, *, gamma: float) -> np.ndarray:
    """The deterministic optimal discounted policy, shape (S,) of actions, by value iteration (gamma < 1)."""
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma={gamma} needs to be in [0, 1) without a horizon")
    reward = mdp.reward if reward is None else np.asarray(reward, dtype=np.float64)
    v = np.zeros(mdp.num_states)
    for _ in range(FIXED_POINT_MAX_ITERS):
        v_new = (reward[:, None] + gamma * mdp.transitions @ v).max(axis=1)
        done = np.max(np.abs(v_new - v)) < FIXED_POINT_TOL
        v = v_new
        if done:
            break
    return greedy(reward[:, None] + gamma * mdp.transitions @ v)


def one_hot_policy(actions: np.ndarray, num_actions: int) -> np.ndarray:
    """(T, S) actions -> (T, S, A) probabilities."""
    return np.eye(num_actions)[actions]


def policy_value(mdp: TabularMDP, policy: np.ndarray, reward: np.ndarray | None = None, *, gamma: float = 1.0) -> float:
    """Expected return sum_{t<T} gamma^t r(s_t) of a (T, S, A) policy from p_0 (default: the true reward)."""
    reward = mdp.reward if reward is None else reward
    return float(visitation(mdp.transitions, policy, mdp.initial, horizon=mdp.horizon, gamma=gamma) @ reward)


def expected_value_difference(mdp: TabularMDP, learned_reward: np.ndarray, *, gamma: float = 1.0,
                              stationary: bool = False) -> tuple[float, float]:
    """(EVD, optimal value): the true value of the optimal policy minus that of the policy optimal
    for `learned_reward` (Levine et al. 2011), and the former, from p_0: over the horizon, or
    (`stationary`) the infinite-horizon discounted values (gamma < 1) of stationary policies."""
    if stationary:
        def value(reward):
            policy = np.eye(mdp.num_actions)[optimal_stationary_policy(mdp, reward, gamma=gamma)]
            return float(visitation(mdp.transitions, policy, mdp.initial, horizon=None, gamma=gamma) @ mdp.reward)
    else:
        def value(reward):
            return policy_value(mdp, one_hot_policy(optimal_policy(mdp, reward, gamma=gamma), mdp.num_actions),
                                gamma=gamma)
    best = value(None)
    return best - value(learned_reward), best


def empirical_visitation(states: list[np.ndarray], num_states: int, *, gamma: float = 1.0) -> np.ndarray:
    """mu_E(s): the mean over episodes of sum_t gamma^t [s_t = s], from each episode's visited states in order."""
    total = np.zeros(num_states)
    for episode in states:
        episode = np.asarray(episode, dtype=np.int64)
        np.add.at(total, episode, gamma ** np.arange(len(episode), dtype=np.float64))
    return total / max(len(states), 1)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (nan when either is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")
