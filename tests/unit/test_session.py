"""Resource checks before a run: what one trial asks for against what Ray or the machine has."""

from __future__ import annotations

import pytest
import torch
from ray.tune import PlacementGroupFactory

from rlfrontier import session
from rlfrontier.validation import BadInput


def test_shortfall_names_each_resource_asked_beyond_what_is_there():
    assert session._shortfall({"CPU": 3, "GPU": 1}, {"CPU": 2.0}) == "3 CPU, 1 GPU"
    assert session._shortfall({"CPU": 2, "GPU": 0}, {"CPU": 2.0}) == ""
    assert session._shortfall({}, {}) == ""


def test_local_gpu_request_beyond_the_machine_is_bad_input():
    gpus = torch.cuda.device_count()
    request = PlacementGroupFactory([{"CPU": 1}] + [{"CPU": 1, "GPU": 1}] * (gpus + 1))
    with pytest.raises(BadInput, match=f"asks for {gpus + 1} GPU"):
        session.check_local_gpus(None, request)
    # On a cluster an autoscaler may add GPU nodes: not refused up front.
    session.check_local_gpus("10.0.0.1:6379", request)
    session.check_local_gpus(None, PlacementGroupFactory([{"CPU": 3}]))


# A job run by a head started as `.venv/bin/ray start --head` (environment not
# active): the entrypoint's `python` is the system's, which has no mlflow. This
# is what `ray job logs` shows of it (the CLI catches the error in main()).
SYSTEM_PYTHON_JOB_LOGS = """\
2026-11-25 22:41:07,331\tINFO job_manager.py:531 -- Runtime env is setting up.
error: ModuleNotFoundError: No module named 'mlflow' (--verbose for the traceback)
"""

TRACEBACK_JOB_LOGS = """\
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<frozen runpy>", line 88, in _run_code
  File "/tmp/ray/session_2026-11-25_22-40-01_123456_777/runtime_resources/py_modules_files/_ray_pkg_3f2a/rlfrontier/__main__.py", line 5, in <module>
    from rlfrontier.cli import main
  File "/tmp/ray/session_2026-11-25_22-40-01_123456_777/runtime_resources/py_modules_files/_ray_pkg_3f2a/rlfrontier/cli.py", line 9, in <module>
    import ray
ModuleNotFoundError: No module named 'ray'
"""


def test_a_job_without_the_projects_dependencies_gets_one_line_saying_how_to_fix_it():
    from rlfrontier.jobs import dependency_hint

    for logs, module in ((SYSTEM_PYTHON_JOB_LOGS, "mlflow"), (TRACEBACK_JOB_LOGS, "ray")):
        hint = dependency_hint(logs)
        assert hint is not None and "\n" not in hint
        assert f"No module named '{module}'" in hint and "cluster's `python`" in hint
        assert "environment active" in hint and "ray start --head" in hint and "runtime_env" in hint
    assert "no `python`" in dependency_hint("/bin/sh: 1: python: not found\n")


def test_other_job_failures_get_no_dependency_hint():
    from rlfrontier.jobs import dependency_hint

    assert dependency_hint("error: training failed: RuntimeError: CUDA out of memory\n") is None
    # A handled import error long before the end is not how the job died.
    early = "ModuleNotFoundError: No module named 'GPUtil'\n" + "iter 3 | steps 3,000\n" * 30 + "error: boom\n"
    assert dependency_hint(early) is None


def test_submit_reads_a_failed_jobs_logs_for_the_hint():
    from rlfrontier.jobs import failure_hint

    class Jobs:
        def get_job_logs(self, job_id):
            assert job_id == "raysubmit_1"
            return SYSTEM_PYTHON_JOB_LOGS

    assert "No module named 'mlflow'" in failure_hint(Jobs(), "raysubmit_1", "FAILED")
    assert failure_hint(Jobs(), "raysubmit_1", "SUCCEEDED") is None

    class Unreachable:
        def get_job_logs(self, job_id):
            raise RuntimeError("connection refused")

    assert failure_hint(Unreachable(), "raysubmit_1", "FAILED") is None
