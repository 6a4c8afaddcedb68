"""`submit` and `jobs`: rlfrontier commands as Ray jobs, on the Ray Jobs API.

The job carries this project's code as the installed `rlfrontier` package
folder (built with `pip install --no-deps --target`, so rlfrontier.algorithms
is in place) in the runtime environment's `py_modules`: Ray zips it, uploads
it, and puts it on every worker's path. Not a .whl: Ray pip-installs a wheel
in py_modules *with its dependencies*, which pulls ray and torch again (a CUDA
build, gigabytes) over the cluster's own. The job runs
`python -m rlfrontier <command>`; the cluster provides the dependencies (the
images in deploy/ and the `ray up` files in cluster/ install them). `python`
is the first one on the PATH of whoever ran `ray start`: a head started as
`.venv/bin/ray start --head` without the environment active runs the job with
the system's `python`, and the job dies on an import. `dependency_hint`
reads that from the job's logs and says so in one line.

`ray job submit` works the same way by hand (README, "Run on a cluster"):

    pip install --no-deps --target build/job .
    ray job submit --address http://HEAD:8265 \\
        --runtime-env-json '{"py_modules": ["build/job/rlfrontier"]}' \\
        -- python -m rlfrontier train soft_q --env CartPole-v1 --stop-timesteps 60000
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rlfrontier.validation import BadInput

DEFAULT_JOBS_ADDRESS = "http://127.0.0.1:8265"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
_NO_PYTHON = re.compile(r"\bpython: (?:command )?not found")


def enable_token_auth_if_available() -> None:
    """Ray 2.60 clients send the cluster token only with RAY_AUTH_MODE=token.

    A token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (what
    `ray start --head` and `ray get-auth-token` use) turns it on, unless the
    user set RAY_AUTH_MODE themselves.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    if (
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or Path("~/.ray/auth_token").expanduser().is_file()
    ):
        os.environ["RAY_AUTH_MODE"] = "token"


def jobs_address(address: str | None) -> str:
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS") or DEFAULT_JOBS_ADDRESS
    if "://" not in address:
        address = f"http://{address}"
    return address


def client(address: str | None):
    from rlfrontier.session import check_reachable

    address = jobs_address(address)
    check_reachable(address)
    enable_token_auth_if_available()
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"Ray job server at {address!r} refused the connection: {first}") from None


def project_root() -> Path:
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise BadInput(
            "submit needs the project's source tree (pyproject.toml) to build the job's wheel; "
            f"none at {root}"
        )
    return root


