"""`rlfrontier demos record | show` as users run them, and `train --demos` refused before Ray starts."""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlfrontier import demos
from tests.conftest import cli, last_json, run_cli, shared_ray

pytestmark = pytest.mark.integration

RECORD = ["demos", "record", "--scripted", "cartpole", "--env", "CartPole-v1", "--episodes", "3"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict, str]:
    cwd = tmp_path_factory.mktemp("record")
    proc = run_cli(*RECORD, "--out", "out/demos", "--seed", "4", "--json", cwd=cwd, timeout=120, starts_ray=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cwd / "out" / "demos", last_json(proc.stdout), proc.stdout


def test_record_then_show(recorded):
    folder, manifest, stdout = recorded
    assert f"recorded 3 episodes (1,500 transitions) of CartPole-v1 from scripted:cartpole: return mean 500 ± 0 -> " \
           f"{folder.resolve()}" in stdout
    assert (manifest["episodes"], manifest["transitions"], manifest["seed"]) == (3, 1500, 4)
    assert manifest["path"] == str(folder.resolve())
    shown = cli("demos", "show", str(folder), "--json", cwd=folder.parent, ray=False)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert last_json(shown.stdout) == manifest
    table = cli("demos", "show", str(folder), cwd=folder.parent, ray=False)
    assert table.returncode == 0 and "scripted:cartpole" in table.stdout and "500 ± 0" in table.stdout


def test_ray_data_reads_the_folder(recorded):
    """The storage contract (DESIGN.md, Demonstrations): Ray Data reads the folder as it is.
    On the shared local Ray: Ray Data's first tasks take a few seconds here."""
    import ray.data

    folder, manifest, _ = recorded
    shared_ray()
    rows = ray.data.read_parquet(str(folder)).take_all()  # manifest.json is not read
    assert len(rows) == manifest["transitions"] and set(rows[0]) == set(demos.COLUMNS)
    first = min(rows, key=lambda r: (r["episode"], r["t"]))
    obs, _ = gym.make("CartPole-v1").reset(seed=4)
    np.testing.assert_array_equal(np.asarray(first["obs"], np.float32), obs)


def _one_line_exit_2(proc, needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr


# The other bad inputs (no source, --episodes 0, a missing checkpoint, re-recording without --overwrite)
# are unit-tested on rlfrontier.demos. These run the CLI in this process (tests.conftest.cli), the
# recording above in a whole one.
BAD = {
    "unknown scripted expert": (["demos", "record", "--scripted", "nope", "--env", "CartPole-v1", "--episodes", "2",
                                 "--out", "d"], "--scripted 'nope' is not a scripted expert"),
    "optimal on a non-tabular env": (["demos", "record", "--scripted", "optimal", "--env", "CartPole-v1",
                                      "--episodes", "2", "--out", "d"], "CartPole-v1 is not a tabular world"),
    "show a missing folder": (["demos", "show", "/nonexistent"], "demos show /nonexistent: does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(case, tmp_path):
    args, needle = BAD[case]
    proc = cli(*args, cwd=tmp_path, ray=False)
    _one_line_exit_2(proc, needle)
    assert list(tmp_path.iterdir()) == [], "bad input must not write anything"


def test_a_version_1_box_recording_from_a_checkpoint_exits_2_with_one_line(tmp_path):
    """Format 1 did not say the actions' units, and a checkpoint's Box actions were once recorded in the
    policy's [-1, 1]: `demos show` and `train --demos` refuse such a folder, before Ray starts."""
    import json

    folder = tmp_path / "old"
    demos.record(out=folder, env_id="Pendulum-v1", episodes=1, scripted="pendulum")
    manifest = json.loads((folder / demos.MANIFEST_FILE).read_text())
    del manifest[demos.ACTION_UNITS]
    manifest.update(version=1, source="/runs/ppo/checkpoint_000003", algo="ppo")
    (folder / demos.MANIFEST_FILE).write_text(json.dumps(manifest))
    needle = (f"{folder}: format version 1 Box actions recorded from a checkpoint (/runs/ppo/checkpoint_000003) "
              "may be the policy's normalised [-1, 1] actions, not the env's: record them again")
    _one_line_exit_2(cli("demos", "show", str(folder), cwd=tmp_path, ray=False), "demos show " + needle)
    proc = cli("train", "gail", "--env", "Pendulum-v1", "--demos", str(folder), "--stop-iters", "1",
               cwd=tmp_path, ray=False)
    _one_line_exit_2(proc, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"], "no Ray session, MLflow store or Tune folder"


def test_train_with_demos_refuses_an_algorithm_that_takes_none_before_ray_starts(recorded, tmp_path):
    folder = recorded[0]
    started = time.monotonic()
    proc = run_cli("train", "boot_dqn", "--env", "CartPole-v1", "--demos", str(folder), "--stop-iters", "1",
                   cwd=tmp_path, timeout=120, starts_ray=False)
    wall = time.monotonic() - started
    _one_line_exit_2(proc, f"--demos {folder}: boot_dqn does not learn from demonstrations")
    assert list(tmp_path.iterdir()) == [], "no Ray session, MLflow store or Tune folder"
    assert wall < 30, f"{wall:.1f} s: the check must come before Ray starts (the CLI's imports take ~6 s)"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained soft_q policy on CartPole (one short iteration): its episodes end by termination."""
    cwd = tmp_path_factory.mktemp("soft_q")
    proc = cli("train", "soft_q", "--env", "CartPole-v1", "--seed", "1", "--stop-iters", "1",
               "--eval-interval", "0", "--quiet", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(last_json(proc.stdout)["checkpoint"])


def test_record_from_a_checkpoint_is_reproducible_and_replays(checkpoint, tmp_path):
    outs = []
    for name in ("a", "b"):
        proc = cli("demos", "record", str(checkpoint), "--env", "CartPole-v1", "--episodes", "3", "--seed", "5",
                   "--out", name, "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(last_json(proc.stdout))
    assert outs[0]["source"] == str(checkpoint) and outs[0]["algo"] == "soft_q" and not outs[0]["explore"]
    assert (outs[0]["version"], outs[0][demos.ACTION_UNITS]) == (demos.FORMAT_VERSION, "env") == (2, "env")
    a, b = (demos.load(tmp_path / n).transitions() for n in "ab")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    # Episode i starts from reset(seed=5 + i), and its actions replayed in a fresh env give its rows.
    for i, episode in enumerate(demos.load(tmp_path / "a").episodes()):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=5 + i)
        np.testing.assert_array_equal(episode["obs"][0], obs)
        for t, action in enumerate(episode["action"]):
            obs, reward, terminated, truncated, _ = env.step(int(action))
            np.testing.assert_array_equal(episode["next_obs"][t], obs)
            assert reward == episode["reward"][t]
            assert (terminated, truncated) == (episode["terminated"][t], episode["truncated"][t])
        assert terminated


def test_record_from_a_checkpoint_on_another_env_config_is_refused(checkpoint, tmp_path):
    proc = cli("demos", "record", str(checkpoint), "--env", "CartPole-v1", "--env-config",
               "max_episode_steps=20", "--episodes", "1", "--out", "d", cwd=tmp_path)
    _one_line_exit_2(proc, "--env-config {'max_episode_steps': 20}: a checkpoint's policy runs on CartPole-v1")
    assert list(tmp_path.iterdir()) == []
