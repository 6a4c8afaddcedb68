"""Benchmarks whose runs are the real command line.

Each training run is `rlfrontier train ALGO ... --json` in a subprocess
(`train`), one at a time, optionally under an exclusive flock(2) on a file
(`held`), so that the runs of other users of a shared machine interleave with
them; each is tracked in MLflow like any run (experiment --runs-experiment).

What a run reported at each of its evaluations is read back afterwards
(`evaluations`): from the run's MLflow metric history (the CLI exits non-zero
when MLflow did not take every request, so a run that finished has all of
it), else from Tune's `result.json` beside its checkpoints (every reported
result, one JSON line each). Both hold every iteration's result; RLlib and
rlfrontier repeat the last evaluation (and the registry hook's metrics) in
every later result, so an iteration counts as evaluated when
iteration % eval_interval == 0 (RLlib's rule), and the last one always
(rlfrontier.trainable.train_loop evaluates the final policy).
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import json
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .record import Recorder, log
from .report import fmt, markdown_table

ENV_STEPS, WALL_S, ITERATIONS = "env_steps", "wall_s", "iterations"  # rlfrontier.trainable's result keys
TUNE_RESULTS = "result.json"  # Tune's JSON logger, in the trial folder (the checkpoints' parent)
MLFLOW, TUNE = "MLflow metric history", "Tune result.json"
History = Mapping[str, Mapping[int, float]]  # metric key -> {MLflow step (env steps): value}


def add_arguments(p: argparse.ArgumentParser, *, experiment: str) -> None:
    """The flags of a benchmark whose runs are `rlfrontier train` subprocesses."""
    p.add_argument("--runs-experiment", default=experiment,
                   help=f"MLflow experiment of the `rlfrontier train` runs (default {experiment})")
    p.add_argument("--lock", type=Path, default=None,
                   help="hold an exclusive flock on this file during each training run (a shared machine)")
    p.add_argument("--progress", action="store_true", help="show each training run's progress lines")


def add_run_arguments(p: argparse.ArgumentParser, *, iters: int, eval_interval: int) -> None:
    """--seeds, --iters and --eval-interval of a benchmark that runs one `rlfrontier train` a seed and reads
    its evaluations back (maml, pearl)."""
    from .runner import positive_int

    p.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--iters", type=positive_int, default=iters, help=f"training iterations a run (default {iters})")
    p.add_argument("--eval-interval", type=positive_int, default=eval_interval,
                   help=f"iterations between evaluations; the last iteration is always one (default {eval_interval})")


@contextmanager
def held(lock: Path | None) -> Iterator[None]:
    """An exclusive flock(2) on `lock` (the same lock as `flock FILE cmd`); nothing without one."""
    if lock is None:
        yield
        return
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for the lock {lock}")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def train_command(algo: str, argv: Sequence[str], args: argparse.Namespace) -> list[str]:
    """`python -m rlfrontier train ALGO ARGV... --experiment E --json` with the benchmark's tracking URI, and
    --quiet unless --progress."""
    cmd = [sys.executable, "-m", "rlfrontier", "train", algo, *argv, "--experiment", args.runs_experiment, "--json"]
    if args.tracking_uri:
        cmd += ["--tracking-uri", args.tracking_uri]
    if not args.progress:
        cmd.append("--quiet")
    return cmd


def train(algo: str, argv: Sequence[str], args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Runs `train_command` (under --lock): (its JSON line, the command's wall clock); raises on a non-zero exit."""
    return run_json(train_command(algo, argv, args), args)


