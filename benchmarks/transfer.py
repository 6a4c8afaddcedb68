#!/usr/bin/env python
"""Transfer benchmark (issue 10, part 7): domain randomisation and fine-tuning of soft_q on CartPole physics.

(a) Domain randomisation. soft_q trained on `rlfrontier/RandomCartPole-v0`
with a fresh draw of pole length, pole mass, cart mass and gravity at every
reset (`resample_on_reset=true`, TRAINING_RANGES) against soft_q trained on
the nominal physics (`CartPole-v1`, which RandomCartPole's nominal task
equals step for step), same seeds and env-step budget. Both are judged
greedily on HELD_OUT physics that lie outside the training ranges (a longer
or heavier pole, stronger gravity, a heavier cart), EVAL_EPISODES episodes
per task, and on the nominal physics as a control. Reported per task and per
seed: mean return and the margin (randomised - nominal).

(b) Fine-tuning. The nominal run's checkpoint fine-tuned with `--restore` on
SHIFTED physics (another env id, so only the policy's weights are loaded)
against soft_q from scratch on the same physics: env steps until the run's
own greedy evaluation (10 episodes on the shifted physics, every
--finetune-eval-interval iterations) reaches --target (475), within
--finetune-budget env steps.

Every training run is the real command line, `rlfrontier train soft_q ...
--json`, in a subprocess (tracked in MLflow like any run, experiment
--runs-experiment; with --lock FILE each one holds an exclusive flock on FILE
while it runs, so that runs of other users on a shared machine interleave).
The held-out evaluation loads each checkpoint's RLModule with
`rlfrontier.evaluation.build_env_runner` (what `rlfrontier evaluate` loads)
and plays it greedily (argmax Q) in this process on fixed physics: a
RandomCartPole whose every range is pinned to one value. Episode k of
evaluation task j resets with seed EVAL_SEED_BASE + 1000*j + k, the same for
every contender and seed. Runs on benchmarks/harness; see benchmarks/README.md.

    python benchmarks/transfer.py --seeds 3 --lock /tmp/ray.lock
    python benchmarks/transfer.py --seeds 1 --budget 3000 --finetune-budget 3000 --no-mlflow --out /tmp/transfer_smoke
    python benchmarks/transfer.py --from-json benchmarks/results/transfer/results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import harness

ALGO = "soft_q"
NOMINAL_ENV = "CartPole-v1"
RANDOM_ENV = "rlfrontier/RandomCartPole-v0"
# gymnasium's CartPole (RandomCartPoleEnv.nominal_task()); `length` is HALF the pole's length.
NOMINAL_TASK: dict[str, float] = {"length": 0.5, "masspole": 0.1, "masscart": 1.0, "gravity": 9.8}
# Domain randomisation: half to double the nominal pole, mass ranges around nominal, gravity +-20%.
TRAINING_RANGES: dict[str, tuple[float, float]] = {
    "length": (0.25, 1.0),
    "masspole": (0.05, 0.2),
    "masscart": (0.5, 1.5),
    "gravity": (8.0, 12.0),
}
# Held-out physics, each outside TRAINING_RANGES in at least one parameter (the rest nominal). The names
# become MLflow param keys (settings/held_out/<name>/...): letters, digits, spaces, - _ . : / only.
HELD_OUT: dict[str, dict[str, float]] = {
    "long pole": {"length": 1.5},
    "longer pole": {"length": 2.0},
    "long heavy pole": {"length": 1.25, "masspole": 0.4},
    "heavy cart in strong gravity": {"gravity": 16.0, "masscart": 2.5},
    "all four shifted": {"length": 1.5, "masspole": 0.3, "masscart": 2.0, "gravity": 14.0},
}
NOMINAL = "nominal"  # the control task in the held-out tables (inside every training range)
# Fine-tuning's target physics (outside the nominal run's, and outside TRAINING_RANGES too).
SHIFTED: dict[str, float] = {"length": 1.5, "masspole": 0.3}
EVAL_EPISODES = 20
EVAL_SEED_BASE = 3_000_000
DR, FT = "domain randomisation", "fine-tuning"
LABELS = {
    "nominal": "soft_q on nominal physics (CartPole-v1)",
    "randomised": "soft_q on randomised physics",
    "finetune": "nominal checkpoint fine-tuned (--restore)",
    "scratch": "soft_q from scratch",
}
EXPERIMENTS = {"randomisation": ("nominal", "randomised"), "finetune": ("nominal", "finetune", "scratch")}
REFERENCE = "scratch"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "transfer"
PLOT_HELD_OUT, PLOT_TRAINING, PLOT_FINETUNE = "held_out.png", "training_curves.png", "fine_tuning.png"


# Physics -----------------------------------------------------------------------------------------------


def task(changes: Mapping[str, float]) -> dict[str, float]:
    """A full task: the nominal physics with `changes`."""
    return {**NOMINAL_TASK, **changes}


def evaluation_tasks() -> dict[str, dict[str, float]]:
    """The tasks every domain-randomisation checkpoint is judged on: the nominal control, then HELD_OUT."""
    return {NOMINAL: task({}), **{name: task(changes) for name, changes in HELD_OUT.items()}}


def outside(physics: Mapping[str, float], ranges: Mapping[str, tuple[float, float]] = TRAINING_RANGES) -> list[str]:
    """The parameters of `physics` that lie outside their training range."""
    return [key for key, (low, high) in ranges.items() if not low <= physics[key] <= high]


def pinned_env_config(physics: Mapping[str, float]) -> dict[str, Any]:
    """RandomCartPole's env_config for fixed physics: every range pinned to one value, drawn (so set) at every reset."""
    return {**{f"{key}_range": [float(value), float(value)] for key, value in physics.items()},
            "resample_on_reset": True}


