"""soft_q beats the uniform-random policy on CartPole by a wide margin, on a budget, on every seed.

A learning test: it trains for real and can fail. Seeds 0, 1, 2 (the first
three, not picked) each train soft_q with its defaults (one gradient update
of 128 rows per 2 env steps) for at most BUDGET env steps. After every
iteration (~1,050 env steps; the first makes no update: learning starts at
1,000) the greedy policy plays 20 CartPole-v1 episodes from fixed start
states, and the run stops at the first mean return of MARGIN x the
uniform-random policy's (about 22, so about 118). A random policy cannot
reach that mean over 20 episodes; a learner that stopped learning stays near 10.

Measured (this loop and bar, 2 cores, the current defaults): seeds 0-29 all
reached the bar within 3,200 env steps, 4 at the first evaluation after
updates began (~2,100 env steps; the other 26 returned 9.4-106.7 there) and
26 at the second (~3,150). Miss rates per evaluation: 26 of 30 at the first,
0 of 26 at the second. BUDGET allows five tries (~2,100 to ~6,300), so a seed
fails only by missing all five: taking 3/26 = 0.12 for the second (the 95%
upper bound of 0 in 26) and 0.3 for each later one, 0.87 x 0.12 x 0.3^3 =
0.3% a seed, under 1% for the test, which requires every seed. About 10 s a
seed here. (With 64 rows every env step, the earlier defaults, 24 of 30
reached it at the first evaluation; fewer updates per env step learn later
in env steps, and run about twice as many env steps a second.)

Two data-parallel learners (DDP over gloo on CPU) are a plumbing test that
still trains: a real two-learner run of one seed, with identical weights on
both learners after the updates, a finite loss, and the same bar. Measured
(current defaults): seeds 0-9 all reached it within 3,200 env steps (3 at
the first evaluation after updates began, 7 at the second; weights
identical in all 10), so its false-failure rate is of the same order. About
20 s here.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from tests.conftest import learner_weights
from tests.learning.train_until import built, eval_seeds, greedy_return_mean, train_until

pytestmark = pytest.mark.learning

SEEDS = (0, 1, 2)
BUDGET = 6_000
EVAL_EPISODES = 20
MARGIN = 5  # the bar: MARGIN x the uniform-random policy's return


def random_policy_return(episodes: int = 100, seed: int = 0) -> float:
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    returns = []
    for i in range(episodes):
        env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            _, r, term, trunc, _ = env.step(int(rng.integers(2)))
            total += r
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


@pytest.fixture(scope="module")
def bar() -> float:
    baseline = random_policy_return()
    assert 15 < baseline < 30  # sanity: the known random-policy level
    return MARGIN * baseline


def greedy_cartpole(seed: int):
    return lambda algo: greedy_return_mean(algo.get_module(), "CartPole-v1", seeds=eval_seeds(seed, EVAL_EPISODES))


def test_soft_q_beats_uniform_random_on_cartpole_on_every_seed(local_ray, bar):
    runs = []
    for seed in SEEDS:
        with built("soft_q", env="CartPole-v1", seed=seed) as algo:
            runs.append(train_until(algo, seed=seed, budget=BUDGET, goal=bar, evaluate=greedy_cartpole(seed)))
    assert all(run.reached for run in runs), [(run.seed, run.evaluations) for run in runs]


def test_two_data_parallel_learners_stay_identical_and_learn(local_ray, bar):
    # The global batch is 2 x 128, so training_intensity 128 keeps one gradient
    # update per 2 env steps, as with one learner.
    seed = SEEDS[0]
    with built("soft_q", env="CartPole-v1", seed=seed, num_learners=2,
               overrides={"training_intensity": 128}) as algo:
        initial = learner_weights(algo)
        run = train_until(algo, seed=seed, budget=BUDGET, goal=bar, evaluate=greedy_cartpole(seed))
        learners = learner_weights(algo)
    assert len(learners) == 2
    for key in learners[0]:
        np.testing.assert_array_equal(learners[0][key], learners[1][key], err_msg=key)
    assert any(not np.allclose(initial[0][k], learners[0][k]) for k in initial[0]), "no update changed the weights"
    learner = run.result["learners"]["default_policy"]
    assert learner["num_gradient_updates"] > 0 and math.isfinite(learner["qf_loss"]), learner
    assert run.reached, run.evaluations
