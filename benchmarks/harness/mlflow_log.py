"""One MLflow run per benchmark invocation, a nested child run per contender and seed.

Follows the project's conventions (rlfrontier/tracking.py): the tracking URI
from --tracking-uri, MLFLOW_TRACKING_URI or sqlite:///mlflow.db; the
experiment tagged as model development; params once, metrics in batches.
Called after the results files are written, so a tracking store that fails
loses nothing but the MLflow copy.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Sequence

from .stats import Summary, ratios_vs, summarize

EXPERIMENT = "rlfrontier-benchmarks"
STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


def metric_prefix(contender: str, group: dict[str, Any]) -> str:
    """'boot_dqn/size_14': MLflow metric names allow only [/\\w.\\- :]."""
    parts = [contender, *(f"{k}_{v}" for k, v in group.items())]
    return "/".join(re.sub(r"[^/\w.\- :]", "_", str(p)) for p in parts)


def summary_metrics(summaries: Sequence[Summary], reference: str | None) -> dict[str, float]:
    """Per contender (and group): k of n, medians to target, env steps/s, and ratios to the reference."""
    out: dict[str, float | None] = {}
    for s in summaries:
        p = metric_prefix(s.contender, s.group)
        out[f"{p}/runs"] = s.n
        out[f"{p}/errors"] = s.errors
        if s.runs and s.runs[0].get("target") is not None:
            out[f"{p}/reached"] = s.reached
            out[f"{p}/median_steps_to_target"] = s.steps.median
            out[f"{p}/median_wall_s_to_target"] = s.wall_s.median
        out[f"{p}/median_env_steps_per_s"] = s.env_steps_per_s
        out[f"{p}/median_setup_s"] = s.setup_s
    if reference:
        for r in ratios_vs(summaries, reference):
            p = metric_prefix(r.summary.contender, r.summary.group)
            out[f"{p}/steps_to_target_vs_{reference}"] = r.steps
            out[f"{p}/wall_s_to_target_vs_{reference}"] = r.wall_s
            out[f"{p}/env_steps_per_s_vs_{reference}"] = r.env_steps_per_s
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


def benchmark_params(results: dict[str, Any]) -> dict[str, Any]:
    from rlfrontier.tracking import flatten

    contenders = results.get("contenders", [])
    return {
        "benchmark": results["benchmark"],
        "contenders": ",".join(dict.fromkeys(c["name"] for c in contenders)),
        "seeds": results.get("seeds"),
        "budgets": {metric_prefix(c["name"], c.get("group") or {}): c.get("budget") for c in contenders},
        "target": results.get("target"),
        "eval_every": results.get("eval_every"),
        "reference": results.get("reference"),
        "command": results.get("command"),
        **flatten(results.get("settings") or {}, "settings"),
        **flatten(results.get("machine") or {}, "machine"),
    }


def _param_value(value: Any) -> str:
    from rlfrontier.tracking import MAX_PARAM_VALUE

    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text[:MAX_PARAM_VALUE]


def log_benchmark(
    results: dict[str, Any],
    files: Sequence[Path],
    *,
    tracking_uri: str | None,
    experiment: str = EXPERIMENT,
    child_runs: bool = True,
) -> dict[str, str]:
    """Logs one benchmark invocation; returns {tracking_uri, experiment, run_id}. Raises on failure."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from rlfrontier import tracking

    uri = tracking.resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        exp_id = client.create_experiment(experiment, tags={tracking.EXPERIMENT_KIND_TAG: tracking.EXPERIMENT_KIND})
    else:
        exp_id = exp.experiment_id
    machine = results.get("machine") or {}
    versions = machine.get("versions") or {}
    tags = {
        "benchmark": results["benchmark"],
        "git_commit": str(machine.get("git_commit")) + ("-dirty" if machine.get("git_dirty") else ""),
        "ray_version": str(versions.get("ray")),
        "torch_version": str(versions.get("torch")),
        "mlflow.source.name": results.get("command", [""])[0] if results.get("command") else "",
    }
    run = client.create_run(exp_id, tags=tags, run_name=f"{results['benchmark']} {machine.get('date', '')}".strip())
    run_id = run.info.run_id
    now_ms = int(time.time() * 1000)
    params = [Param(k, _param_value(v)) for k, v in sorted(benchmark_params(results).items())]
    for i in range(0, len(params), tracking.MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[i: i + tracking.MAX_PARAMS_PER_BATCH])
    summaries = summarize(results)
    metrics = [Metric(k, v, now_ms, 0) for k, v in sorted(summary_metrics(summaries, results.get("reference")).items())]
    for i in range(0, len(metrics), tracking.MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i: i + tracking.MAX_METRICS_PER_BATCH])
    for path in files:
        if Path(path).is_file():
            client.log_artifact(run_id, str(path))
    if child_runs:
        for r in results["runs"]:
            _log_child(client, exp_id, run_id, r)
    client.set_terminated(run_id, status=STATUS.get(results.get("status", "finished"), "FINISHED"))
    return {"tracking_uri": uri, "experiment": experiment, "run_id": run_id}


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _log_child(client, exp_id: str, parent_id: str, run: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    from rlfrontier.tracking import MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH

    group = run.get("group") or {}
    name = " ".join([run["contender"], *(f"{k}={v}" for k, v in group.items()), f"seed {run['seed']}"])
    child = client.create_run(exp_id, run_name=name, tags={
        "mlflow.parentRunId": parent_id, "contender": run["contender"], "seed": str(run["seed"]),
    })
    cid = child.info.run_id
    params = {"contender": run["contender"], "seed": run["seed"], "budget": run.get("budget"),
              "target": run.get("target"), **{f"group/{k}": v for k, v in group.items()},
              **{f"extra/{k}": v for k, v in (run.get("extra") or {}).items()}}
    now_ms = int(time.time() * 1000)
    metrics = []
    for key in ("steps_to_target", "wall_s_to_target", "env_steps", "train_wall_s", "env_steps_per_s",
                "setup_s", "eval_s"):
        value = run.get(key)
        if _finite_number(value):
            metrics.append(Metric(key, float(value), now_ms, 0))
    if run.get("target") is not None:
        metrics.append(Metric("reached", float(bool(run.get("reached"))), now_ms, 0))
    for p in run.get("points") or []:
        step = int(p["env_steps"])
        metrics.append(Metric("curve/wall_s", float(p["wall_s"]), now_ms, step))
        if p.get("eval_return") is not None:
            metrics.append(Metric("curve/eval_return", float(p["eval_return"]), now_ms, step))
        for key, value in p.items():  # what a benchmark measures besides the return (DeepSea's bad episodes)
            if key not in ("env_steps", "wall_s", "eval_return") and _finite_number(value):
                metrics.append(Metric(f"curve/{key}", float(value), now_ms, step))
    items = [Param(k, _param_value(v)) for k, v in sorted(params.items())]
    for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
        client.log_batch(cid, params=items[i: i + MAX_PARAMS_PER_BATCH])
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(cid, metrics=metrics[i: i + MAX_METRICS_PER_BATCH])
    if run.get("error"):
        client.set_tag(cid, "error", run["error"][:5000])
    client.set_terminated(cid, status="FAILED" if run.get("error") else "FINISHED")
