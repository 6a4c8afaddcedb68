"""Connecting to Ray and describing the code that runs (for tags)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from rlfrontier.validation import BadInput


def init_ray(address: str | None = None, *, verbose: bool = False, trial_resources=None) -> None:
    """Local Ray in process by default; `address` or RAY_ADDRESS for a cluster.

    `trial_resources` (a PlacementGroupFactory, what one trial asks for) is
    checked against what Ray has: a trial that can never be placed would wait
    forever. Locally, CPUs are oversubscribed to fit one trial (`--num-learners 2`
    on a 2-core laptop runs, slower); GPUs cannot be (`check_local_gpus`, before
    anything is written). On a cluster a shortfall is reported, not refused: an
    autoscaler may add the nodes.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    need = dict(getattr(trial_resources, "required_resources", None) or {})
    kwargs = {"log_to_driver": verbose, "logging_level": "INFO" if verbose else "WARNING"}
    if address and address not in ("local", "auto"):
        check_reachable(address)
        from rlfrontier.jobs import enable_token_auth_if_available

        enable_token_auth_if_available()
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"Ray cluster at {address!r} is unreachable: {first}") from None
        short = _shortfall(need, ray.cluster_resources())
        if short:
            print(f"note: one trial asks for {short}; the cluster at {address} has less now "
                  "(trials wait until an autoscaler adds nodes)", file=sys.stderr)
        return
    # address="local": always a new Ray in this process. A bare ray.init()
    # would attach to any Ray cluster already running on the machine, and
    # the run would die with it.
    cores = os.cpu_count() or 1
    cpus = max(cores, math.ceil(need.get("CPU", 0)))
    if cpus > cores:
        print(f"note: one trial asks for {need['CPU']:g} CPUs, this machine has {cores}: "
              f"local Ray oversubscribes them", file=sys.stderr)
    ray.init(address="local", include_dashboard=False, num_cpus=cpus, **kwargs)


def check_local_gpus(address: str | None, trial_resources) -> None:
    """Before anything is written: a local run cannot ask for GPUs the machine lacks."""
    if (address or os.environ.get("RAY_ADDRESS") or "local") not in ("local", "auto"):
        return
    need = float((getattr(trial_resources, "required_resources", None) or {}).get("GPU", 0))
    if need <= 0:
        return
    import torch

    have = torch.cuda.device_count()
    if need > have:
        raise BadInput(f"one trial asks for {need:g} GPU(s), this machine has {have}: lower "
                       "--gpus-per-learner or --num-learners, or pass --address of a cluster with GPUs")


def _shortfall(need: dict[str, float], have: dict[str, float]) -> str:
    """'3 CPU, 1 GPU' for each resource `need` asks more of than `have` holds; '' when it fits."""
    short = [f"{amount:g} {name}" for name, amount in sorted(need.items())
             if amount > have.get(name, 0) + 1e-9]
    return ", ".join(short)


def check_reachable(address: str, *, timeout_s: float = 5.0) -> None:
    """A TCP connect to the head before ray.init, which would otherwise retry for minutes."""
    import socket
    from urllib.parse import urlparse

    target = address if "://" in address else f"ray://{address}"
    parsed = urlparse(target)
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise BadInput(f"Ray address {address!r} is not host:port (or ray://host:port, http://host:port)")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise BadInput(f"Ray cluster at {address!r} is unreachable: {exc.strerror or exc}") from None


@lru_cache(maxsize=1)
def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here, capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def versions() -> dict[str, str]:
    import mlflow
    import ray
    import torch

    from rlfrontier import __version__

    return {
        "rlfrontier_version": __version__,
        "ray_version": ray.__version__,
        "torch_version": torch.__version__,
        "mlflow_version": mlflow.__version__,
    }
