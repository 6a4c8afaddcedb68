"""Shared fixtures: the real CLI (in this process on one shared local Ray, or as a whole process), a real
`mlflow server`, a real `ray start --head`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
RLFRONTIER = str(BIN / "rlfrontier")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, cwd: Path, timeout: float = 600, env: dict | None = None,
            starts_ray: bool = True) -> subprocess.CompletedProcess:
    """Runs `rlfrontier ARGS` in `cwd` as a process; returns it finished (text output).

    A command that starts Ray (`starts_ray`) first stops this process's shared
    one: one Ray at a time.
    """
    if starts_ray:
        stop_shared_ray()
    full_env = {**os.environ, **(env or {})}
    full_env.pop("RAY_ADDRESS", None)
    full_env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [RLFRONTIER, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def cli(*args: str, cwd: Path, ray: bool = True) -> subprocess.CompletedProcess:
    """Runs `rlfrontier ARGS` in this process, in `cwd`, on the shared local Ray (`shared_ray`; with
    `ray` False, none is started first: bad input must be refused before Ray starts).

    What a run checks is the CLI's own: its exit code and what it prints. It
    saves the interpreter's start (~6 s of imports) and Ray's (~5 s) that
    `run_cli` pays; `run_cli` stays for what only a process shows (its whole
    stderr, being killed, a cluster's job). RAY_ADDRESS and MLFLOW_TRACKING_URI
    are unset, as for `run_cli`.
    """
    import contextlib
    import io

    from rlfrontier import cli as rlfrontier_cli

    if ray:
        shared_ray()
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.pop(k) for k in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI") if k in os.environ}
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = rlfrontier_cli.main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
        os.environ.update(saved)
        release_if_held()
    return subprocess.CompletedProcess(["rlfrontier", *args], code, out.getvalue(), err.getvalue())


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    assert lines, "no stdout"
    return json.loads(lines[-1])


class MlflowServer:
    """A real `mlflow server` process on SQLite with a local artifact store."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [
                str(BIN / "mlflow"), "server",
                "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination", str(self.root / "artifacts"),
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not answer /health within 90 s")

    def stop(self, *, grace_s: float = 20) -> None:
        """Terminates the server; after `grace_s` (0: at once) kills it."""
        if self.proc and self.proc.poll() is None:
            # Its own process group (start_new_session): the gunicorn/uvicorn
            # workers go with it; nothing else on the machine is touched.
            os.killpg(self.proc.pid, signal.SIGTERM if grace_s else signal.SIGKILL)
            try:
                self.proc.wait(timeout=grace_s or 10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path / "mlflow_server")
    try:
        server.start()
        yield server
    finally:
        # Its store is a throwaway: a graceful shutdown (open keep-alive
        # connections, ~8 s) buys nothing.
        server.stop(grace_s=0)


class RayHead:
    """A real `ray start --head --block` with token authentication, 2 CPUs.

    `--block` keeps one foreground process that owns the cluster's processes:
    terminating it (by its pid) stops exactly what this fixture started.
    """

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.dashboard_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.jobs_address = f"http://127.0.0.1:{self.dashboard_port}"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        # The node's Python environment is "activated", as on a real node:
        # job entrypoints run `python` from PATH.
        return {**os.environ, "RAY_AUTH_MODE": "token", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], check=True,
                       capture_output=True, env=self.env(), timeout=60)
        self.log = open(self.root / "head.log", "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", f"--port={self.port}",
             "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=true",
             "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
             # Its own job agent port: the default (52365) may be held by another Ray's agent on this
             # machine, and then every submission answers "No available agent".
             f"--dashboard-agent-listen-port={free_port()}",
             "--disable-usage-stats"],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True,
            cwd=self.root,  # job drivers start here, not in the test's checkout
        )
        # Plain HTTP with the token: this test process imported Ray before
        # RAY_AUTH_MODE was set, so Ray's own client here would not send it.
        token = Path("~/.ray/auth_token").expanduser().read_text().strip()
        request = urllib.request.Request(self.jobs_address + "/api/jobs/",
                                         headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray head exited: {(self.root / 'head.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(1.0)
        raise RuntimeError("ray head's job server did not answer within 180 s")

    def stop(self, *, grace_s: float = 5) -> None:
        """Terminates the cluster; after `grace_s` kills what is left of its process group.

        Ray's own graceful shutdown of a head that ran jobs takes ~35 s here;
        a throwaway test cluster needs none of it (measured: nothing of it
        outlives the kill).
        """
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    stop_shared_ray()
    head = RayHead(tmp_path_factory.mktemp("ray_head"))
    try:
        head.start()
        yield head
    finally:
        head.stop()


# Logical CPUs on this 2-core machine: what `rlfrontier train` itself starts for its largest default
# trial (PPO's driver and two EnvRunners ask for 3; the CLI oversubscribes a local Ray to fit one trial).
RAY_CPUS = 3


def shared_ray() -> None:
    """One local Ray in this process, started once and shared by the tests that run here.

    Each new Ray costs ~5-10 s here; tests that start another Ray (a head, a
    CLI subprocess that trains) stop this one first (`stop_shared_ray`), so
    only one runs at a time.
    """
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False)


def stop_shared_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def release_if_held(*, wait_s: float = 10.0) -> None:
    """After a test: a Ray whose CPUs are still held (an actor a failed test never stopped) is stopped,
    so the next test does not wait for them."""
    import ray

    if not ray.is_initialized():
        return
    deadline = time.monotonic() + wait_s
    while ray.available_resources().get("CPU", 0) < RAY_CPUS - 1e-6:
        if time.monotonic() > deadline:
            ray.shutdown()
            return
        time.sleep(0.25)


@pytest.fixture(scope="module")
def local_ray():
    """Ray in this process, for tests of the Python API: the shared one (`shared_ray`)."""
    shared_ray()
    yield
    release_if_held()


@pytest.fixture
def no_local_ray():
    """For a test that starts its own Ray (a CLI subprocess that trains, `ray start`): the shared one stops."""
    stop_shared_ray()


def learner_weights(algo) -> list[dict]:
    """Each remote learner's module weights (numpy), to compare data-parallel learners."""
    def weights(learner):
        module = learner.module["default_policy"].unwrapped()
        return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}

    return [r.get() for r in algo.learner_group.foreach_learner(weights)]
