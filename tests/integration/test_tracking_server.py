"""Tracking against a real `mlflow server` process: success, server loss, failure."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import RLFRONTIER, cli, last_json, stop_shared_ray

pytestmark = pytest.mark.integration


def test_run_on_a_tracking_server_holds_metrics_and_checkpoint(mlflow_server, tmp_path):
    proc = cli(
        # One iteration: what is tracked, not what is learnt.
        "train", "soft_q", "--env", "CartPole-v1", "--seed", "0", "--stop-timesteps", "1000",
        "--tracking-uri", mlflow_server.uri, "--experiment", "server-test", "--json", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    client = mlflow.MlflowClient(mlflow_server.uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "server-test"
    # Shown as model training, not in MLflow 3's GenAI view.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.metrics["env_steps"] == summary["env_steps"]
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert "checkpoint/rlfrontier.json" in paths
    best = {a.path for a in client.list_artifacts(run.info.run_id, "best_checkpoint")}
    assert "best_checkpoint/rlfrontier.json" in best
    # The artifact really is on the server's store, not only on this disk.
    stored = list((mlflow_server.root / "artifacts").rglob("rlfrontier.json"))
    assert stored, "checkpoint not uploaded to the server's artifact store"


def test_tracking_server_lost_mid_run_does_not_stop_training(mlflow_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    stop_shared_ray()  # the run's process starts its own
    proc = subprocess.Popen(
        [RLFRONTIER, "train", "soft_q", "--env", "CartPole-v1", "--seed", "0", "--stop-timesteps", "4000",
         "--tracking-uri", mlflow_server.uri, "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Wait for training to be under way (first progress line, after 1,000 of
        # the 4,000 steps), then kill the server, as a crash would: at once.
        deadline = time.monotonic() + 180
        seen = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if "steps/s" in line:
                break
        assert any("steps/s" in s for s in seen), "".join(seen)[-2000:]
        mlflow_server.stop(grace_s=0)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    summary = last_json(out)
    error_lines = [s for s in err.splitlines() if s.startswith("error:")]
    assert len(error_lines) == 1, err[-3000:]
    assert "MLflow" in error_lines[0] and mlflow_server.uri in error_lines[0]
    assert summary["checkpoint"] in error_lines[0]
    # Training finished its budget and kept its checkpoint.
    assert summary["env_steps"] >= 4000
    assert Path(summary["checkpoint"], "rlfrontier.json").is_file()
    assert summary["tracking_errors"]


def test_a_run_that_fails_is_marked_failed(tmp_path):
    # A checkpoint that passes the up-front checks but cannot be loaded: the
    # trial fails at run time, after the MLflow run exists.
    bad = tmp_path / "bad_checkpoint"
    bad.mkdir()
    (bad / "rllib_checkpoint.json").write_text("{}")
    (bad / "algorithm_state.pkl").write_bytes(b"not a pickle")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = cli("train", "soft_q", "--env", "CartPole-v1", "--seed", "0", "--stop-timesteps", "2000",
               "--restore", str(bad), "--json", cwd=cwd)
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["status"] == "FAILED"
    error_lines = [s for s in proc.stderr.splitlines() if s.startswith("error:")]
    assert len(error_lines) == 1 and "FAILED" in error_lines[0]
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert "summary.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
