#!/usr/bin/env python
"""PEARL benchmark (issue 10's acceptance for pearl, as this project restated it): held-out goals of
SparsePointNav reached after k context episodes, against ideal posterior sampling.

For seeds 0..N-1, the README's PEARL command line, run as it is:

    rlfrontier train pearl --env rlfrontier/SparsePointNav-v0 --seed SEED --stop-iters ITERS \\
        --eval-interval EVAL_INTERVAL --set critic_reward=dense_reward context_batch_size=512 meta_batch_size=8 \\
        num_train_steps_per_iteration=1000 context_episodes=CONTEXT_EPISODES lr=0.001 held_out_tasks=HELD_OUT \\
        --experiment rlfrontier-pearl --json

in a subprocess (tracked in MLflow like any run, experiment --runs-experiment;
with --lock FILE each one holds an exclusive flock on FILE while it runs).
At each of its evaluations (every EVAL_INTERVAL iterations and the last) the
run's meta-test (pearl's registry evaluation hook, PEARL.held_out_metrics)
plays HELD_OUT held-out goals (from the stream of held_out_seed 0: the same
goals for every seed and evaluation, never trained on), one trial each:
episode 1 with z from the prior, episode k + 1 with z from the posterior of
episodes 1..k, the policy's mean actions, k = 0..CONTEXT_EPISODES; then one
more episode after a context of the oracle's episode of the goal (the
"revealed" context: task inference without exploration). The benchmark reads
back from the run's MLflow metric history (else Tune's result.json beside the
checkpoints, else the JSON line's final meta-test), per evaluation: the share
of goals reached in episode k + 1 (metrics/held_out_goal_reached_k{k}), the
share ideal posterior sampling reaches there
(metrics/held_out_posterior_sampling_reached_k{k},
SparsePointNavEnv.posterior_sampling_reach: a perfect encoder and policy that
explore as PEARL does), the revealed share and return, the returns per k, the
oracle's and the task-blind policy's. The bar (README, "That reference is why
issue 10's bar for PEARL"): at k = 2 at least MIN_SHARE_OF_IDEAL (0.7) of the
ideal's share at k = 2, and the k = 2 share above the k = 0 share (rising
with k). It reports per seed and evaluation the shares, the ideal's, the
revealed share and whether the bar held; per evaluation, k of n seeds at the
bar; per run the first evaluation at the bar (the harness's "reached"), its
wall clock and env steps. Runs on benchmarks/harness; see benchmarks/README.md.

A run's meta-tests choose its best checkpoint, so the best meta-test of a run
overstates what that checkpoint does on new goals. After each run its best
checkpoint and its last are meta-tested again on --test-goals (500) other
goals (held_out_seed --test-seed, 1), by `rlfrontier evaluate CHECKPOINT
--metrics --set held_out_tasks=... held_out_seed=... context_episodes=...`,
and the bar is judged there too. --resume adds these tests to kept runs that
lack them (their checkpoints must still be where the runs wrote them).

    python benchmarks/pearl.py --seeds 3 --lock /tmp/ray.lock
    python benchmarks/pearl.py --seeds 1 --iters 2 --eval-interval 1 --held-out 4 --smoke --no-mlflow \\
        --tracking-uri sqlite:////tmp/pearl_smoke/runs.db --out /tmp/pearl_smoke
    python benchmarks/pearl.py --from-json benchmarks/results/pearl/results.json
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

from rlfrontier import meta_test, trainable

ALGO = "pearl"
ENV = "rlfrontier/SparsePointNav-v0"
# The README's --set, in its order; context_episodes and held_out_tasks come from the flags (`config`).
SETTINGS = {"critic_reward": "dense_reward", "context_batch_size": 512, "meta_batch_size": 8,
            "num_train_steps_per_iteration": 1000}
LR = 0.001
CONTEXT_EPISODES = 4
HELD_OUT = 100
# After each run: its best checkpoint (by the run's own metric on its HELD_OUT goals) and its last, meta-tested on
# TEST_GOALS other goals (the stream of held_out_seed TEST_SEED; the runs' meta-tests use held_out_seed 0).
TEST_GOALS = 500
TEST_SEED = 1
CHECKPOINTS = {"best": "best_checkpoint", "last": "checkpoint"}  # test name -> the run's JSON key of its path
# --smoke: the whole path (subprocess, read-back, tables, plots) in a few minutes; measures nothing.
SMOKE = {"num_train_steps_per_iteration": 10, "num_train_tasks": 10, "num_tasks_sample": 2, "initial_episodes": 1,
         "prior_episodes": 1, "posterior_episodes": 1}
K_BAR = 2  # the bar is read after this many context episodes
MIN_SHARE_OF_IDEAL = 0.7  # ... at least this share of what ideal posterior sampling reaches there
TOLERANCE = 1e-12  # shares are counts over goals: 0.7 x 0.38 may miss 0.266 by an ulp
# The meta-test's figures as MLflow names them (the registry hook's numbers sit under the result's "metrics";
# the names are algorithms/pearl/pearl.py's, which tests/unit/test_pearl_bench.py checks).
HOOK = "metrics/"
GOAL_REACHED_K = meta_test.HELD_OUT + "goal_reached_k{}"
POSTERIOR_SAMPLING_REACHED_K = meta_test.HELD_OUT + "posterior_sampling_reached_k{}"
REVEALED_GOAL_REACHED = meta_test.HELD_OUT + "revealed_goal_reached"
REVEALED_RETURN_MEAN = meta_test.HELD_OUT + "revealed_return_mean"
FINAL_ONLY = "the JSON line (the final meta-test only)"
LABEL = "pearl on SparsePointNav-v0"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pearl"
PLOT_K2 = "goals_reached_k2.png"
PLOT_BY_K = "goals_reached_by_k.png"


def keys(context_episodes: int) -> dict[str, str]:
    """Point name -> MLflow key of every figure read back, k = 0..context_episodes."""
    ks = range(context_episodes + 1)
    return {**{f"reached_k{k}": HOOK + GOAL_REACHED_K.format(k) for k in ks},
            **{f"ideal_k{k}": HOOK + POSTERIOR_SAMPLING_REACHED_K.format(k) for k in ks},
            **{f"return_k{k}": HOOK + meta_test.RETURN_K.format(k) for k in ks},
            "revealed_reached": HOOK + REVEALED_GOAL_REACHED,
            "revealed_return": HOOK + REVEALED_RETURN_MEAN,
            "task_blind": HOOK + meta_test.TASK_BLIND_RETURN_MEAN,
            "oracle": HOOK + meta_test.ORACLE_RETURN_MEAN}


# Arithmetic --------------------------------------------------------------------------------------------------


def bar(reached: Sequence[float | None], ideal: Sequence[float | None],
        min_share: float = MIN_SHARE_OF_IDEAL) -> bool:
    """The bar: goals reached at k = K_BAR >= min_share x the ideal's share there, and above the k = 0 share.
    False when any of the three is missing (too few k, or None)."""
    if len(reached) <= K_BAR or len(ideal) <= K_BAR:
        return False
    k0, k2, ideal_k2 = reached[0], reached[K_BAR], ideal[K_BAR]
    if k0 is None or k2 is None or ideal_k2 is None:
        return False
    return k2 >= min_share * ideal_k2 - TOLERANCE and k2 > k0


def short_of(reached: Sequence[float | None], ideal: Sequence[float | None],
             min_share: float = MIN_SHARE_OF_IDEAL) -> str:
    """'yes', or why the bar did not hold: below min_share x ideal, not rising, or both."""
    if bar(reached, ideal, min_share):
        return "yes"
    if len(reached) <= K_BAR or len(ideal) <= K_BAR or None in (reached[0], reached[K_BAR], ideal[K_BAR]):
        return "no (missing)"
    why = [f"below {min_share:g} x ideal" if reached[K_BAR] < min_share * ideal[K_BAR] - TOLERANCE else None,
           f"k = {K_BAR} not above k = 0" if not reached[K_BAR] > reached[0] else None]
    return "no (" + ", ".join(w for w in why if w) + ")"


def holds(min_share: float, point: Mapping[str, Any]) -> bool:
    """The plan's criterion: the bar held at this evaluation."""
    return bar(point.get("reached") or [], point.get("ideal") or [], min_share)


