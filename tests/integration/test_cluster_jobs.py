"""Jobs on a real Ray head (`ray start --head`, token auth) with a real MLflow server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.conftest import BIN, last_json, run_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped_package(tmp_path_factory) -> Path:
    """The project installed without its dependencies into a folder, as the README ships it in `py_modules`."""
    target = tmp_path_factory.mktemp("job")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(ROOT)],
                   check=True, timeout=300)
    return target / "rlfrontier"


def test_submit_train_runs_on_the_cluster_and_tracks_to_the_server(ray_head, mlflow_server, tmp_path):
    proc = run_cli(
        "submit", "--address", ray_head.jobs_address, "--json", "--",
        "train", "soft_q", "--env", "CartPole-v1", "--seed", "0", "--stop-timesteps", "1000",
        "--tracking-uri", mlflow_server.uri, "--experiment", "jobs", "--json",
        cwd=tmp_path, env={"RAY_AUTH_MODE": "token"},
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    outer = last_json(proc.stdout)
    assert outer["status"] == "SUCCEEDED"
    # The job's own --json line came through the streamed logs.
    inner = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"algo"')]
    assert inner and inner[-1]["status"] == "FINISHED"
    client = mlflow.MlflowClient(mlflow_server.uri)
    run = client.get_run(inner[-1]["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    # The job used the cluster's own torch: the shipped package brought no
    # dependencies (a .whl in py_modules would have pip-installed another one).
    import torch

    assert run.data.tags["torch_version"] == torch.__version__
    assert "checkpoint/rlfrontier.json" in {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}

    listed = last_json(run_cli("jobs", "list", "--address", ray_head.jobs_address, "--json",
                               cwd=tmp_path, env={"RAY_AUTH_MODE": "token"}).stdout)
    assert outer["job_id"] in {j["job_id"] for j in listed["jobs"]}
    status = last_json(run_cli("jobs", "status", outer["job_id"], "--address", ray_head.jobs_address, "--json",
                               cwd=tmp_path, env={"RAY_AUTH_MODE": "token"}).stdout)
    assert status["status"] == "SUCCEEDED"
    logs = run_cli("jobs", "logs", outer["job_id"], "--address", ray_head.jobs_address, cwd=tmp_path,
                   env={"RAY_AUTH_MODE": "token"})
    assert "steps/s" in logs.stdout


def test_a_job_that_gets_bad_input_exits_2(ray_head, tmp_path):
    proc = run_cli(
        "submit", "--address", ray_head.jobs_address, "--",
        "train", "soft_q", "--env", "CartPole-v1", "--stop-timesteps", "100", "--set", "gamma=2",
        cwd=tmp_path, env={"RAY_AUTH_MODE": "token"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "gamma=2" in proc.stdout + proc.stderr


def test_ray_job_submit_cli_runs_rlfrontier_with_the_documented_runtime_env(ray_head, shipped_package, tmp_path):
    proc = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", ray_head.jobs_address,
         "--runtime-env-json", json.dumps({"py_modules": [str(shipped_package)]}), "--",
         "python", "-m", "rlfrontier", "train", "soft_q", "--env", "CartPole-v1", "--seed", "1",
         "--stop-iters", "1", "--eval-interval", "0", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--json"],
        cwd=tmp_path, env=ray_head.env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "succeeded" in (proc.stdout + proc.stderr).lower()
    inner = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"algo"')]
    assert inner and inner[-1]["iterations"] == 1


def _python_without_the_dependencies() -> str | None:
    """A `python` that lacks mlflow, as the system's on a node whose Ray was
    started without the project's environment active."""
    import shutil

    for candidate in ("/usr/bin/python3", shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")):
        if candidate and subprocess.run([candidate, "-c", "import mlflow"], capture_output=True).returncode != 0:
            return candidate
    return None


def test_a_job_whose_python_lacks_the_dependencies_says_how_to_fix_it(ray_head, shipped_package, tmp_path):
    python = _python_without_the_dependencies()
    if python is None:
        pytest.skip("every python on this machine has mlflow")
    proc = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", ray_head.jobs_address,
         "--runtime-env-json", json.dumps({"py_modules": [str(shipped_package)]}), "--",
         python, "-m", "rlfrontier", "algos"],
        cwd=tmp_path, env=ray_head.env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0 and "No module named" in proc.stdout + proc.stderr
    job_id = next(w.strip("'") for w in (proc.stdout + proc.stderr).split() if w.strip("'").startswith("raysubmit_"))
    status = run_cli("jobs", "status", job_id, "--address", ray_head.jobs_address, "--json", cwd=tmp_path,
                     env={"RAY_AUTH_MODE": "token"})
    assert status.returncode == 0, status.stderr[-2000:]
    assert last_json(status.stdout)["status"] == "FAILED"
    hints = [line for line in status.stderr.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1 and "cluster's `python` lacks this project's dependencies" in hints[0]
    assert "environment active" in hints[0]


def test_unreachable_job_server_is_bad_input(tmp_path):
    from tests.conftest import free_port

    proc = run_cli("submit", "--address", f"http://127.0.0.1:{free_port()}", "--", "algos", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: Ray cluster at") and "unreachable" in proc.stderr
