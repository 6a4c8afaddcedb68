"""Contenders, the plan of one invocation, and the one path every benchmark script runs through.

A script declares a `Benchmark` (its flags, how the flags become a `Plan` of
contenders, seeds, budgets and target, its Markdown and its plots) and calls
`main(benchmark)`. The harness does the rest the same way for all of them:
machine info, availability checks, runs one at a time (seed by seed,
contenders alternating), results.json rewritten after every run, results.md
and plots, `--from-json` re-rendering, `--resume` (a benchmark interrupted, or split
over several sittings, goes on from its results.json), and the MLflow run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping, Sequence

from .machine import load_avg, machine_info
from .mlflow_log import EXPERIMENT, log_benchmark
from .record import Criterion, Recorder, log
from .report import fmt
from .stats import IMPLIED

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


@dataclass(frozen=True, kw_only=True)
class Contender:
    """One contestant of a benchmark.

    Args:
        name: short name (table rows, MLflow metric prefix, `--algos` choices).
        run: `run(seed, budget, recorder)` trains one run, timing its set-up in
            `recorder.setup()` and reporting through the recorder (see Recorder).
        budget: the run's budget (env steps unless the benchmark says otherwise).
        label: the long name in tables and plots.
        group: what else tells its runs apart besides the seed (e.g. {"size": 14}).
        available: returns why the contender cannot run here (e.g. a missing
            optional package), or None when it can; unavailable ones are skipped
            and noted.
    """

    name: str
    run: Callable[[int, Any, Recorder], None]
    budget: float
    label: str | None = None
    group: Mapping[str, Any] = field(default_factory=dict)
    available: Callable[[], str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label or self.name, "budget": self.budget, "group": dict(self.group)}


# implied_failure(contender, seed, runs so far) -> why the run would not reach the target, or None (Plan).
ImpliedFailure = Callable[[Contender, int, Sequence[dict[str, Any]]], str | None]


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one invocation runs, built by a script from its flags.

    Args:
        contenders: in the order they run within a seed.
        seeds: every contender runs every seed.
        settings: everything else the results depend on (raw, into results.json and MLflow params).
        target: evaluation return that counts as reached (None: no success criterion);
            with a `criterion`, the threshold that criterion applies (shown in the results).
        eval_every: env steps between evaluations (the recorder's schedule).
        reference: the contender the ratios are taken against.
        session: wraps all runs, given the available contenders and the results
            (e.g. one ray.init for all of them).
        warmup: one untimed go of the available contenders before the measured runs.
        criterion: whether a point counts as reached, where that is not
            `eval_return >= target` (Recorder).
        implied_failure: `implied_failure(contender, seed, runs_so_far)` returns why
            this run would not reach the target without running it (e.g. the same
            contender and seed did not at an easier setting; `implied_by_smaller`),
            or None to run it. An implied run is recorded as not reached, with the
            reason in `extra["implied"]`, and counts as a failure in the medians.
            Runs go seed by seed in the order of `contenders`, so a script that
            declares its contenders from easy to hard settings has the easier
            runs of a seed in `runs_so_far`.
        resume_ignores: settings keys that may differ when `--resume` continues an
            earlier invocation (e.g. a temporary folder's path), and "target" when
            `resumed` judges kept runs by the new one; every other setting, the
            target, eval_every and the reference must be equal.
        resumed: called with each finished run that `--resume` keeps, before any
            run; returns None to keep it, or why it must run again (e.g. a file
            a later contender needs is gone). Lets a script restore what its
            contenders hand each other within an invocation.
    """

    contenders: Sequence[Contender]
    seeds: Sequence[int]
    settings: dict[str, Any]
    target: float | None = None
    eval_every: int | None = None
    reference: str | None = None
    session: Callable[[list[Contender], dict[str, Any]], ContextManager] | None = None
    warmup: Callable[[list[Contender]], None] | None = None
    criterion: Criterion | None = None
    implied_failure: ImpliedFailure | None = None
    resume_ignores: frozenset[str] = frozenset()
    resumed: Callable[[dict[str, Any]], str | None] | None = None