def number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def meta_point(row: Mapping[str, Any], context_episodes: int) -> dict[str, Any] | None:
    """A harness point from one evaluation row (env_steps, iteration, wall_s and `keys`' values): the shares
    reached and the ideal's at k = 0..context_episodes (lists), the returns per k, revealed, task-blind and
    oracle (None where the row lacks them), eval_return = the k = K_BAR share. None when the row lacks its
    wall clock or any share or ideal share."""
    names = keys(context_episodes)
    value = {name: number(row.get(key)) for name, key in names.items()}
    ks = range(context_episodes + 1)
    reached, ideal = [value[f"reached_k{k}"] for k in ks], [value[f"ideal_k{k}"] for k in ks]
    if row.get("wall_s") is None or None in reached or None in ideal or context_episodes < K_BAR:
        return None
    return {"env_steps": int(row["env_steps"]), "wall_s": float(row["wall_s"]), "iteration": int(row["iteration"]),
            "eval_return": reached[K_BAR], "reached": reached, "ideal": ideal,
            "share_of_ideal": reached[K_BAR] / ideal[K_BAR] if ideal[K_BAR] else None,
            "returns": [value[f"return_k{k}"] for k in ks],
            **{name: value[name] for name in ("revealed_reached", "revealed_return", "task_blind", "oracle")}}


