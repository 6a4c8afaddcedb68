"""Fault injection: an EnvRunner process killed mid-training (the run still finishes); the driver interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import RLFRONTIER, last_json, stop_shared_ray

pytestmark = pytest.mark.integration


def _env_runner_processes(root_pid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            if "SingleAgentEnvRunner" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_killed_env_runner_is_restarted_and_the_run_reaches_its_budget(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    stop_shared_ray()  # the run's process starts its own
    proc = subprocess.Popen(
        [RLFRONTIER, "train", "soft_q", "--env", "CartPole-v1", "--seed", "0", "--stop-timesteps", "4000",
         "--num-env-runners", "1", "--eval-interval", "0", "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    killed = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and killed is None:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if "steps/s" in line:
                runners = _env_runner_processes(proc.pid)
                if runners:
                    killed = runners[0].pid
                    os.kill(killed, signal.SIGKILL)
        assert killed is not None, "no EnvRunner process found under the driver"
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    summary = last_json(out)
    assert summary["env_steps"] >= 4000 and summary["status"] == "FINISHED"
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE


def test_an_interrupted_train_says_so_and_its_mlflow_run_is_killed_not_finished(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) stops the run: one error line, exit 1, KILLED.

    Before, Tune's graceful stop let `--json` print "status": "FINISHED" with exit 0
    for a run that had not reached its stop criterion.
    """
    import mlflow

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    stop_shared_ray()  # the run's process starts its own
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        [RLFRONTIER, "train", "soft_q", "--env", "CartPole-v1", "--seed", "0", "--stop-timesteps", "1000000",
         "--eval-interval", "0", "--tracking-uri", uri, "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        progress = 0
        while time.monotonic() < deadline and progress < 2:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            progress += "steps/s" in line
        assert progress == 2, "no progress line from the run"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err[-3000:]
    summary = last_json(out)
    assert summary["status"] == "KILLED" and 0 < summary["env_steps"] < 1_000_000
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: training interrupted at ") and f"{summary['mlflow_run_id']} marked KILLED" in last
    run = mlflow.tracking.MlflowClient(uri).get_run(summary["mlflow_run_id"])
    assert run.info.status == "KILLED"
