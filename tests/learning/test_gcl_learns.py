"""gcl recovers a reward whose optimal policy is near the expert's, from 50 demonstrations and samples only.

The world is rlfrontier/GridWorld-v0 (8 x 8, slip 0.3, horizon 16), whose
dynamics gcl never reads: its reward learns from soft_q's sampled
trajectories and the demonstrations alone (sample-based MaxEnt IRL). The
measure is maxent_irl's: the expected value difference of the learned
reward (the true value of the expert's optimal policy minus the true value
of the policy optimal for the learned reward, computed exactly from the
world's dynamics after training), as a share of the optimal value. The
demonstrations are recorded from the world's optimal policy with record
seeds that picked no default (200,000 + 1,000 k for run seed k).

`rlfrontier train gcl` with its defaults, 10 iterations (10,240 env steps),
seeds 0, 1, 2; a seed passes when the share is under GOAL. The test asks for
2 of 3 (tests.learning.train_until.at_least stops once that is known).

Measured (this loop, 2 cores, two seeds at a time):
- gcl: 4.5, 2.9, 4.1, 2.7, 0.9, 2.1, 1.3, 1.5, 1.0, 1.1% on seeds 0-9 and
  1.2, 1.1, 1.4, 2.6, 4.4, 4.0, 4.9, 1.8, 4.2, 3.1% on seeds 10-19 (reward
  correlation with the true reward 0.32-0.57; the greedy policy's own return
  0.10-1.12 of the demonstrations': 16 of 20 at 0.8 or more, so the policy,
  unlike the reward, is not asserted at this budget);
- the same run with the reward frozen at its initialisation (cost_lr 1e-12:
  soft_q on a random reward): 59-93% on seeds 0-9 (correlation -0.24 to
  0.25; measured before the reward's steps were counted per env step, which
  leaves the default schedule as it was);
- IOC with a fixed uniform-random sampler instead of soft_q (RelEnt IRL's
  sampler, the baseline GCL's paper beat), same demonstrations, reward
  network, loss and number of reward steps (320): 1.2, 1.1, 4.2, 2.7, 1.1% on
  seeds 0-4, correlation 0.51-0.55 (a /tmp script, not kept): on this small
  world random walks cover the states the expert visits, so adaptive sampling
  buys nothing here; its gain is where they do not.
GOAL = 10% sits between the two. False failures: all 20 gcl seeds cleared it
by a factor of 2 or more; 0 misses in 20 puts the per-seed miss rate under
0.14 (95% upper bound), so two misses in three seeds happen with probability
under 3 p^2 = 0.06 even at that bound. It can fail: a reward that does not
learn, or learns the wrong sign, is the frozen one, 59% or worse on 10 of 10
seeds.
"""

from __future__ import annotations

import pytest

from rlfrontier import demos, envs
from rlfrontier.algorithms.maxent_irl.maxent_irl import EVD_RATIO
from tests.learning.train_until import at_least

pytestmark = pytest.mark.learning

ENV = "rlfrontier/GridWorld-v0"
SEEDS = (0, 1, 2)
ITERATIONS = 10  # of 1,024 env steps
DEMONSTRATIONS = 50
GOAL = 0.10


def evd_share(seed: int, tmp_path) -> float:
    from rlfrontier.algorithms.gcl import GCLConfig

    out = tmp_path / f"demos-{seed}"
    demos.record(out=out, env_id=ENV, episodes=DEMONSTRATIONS, scripted="optimal", seed=200_000 + 1000 * seed)
    envs.register_with_ray(ENV)
    config = (GCLConfig().environment(ENV).training(demos=str(out)).evaluation(evaluation_interval=None)
              .debugging(seed=seed))
    algorithm = config.build_algo()
    try:
        for _ in range(ITERATIONS):
            algorithm.train()
        return algorithm.reward_metrics()[EVD_RATIO]
    finally:
        algorithm.stop()


def test_the_learned_rewards_optimal_policy_is_within_ten_percent_of_the_experts(local_ray, tmp_path):
    shares: dict[int, float] = {}

    def solved(seed: int) -> bool:
        shares[seed] = evd_share(seed, tmp_path)
        return shares[seed] < GOAL

    ok, _ = at_least(2, SEEDS, solved)
    assert ok, f"expected value difference / optimal value per seed: {shares} (goal < {GOAL})"
