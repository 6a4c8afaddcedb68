"""`evaluate` acts as the checkpoint's EnvRunner did: its own connectors, its own env_config.

Regression: `evaluate --explore` ran a bare module forward, so bootstrapped
DQN drew a new head at every step instead of one per episode (its head picker
is an env-to-module connector), and DeepSea was rebuilt with mapping 0 instead
of the run's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rlfrontier import evaluation, seeding
from rlfrontier import trainable as T
from rlfrontier.algorithms.boot_dqn.connectors import BOOTSTRAP_HEAD
from tests.conftest import cli, last_json

pytestmark = pytest.mark.integration

SEED = 2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A boot_dqn checkpoint on DeepSea-6 after one short iteration (untrained heads differ most)."""
    cwd = tmp_path_factory.mktemp("boot_dqn")
    proc = cli(
        "train", "boot_dqn", "--env", "rlfrontier/DeepSea-v0", "--env-config", "size=6", "--seed", str(SEED),
        "--stop-iters", "1", "--eval-interval", "0", "--set", "num_heads=4",
        "--set", "num_steps_sampled_before_learning_starts=100", "--set", "min_sample_timesteps_per_iteration=200",
        "--json", cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(last_json(proc.stdout)["checkpoint"])


def _greedy_of_every_head(checkpoint: Path, obs: np.ndarray) -> np.ndarray:
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(checkpoint / T.MODULE_PATH / "default_policy")
    with torch.no_grad():
        return module.q_all(torch.as_tensor(obs)).numpy().argmax(-1)  # [K, T]


def test_evaluate_explore_keeps_one_head_per_episode(checkpoint):
    episodes, _ = evaluation.run_episodes(checkpoint, episodes=12, explore=True, seed=0)
    assert len(episodes) == 12
    heads = set()
    for episode in episodes:
        head = episode.custom_data[BOOTSTRAP_HEAD]
        heads.add(head)
        greedy = _greedy_of_every_head(checkpoint, np.asarray(episode.get_observations())[:-1])
        np.testing.assert_array_equal(greedy[head], np.asarray(episode.get_actions()))
    assert len(heads) > 1


def test_evaluate_cli_explore_and_greedy_through_the_connectors(checkpoint, tmp_path):
    explore = cli("evaluate", str(checkpoint), "--episodes", "4", "--explore", "--json", cwd=tmp_path)
    assert explore.returncode == 0, explore.stderr[-2000:]
    out = last_json(explore.stdout)
    assert out["explore"] and out["algo"] == "boot_dqn" and len(out["returns"]) == 4
    assert out["episode_len_mean"] == 6.0
    greedy = [last_json(cli("evaluate", str(checkpoint), "--episodes", "3", "--json", cwd=tmp_path).stdout)
              for _ in range(2)]
    assert greedy[0]["returns"] == greedy[1]["returns"] and not greedy[0]["explore"]


def test_evaluate_rebuilds_the_runs_deep_sea(checkpoint):
    runner, meta = evaluation.build_env_runner(checkpoint, num_envs=2)
    try:
        mapping_seed = seeding.derive_seed(SEED, seeding.ENV_MAPPING)
        assert [env.unwrapped.mapping_seed for env in runner.env.unwrapped.envs] == [mapping_seed] * 2
        assert meta["env"] == "rlfrontier/DeepSea-v0"
    finally:
        runner.stop()


def test_a_folder_that_is_not_a_checkpoint_exits_2_with_one_line(checkpoint, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / T.META_FILE).write_text((checkpoint / T.META_FILE).read_text())
    proc = cli("evaluate", str(fake), "--json", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "RLModule" in lines[0]
