"""A transition-level replay buffer for the project's off-policy algorithms.

Why not RLlib's episode replay buffers: they build an episode object per
sampled transition (about 200 microseconds per replayed transition here, half
of a DQN-style learner's wall time; see ../shared/RLLIB_NOTES.md). This buffer
keeps transitions in preallocated numpy ring arrays, samples a whole batch with
a few vectorised index operations, and supports proportional prioritised
replay (Schaul et al. 2016) through an array sum tree.

What is stored: ONE-STEP transitions (obs, action, one-step reward, next_obs,
terminated) plus any per-transition columns an algorithm adds (bootstrap
masks), and a link from each transition to its successor in the same episode.
`transitions_from_episodes` turns EnvRunner chunks into rows tagged with the
episode's id and step; `add` links consecutive steps, also across chunks of
one episode that arrive in different `add` calls (RLlib keeps `episode.id_`
across chunks; vector envs interleave episodes in the ring, so links are
explicit, not "the next slot"). A link holds the successor's global insertion
number; the ring slot is that number modulo capacity, and a slot whose stored
number differs has been overwritten: the link is stale.

Demonstrations (DQfD, Hester et al. 2018): `DemoReplayBuffer` keeps them
in a second buffer of their own size beside the agent's ring, so they are
never evicted and no n-step window crosses between the two; each sampled row
says where it came from (IS_DEMO).

How folding works: `sample` draws window starts (uniformly or by priority,
then in random order, so that every SGD minibatch spans the whole buffer),
follows up to n - 1 links with one vectorised gather per offset (a window ends
at a termination, a truncation, the newest stored step or a stale link), lets
an optional hook rewrite the window's one-step rewards, and folds them: the
batch holds OBS, ACTIONS, REWARDS = sum_{j<k} gamma^j r_{t+j}, NEXT_OBS = the
observation after k <= n steps, DISCOUNTS = gamma^k (1 - terminated), and,
when n > 1, INTERMEDIATE_OBS / INTERMEDIATE_DISCOUNTS (s_{t+j} and gamma^j
inside the window, 0 outside) for the soft backup's entropy terms. Storing
one-step data keeps rewards rewritable at replay time (exploration bonuses,
learned rewards) and the intermediate states available.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

# Batch columns (what `sample` returns), defined once here.
OBS = "obs"
ACTIONS = "actions"
REWARDS = "rewards"
NEXT_OBS = "new_obs"
DISCOUNTS = "discounts"
WEIGHTS = "weights"
INDEXES = "buffer_indexes"
INTERMEDIATE_OBS = "intermediate_obs"
INTERMEDIATE_DISCOUNTS = "intermediate_discounts"
# The first step's own next observation s_{t+1}, when NEXT_OBS is s_{t+k}, k > 1
# (sampled only when `keep_step_next_obs` is set: RND's predictor trains on it).
STEP_NEXT_OBS = "step_next_obs"
# Stored one-step column.
TERMINATEDS = "terminateds"
# Row tags read by `add` to link steps (not stored).
EPISODE_IDS = "episode_ids"
STEPS = "steps"
TRUNCATEDS = "truncateds"
# Window-only column handed to a reward hook: True where the step is inside the window.
WINDOW_MASK = "window_mask"
# Batch column of DemoReplayBuffer: 1.0 for a row from the demonstrations, 0.0 for the agent's own.
IS_DEMO = "is_demo"

_LINK_TAGS = (EPISODE_IDS, STEPS, TRUNCATEDS)
_STEP_COLUMNS = (OBS, ACTIONS, REWARDS, NEXT_OBS, TERMINATEDS)

RewardHook = Callable[[dict[str, np.ndarray]], np.ndarray]


def transitions_from_episodes(episodes: Iterable) -> dict[str, np.ndarray] | None:
    """Turns sampled episode chunks into one-step transitions tagged for linking.

    Args:
        episodes: RLlib SingleAgentEpisode chunks, as returned by
            EnvRunner.sample() (their lookback buffers are ignored).

    Returns:
        Column dict of N rows: OBS [N, ...], ACTIONS [N], REWARDS [N] (one-step),
        NEXT_OBS [N, ...], TERMINATEDS [N] (True only at a terminal step), and
        the link tags EPISODE_IDS [N] (object), STEPS [N] (the step's index in
        its episode) and TRUNCATEDS [N] (True only at a truncated episode's
        last step); None if the chunks hold no step.
    """
    parts: dict[str, list] = {k: [] for k in _STEP_COLUMNS + _LINK_TAGS}
    for episode in episodes:
        t_len = len(episode)
        if t_len == 0:
            continue
        obs = np.asarray(episode.get_observations())  # [T + 1, ...]
        last = np.zeros(t_len, dtype=bool)
        last[-1] = True
        parts[OBS].append(obs[:-1])
        parts[ACTIONS].append(np.asarray(episode.get_actions()))
        parts[REWARDS].append(np.asarray(episode.get_rewards(), dtype=np.float32))
        parts[NEXT_OBS].append(obs[1:])
        parts[TERMINATEDS].append(last & bool(episode.is_terminated))
        parts[EPISODE_IDS].append(np.full(t_len, episode.id_, dtype=object))
        parts[STEPS].append(episode.t_started + np.arange(t_len, dtype=np.int64))
        parts[TRUNCATEDS].append(last & bool(episode.is_truncated))
    if not parts[OBS]:
        return None
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


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
    """Ring buffer of linked one-step transitions, folded into n-step ones when sampled.

    Args:
        capacity: maximum number of one-step transitions kept (oldest overwritten).
        n_step: return horizon n >= 1 of the sampled transitions.
        gamma: discount factor of the folding.
        prioritized: sample window starts proportionally to priority^alpha
            (Schaul et al. 2016).
        alpha: priority exponent.
        epsilon: added to |TD error| so that no transition gets zero priority.
        seed: seed, or numpy Generator, of the sampling stream.
    """

    def __init__(
        self,
        *,
        capacity: int,
        n_step: int = 1,
        gamma: float = 0.99,
        prioritized: bool = False,
        alpha: float = 0.6,
        epsilon: float = 1e-6,
        seed: int | np.random.Generator | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.capacity = int(capacity)
        self.n_step = int(n_step)
        self.gamma = float(gamma)
        self._powers = self.gamma ** np.arange(self.n_step + 1)  # gamma^0 .. gamma^n, float64
        self.prioritized = prioritized
        self.alpha = alpha
        self.epsilon = epsilon
        self._rng = np.random.default_rng(seed)
        self._storage: dict[str, np.ndarray] | None = None
        # Global insertion number of the transition in each slot (-1: empty), and
        # that of its successor in the same episode (-1: none yet, or episode over).
        self._ids = np.full(self.capacity, -1, dtype=np.int64)
        self._next_ids = np.full(self.capacity, -1, dtype=np.int64)
        # (min, max) of every one-step env reward ever added (the env's reward
        # range as seen so far): what bounds the Q-values a learner may reach.
        self.reward_range = (math.inf, -math.inf)
        self._num_added = 0
        # Episode id -> (insertion number of its newest step, that step's index),
        # for episodes whose next chunk has not arrived yet.
        self._open_episodes: dict[str, tuple[int, int]] = {}
        self._max_priority = 1.0
        self._tree = _SumTree(self.capacity) if prioritized else None
        # Set by a consumer that needs STEP_NEXT_OBS in n-step batches (see fold).
        self.keep_step_next_obs = False

    def __len__(self) -> int:
        return min(self._num_added, self.capacity)

    def stored_slots(self) -> np.ndarray:
        """The slots that hold a transition now."""
        return np.flatnonzero(self._ids >= 0)

    def column(self, name: str) -> np.ndarray | None:
        """A stored column ([capacity, ...], writable; rows of `stored_slots` only are meaningful), or None."""
        return None if self._storage is None else self._storage.get(name)

    def _allocate(self, columns: dict[str, np.ndarray]) -> None:
        self._storage = {
            k: np.zeros((self.capacity,) + v.shape[1:], dtype=v.dtype)
            for k, v in columns.items()
        }

    def _is_current(self, ids: np.ndarray) -> np.ndarray:
        """Whether transitions with these insertion numbers are still stored."""
        return (ids >= 0) & (self._ids[ids % self.capacity] == ids)

    def add(self, columns: dict[str, np.ndarray]) -> None:
        """Appends one-step transitions (same columns every call).

        Args:
            columns: `transitions_from_episodes` output, optionally with extra
                per-transition columns ([N, ...] arrays). Without the link tags
                (EPISODE_IDS, STEPS) every row is a one-step episode fragment:
                nothing is linked.
        """
        columns = dict(columns)
        episode_ids = columns.pop(EPISODE_IDS, None)
        steps = columns.pop(STEPS, None)
        truncated = columns.pop(TRUNCATEDS, None)
        n = len(columns[OBS])
        if n == 0:
            return
        if TERMINATEDS not in columns:
            columns[TERMINATEDS] = np.zeros(n, dtype=bool)
        if self._storage is None:
            self._allocate(columns)
        rewards = np.asarray(columns[REWARDS], dtype=np.float64)
        self.reward_range = (
            min(self.reward_range[0], float(rewards.min())),
            max(self.reward_range[1], float(rewards.max())),
        )
        ids = self._num_added + np.arange(n, dtype=np.int64)
        next_ids = np.full(n, -1, dtype=np.int64)
        segment_starts = np.array([0], dtype=np.int64)
        if episode_ids is not None:
            ended = columns[TERMINATEDS].astype(bool)
            if truncated is not None:
                ended = ended | truncated.astype(bool)
            # Row i continues into row i + 1 when both are consecutive steps of one episode.
            continues = (
                (episode_ids[:-1] == episode_ids[1:]) & (steps[1:] == steps[:-1] + 1) & ~ended[:-1]
            )
            next_ids[:-1] = np.where(continues, ids[1:], -1)
            segment_starts = np.concatenate([[0], np.flatnonzero(~continues) + 1])

        keep = slice(max(n - self.capacity, 0), n)  # more than capacity at once: the newest
        slots = ids[keep] % self.capacity
        for k, v in columns.items():
            self._storage[k][slots] = v[keep]
        self._ids[slots] = ids[keep]
        self._next_ids[slots] = next_ids[keep]
        if self._tree is not None:
            self._tree.set(slots, np.full(len(slots), self._max_priority**self.alpha))
        self._num_added += n

        if episode_ids is not None:
            self._link_segments(segment_starts, ids, episode_ids, steps, ended)

    def _link_segments(self, starts, ids, episode_ids, steps, ended) -> None:
        """Links each segment's first step to its episode's previous chunk; records open ends."""
        ends = np.append(starts[1:], len(ids)) - 1
        for first, last in zip(starts.tolist(), ends.tolist()):
            episode_id = episode_ids[first]
            previous = self._open_episodes.pop(episode_id, None)
            if previous is not None:
                previous_id, previous_step = previous
                # A predecessor overwritten in the ring is stale: its slot now holds
                # another transition, whose link must stay as it is.
                if previous_step + 1 == steps[first] and self._is_current(np.array([previous_id]))[0]:
                    self._next_ids[previous_id % self.capacity] = ids[first]
            if not ended[last]:
                self._open_episodes[episode_id] = (int(ids[last]), int(steps[last]))
        # Episodes that stopped arriving (e.g. a recreated EnvRunner) are dropped
        # once their newest step has left the ring.
        oldest = self._num_added - self.capacity
        if len(self._open_episodes) > 64:
            self._open_episodes = {k: v for k, v in self._open_episodes.items() if v[0] >= oldest}

    def _window_slots(self, first: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each window's step slots [B, n], mask of steps inside it [B, n] and length k [B].

        Steps outside a window repeat its last slot. A window ends at the first
        step without a current successor link (terminated, truncated, the
        episode's newest stored step, or a successor overwritten in the ring).
        """
        batch_size = len(first)
        slots = np.empty((batch_size, self.n_step), dtype=np.int64)
        inside = np.empty((batch_size, self.n_step), dtype=bool)
        slots[:, 0] = first
        inside[:, 0] = True
        num_steps = np.ones(batch_size, dtype=np.int64)
        current, alive = first, inside[:, 0]
        for j in range(1, self.n_step):
            successor = self._next_ids[current]
            alive = alive & self._is_current(successor)
            current = np.where(alive, successor % self.capacity, current)
            slots[:, j] = current
            inside[:, j] = alive
            num_steps += alive
        return slots, inside, num_steps

    def fold(self, indexes: np.ndarray, *, reward_hook: RewardHook | None = None) -> dict[str, np.ndarray]:
        """The n-step transitions that start at the given slots.

        Args:
            indexes: slots of the windows' first steps, [B].
            reward_hook: optional; given the window's one-step columns (OBS,
                ACTIONS, REWARDS, NEXT_OBS, TERMINATEDS and extra columns as
                [B, n, ...] arrays, WINDOW_MASK [B, n] and INDEXES [B, n]),
                returns the one-step rewards to fold instead, [B, n] (entries
                outside the window are ignored).

        Returns:
            OBS [B, ...], ACTIONS [B], REWARDS [B] (sum_{j<k} gamma^j r_{t+j}),
            NEXT_OBS [B, ...] (s_{t+k}), DISCOUNTS [B] (gamma^k (1 - terminated)),
            INDEXES [B], the extra columns of the first step, and when n > 1
            INTERMEDIATE_OBS [B, n-1, ...] (s_{t+j}, j = 1..n-1) and
            INTERMEDIATE_DISCOUNTS [B, n-1] (gamma^j inside the window, else 0).
        """
        storage = self._storage
        first = np.asarray(indexes, dtype=np.int64)
        batch = {k: v[first] for k, v in storage.items() if k not in (REWARDS, NEXT_OBS, TERMINATEDS)}
        batch[INDEXES] = first
        if self.n_step == 1 and reward_hook is None:  # the hot path of one-step replay
            batch[REWARDS] = storage[REWARDS][first]
            batch[NEXT_OBS] = storage[NEXT_OBS][first]
            batch[DISCOUNTS] = np.where(storage[TERMINATEDS][first], 0.0, self._powers[1]).astype(np.float32)
            return batch
        slots, inside, num_steps = self._window_slots(first)
        weights = np.where(inside, self._powers[:-1], 0.0)  # gamma^j inside the window, [B, n]
        if reward_hook is None:
            rewards = storage[REWARDS][slots]
        else:
            window = {k: v[slots] for k, v in storage.items()}
            window[WINDOW_MASK] = inside
            window[INDEXES] = slots
            rewards = np.where(inside, reward_hook(window), 0.0)
        last = slots[:, -1]  # the last step inside each window
        batch[REWARDS] = (rewards * weights).sum(axis=1).astype(np.float32)
        batch[NEXT_OBS] = storage[NEXT_OBS][last]
        bootstrap = self._powers[num_steps]
        batch[DISCOUNTS] = np.where(storage[TERMINATEDS][last], 0.0, bootstrap).astype(np.float32)
        if self.n_step > 1:
            batch[INTERMEDIATE_OBS] = np.take(storage[OBS], slots[:, 1:], axis=0)
            batch[INTERMEDIATE_DISCOUNTS] = weights[:, 1:].astype(np.float32)
            if self.keep_step_next_obs:
                batch[STEP_NEXT_OBS] = storage[NEXT_OBS][first]
        return batch

    def sample(
        self, num_items: int, *, beta: float = 0.4, reward_hook: RewardHook | None = None
    ) -> dict[str, np.ndarray]:
        """Samples `num_items` n-step transitions (window starts with replacement).

        The rows come in random order (prioritised draws are stratified over
        the priority mass, then shuffled), so any contiguous slice of the batch,
        e.g. one SGD minibatch or one learner's shard, is drawn from the whole
        buffer.

        Returns:
            `fold`'s columns (INDEXES for `update_priorities`) and, when
            prioritised, WEIGHTS [B]: importance weights (N * P(i))^-beta
            normalised by their maximum over the buffer.
        """
        size = len(self)
        if size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self._tree is None:
            idx = self._rng.integers(0, size, size=num_items)
            return self.fold(idx, reward_hook=reward_hook)
        total = self._tree.total
        # Stratified: one uniform draw per equal slice of the priority mass, in
        # buffer order; shuffled, or each minibatch would cover one narrow slice.
        bounds = (np.arange(num_items) + self._rng.random(num_items)) / num_items
        idx = np.minimum(self._tree.find(bounds * total), size - 1)
        idx = idx[self._rng.permutation(num_items)]
        batch = self.fold(idx, reward_hook=reward_hook)
        probs = self._tree.tree[idx + self._tree.size] / total
        leaves = self._tree.tree[self._tree.size : self._tree.size + size]
        min_prob = leaves[leaves > 0].min() / total
        batch[WEIGHTS] = ((probs / min_prob) ** (-beta)).astype(np.float32)
        return batch

    def update_priorities(self, indexes: np.ndarray, td_errors: np.ndarray) -> None:
        """Sets priority |td_error| + epsilon for the given buffer indexes."""
        if self._tree is None:
            return
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.epsilon
        self._max_priority = max(self._max_priority, float(priorities.max()))
        self._tree.set(np.asarray(indexes), priorities**self.alpha)


