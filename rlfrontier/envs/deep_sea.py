"""DeepSea: bsuite's deep-exploration benchmark as a gymnasium environment.

The task comes from the Behaviour Suite for Reinforcement Learning (bsuite, Osband et al. 2020), which builds on
Osband et al., "Deep Exploration via Randomized Value Functions". The agent starts in the top-left cell of an N x N
grid and drops one row per step, so every episode lasts exactly N steps. At each step it moves either left or right;
which of the two actions means "right" is fixed at random per cell. Moving right costs 0.01 / N, moving left is free.
Taking "right" in the bottom-right cell (which is only reachable by going right at every earlier step) opens a
treasure worth +1, so the optimal return is 1 - 0.01 = 0.99, while every other policy earns at most 0.

The small cost of going right makes "always left" look best to an agent that only explores locally. A uniformly
random or epsilon-greedy policy finds the treasure with probability 2^-N per episode, so dithering exploration
needs exponentially many episodes in N; only agents that explore deliberately (deep exploration) solve it at scale.

bsuite's stochastic variant (`deterministic=False` there, `stochastic=True` here, registered as
rlfrontier/DeepSeaStochastic-v0): the "right" action fails with probability 1/N, and then the agent stays in its
column (it still drops a row and still pays the move cost); and the last step from either bottom corner, (N-1, 0)
or (N-1, N-1), earns an extra N(0, 1) reward whatever the action. Its randomness comes from the env's
`np_random`, seeded by `reset(seed=...)`, so a seeded run replays exactly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

MOVE_COST = 0.01
TREASURE = 1.0


class DeepSeaEnv(gym.Env):
    """N x N DeepSea with a per-cell action mapping drawn once from `mapping_seed`; deterministic or bsuite's stochastic.

    The mapping is the MDP: a run built by `rlfrontier` (configure.build_config)
    without `mapping_seed` gets one derived from its seed
    (envs.with_run_seed), shared by all its env copies; built directly, the
    env uses mapping 0.

    Observation: float32 one-hot of (row, column) of length N*N; all zeros after the final step.
    Actions: Discrete(2); `right_action(row, column)` says which one moves right in a cell.
    stochastic: bsuite's "windy" variant (module docstring); False is the deterministic DeepSea.
    """

    metadata = {"render_modes": []}

    def __init__(
        self, size: int = 10, mapping_seed: int = 0, randomize_actions: bool = True, stochastic: bool = False
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(f"size must be an int >= 2, got {size!r}")
        if isinstance(mapping_seed, bool) or not isinstance(mapping_seed, (int, np.integer)):
            raise ValueError(f"mapping_seed must be an int, got {mapping_seed!r}")
        if not isinstance(randomize_actions, (bool, np.bool_)):
            raise ValueError(f"randomize_actions must be a bool, got {randomize_actions!r}")
        if not isinstance(stochastic, (bool, np.bool_)):
            raise ValueError(f"stochastic must be a bool, got {stochastic!r}")
        self.size = int(size)
        self.mapping_seed = int(mapping_seed)
        self.randomize_actions = bool(randomize_actions)
        self.stochastic = bool(stochastic)
        if self.randomize_actions:
            rng = np.random.default_rng(self.mapping_seed)
            self.action_mapping = rng.integers(0, 2, size=(self.size, self.size), dtype=np.int64)
        else:
            self.action_mapping = np.ones((self.size, self.size), dtype=np.int64)
        self.observation_space = spaces.Box(0.0, 1.0, (self.size * self.size,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._row = 0
        self._column = 0

    @property
    def right_failure_probability(self) -> float:
        """Probability that "right" leaves the agent in its column: 1/N if stochastic, else 0."""
        return 1.0 / self.size if self.stochastic else 0.0

    @property
    def optimal_return(self) -> float:
        """Expected return of going right at every step (bsuite's `optimal_return`).

        The treasure, reached when the first N - 1 right moves all succeed
        (probability (1 - 1/N)^(N - 1) when stochastic, else 1), minus N moves
        costing 0.01 / N each; the corner noise has mean 0.
        """
        return (1.0 - self.right_failure_probability) ** (self.size - 1) * TREASURE - MOVE_COST

    def right_action(self, row: int, column: int) -> int:
        """The action that moves right in cell (row, column); the other one moves left."""
        return int(self.action_mapping[row, column])

    def optimal_actions(self) -> list[int]:
        """The actions of the only treasure path: right at every step, i.e. through cells (0, 0), (1, 1), ..."""
        return [self.right_action(step, step) for step in range(self.size)]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Back to the top-left cell; `seed` does not change the action mapping (the task is fixed).

        `seed` seeds `np_random`, the stream of the stochastic variant's
        failed moves and corner noise.
        """
        super().reset(seed=seed)
        self._row = 0
        self._column = 0
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._row >= self.size:
            raise RuntimeError("DeepSea episode is over; call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 or 1, got {action!r}")
        right = int(action) == self.action_mapping[self._row, self._column]
        reward = 0.0
        if right and self._row == self.size - 1 and self._column == self.size - 1:
            reward += TREASURE
        if self.stochastic and self._row == self.size - 1 and self._column in (0, self.size - 1):
            # bsuite: noise at both ends of the chain's last row, before the move.
            reward += float(self.np_random.standard_normal())
        if right:
            # bsuite's rule: "right" succeeds when a uniform draw exceeds 1/N.
            if not self.stochastic or self.np_random.random() > self.right_failure_probability:
                self._column = min(self._column + 1, self.size - 1)
            reward -= MOVE_COST / self.size
        else:
            self._column = max(self._column - 1, 0)
        self._row += 1
        terminated = self._row == self.size
        return self._observation(), reward, terminated, False, self._info()

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.size * self.size, dtype=np.float32)
        if self._row < self.size:
            obs[self._row * self.size + self._column] = 1.0
        return obs

    def _info(self) -> dict[str, int]:
        return {"row": self._row, "column": self._column}