def evaluate_metrics(checkpoint: str | Path, overrides: Mapping[str, Any],
                     args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """`rlfrontier evaluate CHECKPOINT --metrics --set K=V... --json` (under --lock): the algorithm's own
    evaluation of a checkpoint, (its JSON line, the command's wall clock)."""
    cmd = [sys.executable, "-m", "rlfrontier", "evaluate", str(checkpoint), "--metrics",
           "--set", *(f"{key}={value}" for key, value in overrides.items()), "--json"]
    return run_json(cmd, args)


def run_json(cmd: Sequence[str], args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Runs `cmd` (under --lock, stderr shown with --progress): (its last stdout line read as JSON, the
    command's wall clock); raises on a non-zero exit, with the tail of its stderr."""
    tail: collections.deque[str] = collections.deque(maxlen=15)
    with held(args.lock):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def pump() -> None:  # stderr: shown as it comes, its tail kept for the error
            for line in proc.stderr:
                tail.append(line.rstrip())
                if args.progress:
                    sys.stderr.write(line)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        stdout = proc.stdout.read()
        proc.wait()
        thread.join()
        wall = time.perf_counter() - t0
    lines = stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {' | '.join(list(tail)[-3:])}")
    return json.loads(lines[-1]), wall


# What a run reported at each evaluation -----------------------------------------------------------------


def evaluation_rows(history: History, keys: Sequence[str], *, eval_interval: int) -> list[dict[str, Any]]:
    """One row per evaluated iteration, in order: env_steps, iteration, wall_s and each of `keys` (None where
    the history lacks it). An iteration evaluated when iteration % eval_interval == 0, and the last one always."""
    iterations = history.get(ITERATIONS) or {}
    walls = history.get(WALL_S) or {}
    last = max((int(i) for i in iterations.values()), default=None)
    rows = []
    for step, iteration in sorted(iterations.items()):
        iteration = int(iteration)
        if iteration % eval_interval == 0 or iteration == last:
            rows.append({"env_steps": int(step), "iteration": iteration, "wall_s": walls.get(step),
                         **{key: (history.get(key) or {}).get(step) for key in keys}})
    return rows


def mlflow_history(run_id: str, keys: Sequence[str], *, tracking_uri: str | None) -> dict[str, dict[int, float]]:
    """The MLflow run's history of `keys` and of iterations and wall_s, by step (env steps)."""
    from mlflow.tracking import MlflowClient

    from rlfrontier.tracking import resolve_tracking_uri

    client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
    return {key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
            for key in (ITERATIONS, WALL_S, *keys)}


def tune_history(path: Path, keys: Sequence[str]) -> dict[str, dict[int, float]]:
    """The same history from Tune's result.json (one result a line; a key "a/b" reaches into result["a"]["b"],
    as MLflow's metric names flatten them), by env steps."""
    from rlfrontier.trainable import metric_value

    out: dict[str, dict[int, float]] = {key: {} for key in (ITERATIONS, WALL_S, *keys)}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        result = json.loads(line)
        step = result.get(ENV_STEPS)
        if step is None:
            continue
        for key in out:
            value = metric_value(result, key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key][int(step)] = float(value)
    return out


def evaluations(out: Mapping[str, Any], keys: Sequence[str], *, eval_interval: int,
                tracking_uri: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """(evaluation_rows of the run of `train`'s JSON line `out`, where they came from): MLflow's history, else
    Tune's result.json in the trial folder (the checkpoint's parent); ([], None) when neither has any."""
    if out.get("mlflow_run_id"):
        try:
            rows = evaluation_rows(mlflow_history(out["mlflow_run_id"], keys, tracking_uri=tracking_uri), keys,
                                   eval_interval=eval_interval)
            if rows:
                return rows, MLFLOW
        except Exception as exc:  # noqa: BLE001 - Tune's copy of the same results follows
            log(f"no history from MLflow ({type(exc).__name__}: {exc})")
    path = Path(out["checkpoint"]).parent / TUNE_RESULTS if out.get("checkpoint") else None
    if path is not None and path.is_file():
        rows = evaluation_rows(tune_history(path, keys), keys, eval_interval=eval_interval)
        if rows:
            return rows, TUNE
    return [], None


def record(rec: Recorder, out: Mapping[str, Any], wall: float, points: Sequence[Mapping[str, Any]]) -> None:
    """The run's points; set-up = the command's wall clock outside training (Ray, building, Tune)."""
    rec.setup_s = max(wall - float(out["wall_s"]), 0.0)
    for p in points:
        rec.record(p["env_steps"], **{k: v for k, v in p.items() if k != "env_steps"})
    rec.stop(out["env_steps"])
    rec.train_wall_s = float(out["wall_s"])
    rec.extra.update({"mlflow_run_id": out.get("mlflow_run_id"), "checkpoint": out.get("checkpoint"),
                      "best_checkpoint": out.get("best_checkpoint"), "command_wall_s": wall,
                      "trial_train_wall_s": out.get("train_wall_s"), "final_eval_return": out.get("eval_return_mean")})


def runs_table(runs: Sequence[Mapping[str, Any]], *, passed: Callable[[Mapping[str, Any]], bool],
               passed_header: str) -> str:
    """One row per command-line run (recorded by `record`): iterations, env steps, the trial's and the
    command's wall clock, set-up, env steps/s, the first evaluation point that `passed` (its iteration and env
    steps; "never"), and where the evaluations were read from (extra["source"])."""
    rows = []
    for run in runs:
        extra = run.get("extra") or {}
        first = next((p for p in run["points"] if passed(p)), None)
        rows.append([str(run["seed"]), fmt(extra.get("iterations")), fmt(run["env_steps"]),
                     fmt(extra.get("trial_train_wall_s"), 1), fmt(extra.get("command_wall_s"), 1),
                     fmt(run.get("setup_s"), 1), fmt(run.get("env_steps_per_s")),
                     "never" if first is None else f"{first['iteration']} ({first['env_steps']:,} env steps)",
                     extra.get("source") or "—"])
    headers = ["seed", "iterations", "env steps", "training wall clock (s)", "command wall clock (s)",
               "set-up (s)", "env steps/s", passed_header, "meta-tests read from"]
    return markdown_table(headers, rows, ["---:"] * 8 + ["---"])
