#!/usr/bin/env python
"""DeepSea benchmark: boot_dqn against epsilon-greedy DQN (same code) and RLlib's DQN.

For each size N and seed, each contender trains until its greedy policy finds
the treasure (one greedy episode returns >= 0.98; the optimum is 0.99) or its
step budget runs out. The greedy episode is played every --eval-every env
steps on a fresh DeepSea of the same size and action mapping (the run's
own: each seed draws its own mapping, so seeds are different MDPs); training wall
clock excludes it. Reported: seeds solved, episodes (= env steps / N) and wall
clock to the first solve (median over seeds, a run that never solves counted
as slowest), env steps/s, and episodes to solve against N on log-log axes.
Runs on benchmarks/harness; see benchmarks/README.md.

    python benchmarks/deep_sea.py --sizes 10 16 --seeds 3
    python benchmarks/deep_sea.py --from-json benchmarks/results/deep_sea/results.json
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

import harness
from harness.rllib import ray_session, train_until_target

ENV_ID = "rlfrontier/DeepSea-v0"
SOLVED = 0.98
CONTENDERS = ("boot_dqn", "eps_dqn", "rllib_dqn")
REFERENCE = "boot_dqn"
LABELS = {
    "boot_dqn": "boot_dqn (rlfrontier: 10 heads, priors)",
    "eps_dqn": "epsilon-greedy DQN (same code: 1 head, no prior)",
    "rllib_dqn": "RLlib DQN (epsilon-greedy)",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "deep_sea"
PLOT = "episodes_to_solve.png"


def _epsilon(budget: int) -> list[list[float]]:
    return [[0, 1.0], [budget // 2, 0.05]]


def build(contender: str, size: int, seed: int, budget: int):
    from rlfrontier.configure import build_config

    if contender == "boot_dqn":
        algo, overrides = "boot_dqn", {}
    elif contender == "eps_dqn":
        algo = "boot_dqn"
        overrides = {"num_heads": 1, "prior_scale": 0.0, "mask_prob": 1.0, "epsilon": _epsilon(budget)}
    else:
        # RLlib's DQN with its tuned CartPole settings; the registry's module
        # explores from DeepSea's all-zero terminal observation (rlfrontier.baselines).
        algo = "dqn"
        overrides = {"epsilon": _epsilon(budget)}
    _, config, _ = build_config(algo=algo, env=ENV_ID, env_config={"size": size}, seed=seed,
                                overrides=overrides, evaluation_interval=0)
    return config.build_algo()


def greedy_return(module, env_config: dict[str, Any]) -> float:
    """One greedy episode on the run's own DeepSea (env_config holds its mapping_seed)."""
    import numpy as np

    from rlfrontier.envs.deep_sea import DeepSeaEnv
    from rlfrontier.evaluation import act

    env = DeepSeaEnv(**env_config)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        action = int(np.asarray(act(module, obs[None], explore=False)).reshape(-1)[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


def run_deep_sea(contender: str, size: int, seed: int, budget: int, rec: harness.Recorder) -> None:
    with rec.setup():
        algo = build(contender, size, seed, budget)
    env_config = dict(algo.config.env_config)
    rec.extra["mapping_seed"] = env_config.get("mapping_seed")
    train_until_target(algo, rec, lambda: greedy_return(algo.get_module(), env_config))


# Flags and plan ---------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=harness.positive_int, nargs="+", default=[10, 16], help="DeepSea sizes N")
    p.add_argument("--seeds", type=harness.positive_int, default=3, help="seeds per contender and size: 0..N-1")
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    p.add_argument("--steps-per-size", type=harness.positive_int, default=1000, help="budget = this x N env steps")
    p.add_argument("--eval-every", type=harness.positive_int, default=500, help="env steps between greedy episodes")


def plan(args: argparse.Namespace) -> harness.Plan:
    contenders = [
        harness.Contender(name=name, run=partial(run_deep_sea, name, size), budget=args.steps_per_size * size,
                          label=LABELS[name], group={"size": size})
        for size in args.sizes for name in args.contenders
    ]
    return harness.Plan(
        contenders=contenders,
        seeds=range(args.seeds),
        settings={"env": ENV_ID, "sizes": args.sizes, "steps_per_size": args.steps_per_size, "eval_episodes": 1},
        target=SOLVED,
        eval_every=args.eval_every,
        reference=REFERENCE,
        session=lambda contenders, results: ray_session(results),
    )


# Tables and plot ----------------------------------------------------------------------------------------------


def episodes(run: dict[str, Any]) -> int | None:
    """Whole episodes played before the solving evaluation (every episode is N steps)."""
    steps = run.get("steps_to_target")
    return None if steps is None else steps // run["group"]["size"]


def episode_stats(s: harness.Summary) -> harness.Stats:
    return harness.censored_stats([episodes(r) for r in s.runs])


def render(results: dict[str, Any]) -> str:
    settings = results["settings"]
    summaries = harness.summarize(results)
    columns = [
        harness.group_column("size", "N"),
        harness.CONTENDER,
        harness.Column("solved", lambda s: f"{s.reached}/{s.n}"),
        harness.Column("episodes to solve: median (min–max)", lambda s: harness.fmt_stats(episode_stats(s))),
        harness.Column("wall-clock to solve (s): median (min–max)", lambda s: harness.fmt_stats(s.wall_s, 1)),
        harness.STEPS_PER_S,
    ]
    lines = [
        "# DeepSea: deep exploration",
        "",
        harness.machine_line(results),
        "",
        f"Budget per run: {settings['steps_per_size']:,} x N env steps; greedy episode every "
        f"{results['eval_every']:,} env steps; solved = greedy return >= {results['target']}. Medians count a run "
        "that never solved as slowest (never: the median run did not solve).",
        "",
        harness.summary_table(summaries, columns),
        "",
        "Per run (episodes to solve; never = not within the budget):",
        "",
        *harness.per_run_lines(summaries, lambda r: harness.fmt(episodes(r)) if r.get("reached") else "never"),
    ]
    ratios = harness.ratio_table(summaries, results["reference"], group_keys=["size"]) \
        if results.get("reference") else None
    if ratios:
        lines += ["", ratios]
    notes = harness.notes(results)
    if notes:
        lines += ["", *notes]
    lines += ["", f"![episodes to solve]({PLOT})", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    return harness.plot_by_group(
        results, harness.summarize(results), path, key="size", value=episode_stats,
        xlabel="DeepSea size N", ylabel="episodes to solve (median, min–max)",
        title="DeepSea: episodes until the greedy policy finds the treasure (log-log)", loglog=True)


BENCHMARK = harness.Benchmark(
    name="deep_sea",
    doc=__doc__,
    default_out=DEFAULT_OUT,
    add_arguments=add_arguments,
    plan=plan,
    render=render,
    plots={PLOT: plot},
)


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
