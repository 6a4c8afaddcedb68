#!/usr/bin/env python
"""MAML benchmark (issue 10's acceptance for maml): the share of the gap to the oracle that one inner step closes.

For seeds 0..N-1, the README's command line, run as it is:

    rlfrontier train maml --env rlfrontier/PointNav-v0 --stop-iters ITERS --eval-interval EVAL_INTERVAL \\
        --num-envs-per-env-runner 10 --set meta_batch_size=10 --set pre_adaptation_episodes=10 \\
        --set post_adaptation_episodes=10 --seed SEED --experiment rlfrontier-maml --json

in a subprocess (tracked in MLflow like any run, experiment --runs-experiment;
with --lock FILE each one holds an exclusive flock on FILE while it runs).
At each of its evaluations (every EVAL_INTERVAL iterations and the last) the
run's meta-test (maml's registry evaluation hook, rlfrontier.meta_test) plays
the run's held-out goals (meta_batch_size of them from the stream of
held_out_seed 0: the same goals for every seed and evaluation, never trained
on), post_adaptation_episodes episodes each, before adaptation (k = 0) and
after one inner step (k = 1), beside the task-blind policy (stays at the
origin: the best a policy that cannot adapt does on PointNav) and the oracle
(walks to the goal). The benchmark reads them back from the run's MLflow
metric history (metrics/held_out_return_k0, ..._k1,
..._task_blind_return_mean, ..._oracle_return_mean; else Tune's result.json
beside the checkpoints, else the JSON line's final meta-test) and reports per
seed and evaluation: before, after, task-blind, oracle and the gap closed =
(after - before) / (oracle - before); per evaluation, k of n seeds with the gap
closed >= --min-gap (0.5, the acceptance); per run, its wall clock and env
steps. Runs on benchmarks/harness; see benchmarks/README.md.

    python benchmarks/maml.py --seeds 3 --lock /tmp/ray.lock
    python benchmarks/maml.py --seeds 1 --iters 2 --eval-interval 1 --no-mlflow --out /tmp/maml_smoke
    python benchmarks/maml.py --from-json benchmarks/results/maml/results.json
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import harness

from rlfrontier import meta_test

ALGO = "maml"
ENV = "rlfrontier/PointNav-v0"
NUM_ENVS_PER_ENV_RUNNER = 10
SETTINGS = {"meta_batch_size": 10, "pre_adaptation_episodes": 10, "post_adaptation_episodes": 10}
MIN_GAP = 0.5  # issue 10: one inner step closes at least half of the gap to the oracle
# The meta-test's figures as MLflow names them (the registry hook's numbers sit under the result's "metrics").
HOOK = "metrics/"
KEYS = {
    "before": HOOK + meta_test.RETURN_K.format(0),
    "after": HOOK + meta_test.RETURN_K.format(1),
    "task_blind": HOOK + meta_test.TASK_BLIND_RETURN_MEAN,
    "oracle": HOOK + meta_test.ORACLE_RETURN_MEAN,
}
FINAL_ONLY = "the JSON line (the final meta-test only)"
LABEL = "maml on PointNav-v0"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "maml"
PLOT_GAP = "gap_closed.png"


# Arithmetic --------------------------------------------------------------------------------------------------


def gap(*, before: float, after: float, oracle: float) -> float | None:
    """(after - before) / (oracle - before), rlfrontier.meta_test's; None where there is no gap (before >= oracle)."""
    value = meta_test.gap_closed(before=before, after=after, oracle=oracle)
    return None if math.isnan(value) else value


