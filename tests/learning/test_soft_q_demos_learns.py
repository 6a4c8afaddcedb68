"""soft_q with demonstrations (DQfD) reaches 450 on CartPole in fewer env steps than soft_q without, on 4 of 5 seeds.

A learning test: it trains for real and can fail. The demonstrations are 20
episodes of the scripted CartPole expert (rlfrontier.demos, 500 each). For
each seed (0-4, the first five, not picked; at_least stops once the answer is
known) soft_q --demos trains with its defaults (1,000 pre-training updates on
the demonstrations, then a quarter of every minibatch from them) until its
greedy policy's mean return over EVAL_EPISODES fixed start states reaches
GOAL, checked after every iteration (~1,000 env steps), for at most BUDGET
env steps; then soft_q without demonstrations, same seed and settings, trains
for as many env steps as the first took. The seed counts when the first
reached GOAL and the second did not reach it in at most as many steps.

Measured (this loop and bar, 2 cores, seeds 0-9, soft_q's current defaults:
one update of 128 rows per 2 env steps): with demonstrations the greedy
policy reached 450 at its first evaluation (1,024 env steps, right after
pre-training and ~10 mixed updates) on 9 seeds, at its second (2,048) on the
other (seed 8: 439.1, then 489.2). Without them, seeds 0-9 returned 9.2-10.9
at the first evaluation (1,037-1,057 env steps); seed 0 reached 500 at the
second (2,099) and seed 4 496.3 at the third (3,142); the others stayed
below 450 to ~4,200 (at most 291.4). (With the earlier defaults, 64 rows
every env step: 8 at the first and 2 at the second with demonstrations;
without, seed 5 reached 500 at 2,108.)

False failures. The run without demonstrations has its evaluations a few
steps later than the one with them (its iterations are 1,037-1,057 steps,
theirs 1,024), so a seed fails only (a) if soft_q --demos misses 450 at all
three evaluations within BUDGET: 1/10 at the first, 0/1 at the second;
taking 0.3 for each later miss, 0.1 x 0.3 x 0.3 = 0.9%; or (b) if soft_q
without reaches 450 an evaluation earlier than soft_q --demos: impossible at
the first (~25 updates: returns ~10), 1/10 at the second while --demos misses
the first (1/10), 1%. About 1.9% a seed; the test fails when 2 or more of 5
seeds fail, 1 - 0.981^5 - 5 x 0.019 x 0.981^4 = 0.3%.
About 40 s here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.learning.train_until import Run, at_least, eval_seeds, greedy_return_mean, train_until

pytestmark = pytest.mark.learning

SEEDS = (0, 1, 2, 3, 4)
NEEDED = 4
GOAL = 450.0
BUDGET = 3_000
EVAL_EPISODES = 10
DEMO_EPISODES = 20


@pytest.fixture(scope="module")
def expert_demos(tmp_path_factory) -> str:
    from rlfrontier import demos

    out = tmp_path_factory.mktemp("expert") / "demos"
    demos.record(out=out, env_id="CartPole-v1", scripted="cartpole", episodes=DEMO_EPISODES)
    return str(out)


@contextmanager
def built_soft_q(*, seed: int, demos: str | None) -> Iterator[Any]:
    """What `rlfrontier train soft_q --env CartPole-v1 --seed SEED [--demos DIR]` builds (evaluation off)."""
    from rlfrontier.configure import build_config

    _, config, _ = build_config(algo="soft_q", env="CartPole-v1", seed=seed, demos=demos, evaluation_interval=0)
    algorithm = config.build_algo()
    try:
        yield algorithm
    finally:
        algorithm.stop()


def train(seed: int, *, demos: str | None, budget: int) -> Run:
    def greedy(algo) -> float:
        return greedy_return_mean(algo.get_module(), "CartPole-v1", seeds=eval_seeds(seed, EVAL_EPISODES))

    with built_soft_q(seed=seed, demos=demos) as algo:
        return train_until(algo, seed=seed, budget=budget, goal=GOAL, evaluate=greedy)


def test_soft_q_with_demos_reaches_450_in_fewer_env_steps_than_without(local_ray, expert_demos):
    runs: dict[int, tuple[Run, Run | None]] = {}

    def faster_with_demos(seed: int) -> bool:
        with_demos = train(seed, demos=expert_demos, budget=BUDGET)
        without = None
        if with_demos.reached:
            without = train(seed, demos=None, budget=with_demos.reached_at)
        runs[seed] = (with_demos, without)
        return with_demos.reached and not (without.reached and without.reached_at <= with_demos.reached_at)

    ok, outcomes = at_least(NEEDED, SEEDS, faster_with_demos)
    report = {seed: (a.evaluations, b.evaluations if b else None) for seed, (a, b) in runs.items()}
    assert ok, (outcomes, report)
    learner = runs[next(iter(runs))][0].result["learners"]["default_policy"]
    assert learner["demo_loss"] >= 0.0 and 0.0 < learner["demo_fraction_sampled"] <= 1.0, learner