def implied_by_smaller(key: str, *, label: str | None = None, outcome: str = "not reached") -> ImpliedFailure:
    """An `implied_failure` hook: a contender that did not reach the target at a smaller
    `group[key]` for the same seed (or was implied not to) is recorded as not reaching it here.

    A run that raised implies nothing (it did not fail to reach the target: it
    failed). The reason names the smallest such setting: "<outcome> at <label>=<value>",
    e.g. "not solved at N=10".
    """
    def implied(contender: Contender, seed: int, runs: Sequence[dict[str, Any]]) -> str | None:
        here = contender.group.get(key)
        if here is None:
            return None
        failed = [r["group"][key] for r in runs
                  if r["contender"] == contender.name and r["seed"] == seed and key in (r.get("group") or {})
                  and r["group"][key] < here and not r.get("error") and not r.get("reached")]
        return f"{outcome} at {label or key}={min(failed)}" if failed else None

    return implied


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    """A benchmark script's declaration.

    Args:
        name: results' `benchmark` and the MLflow run name.
        doc: --help text (the script's docstring).
        default_out: output folder without --out.
        add_arguments: adds the script's own flags (the harness adds --out,
            --from-json, --no-mlflow, --tracking-uri, --experiment).
        plan: turns the parsed flags into a Plan.
        render: results.md from results.json's content.
        plots: file name -> writer(results, path), True when it wrote the file.
    """

    name: str
    doc: str
    default_out: Path
    add_arguments: Callable[[argparse.ArgumentParser], None]
    plan: Callable[[argparse.Namespace], Plan]
    render: Callable[[dict[str, Any]], str]
    plots: Mapping[str, Callable[[dict[str, Any], Path], bool]] = field(default_factory=dict)


# Flags ----------------------------------------------------------------------------------------------


