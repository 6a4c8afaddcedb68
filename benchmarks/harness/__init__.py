"""The benchmark harness every script in benchmarks/ runs on.

A script declares its contenders, budgets, success criterion and tables
(`Benchmark`, `Plan`, `Contender`); the harness records the runs
(`Recorder`), describes the machine, writes results.json / results.md /
plots, re-renders with `--from-json`, and logs each invocation to MLflow.
See benchmarks/README.md.
"""

from . import cli
from .record import Criterion, Recorder, TrainingClock, env_steps_per_s, log, steps_to_target, wall_s_to_target
from .report import (
    CONTENDER,
    SETUP,
    STEPS_PER_S,
    Column,
    closing_lines,
    fmt,
    finished_runs,
    fmt_stats,
    group_column,
    machine_line,
    markdown_table,
    notes,
    per_run_lines,
    plot_by_group,
    plot_learning_curves,
    points_by_iteration,
    pyplot,
    ratio_table,
    save_plot,
    standard_columns,
    summary_table,
    to_target_columns,
)
from .runner import (
    IMPLIED,
    Benchmark,
    Contender,
    ImpliedFailure,
    Plan,
    implied_by_smaller,
    load_results,
    main,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    write_report,
)
from .stats import (
    ExpFit,
    LogLogFit,
    Stats,
    Summary,
    censored_stats,
    exp_fit,
    implied_reason,
    loglog_fit,
    ratios_vs,
    summarize,
)

__all__ = [
    "CONTENDER", "IMPLIED", "SETUP", "STEPS_PER_S", "Benchmark", "Column", "Contender", "Criterion", "ExpFit",
    "ImpliedFailure",
    "LogLogFit", "Plan", "Recorder", "Stats", "Summary", "TrainingClock", "censored_stats", "cli", "closing_lines", "env_steps_per_s", "finished_runs", "fmt",
    "exp_fit", "fmt_stats", "group_column", "implied_by_smaller", "implied_reason", "load_results", "log", "loglog_fit",
    "machine_line", "main", "markdown_table", "non_negative_float", "non_negative_int", "notes", "per_run_lines", "plot_by_group", "plot_learning_curves", "points_by_iteration", "pyplot",
    "positive_float", "positive_int", "ratio_table", "ratios_vs", "save_plot", "standard_columns", "steps_to_target", "summarize", "summary_table",
    "to_target_columns", "wall_s_to_target", "write_report",
]
