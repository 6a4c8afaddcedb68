"""CartPole and Pendulum whose physics is the task: pole length, masses and gravity drawn per task.

Two uses (issue 10). Meta-RL: a policy that must adapt to the physics it
finds (a heavier or longer pole) from the transitions it sees. Transfer
(part 7): domain randomisation trains on a range of physics
(`resample_on_reset=True`: a fresh draw at every reset, from the env's
seeded `np_random`) so that the policy holds up on physics outside that
range; fine-tuning starts from the nominal physics.

Each env subclasses gymnasium's own (CartPoleEnv, PendulumEnv) and only
writes the parameters its equations read, so with the nominal task, which
is what gymnasium's constructor sets, it is CartPole-v1 / Pendulum-v1 step
for step (the unit tests check it). Registered with the same time limits
(500 and 200 steps). A parameter is drawn uniform in its `*_range`; a
range (v, v) fixes it. `set_task` takes any positive values, inside the
ranges or not: held-out physics for transfer lie outside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from rlfrontier.envs.tasks import (
    Task,
    TaskEnv,
    check_finite,
    check_flag,
    check_interval,
    check_sample_args,
    check_task_keys,
)


def _sample(ranges: dict[str, tuple[float, float]], n: int, rng: np.random.Generator) -> list[Task]:
    """n tasks, each key uniform in its range; one draw of n per key, in the ranges' order (so a seed fixes them)."""
    check_sample_args(n, rng)
    columns = {key: rng.uniform(low, high, n) for key, (low, high) in ranges.items()}
    return [{key: float(values[i]) for key, values in columns.items()} for i in range(n)]


def _checked(task: Any, keys: tuple[str, ...]) -> dict[str, float]:
    check_task_keys(task, keys)
    return {key: check_finite(f"task[{key!r}]", task[key], positive=True) for key in keys}


class _RandomPhysics(TaskEnv):
    """What both envs share: per-key ranges, the nominal task, sampling and the redraw at reset.

    A subclass lists its `task_keys` and implements set_task/get_task on the
    parameters its equations read; it calls `_take_ranges` before gymnasium's
    constructor and `_remember_nominal` after it.
    """

    task_keys: tuple[str, ...] = ()

    def _take_ranges(self, ranges: dict[str, tuple[float, float]], resample_on_reset: bool) -> None:
        self.ranges = {key: check_interval(f"{key}_range", value) for key, value in ranges.items()}
        self.resample_on_reset = check_flag("resample_on_reset", resample_on_reset)

    def _remember_nominal(self) -> None:
        self._nominal = self.get_task()

    def nominal_task(self) -> Task:
        """gymnasium's physics, as its constructor sets it."""
        return dict(self._nominal)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return _sample(self.ranges, n, rng)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # The start state is drawn first (gymnasium's reset), then the task: neither depends on the other.
        out = super().reset(seed=seed, options=options)
        self._resample_task()
        return out


class RandomCartPoleEnv(_RandomPhysics, CartPoleEnv):
    """CartPole with the task's pole length, masses and gravity (module docstring).

    Args:
        length_range: (low, high) of `length`, gymnasium's name for HALF the pole's length (nominal 0.5).
        masspole_range: (low, high) of the pole's mass (nominal 0.1).
        masscart_range: (low, high) of the cart's mass (nominal 1.0).
        gravity_range: (low, high) of gravity (nominal 9.8).
        resample_on_reset: draw a fresh task at every reset from `np_random` (domain randomisation).
        render_mode: as CartPole's.

    Task: {"length", "masspole", "masscart", "gravity"}: positive floats;
    until one is set (or drawn) it is `nominal_task()`, gymnasium's defaults.
    """

    task_keys = ("length", "masspole", "masscart", "gravity")

    def __init__(
        self,
        *,
        length_range: tuple[float, float] = (0.25, 0.75),
        masspole_range: tuple[float, float] = (0.05, 0.15),
        masscart_range: tuple[float, float] = (0.5, 1.5),
        gravity_range: tuple[float, float] = (8.0, 12.0),
        resample_on_reset: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self._take_ranges({"length": length_range, "masspole": masspole_range, "masscart": masscart_range,
                           "gravity": gravity_range}, resample_on_reset)
        super().__init__(render_mode=render_mode)
        self._remember_nominal()

    def set_task(self, task: Task) -> None:
        values = _checked(task, self.task_keys)
        self.length, self.masspole = values["length"], values["masspole"]
        self.masscart, self.gravity = values["masscart"], values["gravity"]
        # CartPole's step reads these two as well; its constructor derives them once.
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

    def get_task(self) -> Task:
        return {key: float(getattr(self, key)) for key in self.task_keys}


class RandomPendulumEnv(_RandomPhysics, PendulumEnv):
    """Pendulum with the task's length, mass and gravity (module docstring).

    Args:
        length_range: (low, high) of the pendulum's length `l` (nominal 1.0).
        mass_range: (low, high) of its mass `m` (nominal 1.0).
        gravity_range: (low, high) of gravity `g` (nominal 10.0, Pendulum's default).
        resample_on_reset: draw a fresh task at every reset from `np_random` (domain randomisation).
        render_mode: as Pendulum's.

    Task: {"length", "mass", "gravity"}: positive floats; until one is set
    (or drawn) it is `nominal_task()`, gymnasium's defaults. The reward does
    not depend on the task; the dynamics do.
    """

    task_keys = ("length", "mass", "gravity")
    _attributes = {"length": "l", "mass": "m", "gravity": "g"}

    def __init__(
        self,
        *,
        length_range: tuple[float, float] = (0.5, 1.5),
        mass_range: tuple[float, float] = (0.5, 1.5),
        gravity_range: tuple[float, float] = (8.0, 12.0),
        resample_on_reset: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self._take_ranges({"length": length_range, "mass": mass_range, "gravity": gravity_range},
                          resample_on_reset)
        super().__init__(render_mode=render_mode)
        self._remember_nominal()

    def set_task(self, task: Task) -> None:
        for key, value in _checked(task, self.task_keys).items():
            setattr(self, self._attributes[key], value)

    def get_task(self) -> Task:
        return {key: float(getattr(self, attribute)) for key, attribute in self._attributes.items()}