def build_package(out_dir: Path) -> Path:
    """Installs this project (no dependencies) into `out_dir`; returns its package folder."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(out_dir), str(project_root())],
        capture_output=True,
        text=True,
    )
    package = out_dir / "rlfrontier"
    if proc.returncode != 0 or not (package / "algorithms").is_dir():
        raise RuntimeError(f"building the job's package failed: {proc.stderr.strip()[-500:]}")
    return package


def submit(
    command: list[str],
    *,
    address: str | None = None,
    wait: bool = True,
    gpus: float = 0,
    job_id: str | None = None,
    out=None,
) -> dict[str, Any]:
    """Submits `rlfrontier COMMAND` as a Ray job; streams its logs unless wait=False."""
    from rlfrontier.cli import build_parser

    out = out or sys.stdout
    if not command:
        raise BadInput("submit: give the rlfrontier command after --, e.g. -- train soft_q --env CartPole-v1 ...")
    if command[0] == "rlfrontier":
        command = command[1:]
    if command and command[0] in ("submit", "jobs"):
        raise BadInput(f"submit: {command[0]!r} cannot run as a job")
    build_parser().parse_args(command)  # bad flags are bad input here, not a failed job
    if gpus < 0:
        raise BadInput(f"--gpus={gpus} is out of range: allowed [0, inf)")
    jobs = client(address)

    env_vars = {"PYTHONUNBUFFERED": "1"}
    for var in ("MLFLOW_TRACKING_URI",):
        if os.environ.get(var):
            env_vars[var] = os.environ[var]
    with tempfile.TemporaryDirectory() as tmp:
        package = build_package(Path(tmp))
        entrypoint = "python -m rlfrontier " + shlex.join(command)
        submitted = _submit_with_retry(
            jobs,
            entrypoint=entrypoint,
            runtime_env={"py_modules": [str(package)], "env_vars": env_vars},
            entrypoint_num_gpus=gpus or None,
            submission_id=job_id,
            metadata={"tool": "rlfrontier", "command": shlex.join(command)},
        )
    summary = {"job_id": submitted, "address": jobs_address(address), "entrypoint": entrypoint}
    print(f"submitted job {submitted} to {summary['address']}: {entrypoint}", file=sys.stderr, flush=True)
    if not wait:
        summary["status"] = str(jobs.get_job_status(submitted))
        return summary

    async def stream():
        async for lines in jobs.tail_job_logs(submitted):
            out.write(lines)
            out.flush()

    try:
        asyncio.run(stream())
    except Exception:  # noqa: BLE001 - log streaming can drop; the status below is what counts
        pass
    info = wait_for(jobs, submitted)
    summary.update(job_summary(info))
    hint = failure_hint(jobs, submitted, summary["status"])
    if hint:
        summary["hint"] = hint
    return summary


def _submit_with_retry(jobs, *, patience_s: float = 120.0, **kwargs) -> str:
    """A head that has just started answers "No available agent" until its
    node's job agent is up: wait for it instead of failing the submission."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return jobs.submit_job(**kwargs)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def wait_for(jobs, job_id: str, timeout_s: float = 24 * 3600):
    deadline = time.monotonic() + timeout_s
    while True:
        info = jobs.get_job_info(job_id)
        if str(info.status) in TERMINAL or time.monotonic() > deadline:
            return info
        time.sleep(1.0)


def job_summary(info) -> dict[str, Any]:
    return {
        "job_id": info.submission_id or info.job_id,
        "status": str(info.status),
        "message": info.message,
        "driver_exit_code": getattr(info, "driver_exit_code", None),
        "entrypoint": info.entrypoint,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }


def dependency_hint(logs: str) -> str | None:
    """One line for a job that died because the cluster's `python` lacks this
    project's dependencies (a ModuleNotFoundError, or no `python` at all); None
    for any other failure.

    Args:
        logs: the job's driver logs, as the Jobs API returns them.
    """
    # Only how the job ended counts: an earlier, handled import error of an
    # optional package must not be blamed for another failure.
    tail = "\n".join(logs.strip().splitlines()[-20:])
    missing = _MISSING_MODULE.findall(tail)
    if missing:
        what = f"No module named {missing[-1]!r}"
    elif _NO_PYTHON.search(tail):
        what = "no `python` on its PATH"
    else:
        return None
    return (
        f"hint: the cluster's `python` lacks this project's dependencies ({what}). Start the Ray head "
        "with the project's environment active (`source .venv/bin/activate && ray start --head`), "
        "install the project and its dependencies in the environment the cluster runs "
        "(`pip install -e .` there; the images in deploy/ do), or submit with a runtime_env that provides them"
    )


def failure_hint(jobs, job_id: str, status: str) -> str | None:
    """`dependency_hint` of a FAILED job's logs (None when they cannot be read)."""
    if status != "FAILED":
        return None
    try:
        return dependency_hint(jobs.get_job_logs(job_id))
    except Exception:  # noqa: BLE001 - a hint is a courtesy; the status is what counts
        return None


def exit_code(summary: dict[str, Any]) -> int:
    """The job's own exit code where Ray knows it; else 0 for SUCCEEDED, 1 otherwise."""
    code = summary.get("driver_exit_code")
    if isinstance(code, int):
        return code if code in (0, 1, 2) else 1
    return 0 if summary.get("status") == "SUCCEEDED" else 1
