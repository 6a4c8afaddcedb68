"""rl2 learns a bandit strategy as good as Thompson sampling's: issue 10's acceptance, on a CI budget.

The task: rlfrontier/Bandit-v0 with its defaults, K = 5 Bernoulli arms with
means uniform in [0, 1], 10 pulls a trial (Duan et al. 2016, table 1's
k = 5, n = 10). The contender is `rlfrontier train rl2` with its defaults
(RLlib's PPO, an LSTM of 64 cells, 2,000 env steps an iteration from 16
sub-envs in the driver's EnvRunner) for BUDGET env steps, on seeds 0, 1, 2;
then its policy (sampling its actions, as it was trained) plays 10 trials on
each of the run's 100 held-out tasks (`held_out_metrics`, the tasks of
held_out_seed 0), and Thompson sampling (Beta(1, 1) prior) and UCB1 play
100 runs on each of the same tasks. A seed passes when rl2's mean regret is
at most GOAL times Thompson's (issue 10: "no worse than 1.2x"). The test
asks for 2 of 3 seeds (tests.learning.train_until.at_least stops once that
is known).

On these tasks Thompson's regret is 2.49, UCB1's 2.63 and a uniformly random
learner's 3.31 (exact), so 1.2x Thompson (2.98) asks rl2 to close more than
40% of the gap between random and Thompson. At 10 pulls Thompson sampling
explores too long to be a strong bar: win-stay-lose-shift (one pull of
memory) scores 2.03 (0.82x) and "each arm once, then the best" 2.36 (0.95x)
on the same tasks (100 runs a task, numpy, measured once).

Measured (2 cores, shared with another engineer's runs), the ratio after
BUDGET = 40,000 env steps: this test's loop 0.964 and 0.933 on seeds 0 and 1
(it stopped there: 2 of 3 passed; 75 s); the same defaults through
`rlfrontier train rl2 --seed S` (evaluated every 10,000 env steps) 0.938,
0.910, 0.904 on seeds 0-2, which were at 1.19, 1.14, 1.14 after 10,000 and
at most 1.03 from 20,000 on. Greedily played, the same policies scored 0.63-0.81x.
GOAL = 1.2 is the acceptance threshold itself.

False failures: every seed measured was under 1.2 from 10,000 env steps on
and at most 0.964 at the budget, 0.24 below the goal; the held-out estimate's
standard error is about 0.015 (1,000 trials, regret sd about 1.1, over a
Thompson mean of 10,000 runs); with two of three seeds needed, a failure
takes two seeds learning four times slower than any measured. It can fail:
a policy without memory (inputs or state not carried within a trial) sees a
constant observation, so its pull is one fixed distribution over the arms,
whose expected regret over uniform tasks is a random learner's, 1.33x
Thompson's. It does not tell a full memory from one pull of memory (0.82x);
the unit tests check that the state is carried through the whole trial.
"""

from __future__ import annotations

import pytest

from rlfrontier.algorithms.rl2.rl2 import HELD_OUT_REGRET_MEAN, REGRET_RATIO_VS_THOMPSON, THOMPSON_REGRET_MEAN
from tests.learning.train_until import at_least, built

pytestmark = pytest.mark.learning

ENV = "rlfrontier/Bandit-v0"
SEEDS = (0, 1, 2)
BUDGET = 40_000  # env steps: 20 iterations of 2,000, 4,000 trials
GOAL = 1.2


def regret_ratio(seed: int) -> dict[str, float]:
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    with built("rl2", env=ENV, seed=seed) as algorithm:
        steps = 0
        while steps < BUDGET:
            steps = int(algorithm.train()[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
        return algorithm.held_out_metrics()


def test_rl2_regret_on_bandits_is_within_1_2x_thompson_sampling(local_ray):
    measured: dict[int, dict[str, float]] = {}

    def passes(seed: int) -> bool:
        measured[seed] = regret_ratio(seed)
        return measured[seed][REGRET_RATIO_VS_THOMPSON] <= GOAL

    passed, outcomes = at_least(2, SEEDS, passes)
    table = {seed: {k: round(m[k], 3) for k in (HELD_OUT_REGRET_MEAN, THOMPSON_REGRET_MEAN, REGRET_RATIO_VS_THOMPSON,
                                                "greedy_" + REGRET_RATIO_VS_THOMPSON)}
             for seed, m in measured.items()}
    print(f"rl2 against Thompson sampling after {BUDGET} env steps, by seed: {table}")
    assert passed, f"rl2 regret against Thompson sampling's by seed: {table} (goal: ratio <= {GOAL})"
