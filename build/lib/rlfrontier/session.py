"""Connecting to Ray and describing the code that runs (for tags)."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from rlfrontier.validation import BadInput


def init_ray(address: str | None = None, *, verbose: bool = False) -> None:
    """Local Ray in process by default; `address` or RAY_ADDRESS for a cluster."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
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
    else:
        # address="local": always a new Ray in this process. A bare ray.init()
        # would attach to any Ray cluster already running on the machine, and
        # the run would die with it.
        ray.init(address="local", include_dashboard=False, **kwargs)


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