def final_row(out: Mapping[str, Any], context_episodes: int) -> dict[str, Any]:
    """The JSON line's final meta-test as an evaluation row (its metrics are the hook's, unprefixed)."""
    metrics = out.get("metrics") or {}
    return {"env_steps": out["env_steps"], "iteration": out["iterations"], "wall_s": out.get("train_wall_s"),
            **{key: metrics.get(key.removeprefix(HOOK)) for key in keys(context_episodes).values()}}


# The runs --------------------------------------------------------------------------------------------------


def config(*, context_episodes: int, held_out: int, smoke: bool = False) -> dict[str, Any]:
    """The run's --set, in the README's order (SMOKE's values over it with --smoke)."""
    out = {**SETTINGS, "context_episodes": context_episodes, "lr": LR, "held_out_tasks": held_out}
    return {**out, **SMOKE} if smoke else out


def run_argv(*, iters: int, eval_interval: int, seed: int | str, settings: Mapping[str, Any]) -> list[str]:
    """The README's command after `rlfrontier train pearl` (harness.cli adds --experiment and --json)."""
    return ["--env", ENV, "--seed", str(seed), "--stop-iters", str(iters), "--eval-interval", str(eval_interval),
            "--set", *(f"{key}={value}" for key, value in settings.items())]


def args_config(args: argparse.Namespace) -> dict[str, Any]:
    return config(context_episodes=args.context_episodes, held_out=args.held_out, smoke=args.smoke)


