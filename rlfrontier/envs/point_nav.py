"""A point on the plane that must find a hidden goal: MAML's 2-D navigation and PEARL's sparse point robot.

The observation is the position only. The goal, the task, is hidden, so a
policy can only do well on a new task by adapting to the rewards it gets:
that is what makes these meta-RL tasks rather than goal-conditioned ones.

PointNavEnv (rlfrontier/PointNav-v0), Finn et al. 2017 ("Model-Agnostic
Meta-Learning", section 5.2): the point starts at the origin, goals are
uniform in [-0.5, 0.5]^2, an action is a move clipped to [-0.1, 0.1] per
axis, the reward is minus the distance to the goal after the move, and the
episode is truncated after `horizon` = 100 steps (it never terminates).
`start_half_width` > 0 starts each episode at a point uniform in
[-start_half_width, start_half_width]^2 instead (from the env's seeded
`np_random`), as oyster's dense point robot (`PointEnv.reset_model`, uniform
in [-1, 1]^2): contexts then hold rewards from all over the plane.

SparsePointNavEnv (rlfrontier/SparsePointNav-v0), after PEARL's sparse point
robot (Rakelly et al. 2019, section 6.3; `SparsePointEnv` in oyster's
rlkit/envs/point_robot.py, config sparse-point-robot.json). Goals lie on the
unit half-circle, the reward is 1 within `goal_radius` = 0.2 of the goal
(distance <= 0.2, as oyster's test) and 0 outside, the horizon is 20. What
oyster does, exactly, and where this env differs:

- oyster's `step` returns the DENSE reward (minus the distance) and puts the
  sparse one in `info["sparse_reward"]`; its sparse reward is 1 - distance
  inside the radius (the dense reward plus 1), not 1. Here `step` returns the
  sparse reward, 1 inside, as issue 10 asks, and `info["dense_reward"]` holds
  minus the distance, so oyster's is (1 + dense_reward) where dense_reward >= -0.2, else 0.
- oyster trains the critic on the dense reward (`sample_sac`: "rewards are
  always dense"), gives the context encoder the sparse one
  (`sparse_rewards: 1`: `sample_context` unpacks `sparse_rewards`), and
  reports evaluation returns in sparse reward.
- oyster's goals are 100 fixed angles, `np.linspace(0, pi, 100)`, shuffled
  with seed 1337, 80 for training and 20 held out; here an angle is drawn
  uniform in [0, pi] per task (`sample_tasks`), so held-out tasks come
  from a different seed.
- oyster's `NormalizedBoxEnv` wrapper clips the action to Box(-0.1, 0.1), as
  this env's `step` does. Both start at the origin and never terminate.

How far posterior sampling can get on it (`posterior_sampling_reach`): one
episode's path passes within 0.2 of about 13% of the half-circle's goals, so
an agent that heads for a goal hypothesis drawn from its exact posterior
(what PEARL's meta-test does with a perfect encoder and policy) reaches the
goal in episode k + 1 with share 0.13, 0.26, 0.38 for k = 0, 1, 2, and 0.7
only at k = 5.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlfrontier.envs.tasks import (
    Task,
    TaskEnv,
    check_finite,
    check_flag,
    check_positive_int,
    check_sample_args,
    check_task_keys,
    check_vector,
)

MAX_STEP = 0.1
GOAL_HALF_WIDTH = 0.5
# SparsePointNav's task-blind reference point (SparsePointNavEnv.task_blind_action).
BLIND_TARGET = 0.98 * np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)])
SPARSE_GOAL_RADIUS = 0.2
TASK_KEYS = ("goal",)


class PointNavEnv(TaskEnv, gym.Env):
    """MAML's 2-D navigation (module docstring): reward minus the distance to a hidden goal.

    Args:
        horizon: steps per episode, then truncation.
        resample_on_reset: draw a fresh goal at every reset from `np_random`.
        start_half_width: 0 (the default) starts at the origin; w > 0 starts uniform in [-w, w]^2.

    Task: {"goal": [x, y]}; until one is set the goal is `default_goal`.
    Observation: the position, float32 (2,). Actions: Box(-0.1, 0.1, (2,)), clipped.
    Info: {"distance": distance to the goal after the move}.
    """

    metadata = {"render_modes": []}
    default_horizon = 100
    default_goal = (GOAL_HALF_WIDTH, GOAL_HALF_WIDTH)

    def __init__(self, *, horizon: int | None = None, resample_on_reset: bool = False,
                 start_half_width: float = 0.0) -> None:
        self.horizon = check_positive_int("horizon", self.default_horizon if horizon is None else horizon)
        self.resample_on_reset = check_flag("resample_on_reset", resample_on_reset)
        self.start_half_width = check_finite("start_half_width", start_half_width, non_negative=True)
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-MAX_STEP, MAX_STEP, (2,), np.float32)
        self._goal = np.array(self.default_goal, dtype=np.float64)
        self._position = np.zeros(2)
        self._t = 0

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_sample_args(n, rng)
        return [{"goal": [float(x), float(y)]} for x, y in rng.uniform(-GOAL_HALF_WIDTH, GOAL_HALF_WIDTH, (n, 2))]

    def set_task(self, task: Task) -> None:
        check_task_keys(task, TASK_KEYS)
        self._goal = np.array(check_vector("task['goal']", task["goal"], 2))

    def get_task(self) -> Task:
        return {"goal": [float(v) for v in self._goal]}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._resample_task()
        w = self.start_half_width
        self._position = self.np_random.uniform(-w, w, 2) if w > 0 else np.zeros(2)
        self._t = 0
        return self._observation(), {"distance": self._distance()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._t >= self.horizon:
            raise RuntimeError(f"{type(self).__name__} episode is over after {self.horizon} steps; call reset()")
        move = np.asarray(action, dtype=np.float64)
        if move.shape != (2,) or not np.all(np.isfinite(move)):
            raise ValueError(f"action={action!r} must be 2 finite numbers")
        self._position = self._position + np.clip(move, -MAX_STEP, MAX_STEP)
        self._t += 1
        distance = self._distance()
        reward, info = self._reward(distance)
        return self._observation(), reward, False, self._t >= self.horizon, info

    def _reward(self, distance: float) -> tuple[float, dict[str, float]]:
        return -distance, {"distance": distance}

    # Meta-test references (TaskEnv) -------------------------------------------------
    def oracle_action(self, observation: np.ndarray) -> np.ndarray:
        """Towards the goal as far as the per-axis clip allows (the reachable point nearest to it), then
        stay on it: the best move at every step."""
        return np.clip(self._goal - np.asarray(observation, np.float64), -MAX_STEP, MAX_STEP).astype(np.float32)

    def task_blind_action(self, observation: np.ndarray) -> np.ndarray:
        """Head for the origin and stay there (from the default start: stay): the origin minimises the
        expected distance to a goal uniform in the square (the centre of a centrally symmetric distribution
        is its geometric median), and a policy that sees only its own position learns nothing more by
        moving. From a random start it is a good task-blind reference, not a proven optimum."""
        return np.clip(-np.asarray(observation, np.float64), -MAX_STEP, MAX_STEP).astype(np.float32)

    def _distance(self) -> float:
        return float(np.linalg.norm(self._position - self._goal))

    def _observation(self) -> np.ndarray:
        return self._position.astype(np.float32)


class SparsePointNavEnv(PointNavEnv):
    """PEARL's sparse point robot (module docstring: what oyster does and where this differs).

    Args:
        horizon: steps per episode, then truncation.
        goal_radius: the reward is 1 at distance <= goal_radius from the goal, else 0.
        resample_on_reset: draw a fresh goal at every reset from `np_random`.

    Task: {"goal": [x, y]}, sampled as (cos a, sin a) with a uniform in [0, pi];
    until one is set the goal is (0, 1).
    Info: {"distance": ..., "dense_reward": minus the distance}.
    """

    default_horizon = 20
    default_goal = (0.0, 1.0)

    def __init__(self, *, horizon: int | None = None, goal_radius: float = SPARSE_GOAL_RADIUS,
                 resample_on_reset: bool = False) -> None:
        super().__init__(horizon=horizon, resample_on_reset=resample_on_reset)
        self.goal_radius = check_finite("goal_radius", goal_radius, positive=True)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_sample_args(n, rng)
        return [{"goal": [float(np.cos(a)), float(np.sin(a))]} for a in rng.uniform(0.0, np.pi, n)]

    def _reward(self, distance: float) -> tuple[float, dict[str, float]]:
        return float(distance <= self.goal_radius), {"distance": distance, "dense_reward": -distance}

    def task_blind_action(self, observation: np.ndarray) -> np.ndarray:
        """Head for BLIND_TARGET and stay: rewarded only when the goal lies within goal_radius of it.

        A fixed target on the diagonal is reached sooner than (0, 1) under the per-axis clip; at 45 degrees
        and radius 0.98 it scored best among fixed targets in a grid search over angle and radius (mean
        return 1.88 against 1.52 for (0, 1), horizon 20, goals uniform on the half-circle). A good
        task-blind reference, not a proven optimum.
        """
        return np.clip(BLIND_TARGET - np.asarray(observation, np.float64), -MAX_STEP, MAX_STEP).astype(np.float32)

    def posterior_sampling_reach(self, episodes: int, *, trials: int = 20_000, grid: int = 721,
                                 seed: int = 0) -> list[float]:
        """Share of goals an ideal posterior-sampling agent reaches in episode k + 1, k = 0 .. episodes - 1.

        The agent knows the goal distribution (angle uniform on [0, pi], `sample_tasks`), the dynamics and
        the reward, but not the goal. Each episode it draws a goal hypothesis from its exact posterior (the
        angles no earlier episode ruled out, uniform), heads for it as the oracle does (per-axis clip, from
        the origin) and stays; a rewarded episode pins the goal, and every later one goes back to it. A
        missed episode rules out every goal its path passed within goal_radius of. This is PEARL's
        meta-test exploration (z from the prior, then from the posterior of the episodes so far) with a
        perfect encoder and policy: what PEARL reaches on this env at best, given how it explores.

        Angles on a grid of `grid` points; `trials` simulated trials with a fixed seed (the shares'
        standard error is under 0.004 at 20,000; ~2 s).
        """
        angles = np.linspace(0.0, np.pi, grid)
        goals = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        hit = np.empty((grid, grid), dtype=bool)  # [hypothesis, true goal]: that path is rewarded on that goal
        for h, target in enumerate(goals):
            position, path = np.zeros(2), []
            for _ in range(self.horizon):
                position = position + np.clip(target - position, -MAX_STEP, MAX_STEP)
                path.append(position)
            distances = np.linalg.norm(np.asarray(path)[:, None, :] - goals[None, :, :], axis=2)
            hit[h] = (distances <= self.goal_radius).any(axis=0)
        reached = np.zeros(episodes)
        for trial in range(trials):
            # A stream per trial: the share at k is the same whatever `episodes` is asked for.
            rng = np.random.default_rng([seed, trial])
            true, alive = rng.integers(grid), np.ones(grid, dtype=bool)
            for k in range(episodes):
                hypothesis = rng.choice(np.flatnonzero(alive))
                if hit[hypothesis, true]:
                    reached[k:] += 1  # found: every later episode goes back to it
                    break
                alive &= ~hit[hypothesis]
        return (reached / trials).tolist()
