"""rl2 in real runs: `rlfrontier train rl2` end to end with MLflow and the held-out regret against the bandit
baselines, `evaluate` on trials, trials on remote EnvRunners, and bad input refused before Ray starts."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from rlfrontier import envs, meta_test
from rlfrontier.algorithms.rl2 import RL2Config
from rlfrontier.algorithms.rl2.rl2 import (
    HELD_OUT_REGRET_MEAN,
    HELD_OUT_TRIAL_RETURN_MEAN,
    RANDOM_REGRET_MEAN,
    REGRET_RATIO_VS_THOMPSON,
    REGRET_RATIO_VS_UCB1,
    THOMPSON_REGRET_MEAN,
    UCB1_REGRET_MEAN,
)
from tests.conftest import cli, last_json
from tests.integration.test_bonus_runs import history

pytestmark = pytest.mark.integration

BANDIT = "rlfrontier/Bandit-v0"
# Small iterations: 500 env steps (50 trials of 10 pulls), 2 epochs; 10 held-out tasks of 2 trials each.
SMALL = {"train_batch_size_per_learner": 500, "minibatch_size": 250, "num_epochs": 2, "held_out_tasks": 10,
         "held_out_trials": 2}
PULLS = 10


def test_train_finishes_and_logs_the_held_out_regret_against_the_baselines(tmp_path):
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
    proc = cli("train", "rl2", "--env", BANDIT, "--stop-iters", "2", "--seed", "0", "--eval-episodes", "2",
               *sets, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["iterations"] == 2 and summary["env_steps"] >= 2 * 500
    metrics = summary["metrics"]
    # Regret lies between an oracle's 0 and PULLS pulls of the worst arm; return between 0 and PULLS.
    assert 0 <= metrics[HELD_OUT_REGRET_MEAN] <= PULLS and 0 <= metrics[HELD_OUT_TRIAL_RETURN_MEAN] <= PULLS
    assert 0 < metrics[THOMPSON_REGRET_MEAN] < metrics[RANDOM_REGRET_MEAN]
    assert 0 < metrics[UCB1_REGRET_MEAN] < metrics[RANDOM_REGRET_MEAN]
    assert metrics[REGRET_RATIO_VS_THOMPSON] == pytest.approx(metrics[HELD_OUT_REGRET_MEAN]
                                                              / metrics[THOMPSON_REGRET_MEAN])
    assert metrics[REGRET_RATIO_VS_UCB1] == pytest.approx(metrics[HELD_OUT_REGRET_MEAN] / metrics[UCB1_REGRET_MEAN])
    # The same tasks played greedily.
    assert 0 <= metrics["held_out_greedy_regret_mean"] <= PULLS
    assert metrics["greedy_" + REGRET_RATIO_VS_THOMPSON] == pytest.approx(metrics["held_out_greedy_regret_mean"]
                                                                        / metrics[THOMPSON_REGRET_MEAN])
    assert "policy_loss" in metrics and np.isfinite(metrics["policy_loss"])

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    ratio = history(client, run_id, f"metrics/{REGRET_RATIO_VS_THOMPSON}")
    assert ratio and list(ratio.values())[-1] == pytest.approx(metrics[REGRET_RATIO_VS_THOMPSON])
    assert history(client, run_id, f"metrics/{THOMPSON_REGRET_MEAN}")
    assert len(history(client, run_id, f"learners/{DEFAULT_MODULE_ID}/policy_loss")) == 2
    # The checkpoint plays trials through the ordinary evaluate path (its EnvRunner wraps the env again).
    played = cli("evaluate", summary["checkpoint"], "--episodes", "3", "--json", cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    out = last_json(played.stdout)
    assert out["algo"] == "rl2" and out["episode_len_mean"] == PULLS and len(out["returns"]) == 3
    assert all(0 <= r <= PULLS for r in out["returns"])
    # The run's own meta-test again on the checkpoint, on other held-out tasks than the run's (evaluate --metrics).
    proc = cli("evaluate", summary["checkpoint"], "--metrics", "--set", "held_out_tasks=6", "held_out_seed=7",
               "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = last_json(proc.stdout)
    assert again["algo"] == "rl2" and again["overrides"] == {"held_out_tasks": 6, "held_out_seed": 7}
    metrics = again["metrics"]
    assert 0 <= metrics[HELD_OUT_REGRET_MEAN] <= PULLS and 0 < metrics[THOMPSON_REGRET_MEAN]
    assert metrics[REGRET_RATIO_VS_THOMPSON] == pytest.approx(metrics[HELD_OUT_REGRET_MEAN]
                                                              / metrics[THOMPSON_REGRET_MEAN])
    # Other tasks, other baselines' regret: the override reached the meta-test.
    assert metrics[THOMPSON_REGRET_MEAN] != summary["metrics"][THOMPSON_REGRET_MEAN]
    bad = cli("evaluate", summary["checkpoint"], "--metrics", "--set", "held_out_tasks=0", cwd=tmp_path)
    assert bad.returncode == 2 and "held_out_tasks" in bad.stderr.strip().splitlines()[-1], bad.stderr


def test_remote_env_runners_play_trials_and_the_held_out_runner_plays_every_task(local_ray):
    envs.register_with_ray(BANDIT)
    config = (RL2Config().environment(BANDIT, env_config={"pulls": 4}).debugging(seed=1)
              .training(episodes_per_trial=2, train_batch_size_per_learner=400, minibatch_size=200, num_epochs=1,
                        held_out_tasks=3, held_out_trials=2)
              .env_runners(num_env_runners=1, num_envs_per_env_runner=2))
    algo = config.build_algo()
    try:
        result = algo.train()
        assert result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 400
        # Whole trials of 2 episodes of 4 pulls came back from the remote runner.
        assert result[ENV_RUNNER_RESULTS]["episode_len_max"] == 8
        trials = algo.play_held_out_trials()
        assert len(trials) == 3 * 2 and all(len(t) == 8 for t in trials)
        played = [t.get_infos()[0]["trial_task"] for t in trials]
        assert played == [task for task in algo._held_out_tasks for _ in range(2)]
        # Each round of held-out trials has reset seeds of its own: a task's greedy trials are not copies of one
        # another (RLlib reseeds every sample(num_episodes) call alike; 8 pulls a trial, 3 tasks).
        greedy = algo.play_held_out_trials(explore=False)
        assert any(tuple(greedy[2 * i].get_rewards()) != tuple(greedy[2 * i + 1].get_rewards()) for i in range(3))
        metrics = algo.held_out_metrics()
        assert {"held_out_return_k0", "held_out_return_k1", "held_out_greedy_return_k1",
                REGRET_RATIO_VS_THOMPSON} <= set(metrics)
        # The shared meta-test (rlfrontier.meta_test): k episodes of context against the oracle's episode return.
        assert metrics[meta_test.ADAPTATION_GAIN] == pytest.approx(metrics["held_out_return_k1"]
                                                                   - metrics["held_out_return_k0"])
        oracle = metrics[meta_test.ORACLE_RETURN_MEAN]
        assert 0 < oracle <= 4 and metrics[meta_test.TASK_BLIND_RETURN_MEAN] < oracle
        assert metrics[meta_test.GAP_CLOSED] == pytest.approx(meta_test.gap_closed(
            before=metrics["held_out_return_k0"], after=metrics["held_out_return_k1"], oracle=oracle))
        # The held-out runner acts with the learner's policy, as the remote runner does. The value head is not
        # synced to EnvRunners (RLlib's inference-only weights), nor used there: each keeps its own.
        module = algo.held_out_env_runner().module
        skip = tuple(f"{name}." for name in module.get_non_inference_attributes())
        learner = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
        remote, = algo.env_runner_group.foreach_env_runner(lambda r: r.module.get_state(), local_env_runner=False)
        acting = [key for key in module.get_state() if not key.startswith(skip)]
        assert any(key.startswith("pi.") for key in acting) and any("lstm" in key for key in acting), acting
        for key in acting:
            np.testing.assert_array_equal(module.get_state()[key], learner[key], err_msg=key)
            np.testing.assert_array_equal(remote[key], learner[key], err_msg=key)
    finally:
        algo.stop()


@pytest.mark.parametrize("args, named", [
    (("--env", "CartPole-v1"), "CartPole-v1"),
    (("--env", BANDIT, "--env-config", "resample_on_reset=true"), "resample_on_reset=True"),
    (("--env", BANDIT, "--set", "episodes_per_trial=0"), "episodes_per_trial=0"),
])
def test_bad_input_exits_2_with_one_line_naming_it(tmp_path, args, named):
    proc = cli("train", "rl2", *args, "--stop-iters", "1", cwd=tmp_path, ray=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], proc.stderr
