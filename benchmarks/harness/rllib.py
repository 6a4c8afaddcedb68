"""The RLlib side every benchmark shares: one local Ray for all runs, algorithms built as the command line
builds them (with a benchmark's callback added), and the train-until-target loop."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .record import Recorder, log


def with_callback(existing: Any, callback: type) -> list[type]:
    """`callback` after the algorithm's own callbacks class(es), none replaced."""
    from ray.rllib.callbacks.callbacks import RLlibCallback

    own = existing if isinstance(existing, (list, tuple)) else [existing]
    return [*(c for c in own if c not in (None, RLlibCallback)), callback]


def build_algo(algo: str, overrides: dict[str, Any], *, env: str, seed: int,
               env_config: dict[str, Any] | None = None, callback: type | None = None):
    """The Algorithm `rlfrontier train ALGO --env ENV --seed SEED --set K=V ...` builds (RLlib's
    evaluation off), with `callback` after the algorithm's own callbacks."""
    from rlfrontier.configure import build_config

    _, config, _ = build_config(algo=algo, env=env, env_config=env_config, seed=seed, overrides=overrides,
                                evaluation_interval=0)
    if callback is not None:
        config.callbacks(callbacks_class=with_callback(config.callbacks_class, callback))
    return config.build_algo()


def module_devices(algo) -> list[str]:
    """Devices of the learner module's parameters, one entry per learner (local or remote): "cpu", "cuda:0"."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    def devices(learner) -> str:
        return ",".join(sorted({str(p.device) for p in learner.module[DEFAULT_MODULE_ID].parameters()}))

    group = algo.learner_group
    if group.is_local:
        return [devices(group._learner)]
    return [call.get() for call in group.foreach_learner(devices)]


def ppo_takes_rnd() -> str | None:
    """A contender's `available` check: why the registry's ppo cannot run with RND (None: it can)."""
    from rlfrontier.registry import get_algorithm

    bonuses = get_algorithm("ppo").bonuses
    return None if "rnd" in bonuses else f"the registry's ppo takes no rnd bonus (bonuses: {bonuses or 'none'})"


@contextmanager
def ray_session(results: dict[str, Any], *, num_cpus: int | None = None,
                num_gpus: int | None = None) -> Iterator[None]:
    """A fresh local Ray (never an existing cluster) for the whole benchmark; ray.init time in timings.
    num_gpus None: the GPUs Ray detects."""
    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False)
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


def train_until_target(
    algo,
    rec: Recorder,
    evaluate: Callable[[], float] | None = None,
    *,
    measure: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    spent: Callable[[dict[str, Any]], int] = lifetime_steps,
) -> None:
    """algo.train() until the target is reached or the budget is spent; stops algo.

    Either `evaluate` (a policy evaluation returning a return, on the
    recorder's schedule: checked after each iteration, so at the step count an
    iteration ends on, and once at the end of the budget) or `measure` (figures
    taken from every train() result, recorded as a point each iteration and
    judged by the recorder's criterion, e.g. DeepSea's fraction of bad training
    episodes). `spent` is what the budget counts, from a train() result (env
    steps unless the benchmark says otherwise). The budget may be overshot by
    up to one iteration.
    """
    if (evaluate is None) == (measure is None):
        raise ValueError("train_until_target takes either evaluate or measure")
    env_steps, iterations, used = 0, 0, 0
    try:
        rec.start()
        while used < rec.budget:
            result = algo.train()
            env_steps, used = lifetime_steps(result), spent(result)
            iterations += 1
            if measure is not None:
                if rec.record(env_steps, **measure(result)):
                    break
            elif rec.due(env_steps) and rec.evaluate(env_steps, evaluate):
                break
        rec.stop(env_steps, iterations=iterations)
    finally:
        algo.stop()
