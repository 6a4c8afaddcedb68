"""soft_q beats the uniform-random policy on CartPole by a wide margin, on a budget.

A learning test: it trains for real and can fail. Budget: 15,000 env steps
(about 30 s here; 80 s with two learners). The uniform-random policy's
CartPole-v1 return is about 22; the bar is 5x that, measured on 20 fresh greedy
episodes of the final checkpoint.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from tests.conftest import last_json, run_cli

pytestmark = pytest.mark.learning

BUDGET = 15_000


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


def train_and_evaluate(tmp_path, *extra: str) -> tuple[dict, dict]:
    proc = run_cli("train", "soft_q", "--env", "CartPole-v1", "--seed", "7", "--stop-timesteps", str(BUDGET),
                   "--eval-interval", "100", *extra, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert BUDGET <= summary["env_steps"] < BUDGET + 2000
    evaluated = last_json(run_cli("evaluate", summary["checkpoint"], "--episodes", "20", "--seed", "1000",
                                  "--json", cwd=tmp_path).stdout)
    return summary, evaluated


def test_soft_q_beats_uniform_random_on_cartpole(tmp_path):
    baseline = random_policy_return()
    assert 15 < baseline < 30  # sanity: the known random-policy level
    summary, evaluated = train_and_evaluate(tmp_path)
    assert evaluated["return_mean"] >= 5 * baseline, (evaluated["return_mean"], baseline)
    # `evaluate` reproduces the run's own final (greedy, 10-episode) evaluation
    # of the same checkpoint, on other start states.
    assert evaluated["return_mean"] == pytest.approx(summary["eval_return_mean"], rel=0.3)


def test_soft_q_with_two_learners_beats_uniform_random_on_cartpole(tmp_path):
    # Two data-parallel learners on CPU (DDP over gloo; local Ray oversubscribes
    # the 2 cores). The global batch is 2 x 64, so training_intensity 128 keeps
    # one gradient update per env step, as with one learner.
    baseline = random_policy_return()
    summary, evaluated = train_and_evaluate(tmp_path, "--num-learners", "2", "--set", "training_intensity=128")
    assert evaluated["return_mean"] >= 5 * baseline, (evaluated["return_mean"], baseline)
    assert evaluated["return_mean"] == pytest.approx(summary["eval_return_mean"], rel=0.3)