def randomised_env_config() -> dict[str, Any]:
    return {**{f"{key}_range": [low, high] for key, (low, high) in TRAINING_RANGES.items()},
            "resample_on_reset": True}


def env_config_args(env_config: Mapping[str, Any]) -> list[str]:
    """`--env-config` K=V pairs (values as JSON, which the CLI reads as YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in env_config.items()]


def eval_seeds(task_index: int, episodes: int) -> list[int]:
    return [EVAL_SEED_BASE + 1000 * task_index + k for k in range(episodes)]


def held_out_returns(checkpoint: str, *, episodes: int) -> dict[str, float]:
    """Mean greedy return of the checkpoint's policy on each evaluation task (and on SHIFTED)."""
    from rlfrontier.evaluation import act, build_env_runner, greedy_return_mean

    runner, _ = build_env_runner(checkpoint)  # the checkpoint's module, as `rlfrontier evaluate` loads it
    try:
        def policy(obs):
            return act(runner.module, obs, explore=False)

        tasks = {**evaluation_tasks(), FT: task(SHIFTED)}
        return {name: greedy_return_mean(policy, RANDOM_ENV, seeds=eval_seeds(j, episodes),
                                         env_config=pinned_env_config(physics))
                for j, (name, physics) in enumerate(tasks.items())}
    finally:
        runner.stop()


# The command line, one run at a time (benchmarks/harness/cli.py) ---------------------------------------------


def train(args: argparse.Namespace, *, env: str, env_config: Mapping[str, Any] | None, seed: int, budget: int,
          eval_interval: int, stop_reward: float | None = None, restore: str | None = None) -> tuple[dict, float]:
    """`rlfrontier train soft_q ... --json` in a subprocess: (its JSON line, the command's wall clock)."""
    argv = ["--env", env, "--seed", str(seed), "--stop-timesteps", str(budget), "--eval-interval", str(eval_interval)]
    if env_config:
        argv += ["--env-config", *env_config_args(env_config)]
    if stop_reward is not None:
        argv += ["--stop-reward", str(stop_reward)]
    if restore:
        argv += ["--restore", restore]
    return harness.cli.train(ALGO, argv, args)


