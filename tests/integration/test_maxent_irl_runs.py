"""maxent_irl on real RLlib parts: the learner's step against the messages computed by hand, and CLI runs."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from rlfrontier import envs, tabular
from rlfrontier.algorithms.maxent_irl import MaxEntIRLConfig
from tests.conftest import cli, last_json

GRID = "rlfrontier/GridWorld-v0"
SMALL = {"size": 4, "block": 2}


@pytest.fixture(scope="module")
def algo(local_ray):
    envs.register_envs()
    envs.register_with_ray(GRID)
    config = (MaxEntIRLConfig().environment(GRID, env_config=SMALL).training(lr=0.05)
              .evaluation(evaluation_interval=None))
    algo = config.build_algo()
    yield algo
    algo.stop()


def _learner_state(algo):
    def read(learner):
        module = learner.module["default_policy"].unwrapped()
        return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}

    return algo.learner_group.foreach_learner(read)[0].get() if algo.learner_group.is_remote else read(
        algo.learner_group._learner)


def test_one_update_is_adams_first_step_along_the_feature_count_gap(algo):
    mdp = algo.mdp
    before = _learner_state(algo)["reward_net.weight"][0]
    np.testing.assert_array_equal(before, 0.0)
    # By hand: mu_E (the optimal policy's exact visitation) minus D of the uniform policy of r = 0.
    expert = tabular.visitation(mdp.transitions, tabular.one_hot_policy(tabular.optimal_policy(mdp), 5),
                                mdp.initial, horizon=mdp.horizon)
    gap = mdp.features.T @ (expert - tabular.expected_visitation(mdp, np.zeros(mdp.num_states)))
    algo.train()
    after = _learner_state(algo)
    # Adam's first step moves each weight by lr * sign of its gradient (up to eps), uphill in likelihood.
    moved = after["reward_net.weight"][0] - before
    nonzero = np.abs(gap) > 1e-6
    np.testing.assert_allclose(moved[nonzero], algo.config.lr * np.sign(gap[nonzero]), rtol=1e-4)
    # The policy table is the first step's soft Q of the updated reward, and the EnvRunner acts with it.
    reward = mdp.features @ after["reward_net.weight"][0].astype(np.float64)
    q, _, _ = tabular.soft_value_iteration(mdp.transitions, reward, horizon=mdp.horizon)
    np.testing.assert_allclose(after["policy_logits"], q[0], rtol=1e-5, atol=1e-5)
    acting = algo.get_module("default_policy")
    np.testing.assert_allclose(acting.policy_logits.numpy(), after["policy_logits"])
    np.testing.assert_allclose(algo.learned_reward(), reward, rtol=1e-5, atol=1e-6)


def test_the_feature_gap_falls_with_updates(algo):
    first = algo.train()["learners"]["default_policy"]["feature_expectation_gap"]
    for _ in range(30):
        last = algo.train()["learners"]["default_policy"]["feature_expectation_gap"]
    assert last < 0.5 * first


def test_train_reports_the_reward_measures_in_the_json_line_and_mlflow_and_evaluate_acts(tmp_path):
    proc = cli("train", "maxent_irl", "--env", GRID, "--env-config", "size=4", "--stop-iters", "20",
                   "--eval-interval", "10", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    metrics = summary["metrics"]
    for key in ("reward_correlation", "expected_value_difference", "expected_value_difference_ratio",
                "feature_expectation_gap"):
        assert np.isfinite(metrics[key]), key
    assert summary["iterations"] == 20
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(summary["mlflow_run_id"])
    assert run.data.metrics["metrics/reward_correlation"] == pytest.approx(metrics["reward_correlation"])
    assert run.info.status == "FINISHED"
    # The checkpoint's policy (its tables) plays the world. On this 4 x 4 world the optimal policy's
    # value is 5.67 and a uniform (or always-stay) policy's 2.0; returns lie in [0, 8], so the mean of
    # 100 episodes has a standard error <= 0.4: 3.8 is > 4 of them from either.
    proc = cli("evaluate", summary["checkpoint"], "--episodes", "100", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = last_json(proc.stdout)
    assert evaluated["episodes"] == 100 and evaluated["episode_len_mean"] == 8  # the horizon, 2 x size
    assert evaluated["return_mean"] > 3.8, evaluated


@pytest.mark.parametrize(
    "args, named",
    [
        (["--env", "CartPole-v1"], "maxent_irl needs a tabular MDP"),
        (["--env", GRID, "--set", "reward_model=cnn"], "reward_model='cnn'"),
        (["--env", GRID, "--num-learners", "2"], "num_learners=2"),
    ],
)
def test_bad_input_exits_2_naming_it(args, named, tmp_path):
    proc = cli("train", "maxent_irl", *args, "--stop-iters", "2", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
