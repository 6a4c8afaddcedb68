"""Live progress of long runs on stderr: env steps, return, steps/s, ETA."""

from __future__ import annotations

import sys
import time

from ray.tune import Callback

from rlfrontier import bonuses, offpolicy
from rlfrontier import trainable as T
from rlfrontier.registry import EVALUATION_METRICS


def _fmt(value, spec: str = ".3g") -> str:
    """Three significant digits: 500, 23.7 and DeepSea's 0.99 all read right."""
    return "-" if value is None else format(value, spec)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def q_bound_warning(result: dict) -> str | None:
    """A one-line warning when a learner's q_mean has left the range its rewards allow, else None.

    Off-policy algorithms report the range (offpolicy.Q_LOWER_BOUND/Q_UPPER_BOUND,
    e.g. soft_q's losses.soft_q_bounds); a mean Q-value outside it means the
    values are diverging, long before the return shows it.
    """
    lower, upper = result.get(offpolicy.Q_LOWER_BOUND), result.get(offpolicy.Q_UPPER_BOUND)
    learners = result.get("learners")
    if upper is None or lower is None or not isinstance(learners, dict):
        return None
    for module_id, metrics in learners.items():
        q_mean = metrics.get(offpolicy.Q_MEAN) if isinstance(metrics, dict) else None
        if q_mean is not None and not lower <= q_mean <= upper:
            return (
                f"{module_id} q_mean {q_mean:.4g} is outside [{lower:.4g}, {upper:.4g}], the range of Q-values "
                f"the rewards seen so far allow: the Q-values are diverging (see README, soft_q stability)"
            )
    return None


class ProgressPrinter(Callback):
    """One line per reported iteration (at most one every `every_s` seconds).

    Args:
        stop_timesteps: the run's env-step budget, for the ETA (None: no ETA).
        stream: where to write (stderr, so that `--json` keeps stdout clean).
    """

    def __init__(self, *, stop_timesteps: int | None, every_s: float = 2.0, stream=None):
        self.stop_timesteps = stop_timesteps
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._warned: set[str] = set()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        warning = q_bound_warning(result)
        if warning and trial.trial_id not in self._warned:
            self._warned.add(trial.trial_id)
            print(f"[{trial.trial_id}] warning: {warning}", file=self.stream, flush=True)
        now = time.monotonic()
        final = bool(result.get(T.DONE_REASON))
        if not final and now - self._last < self.every_s:
            return
        self._last = now
        steps = int(result.get(T.ENV_STEPS, 0))
        rate = result.get(T.ENV_STEPS_PER_S) or 0.0
        parts = [f"[{trial.trial_id}] iter {result.get(T.ITERATIONS, '-')}"]
        if self.stop_timesteps:
            parts.append(f"steps {steps:,}/{self.stop_timesteps:,} ({100 * steps / self.stop_timesteps:.0f}%)")
        else:
            parts.append(f"steps {steps:,}")
        parts.append(f"return {_fmt(result.get(T.EPISODE_RETURN_MEAN))}")
        parts.append(f"eval {_fmt(result.get(T.EVAL_RETURN_MEAN))} (best {_fmt(result.get(T.BEST_EVAL_RETURN_MEAN))})")
        bonus = result.get(bonuses.RESULTS)
        if isinstance(bonus, dict) and bonus:
            cells = bonus.get(bonuses.CELLS)
            parts.append(f"bonus {_fmt(bonus.get(bonuses.INTRINSIC_MEAN))}"
                         + ("" if cells is None else f" ({cells:,.0f} cells)"))
        measures = result.get(EVALUATION_METRICS)
        if isinstance(measures, dict) and measures:  # the algorithm's own (registry hook), e.g. maxent_irl's
            parts.append(", ".join(f"{key} {_fmt(value)}" for key, value in list(measures.items())[:3]))
        if steps:  # an algorithm that samples nothing to train (maxent_irl, bc) has no rate
            parts.append(f"{rate:,.0f} steps/s")
        if self.stop_timesteps and rate > 0 and not final:
            parts.append(f"ETA {_duration((self.stop_timesteps - steps) / rate)}")
        parts.append(f"elapsed {_duration(result.get(T.WALL_S, 0.0))}")
        print(" | ".join(parts), file=self.stream, flush=True)
