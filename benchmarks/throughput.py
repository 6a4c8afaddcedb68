#!/usr/bin/env python
"""Env-step throughput of soft_q on CartPole-v1 over a grid of EnvRunner settings.

For every num_env_runners R in --runners and num_envs_per_env_runner E in
--envs, two modes, each on a freshly built algorithm (one at a time):

  sampling: EnvRunner sampling only: synchronous_parallel_sample() on the
            algorithm's EnvRunnerGroup, repeatedly for --seconds after one
            untimed warm-up call (R=0: the local EnvRunner samples).
  training: the whole algo.train() loop with the project defaults (one SGD
            update per env step, so learner-bound) for --seconds after one
            untimed warm-up iteration; env steps from the results'
            num_env_steps_sampled_lifetime.

Cells are env steps per second of wall clock. See benchmarks/README.md.

    python benchmarks/throughput.py                        # 3x3 grid, 10 s a cell and mode
    python benchmarks/throughput.py --runners 0,1 --envs 1,4 --seconds 3 --out /tmp/throughput_smoke
    python benchmarks/throughput.py --gpus-per-learner 1   # learner on a GPU (training mode)
    python benchmarks/throughput.py --from-json benchmarks/results/throughput/results.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# The helpers of the sibling benchmark (CPU model, git commit, versions, atomic JSON write).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cartpole_soft_q import _cpu_model, _git_commit, _version, write_json  # noqa: E402

ALGO = "soft_q"
ENV_ID = "CartPole-v1"
MODES = ("sampling", "training")
MODE_TITLES = {
    "sampling": "EnvRunner sampling only (synchronous_parallel_sample)",
    "training": "full algo.train() (one SGD update per env step)",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "throughput"
PLOT_NAME = "throughput.png"
SEED = 0


def log(msg: str) -> None:
    print(f"[throughput {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Measurements -----------------------------------------------------------------


def build_algo(runners: int, envs: int, gpus_per_learner: float | None):
    from rlfrontier.configure import build_config

    _, config, _ = build_config(
        algo=ALGO,
        env=ENV_ID,
        seed=SEED,
        evaluation_interval=0,
        num_env_runners=runners,
        num_envs_per_env_runner=envs,
        gpus_per_learner=gpus_per_learner,
    )
    t0 = time.perf_counter()
    algo = config.build_algo()
    return algo, time.perf_counter() - t0


def measure_sampling(algo, seconds: float) -> dict[str, Any]:
    """Env steps/s of synchronous_parallel_sample on the algorithm's EnvRunnerGroup."""
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

    def sample() -> int:
        episodes = synchronous_parallel_sample(
            worker_set=algo.env_runner_group,
            concat=True,
            sample_timeout_s=algo.config.sample_timeout_s,
            _uses_new_env_runners=True,
        )
        return sum(len(e) for e in episodes)

    t0 = time.perf_counter()
    warmup_steps = sample()
    warmup_s = time.perf_counter() - t0

    env_steps, calls = 0, 0
    t0 = time.perf_counter()
    while True:
        env_steps += sample()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return {
        "env_steps": env_steps,
        "seconds": elapsed,
        "env_steps_per_s": env_steps / elapsed,
        "sample_calls": calls,
        "env_steps_per_call": env_steps / calls,
        "warmup_s": warmup_s,
        "warmup_env_steps": warmup_steps,
    }


def _lifetime_steps(result: dict[str, Any]) -> int:
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    return int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])


def _learner_device(algo) -> str | None:
    learner = getattr(algo.learner_group, "_learner", None)  # the local learner (num_learners=0)
    device = getattr(learner, "_device", None)
    return None if device is None else str(device)


