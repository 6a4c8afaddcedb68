"""The machine a benchmark ran on: CPU, load, versions, code (git commit and dirty flag)."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

VERSIONED = ("torch", "ray", "mlflow", "gymnasium", "numpy", "stable-baselines3")


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def load_avg() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def git() -> dict[str, Any]:
    from rlfrontier.session import git_commit

    commit = git_commit()  # "<sha>", "<sha>-dirty" or "unknown"
    if commit == "unknown":
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit.removesuffix("-dirty"), "git_dirty": commit.endswith("-dirty")}


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine_info() -> dict[str, Any]:
    """Taken when a benchmark starts; `load_avg_end` is added when it ends."""
    import torch

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "gpu": gpu_name(),
        "torch_num_threads": torch.get_num_threads(),
        "load_avg_start": load_avg(),
        "load_avg_end": None,
        "versions": {dist: version(dist) for dist in VERSIONED},
        **git(),
    }
