"""The contract of a task distribution (issue 10): an ordinary gymnasium env that can sample, set and report its task.

Meta-RL learns from many tasks of one family (goals, arm means, physical
parameters) and is judged on tasks it has not seen. RLlib 2.60 has no
TaskSettableEnv, so the project's own contract is this, and every env in
`rlfrontier.envs` that follows it subclasses `TaskEnv`:

- `sample_tasks(n, rng)`: n tasks from the distribution the env was built
  with (its ranges, its arm count), drawn from `rng` (a numpy Generator)
  alone, so a seed gives the same tasks in any process and whatever the
  env's own state. The driver draws tasks, the envs only hold them.
- `set_task(task)` / `get_task()`: a task is a small plain dict of floats and
  lists of floats: picklable for EnvRunners in other processes, JSON-able
  for a checkpoint or an MLflow tag. `set_task` checks the keys and values
  and raises BadInput (a ValueError) naming a bad one; it accepts values
  outside the sampling ranges, since held-out tasks for transfer (issue part
  7) lie there. It takes effect at once, so set a task between episodes
  and reset, or an episode runs under two tasks. `get_task` returns a copy.
- `task`: the same as a property, because a vector env reaches its sub-envs
  through `set_attr` / `get_attr` (through any wrappers, and across
  processes for AsyncVectorEnv); `rlfrontier.meta_tasks` uses it.
- `resample_on_reset` (constructor option, default False): every `reset`
  draws a fresh task from the env's own `np_random` (seeded by
  `reset(seed=...)`). That is domain randomisation for transfer (part 7),
  and a fresh task per trial for RL² (part 4), where episodes end inside an
  EnvRunner's `sample` call and no driver can set tasks between them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from rlfrontier.validation import BadInput, check_range

Task = dict[str, Any]


class TaskEnv:
    """Mixin for a gymnasium env that is a task distribution (module docstring); put it first among the bases.

    A subclass implements `sample_tasks`, `set_task` and `get_task`, sets
    `resample_on_reset` in its constructor and calls `_resample_task()` at the
    end of its `reset` (after `super().reset(seed=...)` has seeded `np_random`).
    """

    resample_on_reset: bool = False

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        raise NotImplementedError

    def set_task(self, task: Task) -> None:
        raise NotImplementedError

    def get_task(self) -> Task:
        raise NotImplementedError

    # Reference policies of the meta-test (rlfrontier.meta_test); an env without them has no such reference.
    def oracle_action(self, observation: np.ndarray) -> Any:
        """The action of a hand-coded policy that knows the current task: the upper reference of adaptation."""
        raise NotImplementedError(f"{type(self).__name__} has no oracle policy")

    def task_blind_action(self, observation: np.ndarray) -> Any:
        """The action of a good hand-coded policy that does NOT know the task (the same for every task): what a
        policy that cannot adapt can do at best, or near it."""
        raise NotImplementedError(f"{type(self).__name__} has no task-blind policy")

    @property
    def task(self) -> Task:
        return self.get_task()

    @task.setter
    def task(self, task: Task) -> None:
        self.set_task(task)

    def _resample_task(self) -> None:
        if self.resample_on_reset:
            self.set_task(self.sample_tasks(1, self.np_random)[0])


def is_task_env(env: gym.Env) -> bool:
    """True if `env`, behind any wrappers, follows the TaskEnv contract."""
    return isinstance(env.unwrapped, TaskEnv)


def check_sample_args(n: Any, rng: Any) -> None:
    """BadInput unless n is an integer >= 0 and rng a numpy Generator (a seed or RandomState would hide a stream)."""
    check_range("n", n, 0, None, integer=True)
    if not isinstance(rng, np.random.Generator):
        raise BadInput(f"rng={rng!r} must be a numpy Generator (np.random.default_rng(seed))")


def check_task_keys(task: Any, keys: Sequence[str]) -> None:
    """BadInput unless `task` is a mapping with exactly `keys`; names the missing and unknown ones."""
    if not isinstance(task, Mapping):
        raise BadInput(f"task={task!r} must be a dict with keys {', '.join(keys)}")
    missing = [k for k in keys if k not in task]
    unknown = [k for k in task if k not in keys]
    if missing or unknown:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unknown {', '.join(map(repr, unknown))}"] if unknown else [])
        raise BadInput(f"task={dict(task)!r}: {'; '.join(parts)} (expected keys {', '.join(keys)})")


def check_finite(name: str, value: Any, *, positive: bool = False, non_negative: bool = False) -> float:
    """The value as a float; BadInput unless it is a finite real number (and > 0 if `positive`, >= 0 if
    `non_negative`)."""
    check_range(name, value, 0 if positive or non_negative else None, None, low_open=not non_negative)
    if not math.isfinite(value):
        raise BadInput(f"{name}={value!r} must be finite")
    return float(value)


def check_vector(name: str, value: Any, length: int) -> list[float]:
    """The value as a list of `length` finite floats; BadInput otherwise."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise BadInput(f"{name}={value!r} must be a list of {length} numbers")
    if len(value) != length:
        raise BadInput(f"{name}={value!r} must have {length} numbers, not {len(value)}")
    return [check_finite(f"{name}[{i}]", v) for i, v in enumerate(value)]


def check_interval(name: str, value: Any) -> tuple[float, float]:
    """A (low, high) sampling range of a positive physical parameter; BadInput unless 0 < low <= high < inf.

    low == high fixes the parameter.
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or len(value) != 2:
        raise BadInput(f"{name}={value!r} must be a (low, high) pair")
    low = check_finite(f"{name}[0]", value[0], positive=True)
    high = check_finite(f"{name}[1]", value[1], positive=True)
    if low > high:
        raise BadInput(f"{name}={tuple(value)!r} must have low <= high")
    return low, high


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise BadInput(f"{name}={value!r} must be a bool")
    return bool(value)


def check_positive_int(name: str, value: Any, low: int = 1) -> int:
    check_range(name, value, low, None, integer=True)
    return int(value)

