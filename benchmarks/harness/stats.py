"""Summaries over seeds: k of n reaching the target, censored medians, ratios against a reference.

A run that never reached the target counts as infinitely slow: its median is
"never" when at least half the runs failed, so a contender cannot look fast
by its lucky seeds alone.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


IMPLIED = "implied"  # run["extra"] key: why the run was recorded as not reached without running (Plan)


@dataclass(frozen=True)
class Stats:
    """Median, min and max of values where None means "never" (counted as +inf).

    `median` and `max` are None when they are "never"; `min` is None only when
    no run got there. `k` values of `n` are finite.
    """

    median: float | None
    min: float | None
    max: float | None
    k: int
    n: int


def censored_stats(values: Sequence[float | None]) -> Stats:
    finite = [float(v) for v in values if v is not None]
    if not values:
        return Stats(None, None, None, 0, 0)
    med = statistics.median(math.inf if v is None else float(v) for v in values)
    return Stats(
        median=None if math.isinf(med) else med,
        min=min(finite) if finite else None,
        max=max(finite) if len(finite) == len(values) else None,
        k=len(finite),
        n=len(values),
    )


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are there (None: none are)."""
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def group_key(group: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple((group or {}).items())


@dataclass(frozen=True)
class Summary:
    """One contender in one group over its seeds."""

    contender: str
    label: str
    group: dict[str, Any]
    budget: Any
    runs: list[dict[str, Any]]
    reached: int
    errors: int
    steps: Stats
    wall_s: Stats
    env_steps_per_s: float | None
    setup_s: float | None
    implied: int = 0  # runs recorded as not reached without running (Plan.implied_failure)

    @property
    def n(self) -> int:
        return len(self.runs)


def summarize_runs(contender: str, runs: list[dict[str, Any]], *, label: str | None = None,
                   group: dict[str, Any] | None = None, budget: Any = None) -> Summary:
    runs = sorted(runs, key=lambda r: r["seed"])
    ok = [r for r in runs if not r.get("error")]
    return Summary(
        contender=contender,
        label=label or contender,
        group=dict(group or {}),
        budget=budget,
        runs=runs,
        reached=sum(r.get("steps_to_target") is not None for r in runs),
        errors=len(runs) - len(ok),
        steps=censored_stats([r.get("steps_to_target") for r in runs]),
        wall_s=censored_stats([r.get("wall_s_to_target") for r in runs]),
        env_steps_per_s=median(r.get("env_steps_per_s") for r in ok),
        setup_s=median(r.get("setup_s") for r in ok),
        implied=sum(bool(implied_reason(r)) for r in runs),
    )


def implied_reason(run: dict[str, Any]) -> str | None:
    """Why the run was recorded as not reached without running (None: it ran)."""
    return (run.get("extra") or {}).get(IMPLIED)


def summarize(results: dict[str, Any]) -> list[Summary]:
    """One Summary per (contender, group) of results.json, in the order the contenders were declared."""
    declared = {(c["name"], group_key(c.get("group"))): c for c in results.get("contenders", [])}
    by_key: dict[tuple[str, tuple], list[dict[str, Any]]] = {}
    for run in results["runs"]:
        by_key.setdefault((run["contender"], group_key(run.get("group"))), []).append(run)
    order = list(declared) + [k for k in by_key if k not in declared]
    out = []
    for key in order:
        if key not in by_key:
            continue  # declared but skipped or not run yet
        spec = declared.get(key, {})
        out.append(summarize_runs(key[0], by_key[key], label=spec.get("label"), group=dict(key[1]),
                                  budget=spec.get("budget")))
    return out


@dataclass(frozen=True)
class Ratio:
    """A contender's medians over the reference contender's, in the same group (None: n/a)."""

    summary: Summary
    reference: Summary
    steps: float | None
    wall_s: float | None
    env_steps_per_s: float | None


def ratios_vs(summaries: Sequence[Summary], reference: str) -> list[Ratio]:
    refs = {group_key(s.group): s for s in summaries if s.contender == reference}
    out = []
    for s in summaries:
        ref = refs.get(group_key(s.group))
        if ref is None or s is ref:
            continue
        out.append(Ratio(
            summary=s,
            reference=ref,
            steps=ratio(s.steps.median, ref.steps.median),
            wall_s=ratio(s.wall_s.median, ref.wall_s.median),
            env_steps_per_s=ratio(s.env_steps_per_s, ref.env_steps_per_s),
        ))
    return out


@dataclass(frozen=True)
class LogLogFit:
    """Least squares of log(y) on log(x): y ~ exp(intercept) * x ** slope, over `points` (x, y) pairs;
    r2 the share of log(y)'s variance the line explains (1 through two points)."""

    slope: float
    intercept: float
    points: int
    r2: float = math.nan


@dataclass(frozen=True)
class ExpFit:
    """Least squares of log(y) on x: y ~ exp(intercept + rate * x) (rate ln 2 = 0.693 for 2^x); r2 as
    LogLogFit's."""

    rate: float
    intercept: float
    points: int
    r2: float = math.nan


def _least_squares(pairs: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """(slope, intercept, r2) of the line through (u, v) pairs; None with fewer than two distinct u."""
    if len({u for u, _ in pairs}) < 2:
        return None
    mu = statistics.fmean(u for u, _ in pairs)
    mv = statistics.fmean(v for _, v in pairs)
    slope = sum((u - mu) * (v - mv) for u, v in pairs) / sum((u - mu) ** 2 for u, _ in pairs)
    intercept = mv - slope * mu
    total = sum((v - mv) ** 2 for _, v in pairs)
    residual = sum((v - intercept - slope * u) ** 2 for u, v in pairs)
    return slope, intercept, 1.0 - residual / total if total > 0 else 1.0


def loglog_fit(xs: Sequence[float], ys: Sequence[float]) -> LogLogFit | None:
    """The power law through positive (x, y) pairs; None with fewer than two distinct x."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    fit = _least_squares(pairs)
    return None if fit is None else LogLogFit(slope=fit[0], intercept=fit[1], points=len(pairs), r2=fit[2])


def exp_fit(xs: Sequence[float], ys: Sequence[float]) -> ExpFit | None:
    """The exponential through (x, y) pairs with y > 0; None with fewer than two distinct x."""
    pairs = [(float(x), math.log(y)) for x, y in zip(xs, ys) if y > 0]
    fit = _least_squares(pairs)
    return None if fit is None else ExpFit(rate=fit[0], intercept=fit[1], points=len(pairs), r2=fit[2])