def evaluation_curve(out: dict[str, Any], *, eval_interval: int, tracking_uri: str | None) -> list[dict[str, Any]]:
    """The run's fresh greedy evaluations (env steps, wall_s, eval return) per evaluated iteration, from its
    MLflow history (else Tune's result.json); falls back to the final point alone."""
    from rlfrontier import trainable as T

    final = [{"env_steps": out[T.ENV_STEPS], "wall_s": out[T.WALL_S], "eval_return": out.get(T.EVAL_RETURN_MEAN)}]
    rows, _ = harness.cli.evaluations(out, [T.EVAL_RETURN_MEAN], eval_interval=eval_interval,
                                      tracking_uri=tracking_uri)
    points = [{"env_steps": r["env_steps"], "wall_s": r["wall_s"], "eval_return": r[T.EVAL_RETURN_MEAN]}
              for r in rows if r[T.EVAL_RETURN_MEAN] is not None]
    return [p for p in points if p["wall_s"] is not None] or final


# Contenders ---------------------------------------------------------------------------------------------


def run_dr(name: str, args: argparse.Namespace, checkpoints: dict[int, str], seed: int, budget: int,
           rec: harness.Recorder) -> None:
    """nominal or randomised: train, then judge the final and the best checkpoint on every evaluation task."""
    env, env_config = (NOMINAL_ENV, None) if name == "nominal" else (RANDOM_ENV, randomised_env_config())
    out, wall = train(args, env=env, env_config=env_config, seed=seed, budget=budget, eval_interval=args.eval_interval)
    harness.cli.record(rec, out, wall, evaluation_curve(out, eval_interval=args.eval_interval, tracking_uri=args.tracking_uri))
    rec.extra["env"], rec.extra["env_config"] = env, env_config
    returns = {"final": held_out_returns(out["checkpoint"], episodes=args.episodes)}
    if out.get("best_checkpoint"):
        returns["best"] = held_out_returns(out["best_checkpoint"], episodes=args.episodes)
    rec.extra["returns"] = returns
    if name == "nominal":
        checkpoints[seed] = out.get("best_checkpoint") or out["checkpoint"]
    final = returns["final"]
    harness.log(f"{rec.name}: held-out mean {held_out_mean(final):.1f} (final checkpoint); "
                + ", ".join(f"{k} {v:.0f}" for k, v in final.items()))


def run_ft(name: str, args: argparse.Namespace, checkpoints: dict[int, str], seed: int, budget: int,
           rec: harness.Recorder) -> None:
    """finetune (from this seed's nominal checkpoint) or scratch, on SHIFTED, until the target or the budget."""
    restore = None
    if name == "finetune":
        restore = checkpoints.get(seed)
        if restore is None:
            raise RuntimeError(f"no nominal checkpoint for seed {seed} to fine-tune (the nominal run failed)")
        rec.extra["restored_from"] = restore
    out, wall = train(args, env=RANDOM_ENV, env_config=pinned_env_config(task(SHIFTED)), seed=seed, budget=budget,
                      eval_interval=args.finetune_eval_interval, stop_reward=args.target, restore=restore)
    harness.cli.record(rec, out, wall, evaluation_curve(out, eval_interval=args.finetune_eval_interval,
                                            tracking_uri=args.tracking_uri))


# Flags and plan ----------------------------------------------------------------------------------------------


def experiment_list(text: str) -> list[str]:
    names = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in names if e not in EXPERIMENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {unknown or 'empty list'}; choose from {','.join(EXPERIMENTS)}")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=harness.positive_int, default=3, help="seeds per contender: 0..N-1 (default 3)")
    p.add_argument("--experiments", type=experiment_list, default=list(EXPERIMENTS),
                   help="comma-separated subset of randomisation,finetune (finetune runs the nominal runs it "
                        "restores from)")
    p.add_argument("--budget", type=harness.positive_int, default=40_000,
                   help="env steps of the nominal and the randomised runs (default 40000)")
    p.add_argument("--finetune-budget", type=harness.positive_int, default=40_000,
                   help="env-step budget of the fine-tuned and the from-scratch runs (default 40000)")
    p.add_argument("--target", type=float, default=475.0,
                   help="greedy evaluation return that ends a fine-tuning or from-scratch run (default 475)")
    p.add_argument("--eval-interval", type=harness.positive_int, default=2,
                   help="iterations between the training runs' own evaluations, domain randomisation (default 2)")
    p.add_argument("--finetune-eval-interval", type=harness.positive_int, default=1,
                   help="iterations between evaluations of the fine-tuning and from-scratch runs (default 1)")
    p.add_argument("--episodes", type=harness.positive_int, default=EVAL_EPISODES,
                   help=f"greedy episodes per evaluation task (default {EVAL_EPISODES})")
    harness.cli.add_arguments(p, experiment="rlfrontier-transfer")


