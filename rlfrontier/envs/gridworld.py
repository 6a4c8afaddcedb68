"""GridWorld: a tabular world with known dynamics and a macro-cell reward, for exact MaxEnt IRL.

The benchmark of Abbeel & Ng (2004) as used by Levine et al. (2011, "Nonlinear inverse reinforcement learning with
Gaussian processes", Sect. 6) and Wulfmeier et al. (2015): an N x N grid divided into (N/B)^2 macro cells of B x B
states; every state of a macro cell has that cell's reward.

Shared by every tabular world here (`TabularGridEnv`, also the base of ObjectWorld):
- State s = row * N + column; the observation is its float32 one-hot (so any RLlib algorithm can use it as is) and
  `info` of reset and step is {"state": s}.
- Actions, Discrete(5): 0 stay, 1 right (column + 1), 2 left, 3 down (row + 1), 4 up. Moving into a wall is staying.
- Slip p: the intended action is taken with probability 1 - p, otherwise one of the 5 actions uniformly at random
  (so the intended one has 1 - p + p/5 in total). `transition_tensor` P[s, a, s'] is the single source: step samples
  s' from it.
- Reward: step(a) from s_t returns true_reward[s_t], then moves to s_{t+1} ~ P[s_t, a], so an episode's return is
  sum_{t=0}^{T-1} r(s_t) (the state-reward convention of Ziebart et al. 2008).
- s_0 ~ `initial_distribution`, uniform over all states (demonstrations then cover the grid, as in Levine et al.).
- Episodes last exactly `horizon` steps: truncated at step T, never terminated. Register without a TimeLimit.
- The MDP (layout, reward) depends only on the env config (`reward_seed` here), never on the reset seed, so every
  env copy, recorded demonstrations and an IRL run on the same config see the same MDP. `np_random` (seeded by
  reset) drives only s_0 and the dynamics.

GridWorld's reward recipe (reward_seed r, K = (N/B)^2 macro cells): u = np.random.default_rng(r).uniform(0, 1, K);
macro cell k's reward is 1 if k = argmax u, u_k / 2 if u_k >= the 70th percentile of u (np.quantile(u, 0.7)), else 0.
So about 30% of the macro cells carry a reward, one of them clearly best (1 against at most 0.5), and the rest are
zero-reward regions.

Defaults: size 8, block 2, horizon 2 * size, slip 0.3 (Levine et al.'s 30% random moves). With slip 0.1 the
optimal policy's demonstrations crowd into the best macro cell and say little about the others: MaxEnt IRL's
reward correlation from 50 of them was 0.78-0.82 over 3 demo seeds, 0.82-0.87 over 5 with 0.3 (maxent_irl).

Features (`features`):
- "block": one-hot of the macro cell (F = K), macro cell k = (row // B) * (N / B) + column // B; true_reward is
  state_features @ reward_weights exactly.
- "state": one-hot of the state (F = N^2); true_reward = state_features @ reward_weights (reward_weights is the
  reward itself).
- "coords": [row / (N - 1), column / (N - 1), 1] (F = 3); the reward is not linear in them (reward_weights is None).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

NUM_ACTIONS = 5
# (row change, column change) of actions 0 stay, 1 right, 2 left, 3 down, 4 up.
ACTION_MOVES = np.array([[0, 0], [0, 1], [0, -1], [1, 0], [-1, 0]], dtype=np.int64)
REWARD_QUANTILE = 0.7
GRID_FEATURES = ("block", "state", "coords")


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """`value` as an int; ValueError naming it if it is not an int or is below `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r} is not an int")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is out of range: need >= {minimum}")
    return int(value)


def check_probability(name: str, value: Any) -> float:
    """`value` as a float in [0, 1]; ValueError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r} is not a number")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}={value!r} is out of range: need 0 <= {name} <= 1")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`; ValueError naming it otherwise."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def cell_coordinates(size: int) -> np.ndarray:
    """(row, column) of every state of a size x size grid: shape (S, 2), int64, state s = row * size + column."""
    return np.stack(np.divmod(np.arange(size * size), size), axis=1)


def grid_transitions(*, size: int, slip: float) -> np.ndarray:
    """P[s, a, s'] of the slippery grid: shape (S, 5, S), float64, rows sum to 1.

    Args:
        size: side N of the grid, S = N^2.
        slip: probability p that a uniformly random action replaces the intended one.
    """
    num_states = size * size
    coords = cell_coordinates(size)
    moved = np.clip(coords[:, None, :] + ACTION_MOVES[None, :, :], 0, size - 1)  # (S, A, 2); a wall clips to stay
    next_state = moved[..., 0] * size + moved[..., 1]
    intended = np.zeros((num_states, NUM_ACTIONS, num_states))
    np.put_along_axis(intended, next_state[..., None], 1.0, axis=2)
    # P = (1 - p) * intended + p * (mean over the 5 actions of where each leads).
    return (1.0 - slip) * intended + slip * intended.mean(axis=1, keepdims=True)