class DemoReplayBuffer:
    """The agent's replay plus a never-evicted partition of demonstrations (DQfD, Hester et al. 2018).

    Two TransitionReplayBuffers: `agent`, the ring the training step adds to,
    and `demos`, sized to the demonstrations and filled once here, so the
    agent's data never evicts them and n-step windows never cross from a
    demonstration episode into the agent's data (links exist only inside one
    buffer). Sampled rows carry IS_DEMO; a demonstration row's INDEXES is its
    slot plus the agent's capacity, so `update_priorities` tells them apart.

    Sampling:
        prioritised (both partitions prioritised): one stratified proportional
            draw over the priority mass of both, a demonstration's priority
            being |td| + epsilon + priority_bonus (DQfD's eps_d, section 3:
            demonstrations keep being replayed after their TD errors shrink);
            importance weights (N * P(i))^-beta over both, normalised by their
            maximum. New demonstrations enter at (1 + priority_bonus)^alpha,
            as new agent data enters at the largest priority seen (1 at first).
        uniform: each minibatch of `minibatch_size` consecutive rows (the
            learner group cuts the batch into shards and minibatches in order)
            holds demo_fraction * minibatch_size demonstration rows (rounded
            at random to keep that mean), both parts uniform in their buffer.
        With an empty agent buffer every row is a demonstration.

    Args:
        agent: the agent's buffer (empty or not); its sampling stream is shared.
        demo_columns: the demonstrations as one-step rows (OBS, ACTIONS,
            REWARDS, NEXT_OBS, TERMINATEDS and the link tags EPISODE_IDS,
            STEPS, TRUNCATEDS), at least one.
        demo_fraction: the share of each uniform minibatch taken from the
            demonstrations, in [0, 1].
        priority_bonus: added to a demonstration's priority, >= 0.
        minibatch_size: rows per SGD minibatch.
    """

    def __init__(
        self,
        *,
        agent: TransitionReplayBuffer,
        demo_columns: dict[str, np.ndarray],
        demo_fraction: float,
        priority_bonus: float,
        minibatch_size: int,
    ):
        num_demos = len(demo_columns[OBS])
        if num_demos == 0:
            raise ValueError("the demonstrations hold no transition")
        if not 0.0 <= demo_fraction <= 1.0:
            raise ValueError(f"demo_fraction must be in [0, 1], got {demo_fraction}")
        if priority_bonus < 0:
            raise ValueError(f"priority_bonus must be >= 0, got {priority_bonus}")
        self.agent = agent
        self.demos = TransitionReplayBuffer(
            capacity=num_demos, n_step=agent.n_step, gamma=agent.gamma, prioritized=agent.prioritized,
            alpha=agent.alpha, epsilon=agent.epsilon, seed=agent._rng,
        )
        self.demos.add(demo_columns)
        self.demo_fraction = float(demo_fraction)
        self.priority_bonus = float(priority_bonus)
        self.minibatch_size = int(minibatch_size)
        self._rng = agent._rng
        self._offset = agent.capacity  # demonstration slot s is buffer index offset + s
        if self.demos.prioritized:
            initial = (1.0 + self.priority_bonus) ** self.demos.alpha
            self.demos._tree.set(np.arange(num_demos), np.full(num_demos, initial))

    def __len__(self) -> int:
        return len(self.agent) + len(self.demos)

    @property
    def num_demos(self) -> int:
        return len(self.demos)

    @property
    def reward_range(self) -> tuple[float, float]:
        (a_low, a_high), (d_low, d_high) = self.agent.reward_range, self.demos.reward_range
        return min(a_low, d_low), max(a_high, d_high)

    @property
    def keep_step_next_obs(self) -> bool:
        return self.agent.keep_step_next_obs

    @keep_step_next_obs.setter
    def keep_step_next_obs(self, value: bool) -> None:
        self.agent.keep_step_next_obs = self.demos.keep_step_next_obs = value

    def add(self, columns: dict[str, np.ndarray]) -> None:
        """Adds the agent's one-step transitions (TransitionReplayBuffer.add); the demonstrations stay."""
        self.agent.add(columns)

    def sample_demos(
        self, num_items: int, *, beta: float = 0.4, reward_hook: RewardHook | None = None
    ) -> dict[str, np.ndarray]:
        """`num_items` rows from the demonstrations only (DQfD's pre-training), as `sample` returns them."""
        batch = self.demos.sample(num_items, beta=beta, reward_hook=reward_hook)
        batch[INDEXES] = batch[INDEXES] + self._offset
        batch[IS_DEMO] = np.ones(num_items, dtype=np.float32)
        return batch

    def sample(
        self, num_items: int, *, beta: float = 0.4, reward_hook: RewardHook | None = None
    ) -> dict[str, np.ndarray]:
        """`num_items` n-step rows from both partitions (see the class), with IS_DEMO [B] (float32).

        Returns:
            TransitionReplayBuffer.sample's columns (WEIGHTS when prioritised) and IS_DEMO.
        """
        if len(self.agent) == 0:
            return self.sample_demos(num_items, beta=beta, reward_hook=reward_hook)
        if self.agent.prioritized:
            return self._sample_prioritized(num_items, beta=beta, reward_hook=reward_hook)
        # Row i is in minibatch i // b; the first k_j rows of minibatch j are demonstrations
        # (a row's place inside its minibatch does not change the loss).
        position, minibatch = np.arange(num_items) % self.minibatch_size, np.arange(num_items) // self.minibatch_size
        sizes = np.bincount(minibatch, minlength=minibatch[-1] + 1) if num_items else np.zeros(0, np.int64)
        wanted = self.demo_fraction * sizes
        num_demo_rows = np.floor(wanted).astype(np.int64)
        num_demo_rows += self._rng.random(len(sizes)) < wanted - num_demo_rows
        is_demo = position < num_demo_rows[minibatch] if num_items else np.zeros(0, bool)
        agent_slots = self._rng.integers(0, len(self.agent), size=int((~is_demo).sum()))
        demo_slots = self._rng.integers(0, len(self.demos), size=int(is_demo.sum()))
        return self._merge(is_demo, agent_slots, demo_slots, reward_hook=reward_hook)

    def _sample_prioritized(self, num_items: int, *, beta: float, reward_hook: RewardHook | None):
        agent_tree, demo_tree = self.agent._tree, self.demos._tree
        agent_total, total = agent_tree.total, agent_tree.total + demo_tree.total
        # Stratified over both partitions' mass, then shuffled (see TransitionReplayBuffer.sample).
        bounds = (np.arange(num_items) + self._rng.random(num_items)) / num_items * total
        bounds = bounds[self._rng.permutation(num_items)]
        is_demo = bounds >= agent_total
        agent_slots = _find(agent_tree, bounds[~is_demo], len(self.agent))
        demo_slots = _find(demo_tree, bounds[is_demo] - agent_total, len(self.demos))
        batch = self._merge(is_demo, agent_slots, demo_slots, reward_hook=reward_hook)
        priorities = np.empty(num_items, dtype=np.float64)
        priorities[~is_demo] = agent_tree.tree[agent_slots + agent_tree.size]
        priorities[is_demo] = demo_tree.tree[demo_slots + demo_tree.size]
        leaves = np.concatenate([
            agent_tree.tree[agent_tree.size : agent_tree.size + len(self.agent)],
            demo_tree.tree[demo_tree.size : demo_tree.size + len(self.demos)],
        ])
        min_priority = leaves[leaves > 0].min()
        batch[WEIGHTS] = ((priorities / min_priority) ** (-beta)).astype(np.float32)
        return batch

    def _merge(self, is_demo: np.ndarray, agent_slots: np.ndarray, demo_slots: np.ndarray, *,
               reward_hook: RewardHook | None) -> dict[str, np.ndarray]:
        """The folded rows of both partitions, demonstrations where `is_demo`, with IS_DEMO and offset INDEXES."""
        parts = []
        if len(agent_slots):
            parts.append((~is_demo, self.agent.fold(agent_slots, reward_hook=reward_hook)))
        if len(demo_slots):
            demo_batch = self.demos.fold(demo_slots, reward_hook=reward_hook)
            demo_batch[INDEXES] = demo_batch[INDEXES] + self._offset
            parts.append((is_demo, demo_batch))
        if len(parts) == 2 and parts[0][1].keys() != parts[1][1].keys():
            raise ValueError(
                f"agent and demonstration rows have different columns: "
                f"{sorted(parts[0][1].keys() ^ parts[1][1].keys())}"
            )
        batch = {}
        for key in parts[0][1]:
            first = parts[0][1][key]
            dtype = np.result_type(*(part[key].dtype for _, part in parts))
            column = np.empty((len(is_demo),) + first.shape[1:], dtype=dtype)
            for rows, part in parts:
                column[rows] = part[key]
            batch[key] = column
        batch[IS_DEMO] = is_demo.astype(np.float32)
        return batch

    def update_priorities(self, indexes: np.ndarray, td_errors: np.ndarray) -> None:
        """Priority |td| + epsilon for the agent's rows, |td| + epsilon + priority_bonus for demonstrations."""
        if not self.agent.prioritized:
            return
        indexes, td_errors = np.asarray(indexes), np.asarray(td_errors, dtype=np.float64)
        demo = indexes >= self._offset
        if (~demo).any():
            self.agent.update_priorities(indexes[~demo], td_errors[~demo])
        if demo.any():
            priorities = np.abs(td_errors[demo]) + self.demos.epsilon + self.priority_bonus
            self.demos._tree.set(indexes[demo] - self._offset, priorities**self.demos.alpha)


def _find(tree: _SumTree, prefix: np.ndarray, size: int) -> np.ndarray:
    """Leaves of `tree` at these prefix sums (none for an empty array), clipped to the stored `size`."""
    if len(prefix) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.minimum(tree.find(prefix), size - 1)