def run_pearl(args: argparse.Namespace, seed: int, budget: int, rec: harness.Recorder) -> None:
    """One seed: the command, then its meta-test at every evaluation."""
    k_max = args.context_episodes
    argv = run_argv(iters=budget, eval_interval=args.eval_interval, seed=seed, settings=args_config(args))
    out, wall = harness.cli.train(ALGO, argv, args)
    rows, source = harness.cli.evaluations(out, list(keys(k_max).values()), eval_interval=args.eval_interval,
                                           tracking_uri=args.tracking_uri)
    points = [p for p in (meta_point(row, k_max) for row in rows) if p is not None]
    if not points:
        points, source = [p for p in [meta_point(final_row(out, k_max), k_max)] if p is not None], FINAL_ONLY
    harness.cli.record(rec, out, wall, points)
    rec.extra.update({"source": source, "iterations": out.get("iterations")})
    for p in points:
        harness.log(f"{rec.name}: iteration {p['iteration']}: goals reached k = 0..{k_max} {shares(p['reached'])}, "
                    f"ideal {shares(p['ideal'])}, revealed {harness.fmt(p['revealed_reached'], 2)}, "
                    f"bar {short_of(p['reached'], p['ideal'])}")
    if not points:
        raise RuntimeError(f"no meta-test in the run's results (MLflow run {out.get('mlflow_run_id')})")
    if args.test_goals:
        rec.extra["tests"] = checkpoint_tests(rec.extra, points, args)


def test_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The --set of `evaluate --metrics` for the checkpoints' tests."""
    return {"held_out_tasks": args.test_goals, "held_out_seed": args.test_seed,
            "context_episodes": args.context_episodes}


def checkpoint_tests(extra: Mapping[str, Any], points: Sequence[Mapping[str, Any]],
                     args: argparse.Namespace) -> dict[str, Any]:
    """The run's best and last checkpoints (paths in `extra`, as harness.cli.record keeps them) meta-tested
    on --test-goals other goals: {"goals", "seed", "best": point, "last": point}, each point as meta_point's
    plus the checkpoint's path and its iteration (the meta-test point of the same env steps), or
    {"error": why} when the checkpoint is gone or its test failed."""
    out: dict[str, Any] = {"goals": args.test_goals, "seed": args.test_seed}
    by_steps = {p["env_steps"]: p["iteration"] for p in points}
    for name, key in CHECKPOINTS.items():
        path = extra.get(key)
        if not path or not Path(path).is_dir():
            out[name] = {"error": f"checkpoint {path!r} is gone"}
            continue
        try:
            line, wall = harness.cli.evaluate_metrics(path, test_overrides(args), args)
        except RuntimeError as exc:
            out[name] = {"error": str(exc)}
            continue
        meta = trainable.read_meta(path)
        row = {"env_steps": meta["env_steps"], "iteration": by_steps.get(meta["env_steps"]), "wall_s": wall,
               **{key: line["metrics"].get(key.removeprefix(HOOK)) for key in keys(args.context_episodes).values()}}
        point = meta_point({**row, "iteration": row["iteration"] or 0}, args.context_episodes)
        if point is None:
            out[name] = {"error": f"its meta-test lacks shares: {sorted(line['metrics'])}"}
            continue
        out[name] = {**point, "iteration": row["iteration"], "checkpoint": str(path), "test_wall_s": wall}
        point_line = f"{name} checkpoint (iteration {row['iteration']})"
        harness.log(f"{point_line} on {args.test_goals} other goals: reached k = 0..{args.context_episodes} "
                    f"{shares(point['reached'])}, revealed {harness.fmt(point['revealed_reached'], 2)}, "
                    f"bar {short_of(point['reached'], point['ideal'])} ({wall:.0f} s)")
    return out


def tested(args: argparse.Namespace, run: dict[str, Any]) -> str | None:
    """plan.resumed: a kept run without this invocation's checkpoint tests gets them now (its checkpoints
    are still where it wrote them); never sends the run back."""
    extra = run.setdefault("extra", {})
    have = extra.get("tests") or {}
    if args.test_goals and (have.get("goals"), have.get("seed")) != (args.test_goals, args.test_seed):
        harness.log(f"pearl seed {run['seed']}: testing the kept run's checkpoints")
        extra["tests"] = checkpoint_tests(extra, run.get("points") or [], args)
    return None


# Flags and plan --------------------------------------------------------------------------------------------


