"""Bootstrapped DQN with randomised priors finds DeepSea's treasure; epsilon-greedy DQN does not.

The comparison of Osband et al. (2016, 2018): on DeepSea of size N a dithering
policy finds the treasure with probability about 2^-N per episode, so DQN with
epsilon-greedy exploration learns that going left is best; posterior sampling
over Q-heads with priors explores deeply and finds it. Budget: 7,000 env steps
(500 episodes) at N = 14, for both; the baseline is the same implementation
with one head, no prior, no bootstrap and epsilon decaying from 1 to 0.05.
Greedy returns: 0.99 is optimal, 0 never finds the treasure. At N = 10 the
baseline is not beaten reliably (a random walk finds the treasure once in 1,024
episodes; in benchmarks/deep_sea.py it solved 2 of 3 seeds within 400); at
N = 14 (once in 16,384) it solved none of 3 in 1,000 episodes, while boot_dqn
solved all 3 in 290-360 (those benchmark figures were measured with action
mapping 0 for every seed; a run now draws its mapping from its seed, here
seed 0's, and `evaluate` rebuilds that same mapping from the checkpoint).
"""

from __future__ import annotations

import pytest

from tests.conftest import last_json, run_cli

pytestmark = pytest.mark.learning

BUDGET = 7_000
ENV = ["--env", "rlfrontier/DeepSea-v0", "--env-config", "size=14"]
EPSILON_GREEDY_DQN = ["--set", "num_heads=1", "--set", "prior_scale=0", "--set", "mask_prob=1",
                      "--set", f"epsilon=[[0, 1.0], [{BUDGET // 2}, 0.05]]"]


def train(tmp_path, *extra: str) -> dict:
    proc = run_cli("train", "boot_dqn", *ENV, "--seed", "0", "--stop-timesteps", str(BUDGET),
                   "--eval-interval", "100", *extra, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert BUDGET <= summary["env_steps"] < BUDGET + 1000
    return summary


def test_boot_dqn_finds_the_deep_sea_treasure_that_epsilon_greedy_dqn_misses(tmp_path):
    boot = train(tmp_path)
    dqn = train(tmp_path, *EPSILON_GREEDY_DQN)
    assert boot["eval_return_mean"] >= 0.9, boot
    assert dqn["eval_return_mean"] < 0.5, dqn
    # The checkpoint, evaluated outside Ray by the heads' vote, goes the whole way right.
    evaluated = last_json(run_cli("evaluate", boot["checkpoint"], "--episodes", "3", "--json", cwd=tmp_path).stdout)
    assert evaluated["return_mean"] == pytest.approx(0.99, abs=1e-6)