def meta_point(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A harness point from one evaluation row (env_steps, iteration, wall_s and KEYS' values): the four returns,
    the gap closed, and eval_return = the return after one inner step. None when the row lacks any of them."""
    values = {name: row.get(key) for name, key in KEYS.items()}
    if row.get("wall_s") is None or any(v is None for v in values.values()):
        return None
    values = {name: float(v) for name, v in values.items()}
    return {"env_steps": int(row["env_steps"]), "wall_s": float(row["wall_s"]), "iteration": int(row["iteration"]),
            "eval_return": values["after"], **values,
            "gap_closed": gap(before=values["before"], after=values["after"], oracle=values["oracle"])}


def closes(min_gap: float, point: Mapping[str, Any]) -> bool:
    """The plan's criterion: this evaluation's inner step closed at least `min_gap` of the gap."""
    return point.get("gap_closed") is not None and point["gap_closed"] >= min_gap


def final_row(out: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON line's final meta-test as an evaluation row (its metrics are the hook's, unprefixed)."""
    metrics = out.get("metrics") or {}
    return {"env_steps": out["env_steps"], "iteration": out["iterations"], "wall_s": out.get("train_wall_s"),
            **{key: metrics.get(key.removeprefix(HOOK)) for key in KEYS.values()}}


# The runs --------------------------------------------------------------------------------------------------


def run_argv(*, iters: int, eval_interval: int, seed: int | str) -> list[str]:
    """The README's command after `rlfrontier train maml` (harness.cli adds --experiment and --json)."""
    return ["--env", ENV, "--stop-iters", str(iters), "--eval-interval", str(eval_interval),
            "--num-envs-per-env-runner", str(NUM_ENVS_PER_ENV_RUNNER),
            *(arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")), "--seed", str(seed)]


def run_maml(args: argparse.Namespace, seed: int, budget: int, rec: harness.Recorder) -> None:
    """One seed: the command, then its meta-test at every evaluation."""
    out, wall = harness.cli.train(ALGO, run_argv(iters=budget, eval_interval=args.eval_interval, seed=seed), args)
    rows, source = harness.cli.evaluations(out, list(KEYS.values()), eval_interval=args.eval_interval,
                                           tracking_uri=args.tracking_uri)
    points = [p for p in map(meta_point, rows) if p is not None]
    if not points:
        points, source = [p for p in [meta_point(final_row(out))] if p is not None], FINAL_ONLY
    harness.cli.record(rec, out, wall, points)
    rec.extra.update({"source": source, "iterations": out.get("iterations")})
    for p in points:
        harness.log(f"{rec.name}: iteration {p['iteration']}: before {p['before']:.1f}, after {p['after']:.1f}, "
                    f"task-blind {p['task_blind']:.1f}, oracle {p['oracle']:.2f}, gap closed {harness.fmt(p['gap_closed'], 2)}")
    if not points:
        raise RuntimeError(f"no meta-test in the run's results (MLflow run {out.get('mlflow_run_id')})")


# Flags and plan --------------------------------------------------------------------------------------------


def fraction(text: str) -> float:
    value = harness.positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be <= 1 (a share of the gap), got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    harness.cli.add_run_arguments(p, iters=100, eval_interval=20)
    p.add_argument("--min-gap", type=fraction, default=MIN_GAP,
                   help=f"share of the gap one inner step must close, in (0, 1] (default {MIN_GAP})")
    harness.cli.add_arguments(p, experiment="rlfrontier-maml")


def plan(args: argparse.Namespace) -> harness.Plan:
    return harness.Plan(
        contenders=[harness.Contender(name=ALGO, run=partial(run_maml, args), budget=args.iters, label=LABEL)],
        seeds=range(args.seeds),
        settings={
            "algo": ALGO,
            "env": ENV,
            "iters": args.iters,
            "eval_interval": args.eval_interval,
            "num_envs_per_env_runner": NUM_ENVS_PER_ENV_RUNNER,
            "config": SETTINGS,
            "min_gap": args.min_gap,
            "runs_experiment": args.runs_experiment,
            "command": shlex.join(["rlfrontier", "train", ALGO, *run_argv(
                iters=args.iters, eval_interval=args.eval_interval, seed="SEED"),
                "--experiment", args.runs_experiment, "--json"]),
        },
        target=args.min_gap,
        criterion=partial(closes, args.min_gap),
    )


# Tables and plots ------------------------------------------------------------------------------------------


def gap_cell(value: float | None) -> str:
    return "— (no gap)" if value is None else f"{value:.2f}"


def k_of_n(points: Sequence[Mapping[str, Any]], min_gap: float) -> str:
    return f"{sum(closes(min_gap, p) for p in points)}/{len(points)}"


def mean_cell(points: Sequence[Mapping[str, Any]], key: str, digits: int = 1) -> str:
    return harness.fmt(statistics.fmean(p[key] for p in points), digits)


def evaluation_table(runs: Sequence[Mapping[str, Any]], min_gap: float) -> str:
    rows = []
    for iteration, pairs in harness.points_by_iteration(runs).items():
        points = [p for _, p in pairs]
        gaps = [p["gap_closed"] for p in points if p["gap_closed"] is not None]
        spread = "—" if not gaps else f"{statistics.median(gaps):.2f}" + (
            f" ({min(gaps):.2f}–{max(gaps):.2f})" if len(gaps) > 1 else "")
        rows.append([str(iteration), harness.fmt(statistics.median(p["env_steps"] for p in points)),
                     k_of_n(points, min_gap), spread, mean_cell(points, "before"), mean_cell(points, "after"),
                     mean_cell(points, "task_blind"), mean_cell(points, "oracle", 2)])
    headers = ["iteration", "env steps", f"seeds with gap closed >= {min_gap:g}", "gap closed: median (min–max)",
               "before adaptation: mean", "after one inner step: mean", "task-blind: mean", "oracle: mean"]
    return harness.markdown_table(headers, rows, ["---:"] * len(headers))


def per_seed_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = [[str(run["seed"]), str(p["iteration"]), harness.fmt(p["env_steps"]), f"{p['before']:.1f}",
             f"{p['after']:.1f}", f"{p['task_blind']:.1f}", f"{p['oracle']:.2f}", gap_cell(p["gap_closed"])]
            for run in runs for p in run["points"]]
    headers = ["seed", "iteration", "env steps", "before adaptation", "after one inner step", "task-blind", "oracle",
               "gap closed"]
    return harness.markdown_table(headers, rows, ["---:"] * len(headers))


def runs_table(runs: Sequence[Mapping[str, Any]], min_gap: float) -> str:
    return harness.cli.runs_table(runs, passed=partial(closes, min_gap),
                                  passed_header=f"first meta-test with gap closed >= {min_gap:g}: iteration")


def verdict(runs: Sequence[Mapping[str, Any]], min_gap: float) -> str:
    last = [run["points"][-1] for run in runs]
    iterations = sorted({p["iteration"] for p in last})
    where = ", ".join(str(i) for i in iterations)
    return (f"At each run's last meta-test (iteration {where}): {k_of_n(last, min_gap)} seeds closed at least "
            f"{min_gap:g} of the gap with one inner step; at every meta-test: "
            f"{sum(all(closes(min_gap, p) for p in run['points']) for run in runs)}/{len(runs)} seeds.")


def render(results: dict[str, Any]) -> str:
    settings, min_gap = results["settings"], float(results["target"])
    runs = harness.finished_runs(results)
    config = settings["config"]
    lines = [
        "# MAML on PointNav-v0: the share of the gap to the oracle that one inner step closes",
        "",
        harness.machine_line(results),
        "",
        f"Seeds {', '.join(str(s) for s in results.get('seeds', []))}, each the command line",
        "",
        f"    {settings['command']}",
        "",
        f"({settings['iters']} iterations of {config['meta_batch_size']} tasks; a meta-test every "
        f"{settings['eval_interval']} iterations and at the last). The meta-test plays the run's "
        f"{config['meta_batch_size']} held-out goals (the same for every seed and meta-test, never trained on), "
        f"{config['post_adaptation_episodes']} episodes each, before adaptation and after one inner step; task-blind "
        "stays at the origin (the best a policy that cannot adapt does), the oracle walks to the goal. Gap closed = "
        "(after - before) / (oracle - before).",
        "",
    ]
    if runs:
        lines += [
            verdict(runs, min_gap),
            "",
            "## At each meta-test",
            "",
            evaluation_table(runs, min_gap),
            "",
            "## Per seed and meta-test",
            "",
            per_seed_table(runs),
            "",
            "## Runs",
            "",
            "Training wall clock: the trial's own (training and its meta-tests); command: the whole subprocess (Ray's "
            "start, building, Tune, checkpoints, MLflow); set-up: the command's wall clock outside Tune's fit; env "
            "steps/s: env steps over the fit's wall clock (training env steps only; the meta-tests' are not counted).",
            "",
            runs_table(runs, min_gap),
            "",
        ]
    lines += harness.closing_lines(results, {PLOT_GAP: "gap closed by one inner step, by iteration"})
    return "\n".join(lines) + "\n"


def plot_gap(results: dict[str, Any], path: Path) -> bool:
    return harness.plot_learning_curves(
        results, path, runs=harness.finished_runs(results), x_keys=("iteration",), y_key="gap_closed",
        run_label=lambda run: f"seed {run['seed']}", ylabel="share of the gap to the oracle closed",
        title=f"One inner step on held-out goals (dashed: {float(results['target']):g})")


BENCHMARK = harness.Benchmark(name="maml", doc=__doc__, default_out=DEFAULT_OUT, add_arguments=add_arguments,
                              plan=plan, render=render, plots={PLOT_GAP: plot_gap})


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