class TabularGridEnv(gym.Env):
    """A slippery N x N grid whose dynamics, features and state reward are known arrays (module docstring).

    Subclasses validate their own config, build `state_features` (S, F) and
    `true_reward` (S,) from it, and pass them in; this class owns the
    dynamics, the episode loop and the checks of size, slip and horizon.

    Attributes (float64 numpy arrays, read-only by convention):
        transition_tensor: (S, A, S), P[s, a, s'].
        state_features: (S, F).
        true_reward: (S,), r(s); for evaluation only.
        initial_distribution: (S,), uniform.
        horizon: episode length T (int).
    """

    metadata = {"render_modes": []}

    def __init__(
        self, *, size: int, slip: float, horizon: int, state_features: np.ndarray, true_reward: np.ndarray
    ) -> None:
        self.size = check_int("size", size, minimum=2)
        self.slip = check_probability("slip", slip)
        self.horizon = check_int("horizon", horizon, minimum=1)
        self.num_states = self.size * self.size
        self.num_actions = NUM_ACTIONS
        self.transition_tensor = grid_transitions(size=self.size, slip=self.slip)
        self.state_features = np.asarray(state_features, dtype=np.float64)
        self.true_reward = np.asarray(true_reward, dtype=np.float64)
        if self.state_features.ndim != 2 or self.state_features.shape[0] != self.num_states:
            raise ValueError(f"state_features has shape {self.state_features.shape}: need ({self.num_states}, F)")
        if self.true_reward.shape != (self.num_states,):
            raise ValueError(f"true_reward has shape {self.true_reward.shape}: need ({self.num_states},)")
        self.initial_distribution = np.full(self.num_states, 1.0 / self.num_states)
        self.observation_space = spaces.Box(0.0, 1.0, (self.num_states,), np.float32)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self._state: int | None = None
        self._steps = 0

    @property
    def state(self) -> int | None:
        """The current state index s = row * size + column (None before the first reset)."""
        return self._state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Draws s_0 from `initial_distribution` with `np_random`; `seed` never changes the MDP.

        options={"state": s} starts in state s instead (e.g. to probe the dynamics of one state).
        """
        super().reset(seed=seed)
        start = (options or {}).get("state")
        if start is None:
            self._state = int(self.np_random.choice(self.num_states, p=self.initial_distribution))
        else:
            self._state = check_int("options['state']", start, minimum=0)
            if self._state >= self.num_states:
                raise ValueError(f"options['state']={start!r} is out of range: need < {self.num_states}")
        self._steps = 0
        return self._observation(), {"state": self._state}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._state is None or self._steps >= self.horizon:
            raise RuntimeError("episode is over or not started; call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is out of range: need an int in [0, {NUM_ACTIONS - 1}]")
        # The reward of the state acted from: return = sum_{t<T} r(s_t), the convention MaxEnt IRL's
        # expected state visitation counts assume.
        reward = float(self.true_reward[self._state])
        self._state = int(self.np_random.choice(self.num_states, p=self.transition_tensor[self._state, int(action)]))
        self._steps += 1
        truncated = self._steps == self.horizon
        return self._observation(), reward, False, truncated, {"state": self._state}

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.num_states, dtype=np.float32)
        obs[self._state] = 1.0
        return obs


def macro_cell_rewards(*, num_cells: int, reward_seed: int) -> np.ndarray:
    """GridWorld's macro-cell rewards (module docstring): 1 for the best, u / 2 down to u's 70th percentile, else 0.

    Returns:
        (K,) float64 in [0, 1], exactly one entry 1, the others <= 0.5.
    """
    u = np.random.default_rng(reward_seed).uniform(0.0, 1.0, num_cells)
    rewards = np.where(u >= np.quantile(u, REWARD_QUANTILE), u / 2.0, 0.0)
    rewards[np.argmax(u)] = 1.0
    return rewards


class GridWorldEnv(TabularGridEnv):
    """N x N slippery grid of (N/B)^2 macro cells with a sparse random reward per macro cell (module docstring).

    Attributes (besides TabularGridEnv's):
        block_index: (S,) int64, the macro cell of every state.
        reward_weights: (F,) with true_reward == state_features @ reward_weights for features "block" and
            "state"; None for "coords".
    """

    def __init__(
        self,
        *,
        size: int = 8,
        block: int = 2,
        slip: float = 0.3,
        horizon: int | None = None,
        reward_seed: int = 0,
        features: str = "block",
    ) -> None:
        size = check_int("size", size, minimum=2)
        block = check_int("block", block, minimum=1)
        if size % block:
            raise ValueError(f"block={block} does not divide size={size}")
        self.block = block
        self.reward_seed = check_int("reward_seed", reward_seed, minimum=0)
        self.features = check_choice("features", features, GRID_FEATURES)
        blocks_per_side = size // block
        coords = cell_coordinates(size)
        self.block_index = (coords[:, 0] // block) * blocks_per_side + coords[:, 1] // block
        cell_rewards = macro_cell_rewards(num_cells=blocks_per_side**2, reward_seed=self.reward_seed)
        true_reward = cell_rewards[self.block_index]
        if self.features == "block":
            state_features = np.eye(blocks_per_side**2)[self.block_index]
            self.reward_weights = cell_rewards
        elif self.features == "state":
            state_features = np.eye(size * size)
            self.reward_weights = true_reward.copy()
        else:
            state_features = np.column_stack([coords / (size - 1), np.ones(size * size)])
            self.reward_weights = None
        super().__init__(
            size=size,
            slip=slip,
            horizon=2 * size if horizon is None else horizon,
            state_features=state_features,
            true_reward=true_reward,
        )
