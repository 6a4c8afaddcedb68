"""The count bonus in real runs: it reaches what soft_q and boot_dqn learn from, is logged, and is checkpointed.

From the command line (`--bonus count --bonus-config beta=...`), tracked in
the default SQLite store: for every logged step, the replayed rewards the
learner saw exceed the extrinsic ones by exactly the logged intrinsic mean,
and the number of cells visited is that of DeepSea's states. Through the
Python API: a checkpoint holds the counts, and restoring it restores them.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from rlfrontier import bonuses, rnd
from rlfrontier.rewards import REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN
from tests.conftest import cli, last_json

pytestmark = pytest.mark.integration

SIZE = 6
BETA = 0.5
DEEP_SEA = ["--env", "rlfrontier/DeepSea-v0", "--env-config", f"size={SIZE}"]
CARTPOLE = ["--env", "CartPole-v1"]
# DeepSea's 21 states are all learnt by RND's predictor within a few updates; CartPole's 4-D states
# nearly so: 300 updates bring the raw error from ~1e-2 to ~5e-5, while the running std of the
# intrinsic return still holds the early errors, so the normalised bonus is ~1e-3 * beta by then.
RUNS = {
    ("soft_q", "count"): [*DEEP_SEA, "--set", "n_step=3", "--bonus-config", f"beta={BETA}"],
    ("boot_dqn", "rnd"): [*CARTPOLE, "--set", "num_heads=2", "--set", "hidden_sizes=[16]",
                          "--bonus-config", "beta=5", "--bonus-config", "hidden_sizes=[16]"],
}


def history(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


@pytest.mark.parametrize("algo, bonus", sorted(RUNS))
def test_the_bonus_reaches_the_learner_and_is_logged(algo, bonus, tmp_path):
    proc = cli("train", algo, "--seed", "2", "--eval-interval", "0", "--stop-iters", "3",
                   "--set", "num_steps_sampled_before_learning_starts=200", "--bonus", bonus, *RUNS[algo, bonus],
                   "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert "| bonus " in proc.stderr.split("iter 3")[-1]  # the progress line shows it
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    prefix = "learners/default_policy/"
    extrinsic = history(client, run_id, prefix + REWARD_EXTRINSIC_MEAN)
    seen = history(client, run_id, prefix + REWARD_TRANSFORMED_MEAN)
    intrinsic = history(client, run_id, f"{bonuses.RESULTS}/{bonuses.INTRINSIC_MEAN}")
    assert extrinsic and extrinsic.keys() == seen.keys() == intrinsic.keys()
    for step in extrinsic:
        # What the learner replayed exceeds the environment's rewards by the logged bonus, which is not 0.
        assert seen[step] - extrinsic[step] == pytest.approx(intrinsic[step], abs=1e-5), step
        assert intrinsic[step] > 1e-4
    if bonus == "count":
        cells = history(client, run_id, f"{bonuses.RESULTS}/{bonuses.CELLS}")
        assert all(intrinsic[step] <= BETA for step in intrinsic)  # beta / sqrt(n), n >= 1
        # DeepSea-6 has 21 reachable states below its top row (and the terminal observation).
        assert all(1 < c <= SIZE * (SIZE + 1) // 2 + 1 for c in cells.values())
        assert list(cells.values()) == sorted(cells.values())
        assert summary["metrics"][f"{bonuses.RESULTS}/{bonuses.CELLS}"] == max(cells.values())
    else:
        losses = history(client, run_id, f"learners/{rnd.MODULE_ID}/{rnd.PREDICTOR_LOSS}")
        assert losses and all(np.isfinite(v) for v in losses.values())


def test_a_checkpoint_holds_the_counts_and_restores_them(local_ray, tmp_path):
    from rlfrontier.algorithms.soft_q import SoftQConfig
    from rlfrontier.envs import register_with_ray

    register_with_ray("rlfrontier/DeepSea-v0")

    def config():
        return (
            SoftQConfig()
            .environment("rlfrontier/DeepSea-v0", env_config={"size": SIZE})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=8)
            .reporting(min_sample_timesteps_per_iteration=200)
            .training(num_steps_sampled_before_learning_starts=100, bonus={"type": "count", "beta": BETA})
            .debugging(seed=5)
        )

    algo = config().build_algo()
    try:
        for _ in range(2):
            algo.train()
        saved = algo._reward_hook.bonus.get_state()
        algo.save_to_path(tmp_path / "checkpoint")
    finally:
        algo.stop()
    assert sum(saved["counts"]) >= 400  # one count per sampled transition

    restored = config().build_algo()
    try:
        assert restored._reward_hook.bonus.metrics()[bonuses.CELLS] == 0
        restored.restore_from_path(tmp_path / "checkpoint")
        state = restored._reward_hook.bonus.get_state()
        assert state["keys"] == saved["keys"]
        np.testing.assert_array_equal(state["counts"], saved["counts"])
        result = restored.train()  # counting goes on from there
        assert sum(restored._reward_hook.bonus.get_state()["counts"]) >= sum(saved["counts"]) + 200
        assert result[bonuses.RESULTS][bonuses.CELLS] >= len(saved["keys"])
    finally:
        restored.stop()


def test_rnd_normalisers_are_the_same_on_every_learner_and_in_the_checkpoint(local_ray, tmp_path):
    """Two learners (data parallel): each holds the Algorithm's observation statistics, and the
    Algorithm's copy of the predictor is the learners' after every update."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rlfrontier.algorithms.soft_q import SoftQConfig

    config = (
        SoftQConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=8)
        .learners(num_learners=2, num_cpus_per_learner=0.5)
        .reporting(min_sample_timesteps_per_iteration=200)
        .training(num_steps_sampled_before_learning_starts=100, train_batch_size_per_learner=32,
                  bonus={"type": "rnd", "hidden_sizes": [16], "embedding_dim": 8})
        .debugging(seed=4)
    )
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        bonus = algo._reward_hook.bonus

        def module_state(learner):
            return {k: v.detach().cpu().numpy() for k, v in learner.module[rnd.MODULE_ID].unwrapped().state_dict().items()}

        states = [r.get() for r in algo.learner_group.foreach_learner(module_state)]
        assert len(states) == 2
        for state in states:
            np.testing.assert_allclose(state["obs_mean"], bonus.obs_stats.mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(state["obs_var"], bonus.obs_stats.var, rtol=1e-5, atol=1e-6)
            for key, value in bonus._module.state_dict().items():
                np.testing.assert_allclose(state[key], value.numpy(), rtol=1e-6, atol=1e-7)
        assert bonus.obs_stats.count >= 400  # every sampled transition's next observation
        assert np.isfinite(result["learners"][rnd.MODULE_ID][rnd.PREDICTOR_LOSS])
        assert DEFAULT_MODULE_ID in result["learners"]
        # The Algorithm's normalisers are in its checkpoint.
        algo.save_to_path(tmp_path / "checkpoint")
        saved = bonus.get_state()
    finally:
        algo.stop()
    restored = config.learners(num_learners=0).build_algo()
    try:
        restored.restore_from_path(tmp_path / "checkpoint")
        again = restored._reward_hook.bonus
        np.testing.assert_allclose(again.obs_stats.mean, saved["obs_stats"]["mean"])
        assert again.return_stats.var == pytest.approx(saved["return_stats"]["var"])
        learner_module = restored.learner_group._learner.module[rnd.MODULE_ID].unwrapped()
        np.testing.assert_allclose(learner_module.obs_mean.numpy(), saved["obs_stats"]["mean"], rtol=1e-5)
    finally:
        restored.stop()
