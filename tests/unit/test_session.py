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