def plan(args: argparse.Namespace) -> harness.Plan:
    checkpoints: dict[int, str] = {}  # seed -> the nominal run's checkpoint that fine-tuning restores
    names = list(dict.fromkeys(n for e in args.experiments for n in EXPERIMENTS[e]))
    contenders = []
    for name in names:
        if name in EXPERIMENTS["randomisation"]:
            contenders.append(harness.Contender(
                name=name, run=partial(run_dr, name, args, checkpoints), budget=args.budget, label=LABELS[name],
                group={"experiment": DR}))
        else:
            contenders.append(harness.Contender(
                name=name, run=partial(run_ft, name, args, checkpoints), budget=args.finetune_budget,
                label=LABELS[name], group={"experiment": FT}))
    return harness.Plan(
        contenders=contenders,
        seeds=range(args.seeds),
        settings={
            "algo": ALGO,
            "experiments": args.experiments,
            "nominal_env": NOMINAL_ENV,
            "random_env": RANDOM_ENV,
            "nominal_task": NOMINAL_TASK,
            "training_ranges": TRAINING_RANGES,
            "held_out": {name: task(changes) for name, changes in HELD_OUT.items()},
            "shifted": task(SHIFTED),
            "budget": args.budget,
            "finetune_budget": args.finetune_budget,
            "eval_interval": args.eval_interval,
            "finetune_eval_interval": args.finetune_eval_interval,
            "episodes": args.episodes,
            "eval_seed_base": EVAL_SEED_BASE,
            "runs_experiment": args.runs_experiment,
        },
        target=args.target,
        reference=REFERENCE if "finetune" in args.experiments else None,
        resumed=partial(resumed_run, checkpoints),
    )


def resumed_run(checkpoints: dict[int, str], run: dict[str, Any]) -> str | None:
    """--resume: a kept nominal run hands its checkpoint to its seed's fine-tuning run again, if it is still
    there (else the nominal run runs again)."""
    if run["contender"] != "nominal":
        return None
    extra = run.get("extra") or {}
    path = extra.get("best_checkpoint") or extra.get("checkpoint")
    if not path or not Path(path).is_dir():
        return f"its checkpoint {path} is gone, and fine-tuning restores it"
    checkpoints[int(run["seed"])] = path
    return None


# Tables and plots --------------------------------------------------------------------------------------------


def held_out_mean(returns: Mapping[str, float]) -> float:
    return statistics.fmean(returns[name] for name in HELD_OUT)


