"""A transition-level replay buffer for the project's off-policy algorithms.

Why not RLlib's episode replay buffers: they build an episode object per
sampled transition (about 200 microseconds per replayed transition here, half
of a DQN-style learner's wall time; see ../shared/RLLIB_NOTES.md). This buffer
keeps transitions in preallocated numpy ring arrays, samples a whole batch with
a few vectorised index operations, and supports proportional prioritised
replay (Schaul et al. 2016) through an array sum tree.

N-step returns are folded in when episodes are added (`transitions_from_episodes`),
so a stored transition is (obs, action, R^(n), next_obs after k <= n steps,
discount = gamma^k * (1 - terminated)) and the learner needs no episode logic.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

OBS = "obs"
ACTIONS = "actions"
REWARDS = "rewards"
NEXT_OBS = "new_obs"
DISCOUNTS = "discounts"
WEIGHTS = "weights"
INDEXES = "buffer_indexes"


def transitions_from_episodes(
    episodes: Iterable, *, gamma: float, n_step: int
) -> dict[str, np.ndarray] | None:
    """Turns sampled episode chunks into n-step transitions.

    A chunk that ends without termination is bootstrapped from its last
    observation, so transitions near a chunk's end use k < n steps; their
    discount gamma^k says so. That keeps each chunk self-contained: no state
    is carried between `sample()` calls.

    Args:
        episodes: RLlib SingleAgentEpisode chunks (numpy-ised), as returned by
            EnvRunner.sample().
        gamma: discount factor.
        n_step: return horizon n >= 1.

    Returns:
        Column dict with OBS [N, ...], ACTIONS [N], REWARDS [N], NEXT_OBS
        [N, ...], DISCOUNTS [N]; None if the chunks hold no step.
    """
    columns: dict[str, list] = {k: [] for k in (OBS, ACTIONS, REWARDS, NEXT_OBS, DISCOUNTS)}
    for episode in episodes:
        t_len = len(episode)
        if t_len == 0:
            continue
        obs = np.asarray(episode.get_observations())  # [T + 1, ...]
        actions = np.asarray(episode.get_actions())  # [T]
        rewards = np.asarray(episode.get_rewards(), dtype=np.float32)  # [T]
        terminated = bool(episode.is_terminated)

        # end[t]: index of the observation bootstrapped from (t + k, k <= n).
        steps = np.arange(t_len)
        end = np.minimum(steps + n_step, t_len)
        k = end - steps
        # R_t = sum_{j < k_t} gamma^j r_{t+j}, a windowed sum over the n offsets
        # (exact for any gamma, including 0, and any chunk length).
        n_step_returns = np.zeros(t_len, dtype=np.float64)
        for j in range(n_step):
            valid = steps + j < end
            n_step_returns[valid] += (gamma**j) * rewards[steps[valid] + j]
        discounts = gamma**k
        if terminated:
            discounts = np.where(end == t_len, 0.0, discounts)

        columns[OBS].append(obs[:-1])
        columns[ACTIONS].append(actions)
        columns[REWARDS].append(n_step_returns.astype(np.float32))
        columns[NEXT_OBS].append(obs[end])
        columns[DISCOUNTS].append(discounts.astype(np.float32))
    if not columns[OBS]:
        return None
    return {k: np.concatenate(v, axis=0) for k, v in columns.items()}


class _SumTree:
    """Array sum tree over `capacity` leaves; all operations take index arrays."""

    def __init__(self, capacity: int):
        self.size = 1
        while self.size < capacity:
            self.size *= 2
        self.tree = np.zeros(2 * self.size, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def set(self, indexes: np.ndarray, values: np.ndarray) -> None:
        nodes = np.asarray(indexes) + self.size
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaf index i with sum(leaves[:i]) <= prefix < sum(leaves[:i+1])."""
        nodes = np.ones(len(prefix), dtype=np.int64)
        prefix = prefix.astype(np.float64).copy()
        while nodes[0] < self.size:
            left = 2 * nodes
            left_sum = self.tree[left]
            go_right = prefix >= left_sum
            prefix = np.where(go_right, prefix - left_sum, prefix)
            nodes = np.where(go_right, left + 1, left)
        return nodes - self.size


class TransitionReplayBuffer:
    """Ring buffer of n-step transitions, uniform or proportionally prioritised.

    Args:
        capacity: maximum number of transitions kept (oldest overwritten).
        prioritized: sample proportionally to priority^alpha (Schaul et al. 2016).
        alpha: priority exponent.
        epsilon: added to |TD error| so that no transition gets zero priority.
        seed: seed of the sampling generator.
    """

    def __init__(
        self,
        *,
        capacity: int,
        prioritized: bool = False,
        alpha: float = 0.6,
        epsilon: float = 1e-6,
        seed: int | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.prioritized = prioritized
        self.alpha = alpha
        self.epsilon = epsilon
        self._rng = np.random.default_rng(seed)
        self._storage: dict[str, np.ndarray] | None = None
        self._next = 0
        self._size = 0
        self._max_priority = 1.0
        self._tree = _SumTree(self.capacity) if prioritized else None

    def __len__(self) -> int:
        return self._size

    def _allocate(self, columns: dict[str, np.ndarray]) -> None:
        self._storage = {
            k: np.zeros((self.capacity,) + v.shape[1:], dtype=v.dtype)
            for k, v in columns.items()
        }

    def add(self, columns: dict[str, np.ndarray]) -> None:
        """Appends a batch of transitions (same columns every call)."""
        n = len(next(iter(columns.values())))
        if n == 0:
            return
        if self._storage is None:
            self._allocate(columns)
        if n > self.capacity:  # keep only the newest
            columns = {k: v[-self.capacity :] for k, v in columns.items()}
            n = self.capacity
        idx = (self._next + np.arange(n)) % self.capacity
        for k, v in columns.items():
            self._storage[k][idx] = v
        if self._tree is not None:
            self._tree.set(idx, np.full(n, self._max_priority**self.alpha))
        self._next = int((self._next + n) % self.capacity)
        self._size = min(self._size + n, self.capacity)

    def sample(self, num_items: int, *, beta: float = 0.4) -> dict[str, np.ndarray]:
        """Samples `num_items` transitions (with replacement).

        Returns the stored columns plus INDEXES (for `update_priorities`) and,
        when prioritised, WEIGHTS: importance weights (N * P(i))^-beta
        normalised by their maximum over the buffer.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self._tree is None:
            idx = self._rng.integers(0, self._size, size=num_items)
            batch = {k: v[idx] for k, v in self._storage.items()}
        else:
            total = self._tree.total
            # Stratified: one uniform draw per equal slice of the priority mass.
            bounds = (np.arange(num_items) + self._rng.random(num_items)) / num_items
            idx = self._tree.find(bounds * total)
            idx = np.minimum(idx, self._size - 1)
            batch = {k: v[idx] for k, v in self._storage.items()}
            probs = self._tree.tree[idx + self._tree.size] / total
            leaves = self._tree.tree[self._tree.size : self._tree.size + self._size]
            min_prob = leaves[leaves > 0].min() / total
            weights = (probs / min_prob) ** (-beta)
            batch[WEIGHTS] = weights.astype(np.float32)
        batch[INDEXES] = idx.astype(np.int64)
        return batch

    def update_priorities(self, indexes: np.ndarray, td_errors: np.ndarray) -> None:
        """Sets priority |td_error| + epsilon for the given buffer indexes."""
        if self._tree is None:
            return
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.epsilon
        self._max_priority = max(self._max_priority, float(priorities.max()))
        self._tree.set(np.asarray(indexes), priorities**self.alpha)