def measure_training(algo, seconds: float) -> dict[str, Any]:
    """Env steps/s of algo.train(), from num_env_steps_sampled_lifetime deltas."""
    from rlfrontier.offpolicy import NUM_UPDATES_THIS_STEP  # SGD updates of one iteration

    t0 = time.perf_counter()
    start_steps = _lifetime_steps(algo.train())  # warm-up: reaches learning_starts and the first updates
    warmup_s = time.perf_counter() - t0

    iterations, updates = 0, 0
    t0 = time.perf_counter()
    while True:
        result = algo.train()
        steps = _lifetime_steps(result)
        updates += int(result.get(NUM_UPDATES_THIS_STEP) or 0)
        iterations += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    env_steps = steps - start_steps
    return {
        "env_steps": env_steps,
        "seconds": elapsed,
        "env_steps_per_s": env_steps / elapsed,
        "iterations": iterations,
        "sgd_updates": updates,
        "sgd_updates_per_s": updates / elapsed,
        "warmup_s": warmup_s,
        "warmup_env_steps": start_steps,
        "learner_device": _learner_device(algo),
    }


def run_cell(mode: str, runners: int, envs: int, args: argparse.Namespace) -> dict[str, Any]:
    gpus = args.gpus_per_learner if mode == "training" and args.gpus_per_learner else None
    algo, setup_s = build_algo(runners, envs, gpus)
    try:
        if mode == "sampling":
            measured = measure_sampling(algo, args.seconds)
        else:
            measured = measure_training(algo, args.seconds)
    finally:
        algo.stop()
    return {"mode": mode, "runners": runners, "envs": envs, **measured, "setup_s": setup_s,
            "gpus_per_learner": gpus or 0}


# Machine info -----------------------------------------------------------------


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def machine_info(gpus_per_learner: float) -> dict[str, Any]:
    import torch

    usable = _usable_cpus()
    cpu = f"{_cpu_model() or 'unknown CPU'}, {usable} cores"
    gpu_name = None
    if gpus_per_learner > 0:
        gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device visible"
        device = f"learner on GPU: {gpu_name} (num_gpus_per_learner={gpus_per_learner:g}); CPU: {cpu}"
    else:
        device = f"CPU only: {cpu}"
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "gpu_name": gpu_name,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "torch_num_threads": torch.get_num_threads(),
        "versions": {
            "torch": _version("torch"),
            "ray": _version("ray"),
            "gymnasium": _version("gymnasium"),
            "numpy": _version("numpy"),
        },
        "git_commit": _git_commit(),
    }


def _config_defaults() -> dict[str, Any]:
    """The soft_q settings that bear on throughput (not set by this benchmark)."""
    from rlfrontier.registry import get_algorithm

    cfg = get_algorithm(ALGO).make_config()
    return {
        "rollout_fragment_length": cfg.rollout_fragment_length,
        "min_sample_timesteps_per_iteration": cfg.min_sample_timesteps_per_iteration,
        "train_batch_size_per_learner": cfg.train_batch_size_per_learner,
        "training_intensity": cfg.training_intensity,
        "num_steps_sampled_before_learning_starts": cfg.num_steps_sampled_before_learning_starts,
        "num_learners": cfg.num_learners,
    }


# Report -----------------------------------------------------------------------


def _cells(data: dict[str, Any], mode: str) -> dict[tuple[int, int], dict[str, Any]]:
    return {(c["runners"], c["envs"]): c for c in data["cells"] if c["mode"] == mode}


def _fmt_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    if cell.get("error"):
        return "error"
    return f"{cell['env_steps_per_s']:,.0f}"


