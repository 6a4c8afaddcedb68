"""The progress line and the `done:` line show the best evaluation beside the last."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rlfrontier import trainable as T
from rlfrontier.cli import _num
from rlfrontier.progress import ProgressPrinter


def _line(result) -> str:
    out = io.StringIO()
    ProgressPrinter(stop_timesteps=60_000, every_s=0.0, stream=out).on_trial_result(
        0, [], SimpleNamespace(trial_id="abc_00000"), result)
    return out.getvalue().strip()


def test_progress_line_shows_last_and_best_evaluation():
    line = _line({T.ITERATIONS: 20, T.ENV_STEPS: 21_000, T.EPISODE_RETURN_MEAN: 480.0,
                  T.EVAL_RETURN_MEAN: 212.0, T.BEST_EVAL_RETURN_MEAN: 500.0,
                  T.ENV_STEPS_PER_S: 350.0, T.WALL_S: 60.0})
    assert "eval 212 (best 500)" in line
    assert "steps 21,000/60,000 (35%)" in line and "350 steps/s" in line and "ETA" in line


def test_progress_line_before_any_evaluation():
    line = _line({T.ITERATIONS: 1, T.ENV_STEPS: 1_000, T.ENV_STEPS_PER_S: 400.0, T.WALL_S: 2.5})
    assert "eval - (best -)" in line


def test_done_line_numbers():
    assert _num(None) == "-" and _num(500.0) == "500" and _num(212.25) == "212.2"


def test_q_bound_warning_names_the_module_and_the_range_only_when_q_mean_leaves_it():
    from rlfrontier.progress import q_bound_warning

    inside = {"q_value_lower_bound": 1.0, "q_value_upper_bound": 103.4, "learners": {"default_policy": {"q_mean": 99.0}}}
    assert q_bound_warning(inside) is None
    above = {**inside, "learners": {"default_policy": {"q_mean": 179.0}}}
    warning = q_bound_warning(above)
    assert "default_policy q_mean 179" in warning and "[1, 103.4]" in warning
    below = {**inside, "learners": {"default_policy": {"q_mean": -3.0}}}
    assert "q_mean -3" in q_bound_warning(below)
    # Algorithms that report no bound (RLlib's baselines) never warn.
    assert q_bound_warning({"learners": {"default_policy": {"q_mean": 1e6}}}) is None


def test_progress_line_shows_an_algorithms_own_measures_and_no_rate_when_it_samples_nothing():
    line = _line({T.ITERATIONS: 300, T.ENV_STEPS: 0, T.ENV_STEPS_PER_S: 0.0, T.WALL_S: 3.0,
                  "metrics": {"reward_correlation": 0.857, "expected_value_difference": 0.0372,
                              "expected_value_difference_ratio": 0.0029, "optimal_value": 12.9}})
    assert "reward_correlation 0.857, expected_value_difference 0.0372, expected_value_difference_ratio 0.0029" in line
    assert "optimal_value" not in line and "steps/s" not in line
