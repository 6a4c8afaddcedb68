"""BootDQN through the Python API on DeepSea: masks in replay, one prior everywhere, save and restore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rlfrontier import seeding
from rlfrontier.algorithms.boot_dqn import BootDQN, BootDQNConfig
from rlfrontier.algorithms.boot_dqn.boot_dqn import BOOTSTRAP_MASK
from rlfrontier.envs import register_with_ray
from tests.conftest import learner_weights

pytestmark = pytest.mark.integration

ENV = "rlfrontier/DeepSea-v0"


def small_config(**training) -> BootDQNConfig:
    register_with_ray(ENV)
    return (
        BootDQNConfig()
        .environment(ENV, env_config={"size": 6})
        .reporting(min_sample_timesteps_per_iteration=300)
        .training(num_heads=4, num_steps_sampled_before_learning_starts=100, **training)
        .debugging(seed=5)
    )


def _q_all(module, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.q_all(torch.as_tensor(obs)).numpy()


def test_build_train_save_restore_on_deep_sea(local_ray, tmp_path):
    algo = small_config(mask_prob=0.5).build_algo()
    try:
        assert isinstance(algo, BootDQN)
        for _ in range(2):
            result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["qf_loss"]) and learner["num_gradient_updates"] > 0
        assert 0.4 < learner["bootstrap_mask_mean"] < 0.6
        # Every stored transition has a mask per head, Bernoulli(0.5).
        masks = algo.replay_buffer._storage[BOOTSTRAP_MASK][: len(algo.replay_buffer)]
        assert masks.shape == (len(algo.replay_buffer), 4) and 0.45 < masks.mean() < 0.55
        # Regression: the masks were drawn from default_rng(seed), the replay sampler's
        # stream too; now they are a stream of their own (drawn in storage order).
        expected = seeding.rng(5, seeding.BOOTSTRAP_MASKS).random(masks.shape) < 0.5
        np.testing.assert_array_equal(masks, expected.astype(masks.dtype))
        # The EnvRunner acts with the learner's heads and the same fixed prior.
        learner_module = algo.learner_group._learner.module["default_policy"]
        obs = np.eye(36, dtype=np.float32)
        np.testing.assert_allclose(_q_all(algo.env_runner.module, obs), _q_all(learner_module, obs), rtol=1e-6)
        prior = {k: v.clone() for k, v in learner_module.prior.state_dict().items()}
        algo.save_to_path(str(tmp_path / "ckpt"))
        before = _q_all(learner_module, obs)
    finally:
        algo.stop()

    restored = small_config(mask_prob=0.5).build_algo()
    try:
        restored.restore_from_path(str(tmp_path / "ckpt"))
        module = restored.learner_group._learner.module["default_policy"]
        np.testing.assert_allclose(_q_all(module, obs), before, rtol=1e-6)
        for key, value in module.prior.state_dict().items():
            torch.testing.assert_close(value, prior[key])
        restored.train()
    finally:
        restored.stop()


def test_episodes_act_with_one_head_each(local_ray):
    # With epsilon 0 an episode's actions are the greedy actions of one head
    # all the way; across episodes more than one head is used.
    algo = small_config().build_algo()
    try:
        runner = algo.env_runner
        episodes = runner.sample(num_episodes=12, explore=True)
        module = runner.module
        heads_used = set()
        for episode in episodes:
            obs = np.asarray(episode.get_observations())[:-1]
            actions = np.asarray(episode.get_actions())
            q = _q_all(module, obs)  # [K, T, A]
            consistent = [k for k in range(q.shape[0]) if np.array_equal(q[k].argmax(-1), actions)]
            assert consistent, "an episode's actions must be one head's greedy actions"
            heads_used.add(episode.custom_data["bootstrap_head"])
            assert episode.custom_data["bootstrap_head"] in consistent
        assert len(heads_used) > 1
        inference = module.forward_inference({Columns.OBS: torch.as_tensor(np.eye(36, dtype=np.float32))})
        assert inference[Columns.ACTIONS].shape == (36,)
    finally:
        algo.stop()


def test_two_learners_keep_identical_ensembles(local_ray):
    config = small_config(mask_prob=0.5).learners(num_learners=2, num_cpus_per_learner=0.5)
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["learners"]["default_policy"]["num_gradient_updates"] > 0
        first, second = learner_weights(algo)
        for key in first:
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        # The fixed priors are the same on both learners and on the EnvRunner.
        runner = algo.env_runner.module.get_state()
        for key in (k for k in first if k.startswith("prior.")):
            np.testing.assert_array_equal(np.asarray(runner[key]), first[key], err_msg=key)
    finally:
        algo.stop()
