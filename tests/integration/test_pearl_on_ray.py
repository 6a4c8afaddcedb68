"""pearl in real runs: `rlfrontier train pearl` end to end with MLflow and the meta-test, tasks collected on the
EnvRunners they were given to into their own buffers, the runners acting with the learner's encoder and policy,
and bad input refused before Ray starts."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest

from ray.rllib.core import DEFAULT_MODULE_ID

from rlfrontier import envs, meta_test
from rlfrontier.algorithms.pearl import PEARLConfig
from rlfrontier.envs.point_nav import SparsePointNavEnv
from rlfrontier.algorithms.pearl.pearl import (
    ADAPTED_RETURN_MEAN,
    GOAL_REACHED_K,
    POSTERIOR,
    POSTERIOR_SAMPLING_REACHED_K,
    REVEALED_GOAL_REACHED,
    REVEALED_RETURN_MEAN,
    PRIOR,
)
from tests.conftest import cli, last_json
from tests.integration.test_bonus_runs import history

pytestmark = pytest.mark.integration

SPARSE = "rlfrontier/SparsePointNav-v0"  # 20 steps an episode
# Tiny iterations: 4 train tasks with 1 initial episode each (80 env steps, first iteration only), then 2 tasks a
# visit with 1 prior and 1 posterior episode (80 env steps) and 5 gradient steps on 2 tasks x 16 transitions.
SMALL = {"num_train_tasks": 4, "initial_episodes": 1, "num_tasks_sample": 2, "prior_episodes": 1,
         "posterior_episodes": 1, "num_train_steps_per_iteration": 5, "meta_batch_size": 2, "rl_batch_size": 16,
         "context_batch_size": 16, "held_out_tasks": 3}
LEARNER_KEYS = ("qf_loss", "vf_loss", "policy_loss", "kl_divergence", "q_mean", "log_pi_mean", "z_var_mean")


def test_train_finishes_and_logs_the_losses_and_the_meta_test(tmp_path):
    sets = [f"{key}={value}" for key, value in {**SMALL, "critic_reward": "dense_reward"}.items()]
    proc = cli("train", "pearl", "--env", SPARSE, "--stop-iters", "2", "--seed", "0", "--eval-interval", "2",
               "--eval-episodes", "2", "--num-envs-per-env-runner", "2", "--set", *sets, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["iterations"] == 2 and summary["env_steps"] == 80 + 2 * 80
    metrics = summary["metrics"]
    assert all(math.isfinite(metrics[key]) for key in LEARNER_KEYS), metrics
    assert metrics["kl_divergence"] >= 0 and metrics["z_var_mean"] > 0
    # The meta-test: returns after k = 0, 1, 2 context episodes of SparsePointNav (0 to 20 each), the share of
    # tasks whose goal was reached, the references on the same tasks.
    returns = [metrics[meta_test.RETURN_K.format(k)] for k in range(3)]
    assert all(0 <= r <= 20 for r in returns)
    assert metrics[ADAPTED_RETURN_MEAN] == returns[2]
    assert all(0 <= metrics[GOAL_REACHED_K.format(k)] <= 1 for k in range(3))
    # Beside them, what ideal posterior sampling reaches on the env (SparsePointNavEnv.posterior_sampling_reach).
    ideal = [metrics[POSTERIOR_SAMPLING_REACHED_K.format(k)] for k in range(3)]
    assert ideal == SparsePointNavEnv().posterior_sampling_reach(3)
    # And the episode after a context that shows the goal (the oracle's episode): a return of SparsePointNav's.
    assert 0 <= metrics[REVEALED_RETURN_MEAN] <= 20 and 0 <= metrics[REVEALED_GOAL_REACHED] <= 1
    oracle, blind = metrics[meta_test.ORACLE_RETURN_MEAN], metrics[meta_test.TASK_BLIND_RETURN_MEAN]
    assert 0 <= blind < oracle <= 20
    assert metrics[meta_test.ADAPTATION_GAIN] == pytest.approx(returns[2] - returns[0])

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    for key in LEARNER_KEYS:
        assert len(history(client, run_id, f"learners/{DEFAULT_MODULE_ID}/{key}")) == 2, key
    assert len(history(client, run_id, f"metrics/{GOAL_REACHED_K.format(2)}")) == 1
    assert client.get_run(run_id).info.status == "FINISHED"


def test_tasks_are_collected_on_their_env_runners_and_the_runners_act_with_the_learners_weights(local_ray):
    envs.register_with_ray(SPARSE)
    config = (PEARLConfig().environment(SPARSE).debugging(seed=3).training(**SMALL)
              .env_runners(num_env_runners=2, num_envs_per_env_runner=1))
    algo = config.build_algo()
    try:
        algo.train()
        collected = algo.last_collected
        # The visit of this iteration: 2 tasks, one per remote runner, 1 prior and 1 posterior episode each, every
        # episode run under the task planned for it (checked against what its sub-env recorded).
        visited = sorted({task_id for _, task_id, _, _ in collected})
        assert len(visited) == 2 and sorted(index for index, *_ in collected) == [1, 1, 2, 2]
        for index, task_id, phase, recorded in collected:
            assert recorded == algo.train_tasks[task_id]
        assert sorted(phase for *_, phase, _ in collected) == sorted([PRIOR, POSTERIOR] * 2)
        # Buffers: every train task holds its initial episode; the visited ones also the visit's two, and their
        # encoder buffers only the visit's (emptied at the visit).
        for t in range(4):
            assert algo.rl_replay.size(t) == 20 * (3 if t in visited else 1)
            assert algo.encoder_replay.size(t) == 20 * (2 if t in visited else 1)
        learner = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
        runner_states = algo.env_runner_group.foreach_env_runner(lambda r: r.module.get_state(),
                                                                 local_env_runner=False)
        assert len(runner_states) == 2
        for state in runner_states:
            # Inference-only on the runners: the encoder and the policy, no critic.
            assert state and set(state) < set(learner)
            assert not any(key.startswith(("qf", "vf", "target")) for key in state), sorted(state)
            for key, value in state.items():
                np.testing.assert_allclose(value, learner[key], err_msg=key)
        # The revealed contexts: per held-out task, the oracle's episode of that task (its return, from the
        # meta-test's own oracle rollouts), its actions in the module's units (the env's / 0.1 on [-0.1, 0.1]).
        revealed = algo.revealed_contexts()
        assert sorted(revealed) == list(range(len(algo.held_out)))
        env = SparsePointNavEnv()
        for task_id, rows in revealed.items():
            assert rows.shape == (env.horizon, 2 + 2 + 1)  # obs, action, reward
            oracle = meta_test.rollout_returns(env, [algo.held_out[task_id]], policy="oracle", episodes=1,
                                               seed=algo.config.held_out_seed + task_id)
            assert rows[:, 4].sum() == pytest.approx(oracle[0]) and oracle[0] > 0
            env.set_task(algo.held_out[task_id])
            np.testing.assert_allclose(rows[:, 2:4] * 0.1, [env.oracle_action(obs) for obs in rows[:, :2]], atol=1e-6)
    finally:
        algo.stop()


@pytest.mark.parametrize("mode, sizes", [("seen", [20, 40, 20]), ("resampled", [16, 16, 16])])
def test_the_meta_tests_posterior_sees_every_context_row_or_a_resample_of_context_batch_size(local_ray, mode,
                                                                                            sizes):
    """context_episodes 2: episode 1 from the prior (no context), episodes 2 and 3 from q(z | 20 and 40 rows
    seen), then the revealed episode from q(z | the oracle's 20 rows); "resampled" hands the encoder
    context_batch_size (16) rows each time instead."""
    envs.register_with_ray(SPARSE)
    config = (PEARLConfig().environment(SPARSE).debugging(seed=3)
              .training(**{**SMALL, "held_out_tasks": 1, "meta_test_context": mode})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=1))
    algo = config.build_algo()
    try:
        module, seen = algo.env_runner.module, []
        posterior = module.posterior

        def spy(context):
            seen.append(context.shape[1])
            return posterior(context)

        module.posterior = spy
        metrics = algo.held_out_metrics()
        assert seen == sizes and 0 <= metrics[GOAL_REACHED_K.format(2)] <= 1
    finally:
        algo.stop()


@pytest.mark.parametrize("env, words", [("CartPole-v1", ("pearl", "CartPole-v1")),
                                        ("Pendulum-v1", ("pearl", "Pendulum-v1", "sample_tasks"))])
def test_an_env_pearl_cannot_take_exits_2_with_one_line_naming_it(tmp_path, env, words):
    proc = cli("train", "pearl", "--env", env, "--stop-iters", "1", cwd=tmp_path, ray=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(word in lines[0] for word in words), proc.stderr


def test_a_critic_reward_the_env_does_not_report_exits_2_naming_it(tmp_path):
    proc = cli("train", "pearl", "--env", SPARSE, "--stop-iters", "1", "--set", "critic_reward=dense",
               cwd=tmp_path, ray=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "critic_reward='dense'" in lines[0] and "dense_reward" in lines[0], proc.stderr
