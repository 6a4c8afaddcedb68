"""maml in real runs: `rlfrontier train maml` end to end with MLflow, tasks on the EnvRunners that sample them,
held-out sampling kept out of the training counts, the sampling timers, and a plain env refused before Ray starts."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    TIMERS,
)

from rlfrontier import envs, meta_tasks, meta_test
from rlfrontier.algorithms.maml import MAMLConfig
from rlfrontier.algorithms.maml.maml import (
    ADAPTATION_GAIN,
    ADAPTATION_TIMER,
    ADAPTED_LOGP_MISMATCH,
    HELD_OUT,
    INNER_LOSS,
    OUTER_LOSS,
    POST_ADAPTATION_RETURN_MEAN,
    POST_ADAPTATION_SAMPLING_TIMER,
    PRE_ADAPTATION_RETURN_MEAN,
    PRE_ADAPTATION_SAMPLING_TIMER,
)
from tests.conftest import cli, last_json
from tests.integration.test_bonus_runs import history

pytestmark = pytest.mark.integration

POINT_NAV = "rlfrontier/PointNav-v0"
# Small iterations: 4 tasks, 2 episodes of 100 steps each before and after adaptation (1,600 env steps), 2 epochs.
SMALL = {"meta_batch_size": 4, "pre_adaptation_episodes": 2, "post_adaptation_episodes": 2, "num_epochs": 2}
# The policy's log-density of a sampled action, recomputed by the learner under theta'(theta) from float32 weights.
LOGP_TOLERANCE = 1e-4
# The lowest return of a PointNav episode: 100 steps of minus a distance that starts at most 0.71 from the goal and
# grows by at most 0.1 * sqrt(2) a step.
RETURN_FLOOR = -(100 * 0.71 + 0.1 * 2 ** 0.5 * 5050)


def test_train_finishes_and_logs_the_adaptation_metrics(tmp_path):
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
    proc = cli("train", "maml", "--env", POINT_NAV, "--stop-iters", "2", "--seed", "0",
               "--num-envs-per-env-runner", "2", "--eval-episodes", "2", *sets, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["iterations"] == 2 and summary["env_steps"] == 2 * 1600
    metrics = summary["metrics"]
    assert metrics[ADAPTATION_GAIN] == pytest.approx(metrics[POST_ADAPTATION_RETURN_MEAN]
                                                     - metrics[PRE_ADAPTATION_RETURN_MEAN])
    # The evaluation hook: held-out tasks before and after adaptation.
    held_out = {k: metrics[HELD_OUT + k] for k in (PRE_ADAPTATION_RETURN_MEAN, POST_ADAPTATION_RETURN_MEAN,
                                                   ADAPTATION_GAIN)}
    assert held_out[ADAPTATION_GAIN] == pytest.approx(held_out[POST_ADAPTATION_RETURN_MEAN]
                                                      - held_out[PRE_ADAPTATION_RETURN_MEAN])
    assert all(RETURN_FLOOR < v < 0 for k, v in held_out.items() if k != ADAPTATION_GAIN)
    # The shared meta-test's form: k = 0 and k = 1 inner step, the references on the same tasks, the gap closed.
    assert metrics[meta_test.RETURN_K.format(0)] == held_out[PRE_ADAPTATION_RETURN_MEAN]
    assert metrics[meta_test.RETURN_K.format(1)] == held_out[POST_ADAPTATION_RETURN_MEAN]
    oracle, blind = metrics[meta_test.ORACLE_RETURN_MEAN], metrics[meta_test.TASK_BLIND_RETURN_MEAN]
    assert RETURN_FLOOR < blind < oracle < 0
    assert metrics[meta_test.GAP_CLOSED] == pytest.approx(
        (held_out[POST_ADAPTATION_RETURN_MEAN] - held_out[PRE_ADAPTATION_RETURN_MEAN])
        / (oracle - held_out[PRE_ADAPTATION_RETURN_MEAN]))

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    logged = {key: history(client, run_id, f"learners/{DEFAULT_MODULE_ID}/{key}")
              for key in (PRE_ADAPTATION_RETURN_MEAN, POST_ADAPTATION_RETURN_MEAN, ADAPTATION_GAIN, INNER_LOSS,
                          OUTER_LOSS, ADAPTED_LOGP_MISMATCH)}
    for key, values in logged.items():
        assert len(values) == 2 and all(np.isfinite(v) for v in values.values()), key
    for step, gain in logged[ADAPTATION_GAIN].items():
        assert gain == pytest.approx(logged[POST_ADAPTATION_RETURN_MEAN][step] - logged[PRE_ADAPTATION_RETURN_MEAN][step])
        assert RETURN_FLOOR < logged[PRE_ADAPTATION_RETURN_MEAN][step] < 0
    # Every post-adaptation episode came from its task's adapted policy.
    assert max(logged[ADAPTED_LOGP_MISMATCH].values()) < LOGP_TOLERANCE
    assert len(history(client, run_id, f"metrics/{HELD_OUT}{ADAPTATION_GAIN}")) == 1
    assert len(history(client, run_id, f"metrics/{meta_test.GAP_CLOSED}")) == 1
    assert "meta_test.png" in {a.path for a in client.list_artifacts(run_id)}
    # The checkpoint's meta-policy plays through the ordinary evaluate path (the env's default task).
    played = cli("evaluate", summary["checkpoint"], "--episodes", "2", "--json", cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    assert last_json(played.stdout)["algo"] == "maml" and len(last_json(played.stdout)["returns"]) == 2


def test_each_task_is_set_on_the_env_runner_that_samples_it(local_ray):
    envs.register_with_ray(POINT_NAV)
    config = (MAMLConfig().environment(POINT_NAV).debugging(seed=1).training(**SMALL)
              .env_runners(num_env_runners=2, num_envs_per_env_runner=2))
    algo = config.build_algo()
    try:
        result = algo.train()
        assignment, tasks = algo.last_assignment, algo.last_tasks
        # Four tasks, two per remote EnvRunner (the local one has no env).
        assert sorted(assignment) == [1, 2] and sorted(sum(assignment.values(), [])) == [0, 1, 2, 3]
        assert all(len(ids) == 2 for ids in assignment.values())
        for phase, per_task in (("pre", SMALL["pre_adaptation_episodes"]),
                                ("post", SMALL["post_adaptation_episodes"])):
            seen = algo.last_episode_runners[phase]
            assert len(seen) == 4 * per_task, phase
            for runner, task_id, recorded in seen:
                # The episode came from the runner the task was given to, and its sub-env held that task.
                assert task_id in assignment[runner], (phase, runner, task_id)
                assert recorded == tasks[task_id], (phase, runner, task_id)
            assert sorted(t for _, t, _ in seen) == sorted(list(range(4)) * per_task)
        # What the runners' envs hold now: each sub-env its runner's last post-adaptation task.
        held = meta_tasks.get_tasks(algo.env_runner_group)
        assert held == {r: [tasks[ids[-1]]] * 2 for r, ids in assignment.items()}
        assert result["learners"][DEFAULT_MODULE_ID][ADAPTED_LOGP_MISMATCH] < LOGP_TOLERANCE
        # The runners act with the meta-policy again, the learners' weights after the meta-step.
        learner = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
        runner_weights = algo.env_runner_group.foreach_env_runner(lambda r: r.module.get_state(),
                                                                  local_env_runner=False)
        assert len(runner_weights) == 2
        for weights in runner_weights:
            for key, value in learner.items():
                np.testing.assert_array_equal(weights[key], value, err_msg=key)
    finally:
        algo.stop()


# Two tasks, one episode of 100 steps each before and after adaptation, on the local EnvRunner's one sub-env.
TINY = {"meta_batch_size": 2, "pre_adaptation_episodes": 1, "post_adaptation_episodes": 1, "num_epochs": 1}
TINY_STEPS, TINY_EPISODES = 2 * 2 * 100, 2 * 2


@pytest.fixture(scope="module")
def trained_around_held_out(local_ray):
    """(first result, held_out_metrics(), second result, the runner's weights after held_out_metrics, the
    learner's then) of one tiny run: train(), held_out_metrics(), train()."""
    envs.register_with_ray(POINT_NAV)
    config = (MAMLConfig().environment(POINT_NAV).debugging(seed=0).training(**TINY)
              .env_runners(num_env_runners=0, num_envs_per_env_runner=1))
    algo = config.build_algo()
    try:
        first = algo.train()
        held_out = algo.held_out_metrics()
        runner_weights, = algo.env_runner_group.foreach_env_runner(lambda r: r.module.get_state())
        learner_weights = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
        second = algo.train()
    finally:
        algo.stop()
    return first, held_out, second, runner_weights, learner_weights


def test_held_out_sampling_is_not_counted_as_training(trained_around_held_out):
    first, held_out, second, runner_weights, learner_weights = trained_around_held_out
    assert set(held_out) == {HELD_OUT + k for k in (PRE_ADAPTATION_RETURN_MEAN, POST_ADAPTATION_RETURN_MEAN,
                                                    ADAPTATION_GAIN)} | {
        meta_test.RETURN_K.format(0), meta_test.RETURN_K.format(1), meta_test.ORACLE_RETURN_MEAN,
        meta_test.TASK_BLIND_RETURN_MEAN, meta_test.GAP_CLOSED}
    assert first[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED] == TINY_STEPS
    assert first[ENV_RUNNER_RESULTS][NUM_EPISODES] == TINY_EPISODES
    # The held-out tasks' 400 steps and 4 episodes between the two iterations count for neither.
    runners = second[ENV_RUNNER_RESULTS]
    assert runners[NUM_ENV_STEPS_SAMPLED] == TINY_STEPS and runners[NUM_EPISODES] == TINY_EPISODES
    assert runners[NUM_ENV_STEPS_SAMPLED_LIFETIME] == 2 * TINY_STEPS
    assert runners[NUM_EPISODES_LIFETIME] == 2 * TINY_EPISODES
    # And the EnvRunner acts with the meta-policy again after them (the adapted weights did not stay).
    for key, value in learner_weights.items():
        np.testing.assert_array_equal(runner_weights[key], value, err_msg=key)


def test_the_sampling_timer_is_each_iterations_total_and_held_out_timers_are_apart(trained_around_held_out):
    first, _, second, _, _ = trained_around_held_out
    for result in (first, second):
        timers = result[TIMERS]
        # One value an iteration, the sum of the two phases' (EMAs of sums are sums of EMAs).
        assert timers[ENV_RUNNER_SAMPLING_TIMER] == pytest.approx(
            timers[PRE_ADAPTATION_SAMPLING_TIMER] + timers[POST_ADAPTATION_SAMPLING_TIMER], rel=1e-2, abs=1e-3)
        assert timers[ADAPTATION_TIMER] > 0
    held_out_keys = [HELD_OUT + k for k in (PRE_ADAPTATION_SAMPLING_TIMER, ADAPTATION_TIMER,
                                            POST_ADAPTATION_SAMPLING_TIMER, ENV_RUNNER_SAMPLING_TIMER)]
    assert not any(k in first[TIMERS] for k in held_out_keys)
    assert all(second[TIMERS][k] > 0 for k in held_out_keys)


def test_a_plain_env_exits_2_with_one_line_naming_it(tmp_path):
    proc = cli("train", "maml", "--env", "CartPole-v1", "--stop-iters", "2", cwd=tmp_path, ray=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "maml" in lines[0] and "CartPole-v1" in lines[0] and "sample_tasks" in lines[0], \
        proc.stderr
