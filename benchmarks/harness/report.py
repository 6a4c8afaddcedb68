"""Markdown tables and plots from results.json (live or re-rendered with --from-json)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .stats import LogLogFit, Ratio, Stats, Summary, implied_reason, ratios_vs

NEVER = "never"


# Cells ---------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def fmt_stats(stats: Stats, digits: int = 0) -> str:
    """'median (min–max)', 'never' where the median or max run did not get there."""
    if stats.n == 0:
        return "—"
    if stats.k == 0:
        return NEVER
    med = NEVER if stats.median is None else fmt(stats.median, digits)
    if stats.n == 1:
        return med
    high = NEVER if stats.max is None else fmt(stats.max, digits)
    return f"{med} ({fmt(stats.min, digits)}–{high})"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def fmt_group(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: Sequence[str] | None = None) -> str:
    aligns = aligns or ["---"] * len(headers)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# Summary tables --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a summary table: a header and a cell per Summary."""

    header: str
    cell: Callable[[Summary], str]
    align: str = "---:"


def group_column(key: str, header: str | None = None) -> Column:
    return Column(header or key, lambda s: str(s.group.get(key, "")), "---:")


CONTENDER = Column("contender", lambda s: s.label, "---")
SETUP = Column("median setup (s)", lambda s: fmt(s.setup_s, 1))
STEPS_PER_S = Column("median env steps/s", lambda s: fmt(s.env_steps_per_s))


def to_target_columns(target_label: str, *, steps_header: str | None = None) -> list[Column]:
    """k of n reaching the target; median (min–max) of env steps and of training seconds to it."""
    return [
        Column(f"reached {target_label}", lambda s: f"{s.reached}/{s.n}", "---:"),
        Column(steps_header or f"env steps to {target_label}: median (min–max)", lambda s: fmt_stats(s.steps)),
        Column(f"wall-clock to {target_label} (s): median (min–max)", lambda s: fmt_stats(s.wall_s, 1)),
    ]


def standard_columns(target_label: str | None) -> list[Column]:
    head = [CONTENDER] + (to_target_columns(target_label) if target_label is not None else [])
    return head + [STEPS_PER_S, SETUP]


def summary_table(summaries: Sequence[Summary], columns: Sequence[Column]) -> str:
    return markdown_table(
        [c.header for c in columns],
        [[c.cell(s) for c in columns] for s in summaries],
        [c.align for c in columns],
    )


def ratio_table(summaries: Sequence[Summary], reference: str, *, group_keys: Sequence[str] = ()) -> str | None:
    """Each contender's medians over the reference's (same group): <1 is fewer steps or seconds."""
    ratios: list[Ratio] = ratios_vs(summaries, reference)
    if not ratios:
        return None
    ref_label = ratios[0].reference.label
    headers = [*group_keys, "contender", f"env steps to target ÷ {reference}", f"wall-clock to target ÷ {reference}",
               f"env steps/s ÷ {reference}"]
    rows = [[*(str(r.summary.group.get(k, "")) for k in group_keys), r.summary.label, fmt_ratio(r.steps),
             fmt_ratio(r.wall_s), fmt_ratio(r.env_steps_per_s)] for r in ratios]
    aligns = ["---:"] * len(group_keys) + ["---", "---:", "---:", "---:"]
    return (f"Ratios of medians against the reference, {ref_label} (n/a: a median run that never reached "
            "the target):\n\n" + markdown_table(headers, rows, aligns))


def per_run_lines(summaries: Sequence[Summary], value: Callable[[dict[str, Any]], str]) -> list[str]:
    """One line per summary: 's0: <value>, s1: ...'.

    'error' for a run that raised; 'not run (<reason>)' for one recorded as not
    reached without running (Plan.implied_failure).
    """
    def cell(run: dict[str, Any]) -> str:
        if run.get("error"):
            return "error"
        if implied_reason(run):
            return f"not run ({implied_reason(run)})"
        return value(run)

    lines = []
    for s in summaries:
        where = f" ({fmt_group(s.group)})" if s.group else ""
        cells = ", ".join(f"s{r['seed']}: {cell(r)}" for r in s.runs)
        lines.append(f"- {s.label}{where}: {cells}")
    return lines