def _int(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int(text, 1)


def non_negative_int(text: str) -> int:
    return _int(text, 0)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def parser(bench: Benchmark) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=bench.doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(p)
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default {bench.default_out}; with --from-json: the folder of that file)")
    p.add_argument("--from-json", type=Path, default=None,
                   help="re-render results.md and the plots from this results.json, run nothing")
    p.add_argument("--no-mlflow", dest="mlflow", action="store_false",
                   help="do not log the invocation to MLflow (results files only)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    p.add_argument("--experiment", default=EXPERIMENT, help=f"MLflow experiment (default {EXPERIMENT})")
    p.add_argument("--resume", action="store_true",
                   help="go on from the results.json in the output folder: its finished runs (same contender, seed "
                        "and group, no error) are kept and not run again; its settings must be this invocation's")
    return p


# Files -----------------------------------------------------------------------------------------------


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic: a benchmark interrupted while writing keeps the previous file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def load_results(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "benchmark" not in data or "runs" not in data:
        raise ValueError(f"{path} is not a benchmark harness results.json (no 'benchmark' and 'runs')")
    return data


def write_report(bench: Benchmark, results: dict[str, Any], out: Path) -> list[Path]:
    """results.md and the plots; returns the files written (results.json first where it is there)."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / RESULTS_JSON] if (out / RESULTS_JSON).is_file() else []
    (out / RESULTS_MD).write_text(bench.render(results))
    files.append(out / RESULTS_MD)
    for name, writer in bench.plots.items():
        path = out / name
        if writer(results, path):
            files.append(path)
        elif path.exists():
            path.unlink()  # nothing to draw from these results: no stale plot beside them
    log(f"wrote {', '.join(f.name for f in files if f.name != RESULTS_JSON)} in {out}")
    return files


# Running ---------------------------------------------------------------------------------------------


def new_results(bench: Benchmark, plan: Plan, command: list[str]) -> dict[str, Any]:
    return {
        "benchmark": bench.name,
        "command": command,
        "cwd": os.getcwd(),
        "status": "running",
        "machine": machine_info(),
        "settings": plan.settings,
        "seeds": list(plan.seeds),
        "target": plan.target,
        "eval_every": plan.eval_every,
        "reference": plan.reference,
        "contenders": [c.to_dict() for c in plan.contenders],
        "skipped": {},
        "timings": {},
        "runs": [],
    }


def run_key(run: Mapping[str, Any]) -> tuple[str, int, str]:
    """What tells a run apart within one benchmark: its contender, seed and group."""
    return run["contender"], int(run["seed"]), json.dumps(run.get("group") or {}, sort_keys=True, default=str)


def _same(a: Any, b: Any) -> bool:
    """Equal, numbers within 1e-9 relative (a target recomputed from the same seeded rollouts)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def resume_mismatch(previous: Mapping[str, Any], results: Mapping[str, Any], plan: Plan) -> str | None:
    """Why `previous` (a results.json) cannot be continued by this invocation (`results`, fresh), or None."""
    if previous.get("benchmark") != results["benchmark"]:
        return f"it is benchmark {previous.get('benchmark')!r}, not {results['benchmark']!r}"
    for key in ("target", "eval_every", "reference"):
        if key not in plan.resume_ignores and not _same(previous.get(key), results.get(key)):
            return f"its {key} was {previous.get(key)!r}, now {results.get(key)!r}"
    old, new = previous.get("settings") or {}, results["settings"]
    for key in sorted((set(old) | set(new)) - set(plan.resume_ignores)):
        if not _same(old.get(key), new.get(key)):
            return f"its setting {key} was {old.get(key)!r}, now {new.get(key)!r}"
    return None


def resume(previous: Mapping[str, Any], results: dict[str, Any], plan: Plan) -> int:
    """Puts `previous`'s finished runs of this plan's contenders and seeds into `results` (plan.resumed may
    send one back to run again); notes where they came from. Returns how many were kept."""
    wanted = {(c.name, seed, json.dumps(dict(c.group), sort_keys=True, default=str))
              for c in plan.contenders for seed in plan.seeds}
    kept, seen = [], set()
    for run in previous.get("runs") or []:
        key = run_key(run)
        if run.get("error") or key not in wanted or key in seen:
            continue
        why = plan.resumed(run) if plan.resumed else None
        if why:
            log(f"{run['contender']} seed {run['seed']}: run again ({why})")
            continue
        kept.append(run)
        seen.add(key)
    results["runs"] = kept
    earlier = [*(previous.get("resumed_from") or []),
               {k: previous.get(k) for k in ("command", "status", "finished", "machine")}]
    results["resumed_from"] = earlier
    return len(kept)


def available_contenders(plan: Plan, results: dict[str, Any]) -> list[Contender]:
    reasons: dict[str, str | None] = {}
    out = []
    for c in plan.contenders:
        if c.name not in reasons:
            reasons[c.name] = c.available() if c.available else None
            if reasons[c.name]:
                log(f"{c.name} skipped: {reasons[c.name]}")
                results["skipped"][c.name] = reasons[c.name]
        if not reasons[c.name]:
            out.append(c)
    return out


def recorder(contender: Contender, seed: int, plan: Plan) -> Recorder:
    return Recorder(contender=contender.name, seed=seed, budget=contender.budget, group=dict(contender.group),
                    target=plan.target, eval_every=plan.eval_every, criterion=plan.criterion)


def implied_run(contender: Contender, seed: int, plan: Plan, reason: str) -> dict[str, Any]:
    """The record of a run that was not run: not reached, no points, the reason in extra["implied"]."""
    rec = recorder(contender, seed, plan)
    rec.extra[IMPLIED] = reason
    rec.stop()
    log(f"{rec.name}: not run, recorded as not reached: {reason}")
    return rec.to_dict()


def run_one(contender: Contender, seed: int, plan: Plan) -> dict[str, Any]:
    rec = recorder(contender, seed, plan)
    log(f"{rec.name}: start (budget {contender.budget:g})")
    try:
        contender.run(seed, contender.budget, rec)
        if rec.train_wall_s is None:
            rec.stop()
    except Exception as exc:  # noqa: BLE001 - recorded; the other runs go on
        traceback.print_exc()
        rec.fail(exc)
    run = rec.to_dict()
    if not run["error"]:
        to_target = ""
        if plan.target is not None:
            to_target = (f"target at {run['steps_to_target']} steps, {fmt(run['wall_s_to_target'], 1)} s; "
                         if run["reached"] else "target not reached; ")
        log(f"{rec.name}: done: {to_target}{run['env_steps']} steps at {fmt(run['env_steps_per_s'])} steps/s, "
            f"setup {fmt(run['setup_s'], 1)} s")
    return run


@contextmanager
def terminate_as_interrupt():
    """SIGTERM (`kill PID`) stops the benchmark as Ctrl-C does: what has finished is written.

    A benchmark started with `&` from a script (a shell without job
    control) ignores SIGINT, so Ctrl-C's path was out of reach and `kill`
    left results.json "running". Main thread only (signal handlers can be
    set nowhere else); the previous handler is put back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_plan(plan: Plan, results: dict[str, Any], out: Path) -> dict[str, Any]:
    """Runs every available contender on every seed, one at a time; results.json after each run."""
    json_path = out / RESULTS_JSON
    contenders = available_contenders(plan, results)
    write_json(json_path, results)
    session = plan.session(contenders, results) if plan.session and contenders else nullcontext()
    try:
        # Outside the session too: ray.init's own SIGTERM handler (sys.exit) holds from its start to the
        # end of ray.shutdown, and a SystemExit would leave results.json "running".
        with terminate_as_interrupt(), session, terminate_as_interrupt():
            if plan.warmup and contenders:
                log(f"warm-up (untimed): {', '.join(dict.fromkeys(c.name for c in contenders))}")
                t0 = time.perf_counter()
                plan.warmup(contenders)
                results["timings"]["warmup_s"] = time.perf_counter() - t0
                log(f"warm-up: {results['timings']['warmup_s']:.1f} s")
            # Seed-major: contenders alternate, so slow drift in the machine's load
            # is shared out; one run at a time, never in parallel.
            done = {run_key(r) for r in results["runs"]}  # kept by --resume
            for seed in plan.seeds:
                for contender in contenders:
                    if run_key({"contender": contender.name, "seed": seed, "group": dict(contender.group)}) in done:
                        continue
                    reason = plan.implied_failure(contender, seed, results["runs"]) if plan.implied_failure else None
                    run = implied_run(contender, seed, plan, reason) if reason else run_one(contender, seed, plan)
                    results["runs"].append(run)
                    write_json(json_path, results)
        results["status"] = "failed" if any(r.get("error") for r in results["runs"]) else "finished"
    except KeyboardInterrupt:
        log("interrupted: writing what has finished")
        results["status"] = "interrupted"
    except Exception as exc:  # noqa: BLE001 - session or warm-up failed: keep what there is
        traceback.print_exc()
        results["status"] = "failed"
        results["error"] = f"{type(exc).__name__}: {exc}"
    results["machine"]["load_avg_end"] = load_avg()
    results["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_json(json_path, results)
    return results


def log_to_mlflow(results: dict[str, Any], files: list[Path], args: argparse.Namespace) -> None:
    """The MLflow copy: a failure is reported and noted in results.json, the files stay."""
    try:
        info = log_benchmark(results, files, tracking_uri=args.tracking_uri, experiment=args.experiment)
    except Exception as exc:  # noqa: BLE001 - the results files are written already
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"MLflow logging failed, results files kept: {type(exc).__name__}: {first[:300]}")
        results["mlflow"] = {"error": f"{type(exc).__name__}: {first[:300]}"}
    else:
        log(f"MLflow: experiment {info['experiment']!r}, run {info['run_id']} at {info['tracking_uri']}")
        results["mlflow"] = info
    if files and files[0].name == RESULTS_JSON:
        write_json(files[0], results)


def main(bench: Benchmark, argv: list[str] | None = None) -> int:
    p = parser(bench)
    args = p.parse_args(argv)
    if args.from_json is not None:
        try:
            results = load_results(args.from_json)
        except (OSError, ValueError) as exc:
            p.error(f"--from-json: {exc}")
        write_report(bench, results, args.out or args.from_json.resolve().parent)
        print(bench.render(results))
        return 0

    if args.mlflow:
        from rlfrontier.tracking import check_tracking_uri, resolve_tracking_uri
        from rlfrontier.validation import BadInput

        try:
            check_tracking_uri(resolve_tracking_uri(args.tracking_uri))
        except BadInput as exc:
            p.error(f"{exc} (or --no-mlflow)")
    plan = bench.plan(args)
    out: Path = args.out or bench.default_out
    command = list(sys.argv) if argv is None else [sys.argv[0], *argv]
    results = new_results(bench, plan, command)
    if args.resume:
        try:
            previous = load_results(out / RESULTS_JSON)
        except (OSError, ValueError) as exc:
            p.error(f"--resume: nothing to go on from in {out}: {exc}")
        why = resume_mismatch(previous, results, plan)
        if why:
            p.error(f"--resume: {out / RESULTS_JSON} is not this benchmark's: {why}")
        log(f"--resume: {resume(previous, results, plan)} finished runs kept from {out / RESULTS_JSON}")
    out.mkdir(parents=True, exist_ok=True)
    results = run_plan(plan, results, out)
    files = write_report(bench, results, out)
    if args.mlflow:
        log_to_mlflow(results, files, args)
    print(bench.render(results))
    return 0 if results["status"] == "finished" else 1
