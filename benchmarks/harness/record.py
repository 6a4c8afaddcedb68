"""What one run of one contender records, and the figures derived from it.

A run is a list of points (env steps, training wall clock, greedy evaluation
return, ...) on a training clock that stands still while the harness
evaluates. From the points and the target follow steps and wall clock to the
target and whether it was reached; from the run's totals its env steps/s.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

Point = dict[str, Any]  # env_steps, wall_s, eval_return (None if not evaluated), extras
# Whether one point meets a benchmark's success criterion; the default is eval_return >= target.
Criterion = Callable[[Point], bool]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Derived figures (pure) ----------------------------------------------------------------------------


def first_reaching(points: Sequence[Point], target: float | None, criterion: Criterion | None = None) -> Point | None:
    """The first point that meets the criterion (None: never, or no target).

    Without a criterion: the first point whose evaluation return is >= target.
    A benchmark whose success is not a return threshold (DeepSea's fraction of
    bad training episodes) passes its own criterion.
    """
    if target is None:
        return None
    if criterion is None:
        def criterion(point: Point) -> bool:
            return point.get("eval_return") is not None and point["eval_return"] >= target
    return next((point for point in points if criterion(point)), None)


def steps_to_target(points: Sequence[Point], target: float | None, criterion: Criterion | None = None) -> int | None:
    point = first_reaching(points, target, criterion)
    return None if point is None else int(point["env_steps"])


def wall_s_to_target(points: Sequence[Point], target: float | None,
                     criterion: Criterion | None = None) -> float | None:
    point = first_reaching(points, target, criterion)
    return None if point is None else float(point["wall_s"])


def env_steps_per_s(env_steps: int | None, wall_s: float | None) -> float | None:
    """Env steps over training wall clock: throughput of the whole algorithm, learning included."""
    if not env_steps or not wall_s or wall_s <= 0:
        return None
    return env_steps / wall_s


# The clock -------------------------------------------------------------------------------------------


class TrainingClock:
    """Wall clock of training: runs from start(), stands still inside paused() and after stop()."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._excluded = 0.0
        self._stopped_at: float | None = None

    @property
    def started(self) -> bool:
        return self._start is not None

    def start(self) -> None:
        self._start = time.perf_counter()
        self._excluded = 0.0
        self._stopped_at = None

    def stop(self) -> float:
        if self._stopped_at is None:
            self._stopped_at = self.elapsed()
        return self._stopped_at

    def elapsed(self) -> float:
        if self._stopped_at is not None:
            return self._stopped_at
        if self._start is None:
            raise RuntimeError("training clock not started (call Recorder.start() before training)")
        return time.perf_counter() - self._start - self._excluded

    @contextmanager
    def paused(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._excluded += time.perf_counter() - t0


# The recorder ----------------------------------------------------------------------------------------


class Recorder:
    """Evaluation schedule, points, clock and stop decision of one (contender, group, seed) run.

    A contender's `run(seed, budget, recorder)` times its set-up inside
    `setup()`, calls `start()` just before training, asks `due(env_steps)`
    after each unit of training and, when due, `evaluate(env_steps, fn)`
    (True once the target is reached: stop there), and ends with
    `stop(env_steps)`. Benchmarks without an evaluation (throughput) call
    `record(env_steps)` instead of `evaluate`.

    Args:
        contender: the contender's name.
        seed: the run's seed.
        budget: the run's budget (env steps; a benchmark may say otherwise, e.g. seconds).
        group: what else identifies the run besides contender and seed (e.g. {"size": 14}).
        target: evaluation return that counts as reached (None: no target).
        eval_every: env steps between evaluations; one is due at every multiple
            of it that the step count has crossed, and at the end of the budget.
        criterion: whether a point counts as reached (default: eval_return >= target).
    """

    def __init__(
        self,
        *,
        contender: str,
        seed: int,
        budget: float,
        group: dict[str, Any] | None = None,
        target: float | None = None,
        eval_every: int | None = None,
        criterion: Criterion | None = None,
        quiet: bool = False,
    ) -> None:
        self.contender = contender
        self.seed = seed
        self.budget = budget
        self.group = dict(group or {})
        self.target = target
        self.eval_every = eval_every
        self.criterion = criterion
        self.quiet = quiet
        self.clock = TrainingClock()
        self.points: list[Point] = []
        self.extra: dict[str, Any] = {}
        self.setup_s: float | None = None
        self.eval_s = 0.0
        self.env_steps: int | None = None
        self.train_wall_s: float | None = None
        self.error: str | None = None
        self._next_eval = eval_every

    @property
    def name(self) -> str:
        where = "".join(f" {k}={v}" for k, v in self.group.items())
        return f"{self.contender}{where} seed {self.seed}"

    @contextmanager
    def setup(self) -> Iterator[None]:
        """Times what is built before training (the algorithm, the model): setup_s, outside the clock."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.setup_s = (self.setup_s or 0.0) + time.perf_counter() - t0

    def start(self) -> None:
        self.clock.start()

    @property
    def reached(self) -> bool:
        return first_reaching(self.points, self.target, self.criterion) is not None

    @property
    def last_steps(self) -> int | None:
        return int(self.points[-1]["env_steps"]) if self.points else None

    def due(self, env_steps: int) -> bool:
        """An evaluation is due: a multiple of eval_every crossed, or the budget spent."""
        if self.eval_every is not None and self._next_eval is not None and env_steps >= self._next_eval:
            return True
        return env_steps >= self.budget

    def record(self, env_steps: int, *, eval_return: float | None = None, wall_s: float | None = None,
               **extra: Any) -> bool:
        """Adds one point at the current training wall clock; True once the target is reached."""
        point: Point = {
            "env_steps": int(env_steps),
            "wall_s": self.clock.elapsed() if wall_s is None else float(wall_s),
            "eval_return": None if eval_return is None else float(eval_return),
            **extra,
        }
        self.points.append(point)
        return self.reached

    def evaluate(self, env_steps: int, evaluate: Callable[[], float], **extra: Any) -> bool:
        """Runs `evaluate()` with the training clock paused and records its return.

        The point's wall clock is the training time before the evaluation.
        Returns True once the target is reached.
        """
        wall_s = self.clock.elapsed()
        t0 = time.perf_counter()
        with self.clock.paused():
            ret = float(evaluate())
        self.eval_s += time.perf_counter() - t0
        if self.eval_every is not None:
            while self._next_eval <= env_steps:
                self._next_eval += self.eval_every
        was_reached = self.reached
        reached = self.record(env_steps, eval_return=ret, wall_s=wall_s, **extra)
        if not self.quiet:
            log(f"{self.name}: {env_steps:>7} steps {wall_s:8.1f} s  eval return {ret:8.2f}"
                + ("  -> target reached" if reached and not was_reached else ""))
        return reached

    def evaluate_at_end(self, env_steps: int, evaluate: Callable[[], float]) -> bool:
        """The evaluation at the end of the budget, unless the target was reached or this step evaluated."""
        if self.reached or self.last_steps == int(env_steps):
            return self.reached
        return self.evaluate(env_steps, evaluate)

    def stop(self, env_steps: int | None = None, **extra: Any) -> None:
        """Stops the clock; env_steps defaults to the last point's."""
        self.train_wall_s = self.clock.stop() if self.clock.started else None
        self.env_steps = int(env_steps) if env_steps is not None else self.last_steps
        self.extra.update(extra)

    def fail(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        if self.train_wall_s is None:
            self.stop()

    def to_dict(self) -> dict[str, Any]:
        """The run as results.json holds it: raw points and totals, and the derived figures."""
        return {
            "contender": self.contender,
            "group": self.group,
            "seed": self.seed,
            "budget": self.budget,
            "target": self.target,
            "steps_to_target": steps_to_target(self.points, self.target, self.criterion),
            "wall_s_to_target": wall_s_to_target(self.points, self.target, self.criterion),
            "reached": self.reached,
            "env_steps": self.env_steps,
            "train_wall_s": self.train_wall_s,
            "env_steps_per_s": env_steps_per_s(self.env_steps, self.train_wall_s),
            "setup_s": self.setup_s,
            "eval_s": self.eval_s,
            "error": self.error,
            "extra": self.extra,
            "points": self.points,
        }
