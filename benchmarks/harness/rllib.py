"""The RLlib side every benchmark shares: one local Ray for all runs, and the train-until-target loop."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .record import Recorder, log


@contextmanager
def ray_session(results: dict[str, Any], *, num_cpus: int | None = None) -> Iterator[None]:
    """A fresh local Ray (never an existing cluster) for the whole benchmark; ray.init time in timings."""
    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    results.setdefault("timings", {})["ray_init_s"] = time.perf_counter() - t0
    log(f"ray.init: {results['timings']['ray_init_s']:.1f} s")
    try:
        yield
    finally:
        ray.shutdown()


def lifetime_steps(result: dict[str, Any]) -> int:
    """Env steps sampled so far, from an algo.train() result."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    return int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])


def train_until_target(algo, rec: Recorder, evaluate: Callable[[], float]) -> None:
    """algo.train() until an evaluation reaches the target or the env-step budget is spent; stops algo.

    Evaluations follow the recorder's schedule (checked after each iteration,
    so at the step count an iteration ends on, and once at the end of the
    budget); the budget may be overshot by up to one iteration.
    """
    env_steps, iterations = 0, 0
    try:
        rec.start()
        while env_steps < rec.budget:
            env_steps = lifetime_steps(algo.train())
            iterations += 1
            if rec.due(env_steps) and rec.evaluate(env_steps, evaluate):
                break
        rec.stop(env_steps, iterations=iterations)
    finally:
        algo.stop()
