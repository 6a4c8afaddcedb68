"""A boot_dqn run with two EnvRunners and an evaluation EnvRunner, on real Ray.

Regressions: (1) every EnvRunner's head picker was seeded with config.seed, so
all runners drew the same head sequence; (2) DeepSea's action mapping was 0
for every run seed. Here each runner draws its own heads, keeps one head per
episode across sample() chunks, and every env copy of the run (both runners'
envs and the evaluation runner's) is the one MDP of the run's seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfrontier import seeding
from rlfrontier.algorithms.boot_dqn.connectors import BOOTSTRAP_HEAD, BootstrapHeadPicker, head_picker_seed
from rlfrontier.configure import build_config
from rlfrontier.envs.deep_sea import DeepSeaEnv

pytestmark = pytest.mark.integration

ENV = "rlfrontier/DeepSea-v0"
SIZE, SEED = 4, 11


@pytest.fixture(scope="module")
def algo(local_ray):
    _, config, _ = build_config(
        algo="boot_dqn", env=ENV, env_config={"size": SIZE}, seed=SEED, num_env_runners=2,
        num_envs_per_env_runner=2, evaluation_interval=1, evaluation_episodes=2, overrides={"num_heads": 4},
    )
    config.env_runners(num_cpus_per_env_runner=0.5)
    config.evaluation(evaluation_num_env_runners=1)
    algo = config.build_algo()
    yield algo
    algo.stop()


def chunk_sampler():
    """A function for foreach_env_runner, defined here so that Ray pickles it by value
    (the test module is not importable on the workers)."""

    def _chunks(runner) -> dict:
        """12 sample() calls of 6 steps (3 per env: a 4-step episode spans two or three calls)."""
        chunks = []
        for _ in range(12):
            for chunk in runner.sample(num_timesteps=6, explore=True):
                obs = np.asarray(chunk.get_observations())[:-1]
                with torch.no_grad():
                    greedy = runner.module.q_all(torch.as_tensor(obs)).numpy().argmax(-1)  # [K, T]
                chunks.append((chunk.id_, chunk.custom_data[BOOTSTRAP_HEAD], greedy, np.asarray(chunk.get_actions())))
        seeds = [p.seed for p in runner._env_to_module.connectors if isinstance(p, BootstrapHeadPicker)]
        return {"worker_index": runner.worker_index, "picker_seeds": seeds, "chunks": chunks}

    return _chunks


def test_two_env_runners_draw_different_heads_and_keep_one_per_episode(algo):
    _chunks = chunk_sampler()
    results = algo.env_runner_group.foreach_env_runner(_chunks, local_env_runner=False)
    assert sorted(r["worker_index"] for r in results) == [1, 2]
    sequences = []
    for result in results:
        assert result["picker_seeds"] == [
            head_picker_seed(SEED, worker_index=result["worker_index"], in_evaluation=False)
        ]
        heads: dict = {}
        spanning = set()
        for id_, head, greedy, actions in result["chunks"]:
            if id_ in heads:
                spanning.add(id_)
                assert heads[id_] == head, f"episode {id_} changed head across chunks"
            heads[id_] = head
            np.testing.assert_array_equal(greedy[head], actions)
        assert len(spanning) >= 5
        sequences.append(list(heads.values()))  # in the order the episodes started
    assert len(sequences[0]) >= 15 and len(sequences[1]) >= 15  # 72 steps: about 18 episodes each
    assert sequences[0] != sequences[1], "two EnvRunners drew the same head sequence"

    evaluation = algo.eval_env_runner_group.foreach_env_runner(_chunks, local_env_runner=False)
    assert [r["picker_seeds"] for r in evaluation] == [[head_picker_seed(SEED, worker_index=1, in_evaluation=True)]]


def test_every_env_copy_of_the_run_is_the_deep_sea_of_its_seed(algo):
    expected = DeepSeaEnv(size=SIZE, mapping_seed=seeding.derive_seed(SEED, seeding.ENV_MAPPING)).action_mapping
    assert not np.array_equal(expected, DeepSeaEnv(size=SIZE).action_mapping), "not the old mapping 0"

    def mappings(runner):  # nested: pickled by value for the workers
        return [env.unwrapped.action_mapping for env in runner.env.unwrapped.envs]

    copies = algo.env_runner_group.foreach_env_runner(mappings, local_env_runner=False)
    copies += algo.eval_env_runner_group.foreach_env_runner(mappings, local_env_runner=False)
    flat = [m for runner in copies for m in runner]
    assert len(flat) == 2 * 2 + 2  # two training runners and one evaluation runner, two envs each
    for mapping in flat:
        np.testing.assert_array_equal(mapping, expected)
