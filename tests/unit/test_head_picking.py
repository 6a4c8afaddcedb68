"""Each EnvRunner of a boot_dqn run draws its own head sequence; an episode keeps its head across chunks.

Regression: every EnvRunner's BootstrapHeadPicker was seeded with config.seed,
so all runners drew the same head sequence. BootDQNEnvRunner is built here in
this process (no Ray), as EnvRunnerGroup builds it with a worker index.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from rlfrontier import seeding
from rlfrontier.algorithms.boot_dqn import BootDQNConfig
from rlfrontier.algorithms.boot_dqn.connectors import (
    BOOTSTRAP_HEAD,
    EVALUATION_STREAM_OFFSET,
    BootstrapHeadPicker,
    head_picker_seed,
)
from rlfrontier.algorithms.boot_dqn.env_runner import BootDQNEnvRunner
from rlfrontier.configure import build_config
from rlfrontier.validation import BadInput

ENV = "rlfrontier/DeepSea-v0"
SIZE = 4


def make_runner(worker_index: int, *, in_evaluation: bool = False, seed: int = 5) -> BootDQNEnvRunner:
    _, config, _ = build_config(
        algo="boot_dqn", env=ENV, env_config={"size": SIZE}, seed=seed, evaluation_interval=0,
        overrides={"num_heads": 4, "num_envs_per_env_runner": 2},
    )
    config = config.copy(copy_frozen=False)
    config.in_evaluation = in_evaluation
    return BootDQNEnvRunner(config=config, worker_index=worker_index, num_workers=2)


def head_sequence(runner: BootDQNEnvRunner, episodes: int = 24) -> list[int]:
    try:
        return [e.custom_data[BOOTSTRAP_HEAD] for e in runner.sample(num_episodes=episodes, explore=True)]
    finally:
        runner.stop()


def test_head_picker_seeds_are_one_stream_per_env_runner():
    seeds = {head_picker_seed(7, worker_index=i, in_evaluation=e) for i in range(4) for e in (False, True)}
    assert len(seeds) == 8
    assert head_picker_seed(7, worker_index=2, in_evaluation=False) == seeding.derive_seed(7, seeding.HEAD_PICKER, 2)
    assert head_picker_seed(7, worker_index=2, in_evaluation=True) == seeding.derive_seed(
        7, seeding.HEAD_PICKER, EVALUATION_STREAM_OFFSET + 2
    )
    assert head_picker_seed(7, worker_index=None, in_evaluation=False) == head_picker_seed(
        7, worker_index=0, in_evaluation=False
    )
    assert head_picker_seed(None, worker_index=1, in_evaluation=False) is None


def test_env_runners_draw_different_head_sequences_from_one_run_seed():
    first, second = head_sequence(make_runner(1)), head_sequence(make_runner(2))
    evaluation = head_sequence(make_runner(1, in_evaluation=True))
    # 24 draws of 4 heads: two independent streams agree with probability 4^-24.
    assert first != second and first != evaluation and second != evaluation
    assert len(set(first)) > 1
    assert head_sequence(make_runner(1)) == first, "same run seed and index: same heads"


def test_an_episode_keeps_one_head_across_sample_chunks():
    runner = make_runner(1)
    try:
        chunks = defaultdict(list)
        for _ in range(12):  # 3 steps per env and call: a 4-step episode spans two or three calls
            for chunk in runner.sample(num_timesteps=6, explore=True):
                chunks[chunk.id_].append(chunk)
        spanning = [id_ for id_, parts in chunks.items() if len(parts) > 1]
        assert len(spanning) >= 5
        for id_, parts in chunks.items():
            heads = {part.custom_data[BOOTSTRAP_HEAD] for part in parts}
            assert len(heads) == 1, f"episode {id_} changed head: {heads}"
            head = heads.pop()
            for part in parts:
                obs = np.asarray(part.get_observations())[:-1]
                actions = np.asarray(part.get_actions())
                with torch.no_grad():
                    q = runner.module.q_all(torch.as_tensor(obs)).numpy()  # [K, T, A]
                np.testing.assert_array_equal(q[head].argmax(-1), actions)
    finally:
        runner.stop()


def test_reseed_restarts_the_draws():
    picker = BootstrapHeadPicker(num_heads=5, seed=1)
    first = [int(picker._rng.integers(5)) for _ in range(10)]
    picker.reseed(1)
    assert [int(picker._rng.integers(5)) for _ in range(10)] == first


def test_config_refuses_an_env_runner_that_does_not_seed_the_picker():
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    config = BootDQNConfig().environment("CartPole-v1").env_runners(env_runner_cls=SingleAgentEnvRunner)
    with pytest.raises(BadInput, match="env_runner_cls"):
        config.validate()