# Header and notes --------------------------------------------------------------------------------------


def machine_line(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items() if v)
    load = ""
    if m.get("load_avg_start") is not None:
        end = m.get("load_avg_end")
        load = f" · load avg (1 min) {m['load_avg_start'][0]:.2f} at start" + (
            f", {end[0]:.2f} at end" if end else "")
    commit = ""
    if m.get("git_commit"):
        commit = f" · commit {m['git_commit'][:10]}" + (" (uncommitted changes)" if m.get("git_dirty") else "")
    gpu = f" · GPU {m['gpu']}" if m.get("gpu") else " · no GPU"
    return (f"{m.get('date', '?')} · {m.get('cpu_model') or 'unknown CPU'} · {m.get('cpus_usable', '?')} usable of "
            f"{m.get('cpu_count', '?')} CPUs{gpu}{load} · {m.get('platform', '?')} · "
            f"Python {m.get('python', '?')} · {versions} · torch threads {m.get('torch_num_threads', '?')}{commit}")


def notes(results: dict[str, Any]) -> list[str]:
    """Timings apart from the runs, skipped contenders, failed runs, an interrupted benchmark."""
    out = []
    timings = results.get("timings") or {}
    if timings.get("ray_init_s") is not None:
        out.append(f"- ray.init (once, before all runs): {timings['ray_init_s']:.1f} s")
    if timings.get("warmup_s") is not None:
        out.append(f"- untimed warm-up before the measured runs: {timings['warmup_s']:.1f} s")
    for name, why in (results.get("skipped") or {}).items():
        out.append(f"- {name} skipped: {why}")
    implied = sum(bool(implied_reason(r)) for r in results.get("runs", []))
    if implied:
        out.append(f"- {implied} run{'s' if implied > 1 else ''} not run and recorded as not reached, implied by "
                   "the same contender and seed at an easier setting (the per-run lines say which)")
    for run in results.get("runs", []):
        if run.get("error"):
            where = f" ({fmt_group(run['group'])})" if run.get("group") else ""
            out.append(f"- {run['contender']}{where} seed {run['seed']} failed: {run['error']}")
    earlier = results.get("resumed_from") or []
    if earlier:
        dates = ", ".join(str((e.get("machine") or {}).get("date", "?")) for e in earlier)
        out.append(f"- resumed (--resume): runs of {len(earlier)} earlier invocation{'s' if len(earlier) > 1 else ''} "
                   f"(started {dates}) kept, not run again; the machine line is this invocation's")
    if results.get("status") == "interrupted":
        out.append("- interrupted: the tables hold the runs that finished")
    if results.get("error"):
        out.append(f"- the benchmark failed outside a run: {results['error']}")
    if results.get("note"):
        out.append(f"- {results['note']}")
    return out


def closing_lines(results: dict[str, Any], images: Mapping[str, str]) -> list[str]:
    """The end of a results.md: "Notes:" and the notes (where there are any), then each plot (file name -> alt text)."""
    found = notes(results)
    return (["Notes:", "", *found, ""] if found else []) + [f"![{alt}]({name})" for name, alt in images.items()]


