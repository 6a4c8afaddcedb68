"""Advantages for MAML's inner and outer steps: returns minus a linear feature baseline fit per task (numpy).

MAML's paper uses rllab's linear feature baseline (Finn et al. 2017,
section 5.2; Duan et al. 2016, "Benchmarking deep RL", section 6): a
least-squares fit of the discounted returns-to-go on features of the
observation and the time step, refit for every task on that task's own
episodes. Here it is fit separately on each task's pre-adaptation episodes
(for the inner step) and on its post-adaptation episodes (for the outer
step), and the advantages are then standardised over the task's steps, as
rllab's `center_adv`: that makes the inner step size independent of the
reward's scale. None of it depends on the policy's parameters: these are
data, computed on the driver.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# rllab's LinearFeatureBaseline: time scaled by 100, observations clipped to +-10, ridge 1e-5.
TIME_SCALE = 100.0
OBS_CLIP = 10.0
RIDGE = 1e-5


def discounted_returns(rewards: np.ndarray, *, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} over the rest of one episode, [T] -> [T] (float64)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


def baseline_features(obs: np.ndarray) -> np.ndarray:
    """rllab's features of one episode's observations [T, ...]: (o, o^2, t, t^2, t^3, 1), t = step / 100, [T, 2D + 4]."""
    o = np.clip(np.asarray(obs, dtype=np.float64).reshape(len(obs), -1), -OBS_CLIP, OBS_CLIP)
    t = (np.arange(len(obs), dtype=np.float64) / TIME_SCALE)[:, None]
    return np.concatenate([o, o ** 2, t, t ** 2, t ** 3, np.ones_like(t)], axis=1)


def fit_linear_baseline(features: np.ndarray, returns: np.ndarray, *, ridge: float = RIDGE) -> np.ndarray:
    """Ridge least squares w = argmin |F w - G|^2 + ridge |w|^2, F [N, K], G [N] -> w [K]."""
    gram = features.T @ features + ridge * np.eye(features.shape[1])
    return np.linalg.solve(gram, features.T @ returns)


def task_advantages(episodes: Sequence[tuple[np.ndarray, np.ndarray]], *, gamma: float) -> list[np.ndarray]:
    """Standardised advantages of one task's episodes: G_t - b(s_t, t), b fit on these episodes.

    Args:
        episodes: (observations [T, ...] before each action, rewards [T]) per episode.

    Returns:
        One float32 array [T] per episode; over all of the task's steps they have
        mean 0 and standard deviation 1 (unless all are equal).
    """
    returns = [discounted_returns(r, gamma=gamma) for _, r in episodes]
    features = [baseline_features(o) for o, _ in episodes]
    weights = fit_linear_baseline(np.concatenate(features), np.concatenate(returns))
    raw = [g - f @ weights for g, f in zip(returns, features)]
    flat = np.concatenate(raw)
    mean, std = flat.mean(), flat.std()
    return [((a - mean) / (std + 1e-8)).astype(np.float32) for a in raw]
