"""Live progress of long runs on stderr: env steps, return, steps/s, ETA."""

from __future__ import annotations

import sys
import time

from ray.tune import Callback

from rlfrontier import trainable as T


def _fmt(value, spec: str = ".3g") -> str:
    """Three significant digits: 500, 23.7 and DeepSea's 0.99 all read right."""
    return "-" if value is None else format(value, spec)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


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

    def on_trial_result(self, iteration, trials, trial, result, **info):
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
        parts.append(f"eval {_fmt(result.get(T.EVAL_RETURN_MEAN))}")
        parts.append(f"{rate:,.0f} steps/s")
        if self.stop_timesteps and rate > 0 and not final:
            parts.append(f"ETA {_duration((self.stop_timesteps - steps) / rate)}")
        parts.append(f"elapsed {_duration(result.get(T.WALL_S, 0.0))}")
        print(" | ".join(parts), file=self.stream, flush=True)