def context_episodes(text: str) -> int:
    value = harness.positive_int(text)
    if value < K_BAR:
        raise argparse.ArgumentTypeError(f"must be >= {K_BAR} (the bar is read at k = {K_BAR}), got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    harness.cli.add_run_arguments(p, iters=100, eval_interval=5)
    p.add_argument("--context-episodes", type=context_episodes, default=CONTEXT_EPISODES,
                   help=f"the most context episodes the meta-test measures, k = 0..N, N >= {K_BAR} "
                        f"(default {CONTEXT_EPISODES})")
    p.add_argument("--held-out", type=harness.positive_int, default=HELD_OUT,
                   help=f"held-out goals a meta-test plays (held_out_tasks; default {HELD_OUT})")
    p.add_argument("--test-goals", type=harness.non_negative_int, default=TEST_GOALS,
                   help=f"after each run, its best and last checkpoints meta-tested on this many other goals "
                        f"(held_out_seed --test-seed; 0: none; default {TEST_GOALS})")
    p.add_argument("--test-seed", type=harness.positive_int, default=TEST_SEED,
                   help=f"held_out_seed of those goals, not the runs' 0 (default {TEST_SEED})")
    p.add_argument("--smoke", action="store_true",
                   help="tiny runs (" + " ".join(f"{k}={v}" for k, v in SMOKE.items()) + ") to check the path "
                        "end to end; measures nothing")
    harness.cli.add_arguments(p, experiment="rlfrontier-pearl")


def plan(args: argparse.Namespace) -> harness.Plan:
    settings = args_config(args)
    return harness.Plan(
        contenders=[harness.Contender(name=ALGO, run=partial(run_pearl, args), budget=args.iters, label=LABEL)],
        seeds=range(args.seeds),
        settings={
            "algo": ALGO,
            "env": ENV,
            "iters": args.iters,
            "eval_interval": args.eval_interval,
            "context_episodes": args.context_episodes,
            "held_out_tasks": args.held_out,
            "smoke": args.smoke,
            "config": settings,
            "k": K_BAR,
            "min_share_of_ideal": MIN_SHARE_OF_IDEAL,
            "runs_experiment": args.runs_experiment,
            "test_goals": args.test_goals,
            "test_seed": args.test_seed,
            "command": shlex.join(["rlfrontier", "train", ALGO, *run_argv(
                iters=args.iters, eval_interval=args.eval_interval, seed="SEED", settings=settings),
                "--experiment", args.runs_experiment, "--json"]),
        },
        target=MIN_SHARE_OF_IDEAL,
        criterion=partial(holds, MIN_SHARE_OF_IDEAL),
        # The tests come after a run and can be added to a kept one (tested), so a resumed benchmark may ask
        # for others than the kept runs had.
        resume_ignores=frozenset({"test_goals", "test_seed"}),
        resumed=partial(tested, args),
    )


# Tables and plots ------------------------------------------------------------------------------------------


def shares(values: Sequence[float | None]) -> str:
    return ", ".join(harness.fmt(v, 2) for v in values)


def k_of_n(points: Sequence[Mapping[str, Any]], min_share: float) -> str:
    return f"{sum(holds(min_share, p) for p in points)}/{len(points)}"


def mean_of(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def ideal_k2(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """The ideal's k = K_BAR share (a property of the env: the same at every meta-test)."""
    return mean_of([p["ideal"][K_BAR] for run in runs for p in run["points"]])


def evaluation_table(runs: Sequence[Mapping[str, Any]], min_share: float) -> str:
    rows = []
    for iteration, pairs in harness.points_by_iteration(runs).items():
        points = [p for _, p in pairs]
        k2 = [p["reached"][K_BAR] for p in points]
        spread = f"{statistics.median(k2):.2f}" + (f" ({min(k2):.2f}–{max(k2):.2f})" if len(k2) > 1 else "")
        width = min(len(p["reached"]) for p in points)
        ideal = mean_of([p["ideal"][K_BAR] for p in points])
        rows.append([str(iteration), harness.fmt(statistics.median(p["env_steps"] for p in points)),
                     k_of_n(points, min_share), spread, harness.fmt(ideal, 3),
                     harness.fmt(None if ideal is None else min_share * ideal, 3),
                     shares([mean_of([p["reached"][k] for p in points]) for k in range(width)]),
                     harness.fmt(mean_of([p["revealed_reached"] for p in points]), 2)])
    headers = ["iteration", "env steps", "seeds at the bar", f"goals reached at k = {K_BAR}: median (min–max)",
               f"ideal at k = {K_BAR}", f"bar: {min_share:g} x ideal", "goals reached, k = 0, 1, ...: mean",
               "revealed context: mean"]
    return harness.markdown_table(headers, rows, ["---:"] * 6 + ["---", "---:"])


def per_seed_table(runs: Sequence[Mapping[str, Any]], min_share: float) -> str:
    rows = [[str(run["seed"]), str(p["iteration"]), harness.fmt(p["env_steps"]), shares(p["reached"]),
             harness.fmt(p["ideal"][K_BAR], 3), harness.fmt(p.get("share_of_ideal"), 2),
             harness.fmt(p["revealed_reached"], 2), short_of(p["reached"], p["ideal"], min_share)]
            for run in runs for p in run["points"]]
    headers = ["seed", "iteration", "env steps", "goals reached, k = 0, 1, ...", f"ideal at k = {K_BAR}",
               f"k = {K_BAR} / ideal", "revealed context", "bar held"]
    return harness.markdown_table(headers, rows, ["---:"] * 3 + ["---"] + ["---:"] * 3 + ["---"])


def returns_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = [[str(run["seed"]), str(p["iteration"]), ", ".join(harness.fmt(v, 2) for v in p["returns"]),
             harness.fmt(p["revealed_return"], 2), harness.fmt(p["task_blind"], 2), harness.fmt(p["oracle"], 2)]
            for run in runs for p in run["points"]]
    headers = ["seed", "iteration", "return, k = 0, 1, ...", "revealed context", "task-blind", "oracle"]
    return harness.markdown_table(headers, rows, ["---:", "---:", "---", "---:", "---:", "---:"])


def runs_table(runs: Sequence[Mapping[str, Any]], min_share: float) -> str:
    return harness.cli.runs_table(runs, passed=partial(holds, min_share),
                                  passed_header="first meta-test at the bar: iteration")


def verdict(runs: Sequence[Mapping[str, Any]], min_share: float) -> str:
    last = [run["points"][-1] for run in runs]
    where = ", ".join(str(i) for i in sorted({p["iteration"] for p in last}))
    ideal = ideal_k2(runs)
    threshold = "" if ideal is None else f" (ideal {ideal:.3f}, so at least {min_share * ideal:.3f})"
    return (f"The bar: goals reached at k = {K_BAR} >= {min_share:g} x ideal posterior sampling's share there"
            f"{threshold}, and above the k = 0 share. At each run's last meta-test (iteration {where}): "
            f"{k_of_n(last, min_share)} seeds at the bar; at any meta-test: "
            f"{sum(any(holds(min_share, p) for p in run['points']) for run in runs)}/{len(runs)}; at every "
            f"meta-test: {sum(all(holds(min_share, p) for p in run['points']) for run in runs)}/{len(runs)}.")


def checkpoint_test(run: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The run's test of its `name` checkpoint (a point), None when it has none or it failed."""
    test = ((run.get("extra") or {}).get("tests") or {}).get(name)
    return test if isinstance(test, Mapping) and "reached" in test else None


def tests_verdict(runs: Sequence[Mapping[str, Any]], min_share: float) -> str | None:
    """k of n seeds at the bar on the other goals, best and last checkpoints; None when no run was tested."""
    tests = [(run.get("extra") or {}).get("tests") for run in runs]
    done = [t for t in tests if t]
    if not done:
        return None
    counts = "; ".join(f"{name} checkpoints {sum(holds(min_share, p) for p in points)}/{len(runs)}"
                       for name in CHECKPOINTS
                       for points in [[p for p in (checkpoint_test(run, name) for run in runs) if p is not None]])
    return (f"On {done[0]['goals']} other held-out goals (held_out_seed {done[0]['seed']}, none of them the "
            "runs' own), each run's best checkpoint (kept by the run's own metric, the meta-test's return after the "
            f"most context, on the goals above) and its last, seeds at the bar: {counts}.")


def tests_table(runs: Sequence[Mapping[str, Any]], min_share: float) -> str:
    rows = []
    for run in runs:
        tests = (run.get("extra") or {}).get("tests") or {}
        for name in CHECKPOINTS:
            p = checkpoint_test(run, name)
            if p is None:
                why = (tests.get(name) or {}).get("error", "not tested")
                rows.append([str(run["seed"]), name, "—", "—", "—", "—", "—", f"no test: {why}"])
                continue
            rows.append([str(run["seed"]), name, harness.fmt(p.get("iteration")), shares(p["reached"]),
                         harness.fmt(p["ideal"][K_BAR], 3), harness.fmt(p.get("share_of_ideal"), 2),
                         harness.fmt(p["revealed_reached"], 2), short_of(p["reached"], p["ideal"], min_share)])
    headers = ["seed", "checkpoint", "iteration", "goals reached, k = 0, 1, ...", f"ideal at k = {K_BAR}",
               f"k = {K_BAR} / ideal", "revealed context", "bar held"]
    return harness.markdown_table(headers, rows, ["---:", "---", "---:", "---", "---:", "---:", "---:", "---"])


def render(results: dict[str, Any]) -> str:
    settings, min_share = results["settings"], float(results["target"])
    runs = harness.finished_runs(results)
    config_ = settings["config"]
    lines = [
        "# PEARL on SparsePointNav-v0: held-out goals reached after k context episodes, against ideal posterior "
        "sampling",
        "",
        harness.machine_line(results),
        "",
        f"Seeds {', '.join(str(s) for s in results.get('seeds', []))}, each the command line",
        "",
        f"    {settings['command']}",
        "",
        f"({settings['iters']} iterations of {config_['num_train_steps_per_iteration']} gradient steps; a meta-test "
        f"every {settings['eval_interval']} iteration{'s' if settings['eval_interval'] != 1 else ''} and at the last.) The meta-test plays "
        f"{config_['held_out_tasks']} held-out goals (the same for every seed and meta-test, never trained on), one "
        f"trial each: episode 1 with z from the prior, episode k + 1 with z from the posterior of episodes 1..k "
        f"(k = 0..{config_['context_episodes']}), the policy's mean actions; a goal counts as reached in episode "
        "k + 1 when it came within the goal radius (0.2). Ideal: what posterior sampling with a perfect encoder "
        "and policy reaches there (SparsePointNavEnv.posterior_sampling_reach). Revealed context: the episode "
        "after a context of the oracle's episode of the goal (task inference without exploration).",
        "",
    ]
    if settings.get("smoke"):
        lines += ["**Smoke (--smoke): tiny runs to check the path end to end; these numbers measure nothing.**", ""]
    if runs:
        summaries = harness.summarize(results)
        tested = tests_verdict(runs, min_share)
        lines += [
            verdict(runs, min_share),
            "",
            *([tested, "", "## The best and last checkpoints on other held-out goals", "",
               f"`rlfrontier evaluate CHECKPOINT --metrics --set held_out_tasks={settings.get('test_goals')} "
               f"held_out_seed={settings.get('test_seed')} context_episodes={config_['context_episodes']}` after "
               "each run (the README's evaluate --metrics): the same meta-test on goals the run never chose a "
               "checkpoint by. Iteration: the run's meta-test at the checkpoint's env steps.", "",
               tests_table(runs, min_share), ""] if tested else []),
            "## The bar, per run",
            "",
            "Reached: the first meta-test at the bar; env steps and training wall clock (the trial's, from the "
            "run's own results) up to it.",
            "",
            harness.summary_table(summaries, harness.standard_columns("the bar")),
            "",
            *harness.per_run_lines(summaries, lambda r: harness.fmt(r.get("steps_to_target"))
                                   if r.get("reached") else "never"),
            "",
            "## At each meta-test",
            "",
            evaluation_table(runs, min_share),
            "",
            "## Per seed and meta-test: goals reached",
            "",
            per_seed_table(runs, min_share),
            "",
            "## Per seed and meta-test: returns",
            "",
            returns_table(runs),
            "",
            "## Runs",
            "",
            "Training wall clock: the trial's own (training and its meta-tests); command: the whole subprocess (Ray's "
            "start, building, Tune, checkpoints, MLflow); set-up: the command's wall clock outside Tune's fit; env "
            "steps/s: env steps over the fit's wall clock (training env steps only; the meta-tests' are not counted).",
            "",
            runs_table(runs, min_share),
            "",
        ]
    lines += harness.closing_lines(results, {PLOT_K2: f"goals reached at k = {K_BAR} by env steps, ideal dashed",
                                             PLOT_BY_K: "goals reached by k at the last meta-test, ideal dashed"})
    return "\n".join(lines) + "\n"


def plot_k2(results: dict[str, Any], path: Path) -> bool:
    """The k = K_BAR share against env steps, one line per seed; the ideal's dashed, the bar dotted."""
    runs, min_share = harness.finished_runs(results), float(results["target"])
    if not runs:
        return False
    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for i, run in enumerate(runs):
        ax.plot([p["env_steps"] for p in run["points"]], [p["reached"][K_BAR] for p in run["points"]],
                color=f"C{i % 10}", marker=".", linewidth=1.3, alpha=0.8, label=f"seed {run['seed']}")
    ideal = ideal_k2(runs)
    if ideal is not None:
        ax.axhline(ideal, color="black", linestyle="--", linewidth=1, label=f"ideal posterior sampling ({ideal:.2f})")
        ax.axhline(min_share * ideal, color="grey", linestyle=":", linewidth=1,
                   label=f"bar: {min_share:g} x ideal ({min_share * ideal:.2f})")
    ax.set_xlim(left=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"share of held-out goals reached at k = {K_BAR}")
    ax.set_title(f"PEARL on SparsePointNav-v0: goals reached after {K_BAR} context episodes")
    harness.save_plot(fig, ax, path)
    return True


def plot_by_k(results: dict[str, Any], path: Path) -> bool:
    """The share against k at each run's last meta-test, one line per seed, beside the ideal's curve (dashed)."""
    runs = harness.finished_runs(results)
    if not runs:
        return False
    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for i, run in enumerate(runs):
        last = run["points"][-1]
        ax.plot(range(len(last["reached"])), last["reached"], color=f"C{i % 10}", marker="o", linewidth=1.3,
                label=f"seed {run['seed']} (iteration {last['iteration']})")
    ideal = max((run["points"][-1]["ideal"] for run in runs), key=len)
    ax.plot(range(len(ideal)), ideal, color="black", linestyle="--", marker="x", linewidth=1,
            label="ideal posterior sampling")
    if len(ideal) > K_BAR and ideal[K_BAR] is not None:
        min_share = float(results["target"])
        ax.plot([K_BAR], [min_share * ideal[K_BAR]], color="grey", linestyle="none", marker="_", markersize=18,
                markeredgewidth=2, label=f"bar at k = {K_BAR}: {min_share:g} x ideal")
    ax.set_xticks(range(len(ideal)))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("context episodes k (the share is episode k + 1's)")
    ax.set_ylabel("share of held-out goals reached")
    ax.set_title("PEARL on SparsePointNav-v0: goals reached by k, last meta-test")
    harness.save_plot(fig, ax, path)
    return True


BENCHMARK = harness.Benchmark(name="pearl", doc=__doc__, default_out=DEFAULT_OUT, add_arguments=add_arguments,
                              plan=plan, render=render, plots={PLOT_K2: plot_k2, PLOT_BY_K: plot_by_k})


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
