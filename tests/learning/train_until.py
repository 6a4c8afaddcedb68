"""The loop every learning test shares: train in this process until a goal or a budget.

The algorithm is built by the project's own `configure.build_config` (what
`rlfrontier train` builds, RLlib's evaluation off) and trained by
`algo.train()` in the test process, on the Ray session its module shares
(tests.conftest's `local_ray`): no CLI process, Tune trial or MLflow run per
seed, so a test can afford several seeds. The CLI and `evaluate` paths are
tested in tests/integration. After every iteration the harness plays the
greedy policy on fresh envs; a run stops at the first evaluation that reaches
its goal, or at its budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


# Start states of greedy evaluation: seed s, episode k resets with
# EVAL_SEED_BASE + 100 * s + k (never a training env's reset seed).
EVAL_SEED_BASE = 1_000_000


@dataclass
class Run:
    """One training run: when it reached its goal and what its evaluations returned."""

    seed: int
    env_steps: int = 0
    reached_at: int | None = None  # env steps at the first evaluation that reached the goal
    evaluations: list[tuple[int, float]] = field(default_factory=list)  # (env steps, greedy return)
    wall_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict, repr=False)  # the last `algo.train()` result

    @property
    def reached(self) -> bool:
        return self.reached_at is not None


@contextmanager
def built(algo: str, *, env: str, seed: int, env_config: dict[str, Any] | None = None,
          overrides: dict[str, Any] | None = None, num_learners: int | None = None,
          **resources: Any) -> Iterator[Any]:
    """The Algorithm `rlfrontier train ALGO --env ENV --seed SEED --set K=V ...` builds; stopped on exit.
    `resources`: e.g. num_env_runners, num_envs_per_env_runner, as the command line's flags."""
    from rlfrontier.configure import build_config

    _, config, _ = build_config(algo=algo, env=env, env_config=env_config, seed=seed, overrides=overrides,
                                num_learners=num_learners, evaluation_interval=0, **resources)
    if num_learners:
        # Local Ray here has 2 CPUs; a learner would ask for one, and the
        # learners share the cores with this process anyway.
        config.learners(num_cpus_per_learner=0.5)
    algorithm = config.build_algo()
    try:
        yield algorithm
    finally:
        algorithm.stop()


def meta_test_after(algo: str, *, env: str, seed: int, iterations: int, overrides: dict[str, Any],
                    env_config: dict[str, Any] | None = None) -> dict[str, float]:
    """A meta-RL algorithm's own meta-test (`held_out_metrics`, rlfrontier.meta_test) after `iterations`
    iterations on the driver's EnvRunner with 10 sub-envs."""
    with built(algo, env=env, seed=seed, env_config=env_config, overrides=overrides, num_env_runners=0,
               num_envs_per_env_runner=10) as algorithm:
        for _ in range(iterations):
            algorithm.train()
        return algorithm.held_out_metrics()


def train_until(algorithm, *, seed: int, budget: int, goal: float, evaluate: Callable[[Any], float]) -> Run:
    """Trains `algorithm` until `evaluate(algorithm) >= goal` (checked after every iteration) or `budget` env steps."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    run = Run(seed=seed)
    started = time.perf_counter()
    while run.env_steps < budget:
        run.result = algorithm.train()
        run.env_steps = int(run.result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
        run.evaluations.append((run.env_steps, float(evaluate(algorithm))))
        if run.evaluations[-1][1] >= goal:
            run.reached_at = run.env_steps
            break
    run.wall_s = time.perf_counter() - started
    return run


def greedy_return_mean(module, env_id: str, *, seeds: list[int], env_config: dict[str, Any] | None = None) -> float:
    """Mean return of the module's greedy policy, one episode per reset seed (rlfrontier.evaluation)."""
    from rlfrontier.evaluation import act, greedy_return_mean as play

    return play(lambda obs: act(module, obs, explore=False), env_id, seeds=seeds, env_config=env_config)


def at_least(k: int, seeds: tuple[int, ...], solved: Callable[[int], bool]) -> tuple[bool, dict[int, bool]]:
    """Whether `solved(seed)` holds for at least `k` of `seeds`, and the outcomes run.

    Seeds run in order, only until the answer is known (k successes, or too
    few seeds left to reach k): the same decision as running them all, for
    less time. A test of "at most k-1 of n" asserts the answer is False.
    """
    outcomes: dict[int, bool] = {}
    for i, seed in enumerate(seeds):
        outcomes[seed] = solved(seed)
        successes = sum(outcomes.values())
        if successes >= k or successes + len(seeds) - 1 - i < k:
            break
    return sum(outcomes.values()) >= k, outcomes


def eval_seeds(run_seed: int, episodes: int) -> list[int]:
    return [EVAL_SEED_BASE + 100 * run_seed + k for k in range(episodes)]


DEEP_SEA = "rlfrontier/DeepSea-v0"
DEEP_SEA_SOLVED = 0.98  # the optimum is 0.99; every policy that misses the treasure earns at most 0


def train_on_deep_sea(algo: str, *, size: int, seed: int, budget: int, iteration: int,
                      overrides: dict[str, Any] | None = None) -> Run:
    """`algo` on the run's own DeepSea (its mapping follows the seed) until one greedy episode
    returns >= DEEP_SEA_SOLVED, checked every `iteration` env steps, or `budget` env steps."""
    def greedy_episode(algorithm) -> float:
        # env_config holds the mapping seed derived from the run's seed.
        return greedy_return_mean(algorithm.get_module(), DEEP_SEA, seeds=[0],
                                  env_config=dict(algorithm.config.env_config))

    with built(algo, env=DEEP_SEA, env_config={"size": size}, seed=seed,
               overrides={"min_sample_timesteps_per_iteration": iteration, **(overrides or {})}) as algorithm:
        return train_until(algorithm, seed=seed, budget=budget, goal=DEEP_SEA_SOLVED, evaluate=greedy_episode)