def dr_runs(results: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return sorted((r for r in results["runs"] if r["contender"] == name and not r.get("error")
                   and (r.get("extra") or {}).get("returns")), key=lambda r: r["seed"])


def returns_of(run: dict[str, Any], which: str) -> dict[str, float] | None:
    return run["extra"]["returns"].get(which)


def paired(results: dict[str, Any], which: str) -> list[tuple[int, dict[str, float], dict[str, float]]]:
    """(seed, nominal's returns, randomised's returns) for the seeds both have (which: final or best checkpoint)."""
    nominal = {r["seed"]: returns_of(r, which) for r in dr_runs(results, "nominal")}
    randomised = {r["seed"]: returns_of(r, which) for r in dr_runs(results, "randomised")}
    return [(s, nominal[s], randomised[s]) for s in sorted(nominal) if nominal[s] and randomised.get(s)]


def mean_range(values: list[float]) -> str:
    if not values:
        return "—"
    text = f"{statistics.fmean(values):,.1f}"
    return text if len(values) == 1 else f"{text} ({min(values):,.1f}–{max(values):,.1f})"


def physics_text(physics: Mapping[str, float]) -> str:
    changed = {k: v for k, v in physics.items() if v != NOMINAL_TASK[k]}
    return ", ".join(f"{k} {v:g}" for k, v in changed.items()) or "nominal"


def dr_table(results: dict[str, Any], which: str) -> list[str]:
    pairs = paired(results, which)
    if not pairs:
        return []
    ranges = results["settings"]["training_ranges"]
    n = len(pairs)
    rows = []
    names = [NOMINAL, *HELD_OUT]
    for name in [*names, "held-out mean"]:
        def value(returns: dict[str, float]) -> float:
            return held_out_mean(returns) if name == "held-out mean" else returns[name]

        nom = [value(a) for _, a, _ in pairs]
        ran = [value(b) for _, _, b in pairs]
        margins = [b - a for a, b in zip(nom, ran)]
        if name == "held-out mean":
            physics, out_keys = f"mean of the {len(HELD_OUT)} above", ""
        else:
            physics_dict = results["settings"]["held_out"].get(name, results["settings"]["nominal_task"])
            physics = physics_text(physics_dict)
            out_keys = ", ".join(outside(physics_dict, {k: tuple(v) for k, v in ranges.items()})) or "none (inside)"
        rows.append([f"**{name}**" if name == "held-out mean" else name, physics, out_keys, mean_range(nom),
                     mean_range(ran), mean_range(margins), f"{sum(m > 0 for m in margins)}/{n}"])
    headers = ["physics", "values (rest nominal)", "outside training range", "nominal: mean (min–max)",
               "randomised: mean (min–max)", "margin randomised − nominal", "seeds randomised ahead"]
    return [harness.markdown_table(headers, rows, ["---", "---", "---", "---:", "---:", "---:", "---:"])]


def dr_per_seed(results: dict[str, Any]) -> list[str]:
    rows = []
    for which in ("final", "best"):
        for seed, a, b in paired(results, which):
            rows.append([which, f"s{seed}", f"{held_out_mean(a):,.1f}", f"{held_out_mean(b):,.1f}",
                         f"{held_out_mean(b) - held_out_mean(a):+,.1f}", f"{a[NOMINAL]:,.1f}", f"{b[NOMINAL]:,.1f}"])
    if not rows:
        return []
    headers = ["checkpoint", "seed", "nominal: held-out mean", "randomised: held-out mean", "margin",
               "nominal: on nominal physics", "randomised: on nominal physics"]
    return [harness.markdown_table(headers, rows, ["---", "---", "---:", "---:", "---:", "---:", "---:"])]


def ft_start_lines(results: dict[str, Any]) -> list[str]:
    """What fine-tuning starts from: the nominal checkpoint's greedy return on the shifted physics."""
    cells = []
    for r in dr_runs(results, "nominal"):
        ret = r["extra"]["returns"].get("best") or r["extra"]["returns"]["final"]
        if FT in ret:
            cells.append(f"s{r['seed']}: {ret[FT]:,.1f}")
    return [f"The restored nominal policy on the shifted physics before any fine-tuning ({results['settings']['episodes']} "
            f"greedy episodes): {', '.join(cells)}."] if cells else []


def render(results: dict[str, Any]) -> str:
    settings, target = results["settings"], results["target"]
    summaries = harness.summarize(results)
    ranges = ", ".join(f"{k} {lo:g}–{hi:g}" for k, (lo, hi) in settings["training_ranges"].items())
    lines = [
        "# Transfer: soft_q on CartPole physics",
        "",
        harness.machine_line(results),
        "",
    ]
    dr = [s for s in summaries if s.group.get("experiment") == DR]
    ft = [s for s in summaries if s.group.get("experiment") == FT]
    if any(s.contender == "randomised" for s in dr):
        lines += [
            "## Domain randomisation",
            "",
            f"soft_q (defaults) for {settings['budget']:,} env steps per run, on `{settings['nominal_env']}` (the "
            "nominal physics: " + ", ".join(f"{k} {v:g}" for k, v in settings["nominal_task"].items())
            + f") or on `{settings['random_env']}` with physics drawn at every reset uniformly from "
            f"{ranges} (`length` is half the pole's length). Each run's checkpoints judged greedily on fixed "
            f"physics, {settings['episodes']} episodes per task (the same start states for every run). Final "
            "checkpoint (the policy at the end of the budget):",
            "",
            *dr_table(results, "final"),
            "",
            "Best checkpoint (the best of the run's own evaluations on its training physics, every "
            f"{settings['eval_interval']} iterations; no held-out data in the choice):",
            "",
            *dr_table(results, "best"),
            "",
            "Per seed, mean over the held-out physics:",
            "",
            *dr_per_seed(results),
            "",
        ]
    if dr:
        lines += [
            f"Training runs on their own physics (greedy evaluation of 10 episodes every {settings['eval_interval']} "
            "iterations; for the randomised run, freshly drawn physics):",
            "",
            harness.summary_table(dr, [harness.CONTENDER, *harness.to_target_columns(f"{target:g}"),
                                       harness.STEPS_PER_S, harness.SETUP]),
            "",
        ]
    if ft:
        lines += [
            "## Fine-tuning",
            "",
            f"On the shifted physics ({physics_text(settings['shifted'])}, the rest nominal): the nominal run's best "
            "checkpoint (else its last) restored with `--restore` (another env id, so the policy's weights only: no "
            "optimiser state, counters or replay) against soft_q from scratch; both stop at the first of their "
            f"own greedy evaluations (10 episodes, every {settings['finetune_eval_interval']} iteration(s)) with "
            f"mean return >= {target:g}, or at {settings['finetune_budget']:,} env steps. Wall clock is the run's own "
            "`wall_s` (training and its evaluations); set-up is the rest of the command's wall clock (Ray, "
            "building the algorithm, Tune).",
            "",
            *ft_start_lines(results),
            "",
            harness.summary_table(ft, harness.standard_columns(f"{target:g}")),
            "",
            f"Per seed, env steps to {target:g}:",
            "",
            *harness.per_run_lines(ft, lambda r: harness.fmt(r.get("steps_to_target")) if r.get("reached")
                                   else f"never (last {harness.fmt((r.get('extra') or {}).get('final_eval_return'), 1)})"),
            "",
        ]
        ratios = harness.ratio_table(ft, REFERENCE) if results.get("reference") else None
        if ratios:
            lines += [ratios, ""]
    notes = harness.notes(results)
    if notes:
        lines += ["Notes:", "", *notes, ""]
    plots = [(PLOT_HELD_OUT, "held-out returns"), (PLOT_TRAINING, "training curves"), (PLOT_FINETUNE, "fine-tuning")]
    lines += [f"![{alt}]({name})" for name, alt in plots]
    return "\n".join(lines) + "\n"


def plot_held_out(results: dict[str, Any], path: Path) -> bool:
    pairs = paired(results, "final")
    if not pairs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [NOMINAL, *HELD_OUT]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.38
    for i, (who, colour) in enumerate((("nominal", "C0"), ("randomised", "C1"))):
        per_task = [[(a if who == "nominal" else b)[name] for _, a, b in pairs] for name in names]
        xs = [j + (i - 0.5) * width for j in range(len(names))]
        ax.bar(xs, [statistics.fmean(v) for v in per_task], width, color=colour, alpha=0.6, label=LABELS[who])
        for x, values in zip(xs, per_task):
            ax.scatter([x] * len(values), values, color=colour, s=14, zorder=3)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace(", ", ",\n") for n in names], fontsize=8)
    ax.set_ylabel(f"greedy return (mean of {results['settings']['episodes']} episodes)")
    ax.set_ylim(0, 510)
    ax.set_title("Final checkpoints on the nominal and held-out physics (bars: mean over seeds; dots: seeds)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_curves(experiment: str, title: str, results: dict[str, Any], path: Path) -> bool:
    runs = [r for r in results["runs"] if (r.get("group") or {}).get("experiment") == experiment]
    return bool(runs) and harness.plot_learning_curves(
        results, path, runs=runs, ylabel="greedy return (the run's own evaluation, 10 episodes)", title=title,
        x_keys=("env_steps",), ylim=(0, 510))


BENCHMARK = harness.Benchmark(
    name="transfer",
    doc=__doc__,
    default_out=DEFAULT_OUT,
    add_arguments=add_arguments,
    plan=plan,
    render=render,
    plots={
        PLOT_HELD_OUT: plot_held_out,
        PLOT_TRAINING: partial(plot_curves, DR, "Training on nominal vs randomised physics (own physics)"),
        PLOT_FINETUNE: partial(plot_curves, FT, "Shifted physics: fine-tuned from nominal vs from scratch"),
    },
)


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
