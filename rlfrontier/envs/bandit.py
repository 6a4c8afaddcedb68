"""K-armed Bernoulli bandits as a task distribution: the meta-RL benchmark of RL² (Duan et al. 2016, section 4.1).

A task is one bandit: each arm's success probability, drawn uniform in
[0, 1]. An episode is `pulls` pulls of that one bandit (an RL² trial), so a
learner can only do well by exploring the arms early and exploiting the
best later. The observation carries no information (a constant zero); all
a policy knows is what it remembers of its own actions and rewards.

`info["regret"]` of a pull is its pseudo-regret, the best arm's mean minus
the pulled arm's (`rlfrontier.bandits.pseudo_regret`), so RL² and the
UCB1 / Thompson baselines of `rlfrontier.bandits` are scored alike.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlfrontier.bandits import pseudo_regret
from rlfrontier.envs.tasks import (
    Task,
    TaskEnv,
    check_flag,
    check_positive_int,
    check_sample_args,
    check_task_keys,
    check_vector,
)
from rlfrontier.validation import BadInput

TASK_KEYS = ("means",)


class BanditEnv(TaskEnv, gym.Env):
    """A Bernoulli bandit with `arms` arms, `pulls` pulls an episode (module docstring).

    Args:
        arms: number of arms K, at least 2.
        pulls: pulls per episode, then truncation.
        resample_on_reset: draw fresh arm means at every reset from `np_random`.

    Task: {"means": [K success probabilities in [0, 1]]}; until one is set every mean is 0.5.
    Observation: float32 (1,), always 0 (the space is Box(0, 1)). Actions: Discrete(K).
    Reward: 1.0 with probability means[action], else 0.0.
    Info: {"regret": max(means) - means[action]} after a pull.
    """

    metadata = {"render_modes": []}

    def __init__(self, *, arms: int = 5, pulls: int = 10, resample_on_reset: bool = False) -> None:
        self.arms = check_positive_int("arms", arms, low=2)
        self.pulls = check_positive_int("pulls", pulls)
        self.resample_on_reset = check_flag("resample_on_reset", resample_on_reset)
        # Box(0, 1), not Box(0, 0): gymnasium's checker warns about a space whose bounds are equal.
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(self.arms)
        self._means = np.full(self.arms, 0.5)
        self._t = 0

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        check_sample_args(n, rng)
        return [{"means": [float(m) for m in row]} for row in rng.uniform(0.0, 1.0, (n, self.arms))]

    def set_task(self, task: Task) -> None:
        check_task_keys(task, TASK_KEYS)
        means = check_vector("task['means']", task["means"], self.arms)
        for i, m in enumerate(means):
            if not 0.0 <= m <= 1.0:
                raise BadInput(f"task['means'][{i}]={m!r} is out of range: allowed [0, 1]")
        self._means = np.array(means)

    def get_task(self) -> Task:
        return {"means": [float(m) for m in self._means]}

    # Meta-test references (TaskEnv) -------------------------------------------------
    def oracle_action(self, observation: np.ndarray) -> int:
        """The best arm (zero pseudo-regret)."""
        return int(np.argmax(self._means))

    def task_blind_action(self, observation: np.ndarray) -> int:
        """Arm 0 always: any policy blind to the rewards earns 0.5 a pull in expectation over tasks (on a given
        set of tasks, arm 0's mean over them, e.g. 0.525 on maml's and rl2's 100 held-out tasks of seed 0)."""
        return 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._resample_task()
        self._t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._t >= self.pulls:
            raise RuntimeError(f"BanditEnv episode is over after {self.pulls} pulls; call reset()")
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} must be an arm in 0..{self.arms - 1}")
        arm = int(action)
        reward = float(self.np_random.random() < self._means[arm])
        self._t += 1
        info = {"regret": pseudo_regret(self._means, [arm])}
        return np.zeros(1, np.float32), reward, False, self._t >= self.pulls, info

