"""The Python API: SoftQConfig builds, trains, saves and restores like any RLlib config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfrontier.algorithms.soft_q import SoftQ, SoftQConfig
from tests.conftest import learner_weights

pytestmark = pytest.mark.integration


def small_config(**training) -> SoftQConfig:
    return (
        SoftQConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=16)
        .reporting(min_sample_timesteps_per_iteration=200)
        .training(num_steps_sampled_before_learning_starts=100, **training)
        .debugging(seed=11)
    )


def _weights(algo) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in algo.learner_group.get_weights()["default_policy"].items()}


@pytest.mark.parametrize(
    "training",
    [
        {},
        {"twin_q": True, "n_step": 3, "prioritized_replay": True, "learn_alpha": True, "tau": 0.05},
    ],
    ids=["defaults", "twin-nstep-prioritized-learnt-alpha"],
)
def test_build_train_save_restore(local_ray, tmp_path, training):
    algo = small_config(**training).build_algo()
    try:
        assert isinstance(algo, SoftQ)
        before = _weights(algo)
        r1 = algo.train()
        r2 = algo.train()
        learner = r2["learners"]["default_policy"]
        assert r2["env_runners"]["num_env_steps_sampled_lifetime"] > r1["env_runners"]["num_env_steps_sampled_lifetime"]
        assert np.isfinite(learner["qf_loss"]) and learner["num_gradient_updates"] > 0
        after = _weights(algo)
        assert any(not np.allclose(before[k], after[k]) for k in before), "no update changed the weights"
        if training.get("learn_alpha"):
            assert learner["alpha"] != pytest.approx(SoftQConfig().alpha, abs=1e-7)
        algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()

    restored = small_config(**training).build_algo()
    try:
        restored.restore_from_path(str(tmp_path / "ckpt"))
        for key, value in _weights(restored).items():
            np.testing.assert_allclose(value, after[key])
        restored.train()  # training goes on from the restored state
    finally:
        restored.stop()


def test_same_seed_same_weights(local_ray):
    weights = []
    for _ in range(2):
        algo = small_config().build_algo()
        try:
            algo.train()
            weights.append(_weights(algo))
        finally:
            algo.stop()
    for key in weights[0]:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])


def test_env_runner_policy_gets_the_learnt_temperature(local_ray):
    algo = small_config(learn_alpha=True, alpha_lr=0.05).build_algo()
    try:
        for _ in range(2):
            algo.train()
        learner_alpha = algo.learner_group._learner.module["default_policy"].log_alpha.exp().item()
        runner_alpha = algo.env_runner.module.log_alpha.exp().item()
        assert runner_alpha == pytest.approx(learner_alpha)
        assert learner_alpha != pytest.approx(SoftQConfig().alpha, rel=1e-3)
        assert torch.is_tensor(algo.env_runner.module.log_alpha)
    finally:
        algo.stop()


def test_two_learners_keep_identical_weights_and_update_every_sampled_priority(local_ray):
    # Data-parallel learners (DDP over gloo on CPU): each gets its shard of
    # the replayed batch, gradients are all-reduced, so the weights must stay
    # bit-identical; the TD errors of both shards come back to the buffer.
    config = small_config(prioritized_replay=True, twin_q=True).learners(num_learners=2, num_cpus_per_learner=0.5)
    algo = config.build_algo()
    buffer = algo.replay_buffer
    sampled, updated = [], []
    real_sample, real_update = buffer.sample, buffer.update_priorities

    def recording_sample(num_items, **kwargs):
        batch = real_sample(num_items, **kwargs)
        sampled.append(batch["buffer_indexes"].copy())
        return batch

    def recording_update(indexes, td_errors):
        updated.append((np.asarray(indexes).copy(), np.asarray(td_errors).copy()))
        real_update(indexes, td_errors)

    buffer.sample, buffer.update_priorities = recording_sample, recording_update
    try:
        initial = learner_weights(algo)
        for _ in range(3):
            result = algo.train()
        learners = learner_weights(algo)
        assert len(learners) == 2
        for key in learners[0]:
            np.testing.assert_array_equal(learners[0][key], learners[1][key], err_msg=key)
        assert any(not np.allclose(initial[0][k], learners[0][k]) for k in initial[0]), "no update happened"
        # The EnvRunner acts with the learners' weights.
        runner = algo.env_runner.module.get_state()
        for key, value in runner.items():
            np.testing.assert_array_equal(np.asarray(value), learners[0][key], err_msg=key)
        # Every replayed transition got its priority back, from one learner or the other.
        assert sampled and len(updated) == len(sampled)
        for drawn, (indexes, td_errors) in zip(sampled, updated):
            assert len(td_errors) == len(indexes)
            assert sorted(indexes.tolist()) == sorted(drawn.tolist())
            assert np.isfinite(td_errors).all() and (td_errors != 0).any()
        assert result["learners"]["default_policy"]["num_gradient_updates"] > 0
    finally:
        algo.stop()
