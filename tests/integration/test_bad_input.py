"""Bad input: exit 2, one line naming the bad value, nothing written."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import cli, free_port, run_cli

pytestmark = pytest.mark.integration

GPUS = torch.cuda.device_count()
BASE = ["train", "soft_q", "--env", "CartPole-v1", "--stop-timesteps", "1000"]


def _bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lr: [0.1, 0.2\ngamma: 0.9\n")
    return [*BASE, "--config", str(path)], "bad.yaml"


def _unknown_key_yaml(tmp_path):
    path = tmp_path / "unknown.yaml"
    path.write_text("learning_rate_typo: 0.1\n")
    return [*BASE, "--config", str(path)], "learning_rate_typo"


CASES = {
    "unknown algorithm": lambda tmp: (["train", "soft_qq", "--env", "CartPole-v1", "--stop-timesteps", "10"], "soft_qq"),
    "unknown env": lambda tmp: (["train", "soft_q", "--env", "CartPoel-v1", "--stop-timesteps", "10"], "CartPoel-v1"),
    "out of range": lambda tmp: ([*BASE, "--set", "gamma=2"], "gamma=2"),
    "wrong type": lambda tmp: ([*BASE, "--set", "lr=fast"], "lr="),
    "malformed config": _bad_yaml,
    "unknown config key": _unknown_key_yaml,
    "no stop criterion": lambda tmp: (["train", "soft_q", "--env", "CartPole-v1"], "--stop-timesteps"),
    "negative budget": lambda tmp: (["train", "soft_q", "--env", "CartPole-v1", "--stop-timesteps", "-5"], "--stop-timesteps=-5"),
    "unreachable tracking server": lambda tmp: ([*BASE, "--tracking-uri", f"http://127.0.0.1:{free_port()}"], "127.0.0.1"),
    "file tracking store": lambda tmp: ([*BASE, "--tracking-uri", str(tmp / "mlruns")], "mlruns"),
    "missing checkpoint": lambda tmp: ([*BASE, "--restore", str(tmp / "nope")], "nope"),
    "evaluate missing checkpoint": lambda tmp: (["evaluate", str(tmp / "nope")], "nope"),
    "unknown command flag": lambda tmp: ([*BASE, "--no-such-flag"], "--no-such-flag"),
    "more GPUs than the machine has": lambda tmp: (
        [*BASE, "--num-learners", str(GPUS + 1), "--gpus-per-learner", "1"], f"asks for {GPUS + 1} GPU(s)"),
    "boot_dqn mask out of range": lambda tmp: (
        ["train", "boot_dqn", "--env", "rlfrontier/DeepSea-v0", "--stop-timesteps", "10", "--set", "mask_prob=0"],
        "mask_prob=0"),
    "deep sea size out of range": lambda tmp: (
        ["train", "boot_dqn", "--env", "rlfrontier/DeepSea-v0", "--env-config", "size=1", "--stop-timesteps", "10"],
        "size"),
    "unknown dotted setting": lambda tmp: ([*BASE, "--set", "no_such_field.scale=2"], "unknown setting 'no_such_field'"),
    "bad env-config": lambda tmp: (["train", "soft_q", "--env", "CartPole-v1", "--env-config", "no_such_kwarg=1", "--stop-timesteps", "10"], "no_such_kwarg"),
}


# Whole processes, for what only a process shows: nothing else on its stderr (library warnings at
# import, Ray's start-up lines). The other cases run the CLI in this process (tests.conftest.cli):
# each process start costs ~6 s of imports.
IN_A_PROCESS = {"unknown algorithm", "unknown env", "unreachable tracking server", "unknown command flag"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    args, needle = CASES[case](tmp_path)
    if case in IN_A_PROCESS:
        proc = run_cli(*args, cwd=cwd, timeout=120, starts_ray=False)
    else:
        proc = cli(*args, cwd=cwd, ray=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert list(cwd.iterdir()) == [], "bad input must not write anything"


TUNE_GOOD = """\
algo: soft_q
env: CartPole-v1
search_space:
  lr: {loguniform: [1.0e-4, 1.0e-2]}
stop: {timesteps: 1000}
"""

TUNE_CASES = {
    "malformed yaml": (TUNE_GOOD + "scheduler: {type: asha\n", "malformed YAML"),
    "unknown key": (TUNE_GOOD + "num_sample: 2\n", "num_sample=2"),
    "lower above upper": (TUNE_GOOD.replace("[1.0e-4, 1.0e-2]", "[1.0e-2, 1.0e-4]"), "search_space.lr.loguniform=[0.01, 0.0001]"),
    "unknown scheduler": (TUNE_GOOD + "scheduler: {type: medianstop}\n", "scheduler.type='medianstop'"),
    "unknown searcher": (TUNE_GOOD + "searcher: {type: hyperopt}\n", "searcher.type='hyperopt'"),
    "string for a number": (TUNE_GOOD.replace("timesteps: 1000", "timesteps: '1000'"), "stop.timesteps='1000' must be an integer"),
}


@pytest.mark.parametrize("case", sorted(TUNE_CASES))
def test_bad_tune_file_exits_2_naming_file_key_and_value(case, tmp_path):
    text, needle = TUNE_CASES[case]
    search = tmp_path / "search.yaml"
    search.write_text(text)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = cli("tune", str(search), cwd=cwd, ray=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(search) in lines[0] and needle in lines[0], proc.stderr
    assert list(cwd.iterdir()) == []


def test_tune_with_an_unreachable_cluster_exits_2(tmp_path):
    search = tmp_path / "search.yaml"
    search.write_text(TUNE_GOOD)
    proc = run_cli("tune", str(search), "--address", f"127.0.0.1:{free_port()}", cwd=tmp_path, timeout=120,
                   starts_ray=False)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0] and "127.0.0.1" in lines[0]