def render_markdown(data: dict[str, Any]) -> str:
    meta, settings = data["meta"], data["settings"]
    runners, envs = settings["runners"], settings["envs"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    defaults = settings.get("soft_q_defaults") or {}
    lines = [
        f"# {ENV_ID}: soft_q env steps/s by num_env_runners x num_envs_per_env_runner",
        "",
        f"{meta['date']} · **{meta['device']}** ({meta['cpus_usable']} usable of {meta['cpu_count']} CPUs) · "
        f"{meta['platform']} · Python {meta['python']} · {versions} · torch threads {meta['torch_num_threads']}"
        + (f" · commit {meta['git_commit'][:10]}" if meta.get("git_commit") else ""),
        "",
        f"Each cell: env steps per second of wall clock over about {settings['seconds']:g} s, after one untimed "
        "warm-up (one sample call / one train() iteration), on a freshly built algorithm; one configuration at a "
        f"time, Ray started once with num_cpus={settings['ray_num_cpus']}. Rows: num_env_runners (0: the local "
        "EnvRunner in the driver samples); columns: num_envs_per_env_runner. soft_q defaults otherwise "
        f"(rollout_fragment_length {defaults.get('rollout_fragment_length', '?')}, "
        f"{defaults.get('training_intensity', '?'):g}/{defaults.get('train_batch_size_per_learner', '?')} = one SGD "
        "update per env step, one local learner)."
        if defaults else "",
    ]
    for mode in settings["modes"]:
        cells = _cells(data, mode)
        title = MODE_TITLES.get(mode, mode)
        if mode == "training" and settings.get("gpus_per_learner"):
            title += f", num_gpus_per_learner={settings['gpus_per_learner']:g}"
        lines += [
            "",
            f"## {mode}: {title}",
            "",
            "| runners \\ envs per runner | " + " | ".join(str(e) for e in envs) + " |",
            "| --- | " + " | ".join("---:" for _ in envs) + " |",
        ]
        for r in runners:
            lines.append(f"| {r} | " + " | ".join(_fmt_cell(cells.get((r, e))) for e in envs) + " |")
    usable = meta.get("cpus_usable") or meta.get("cpu_count")
    lines += [
        "",
        "Notes:",
        "",
        f"- Machine: {meta['device']}. Every remote EnvRunner is its own process and takes one of the "
        f"{settings['ray_num_cpus']} CPUs given to Ray; the driver (algorithm, local learner and, with 0 runners, "
        "the local EnvRunner) runs beside them on the same cores.",
    ]
    if usable is not None and usable <= 2:
        lines.append(
            f"- With {usable} cores, more than one remote runner cannot scale: one runner and the driver already "
            "fill both cores, so a second runner (and, in training mode, the learner beside the runners) only "
            "competes for the same cores. The 2-runner row shows that contention, not how sampling scales "
            "with more cores or machines."
        )
    lines.append(
        "- sampling measures the EnvRunners alone (no replay buffer, no learner, no weight sync); training is "
        "the whole algorithm, bounded by the learner at one SGD update per env step, so its cells are far "
        "lower and change little with the EnvRunner settings when the learner dominates."
    )
    if data.get("ray_init_s") is not None:
        lines.append(f"- ray.init (once): {data['ray_init_s']:.1f} s; building each algorithm is timed apart "
                     "(setup_s in results.json) and not counted.")
    for cell in data["cells"]:
        if cell.get("error"):
            lines.append(f"- {cell['mode']}, {cell['runners']} runners x {cell['envs']} envs failed: {cell['error']}")
    lines += ["", f"![throughput]({PLOT_NAME})", ""]
    return "\n".join(lines)


def render_plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = data["settings"]
    runners, envs, modes = settings["runners"], settings["envs"], settings["modes"]
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.6), squeeze=False)
    width = 0.8 / max(len(envs), 1)
    x = np.arange(len(runners))
    for ax, mode in zip(axes[0], modes):
        cells = _cells(data, mode)
        for i, e in enumerate(envs):
            values = []
            for r in runners:
                cell = cells.get((r, e))
                values.append(cell["env_steps_per_s"] if cell and not cell.get("error") else 0.0)
            bars = ax.bar(x + (i - (len(envs) - 1) / 2) * width, values, width, label=f"{e} envs/runner")
            ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=7, padding=1)
        ax.set_xticks(x, [str(r) for r in runners])
        ax.set_xlabel("num_env_runners (0: local EnvRunner)")
        ax.set_ylabel("env steps / s")
        ax.set_title(f"{mode}: {MODE_TITLES.get(mode, mode)}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{ENV_ID} soft_q throughput · {data['meta']['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(render_markdown(data))
    render_plot(data, out / PLOT_NAME)
    log(f"wrote {out / 'results.md'} and {out / PLOT_NAME}")


# Main -------------------------------------------------------------------------


def _int_list(text: str, flag: str, low: int, p: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"{flag}: {text!r} is not a comma-separated list of integers")
    if not values or any(v < low for v in values):
        p.error(f"{flag}: give integers >= {low}, got {text!r}")
    return sorted(set(values))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runners", default="0,1,2", help="num_env_runners values (default 0,1,2)")
    p.add_argument("--envs", default="1,4,16", help="num_envs_per_env_runner values (default 1,4,16)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    p.add_argument("--seconds", type=float, default=10.0, help="measured wall clock per cell and mode (default 10)")
    p.add_argument("--gpus-per-learner", type=float, default=0.0,
                   help="num_gpus_per_learner of the training mode (default 0: CPU)")
    p.add_argument("--num-cpus", type=int, default=2, help="num_cpus given to ray.init (default 2)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT}; "
                   "with --from-json: the folder of that file)")
    p.add_argument("--from-json", type=Path, default=None, help="re-render results.md/.png from this results.json")
    args = p.parse_args(argv)
    if args.from_json is None:
        args.runners = _int_list(args.runners, "--runners", 0, p)
        args.envs = _int_list(args.envs, "--envs", 1, p)
        args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in args.modes if m not in MODES]
        if unknown or not args.modes:
            p.error(f"--modes: unknown {unknown or 'empty list'}; choose from {','.join(MODES)}")
        args.modes = [m for m in MODES if m in args.modes]
        if args.seconds <= 0:
            p.error("--seconds must be > 0")
        if args.gpus_per_learner < 0:
            p.error("--gpus-per-learner must be >= 0")
        if args.num_cpus < 1:
            p.error("--num-cpus must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        render(data, args.out or args.from_json.resolve().parent)
        return 0

    out: Path = args.out or DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "meta": machine_info(args.gpus_per_learner),
        "settings": {
            "algo": ALGO,
            "env": ENV_ID,
            "seed": SEED,
            "runners": args.runners,
            "envs": args.envs,
            "modes": args.modes,
            "seconds": args.seconds,
            "gpus_per_learner": args.gpus_per_learner,
            "ray_num_cpus": args.num_cpus,
            "soft_q_defaults": _config_defaults(),
        },
        "ray_init_s": None,
        "cells": [],
    }
    log(f"device: {data['meta']['device']}")

    import ray

    failed = False
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    data["ray_init_s"] = time.perf_counter() - t0
    log(f"ray.init: {data['ray_init_s']:.1f} s")
    try:
        # One configuration at a time, never two algorithms alive together.
        for runners in args.runners:
            for envs in args.envs:
                for mode in args.modes:
                    log(f"{mode}: {runners} runners x {envs} envs: start")
                    try:
                        cell = run_cell(mode, runners, envs, args)
                    except Exception as exc:  # noqa: BLE001 - record, go on with the other cells
                        traceback.print_exc()
                        failed = True
                        cell = {"mode": mode, "runners": runners, "envs": envs,
                                "error": f"{type(exc).__name__}: {exc}"}
                    else:
                        log(
                            f"{mode}: {runners} runners x {envs} envs: {cell['env_steps']} env steps in "
                            f"{cell['seconds']:.1f} s = {cell['env_steps_per_s']:,.0f} env steps/s "
                            f"(setup {cell['setup_s']:.1f} s, warm-up {cell['warmup_s']:.1f} s)"
                        )
                    data["cells"].append(cell)
                    write_json(out / "results.json", data)
    except KeyboardInterrupt:
        log("interrupted: writing what has finished")
        failed = True
    finally:
        ray.shutdown()

    write_json(out / "results.json", data)
    render(data, out)
    print(render_markdown(data))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
