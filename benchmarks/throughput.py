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

Cells are env steps per second of wall clock. Runs on benchmarks/harness
(each cell is one contender run whose budget is --seconds); see
benchmarks/README.md.

    python benchmarks/throughput.py                        # 3x3 grid, 10 s a cell and mode
    python benchmarks/throughput.py --runners 0,1 --envs 1,4 --seconds 3 --out /tmp/throughput_smoke
    python benchmarks/throughput.py --gpus-per-learner 1   # learner on a GPU (training mode)
    python benchmarks/throughput.py --from-json benchmarks/results/throughput/results.json
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import harness
from harness.rllib import lifetime_steps, ray_session

ALGO = "soft_q"
ENV_ID = "CartPole-v1"
MODES = ("sampling", "training")
MODE_TITLES = {
    "sampling": "EnvRunner sampling only (synchronous_parallel_sample)",
    "training": "full algo.train() (one SGD update per env step)",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "throughput"
PLOT = "throughput.png"
SEED = 0
POINT_EVERY_S = 1.0  # a learning-curve point at most this often: the sampling loop calls sample() ~100 times/s


# Measurements -----------------------------------------------------------------------------------------------


def build_algo(runners: int, envs: int, gpus_per_learner: float | None, rec: harness.Recorder):
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
    with rec.setup():
        return config.build_algo()


def measure_sampling(algo, rec: harness.Recorder) -> None:
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
    rec.extra["warmup_env_steps"] = sample()
    rec.extra["warmup_s"] = time.perf_counter() - t0

    env_steps, calls, last_point = 0, 0, 0.0
    rec.start()
    while True:
        env_steps += sample()
        calls += 1
        elapsed = rec.clock.elapsed()
        if elapsed - last_point >= POINT_EVERY_S or elapsed >= rec.budget:
            rec.record(env_steps)
            last_point = elapsed
        if elapsed >= rec.budget:
            break
    rec.stop(env_steps, sample_calls=calls, env_steps_per_call=env_steps / calls)


def _learner_device(algo) -> str | None:
    learner = getattr(algo.learner_group, "_learner", None)  # the local learner (num_learners=0)
    device = getattr(learner, "_device", None)
    return None if device is None else str(device)


def measure_training(algo, rec: harness.Recorder) -> None:
    """Env steps/s of algo.train(), from num_env_steps_sampled_lifetime deltas."""
    from rlfrontier.offpolicy import NUM_UPDATES_THIS_STEP  # SGD updates of one iteration

    t0 = time.perf_counter()
    start_steps = lifetime_steps(algo.train())  # warm-up: reaches learning_starts and the first updates
    rec.extra["warmup_s"] = time.perf_counter() - t0
    rec.extra["warmup_env_steps"] = start_steps

    iterations, updates = 0, 0
    rec.start()
    while True:
        result = algo.train()
        env_steps = lifetime_steps(result) - start_steps
        updates += int(result.get(NUM_UPDATES_THIS_STEP) or 0)
        iterations += 1
        rec.record(env_steps, sgd_updates=updates)
        if rec.clock.elapsed() >= rec.budget:
            break
    rec.stop(env_steps, iterations=iterations, sgd_updates=updates,
             sgd_updates_per_s=updates / rec.train_wall_s if rec.train_wall_s else None,
             learner_device=_learner_device(algo))


def run_cell(mode: str, runners: int, envs: int, gpus_per_learner: float, seed: int, seconds: float,
             rec: harness.Recorder) -> None:
    gpus = gpus_per_learner if mode == "training" and gpus_per_learner else None
    rec.extra["gpus_per_learner"] = gpus or 0
    algo = build_algo(runners, envs, gpus, rec)
    try:
        (measure_sampling if mode == "sampling" else measure_training)(algo, rec)
    finally:
        algo.stop()


# Flags and plan ---------------------------------------------------------------------------------------------


def int_list(low: int):
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
        if not values or any(v < low for v in values):
            raise argparse.ArgumentTypeError(f"give integers >= {low}, got {text!r}")
        return sorted(set(values))
    return parse


def mode_list(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"unknown {unknown or 'empty list'}; choose from {','.join(MODES)}")
    return [m for m in MODES if m in modes]


def non_negative(kind):
    def parse(text: str):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value
    return parse


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runners", type=int_list(0), default=[0, 1, 2], help="num_env_runners values (default 0,1,2)")
    p.add_argument("--envs", type=int_list(1), default=[1, 4, 16],
                   help="num_envs_per_env_runner values (default 1,4,16)")
    p.add_argument("--modes", type=mode_list, default=list(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    p.add_argument("--seconds", type=positive_float, default=10.0,
                   help="measured wall clock per cell and mode (default 10)")
    p.add_argument("--gpus-per-learner", type=non_negative(float), default=0.0,
                   help="num_gpus_per_learner of the training mode (default 0: CPU)")
    p.add_argument("--num-cpus", type=harness.positive_int, default=2, help="num_cpus given to ray.init (default 2)")


def config_defaults() -> dict[str, Any]:
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


def device(gpus_per_learner: float) -> str:
    from harness.machine import cpu_model, gpu_name, usable_cpus

    cpu = f"{cpu_model() or 'unknown CPU'}, {usable_cpus()} cores"
    if gpus_per_learner > 0:
        gpu = gpu_name() or "no CUDA device visible"
        return f"learner on GPU: {gpu} (num_gpus_per_learner={gpus_per_learner:g}); CPU: {cpu}"
    return f"CPU only: {cpu}"


def plan(args: argparse.Namespace) -> harness.Plan:
    contenders = [
        harness.Contender(name=mode, run=partial(run_cell, mode, r, e, args.gpus_per_learner), budget=args.seconds,
                          label=MODE_TITLES[mode], group={"runners": r, "envs": e})
        for r in args.runners for e in args.envs for mode in args.modes
    ]
    settings = {
        "algo": ALGO,
        "env": ENV_ID,
        "runners": args.runners,
        "envs": args.envs,
        "modes": args.modes,
        "seconds": args.seconds,
        "gpus_per_learner": args.gpus_per_learner,
        "ray_num_cpus": args.num_cpus,
        "device": device(args.gpus_per_learner),
        "soft_q_defaults": config_defaults(),
    }
    harness.log(f"device: {settings['device']}")
    return harness.Plan(contenders=contenders, seeds=[SEED], settings=settings,
                        session=lambda contenders, results: ray_session(results, num_cpus=args.num_cpus))


# Tables and plot ----------------------------------------------------------------------------------------------


def cells(results: dict[str, Any], mode: str) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r["group"]["runners"], r["group"]["envs"]): r for r in results["runs"] if r["contender"] == mode}


def fmt_cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return ""
    return "error" if run.get("error") else harness.fmt(run.get("env_steps_per_s"))


def render(results: dict[str, Any]) -> str:
    settings = results["settings"]
    runners, envs = settings["runners"], settings["envs"]
    defaults = settings.get("soft_q_defaults") or {}
    lines = [
        f"# {ENV_ID}: soft_q env steps/s by num_env_runners x num_envs_per_env_runner",
        "",
        f"**{settings['device']}** · " + harness.machine_line(results),
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
        by_cell = cells(results, mode)
        title = MODE_TITLES.get(mode, mode)
        if mode == "training" and settings.get("gpus_per_learner"):
            title += f", num_gpus_per_learner={settings['gpus_per_learner']:g}"
        lines += [
            "",
            f"## {mode}: {title}",
            "",
            harness.markdown_table(
                ["runners \\ envs per runner", *(str(e) for e in envs)],
                [[str(r), *(fmt_cell(by_cell.get((r, e))) for e in envs)] for r in runners],
                ["---", *("---:" for _ in envs)],
            ),
        ]
    usable = results["machine"].get("cpus_usable") or results["machine"].get("cpu_count")
    lines += [
        "",
        "Notes:",
        "",
        f"- Machine: {settings['device']}. Every remote EnvRunner is its own process and takes one of the "
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
    lines.append("- Building each algorithm and its warm-up are timed apart (setup_s, extra.warmup_s in "
                 "results.json) and not counted.")
    lines += harness.notes(results)
    lines += ["", f"![throughput]({PLOT})", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = results["settings"]
    runners, envs, modes = settings["runners"], settings["envs"], settings["modes"]
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.6), squeeze=False)
    width = 0.8 / max(len(envs), 1)
    x = np.arange(len(runners))
    for ax, mode in zip(axes[0], modes):
        by_cell = cells(results, mode)
        for i, e in enumerate(envs):
            values = []
            for r in runners:
                run = by_cell.get((r, e))
                values.append(run["env_steps_per_s"] or 0.0 if run and not run.get("error") else 0.0)
            bars = ax.bar(x + (i - (len(envs) - 1) / 2) * width, values, width, label=f"{e} envs/runner")
            ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=7, padding=1)
        ax.set_xticks(x, [str(r) for r in runners])
        ax.set_xlabel("num_env_runners (0: local EnvRunner)")
        ax.set_ylabel("env steps / s")
        ax.set_title(f"{mode}: {MODE_TITLES.get(mode, mode)}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{ENV_ID} soft_q throughput · {settings['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


BENCHMARK = harness.Benchmark(
    name="throughput",
    doc=__doc__,
    default_out=DEFAULT_OUT,
    add_arguments=add_arguments,
    plan=plan,
    render=render,
    plots={PLOT: plot},
)


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