def finished_runs(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs that finished with at least one point, by seed."""
    return sorted((r for r in results["runs"] if not r.get("error") and r.get("points")), key=lambda r: r["seed"])


def points_by_iteration(runs: Sequence[Mapping[str, Any]]) -> dict[int, list[tuple[int, dict[str, Any]]]]:
    """iteration -> [(seed, point)] of the runs evaluated there, iterations in order (points carry "iteration")."""
    out: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for run in runs:
        for p in run["points"]:
            out.setdefault(int(p["iteration"]), []).append((run["seed"], p))
    return dict(sorted(out.items()))


# Plots ------------------------------------------------------------------------------------------------


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, ax, path: Path) -> None:
    """The end of a one-axes plot: grid, legend, layout, `path` at 120 dpi, the figure closed."""
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def colours(results: dict[str, Any]) -> dict[str, str]:
    """One colour per contender name, in declaration order."""
    names = list(dict.fromkeys([c["name"] for c in results.get("contenders", [])]
                               + [r["contender"] for r in results.get("runs", [])]))
    return {name: f"C{i % 10}" for i, name in enumerate(names)}


X_LABELS = {"env_steps": "env steps", "wall_s": "training wall clock (s, evaluation excluded)",
            "iteration": "training iteration"}


def plot_learning_curves(
    results: dict[str, Any],
    path: Path,
    *,
    ylabel: str,
    title: str,
    x_keys: Sequence[str] = ("env_steps", "wall_s"),
    loglog: bool = False,
    ylim: tuple[float, float] | None = None,
    runs: Sequence[dict[str, Any]] | None = None,
    y_key: str = "eval_return",
    run_label: Callable[[dict[str, Any]], str] | None = None,
) -> bool:
    """Evaluation return (or another number the points hold, `y_key`) against each x key, one line per run,
    one colour per contender (with `run_label`, one per run, labelled by it), the target dashed.

    With `loglog`, both axes are logarithmic (non-positive points dropped).
    Returns False (and writes nothing) when no run has an evaluated point.
    """
    runs = results["runs"] if runs is None else runs
    labels = {c["name"]: c.get("label") or c["name"] for c in results.get("contenders", [])}
    palette = colours(results)
    curves = [(r, [p for p in r.get("points", []) if p.get(y_key) is not None]) for r in runs]
    curves = [(r, pts) for r, pts in curves if pts]
    if not curves:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(x_keys), figsize=(6.5 * len(x_keys), 4.8), squeeze=False)
    target = results.get("target")
    for ax, key in zip(axes[0], x_keys):
        labelled: set[str] = set()
        for i, (run, pts) in enumerate(curves):
            name = run["contender"]
            xy = [(p[key], p[y_key]) for p in pts]
            if loglog:
                xy = [(x, y) for x, y in xy if x > 0 and y > 0]
            if not xy:
                continue
            colour, label = palette.get(name), labels.get(name, name)
            if run_label is not None:
                colour, label, name = f"C{i % 10}", run_label(run), f"run {i}"
            ax.plot(*zip(*xy), color=colour, alpha=0.75, linewidth=1.3, marker=".", markersize=3,
                    label=None if name in labelled else label)
            labelled.add(name)
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.set_xlim(left=0)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_xlabel(X_LABELS.get(key, key))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both" if loglog else "major")
    axes[0][0].legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_by_group(
    results: dict[str, Any],
    summaries: Sequence[Summary],
    path: Path,
    *,
    key: str,
    value: Callable[[Summary], Stats],
    xlabel: str,
    ylabel: str,
    title: str,
    loglog: bool = True,
    fits: Mapping[str, LogLogFit] | None = None,
) -> bool:
    """A to-target figure (median, min–max bar) against a group parameter, one line per contender.

    Points whose median is 'never' are left out (their runs show in the tables).
    `fits` (contender -> power law) are drawn dashed over the x range of the
    contender's points, their slope in the legend.
    """
    palette = colours(results)
    lines: dict[str, list[tuple[float, Stats]]] = {}
    labels: dict[str, str] = {}
    for s in summaries:
        if key in s.group:
            lines.setdefault(s.contender, []).append((float(s.group[key]), value(s)))
            labels[s.contender] = s.label
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    drawn = False
    for name, pts in lines.items():
        pts = sorted((x, st) for x, st in pts if st.median is not None)
        if not pts:
            continue
        xs = [x for x, _ in pts]
        meds = [st.median for _, st in pts]
        low = [st.median - st.min for _, st in pts]
        high = [(st.max - st.median) if st.max is not None else 0.0 for _, st in pts]
        fit = (fits or {}).get(name)
        label = labels[name] + (f" (slope {fit.slope:.2f}, {fit.points} points)" if fit else "")
        ax.errorbar(xs, meds, yerr=[low, high], color=palette.get(name), marker="o", capsize=3, label=label)
        if fit:
            ends = [min(xs), max(xs)]
            ax.plot(ends, [math.exp(fit.intercept) * x ** fit.slope for x in ends], color=palette.get(name),
                    linestyle="--", linewidth=1, alpha=0.8)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    if loglog:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
