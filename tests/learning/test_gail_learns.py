"""GAIL learns to hold the pole up from 20 expert episodes, where a policy without its reward cannot.

rlfrontier/CartPoleFixedHorizon-v0 never terminates and pays 1 per step with
the pole up, so surviving earns nothing by itself: only imitating the expert
(`demos record --scripted cartpole`, 500 per episode) keeps the pole up. The
contender is `rlfrontier train gail` with its defaults (RLlib's PPO with the
registry's CartPole settings, lambda 0.95, vf_clip_param 10,000; the
discriminator's 8 Adam steps of 512 pairs per 4,000-step iteration), sampling
from 8 envs in the driver's EnvRunner (`--num-env-runners 0
--num-envs-per-env-runner 8`: 30 s a seed here, against 50 s with PPO's two
remote EnvRunners), on seeds 0, 1, 2. Each trains for BUDGET env steps (12
iterations) and its greedy policy then plays EPISODES episodes after each of
the last three iterations; a seed passes when the mean of those returns is at
least GOAL. The test asks for 2 of 3 seeds (tests.learning.train_until.at_least
stops once that is known).

Measured (this loop, 2 cores), the mean of the last three evaluations after
48,000 env steps:
- gail: 68, 77, 68 on seeds 0-2 (with two remote EnvRunners: 79, 56, 61; `train
  gail` reaches a greedy 450 after 144,000-200,000 env steps, tune_configs/gail_cartpole.yaml);
- the same PPO on a constant reward of 1 (`reward_transform: {type: affine,
  scale: 0, shift: 1}`, no imitation signal): 9, 10, 16 (two remote EnvRunners:
  8, 27, 11). Its greedy policy mostly pushes one way and the pole falls within
  8-10 steps; one seed drifted to a greedy 127-157 between 16,000 and 28,000
  env steps and back to 9.
GOAL = 40 sits between the two. False failures: every gail seed measured
cleared it by 16 or more (28 or more in this loop); with two of three needed,
the test fails only if two seeds fall that far, which we never saw. It can
fail: a gail whose reward does not reach PPO, has the wrong sign or ignores
the expert is a constant-reward PPO, which scored below 30 at the end on all
six runs measured (passing would need such drifts on two seeds at once, in
the last three iterations).
"""

from __future__ import annotations

import numpy as np
import pytest

from rlfrontier import demos
from tests.learning.train_until import at_least, eval_seeds, greedy_return_mean

pytestmark = pytest.mark.learning

ENV = "rlfrontier/CartPoleFixedHorizon-v0"
SEEDS = (0, 1, 2)
ITERATIONS = 12  # of 4,000 env steps
BUDGET = 48_000
EVALUATED = 3  # the last iterations whose greedy returns are averaged
EPISODES = 5
GOAL = 40.0


@pytest.fixture(scope="module")
def expert_demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "cartpole_fixed"
    manifest = demos.record(out=out, env_id=ENV, episodes=20, scripted="cartpole")
    assert manifest["return_mean"] == 500.0
    return out


def late_return(seed: int, expert: str, algo: str = "gail") -> float:
    """The mean greedy return after each of the last EVALUATED iterations of a BUDGET-step `algo` run."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    from rlfrontier.configure import build_config

    _, config, _ = build_config(algo=algo, env=ENV, seed=seed, demos=expert, evaluation_interval=0,
                                num_env_runners=0, num_envs_per_env_runner=8)
    algorithm = config.build_algo()
    returns = []
    try:
        for iteration in range(ITERATIONS):
            result = algorithm.train()
            if iteration >= ITERATIONS - EVALUATED:
                returns.append(greedy_return_mean(algorithm.get_module(), ENV, seeds=eval_seeds(seed, EPISODES)))
        assert result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME] >= BUDGET
    finally:
        algorithm.stop()
    return float(np.mean(returns))


def test_gail_holds_the_pole_up_where_no_imitation_signal_does(local_ray, expert_demos):
    late: dict[int, float] = {}

    def passes(seed: int) -> bool:
        late[seed] = late_return(seed, str(expert_demos))
        return late[seed] >= GOAL

    passed, outcomes = at_least(2, SEEDS, passes)
    assert passed, f"mean greedy return of the last {EVALUATED} iterations by seed: {late} (goal {GOAL})"
