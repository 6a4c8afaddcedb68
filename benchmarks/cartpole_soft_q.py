#!/usr/bin/env python
"""CartPole-v1 benchmark: soft_q against RLlib's DQN and Stable-Baselines3's DQN.

Every contender is trained for N seeds and judged by the same evaluation:
every --eval-every env steps, 10 greedy episodes on fresh CartPole-v1 envs
with fixed seeds. A run stops at the first evaluation whose mean return
reaches --target (450) or at its step budget. Training wall clock excludes
evaluation; setup (ray.init, building the algorithm) is recorded apart.
Runs on benchmarks/harness; see benchmarks/README.md.

    python benchmarks/cartpole_soft_q.py --seeds 5
    python benchmarks/cartpole_soft_q.py --from-json benchmarks/results/results.json
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

import harness
from harness.rllib import ray_session, train_until_target

ENV_ID = "CartPole-v1"
ALGOS = ("soft_q", "dqn", "sb3_dqn")
REFERENCE = "soft_q"
LABELS = {
    "soft_q": "soft_q (rlfrontier)",
    "dqn": "RLlib DQN (tuned CartPole)",
    "sb3_dqn": "SB3 DQN (rl-zoo CartPole)",
}
EVAL_EPISODES = 10
# Evaluation episode k of a run with seed s starts from reset(seed=EVAL_SEED_BASE + 100*s + k):
# the same episodes for every contender and every evaluation of that seed, and
# none of them a training seed.
EVAL_SEED_BASE = 1_000_000
WARMUP_SEED = 10_000
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
PLOT = "learning_curves.png"

# rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1 (n_timesteps there: 5e4).
SB3_DQN_HPARAMS: dict[str, Any] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}

Policy = Callable[[np.ndarray], np.ndarray]


# The success criterion: greedy return on fixed start states ---------------------------------------------


def eval_seeds(run_seed: int) -> list[int]:
    return [EVAL_SEED_BASE + 100 * run_seed + k for k in range(EVAL_EPISODES)]


def greedy_return_mean(policy: Policy, seeds: list[int]) -> float:
    """Mean undiscounted return of one CartPole episode per seed (rlfrontier.evaluation)."""
    from rlfrontier.evaluation import greedy_return_mean as play

    return play(policy, ENV_ID, seeds=seeds)


# Contenders -----------------------------------------------------------------------------------------------


def run_rllib(name: str, seed: int, budget: int, rec: harness.Recorder) -> None:
    """soft_q or RLlib's dqn, built by the project's own build_config."""
    from rlfrontier.configure import build_config
    from rlfrontier.evaluation import act

    _, config, _ = build_config(algo=name, env=ENV_ID, seed=seed, evaluation_interval=0)
    with rec.setup():
        algo = config.build_algo()
    seeds = eval_seeds(seed)
    # The local EnvRunner's module: its weights are synced from the learner
    # after every update, and forward_inference with a deterministic
    # inference distribution is the greedy policy.
    train_until_target(algo, rec, lambda: greedy_return_mean(
        lambda obs: act(algo.get_module(), obs, explore=False), seeds))


def make_sb3_dqn(seed: int):
    import gymnasium as gym
    from stable_baselines3 import DQN

    return DQN("MlpPolicy", gym.make(ENV_ID), seed=seed, device="cpu", verbose=0, **SB3_DQN_HPARAMS)


def run_sb3_dqn(seed: int, budget: int, rec: harness.Recorder) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    with rec.setup():
        model = make_sb3_dqn(seed)
    seeds = eval_seeds(seed)

    def evaluate() -> float:
        return greedy_return_mean(lambda obs: model.predict(obs, deterministic=True)[0], seeds)

    class EvalEvery(BaseCallback):
        """Evaluates when the recorder says so (after every env step); False stops learn()."""

        def _on_step(self) -> bool:
            if rec.due(self.num_timesteps):
                return not rec.evaluate(self.num_timesteps, evaluate)
            return True

    rec.start()
    model.learn(total_timesteps=budget, callback=EvalEvery(), progress_bar=False)
    rec.stop(int(model.num_timesteps))
    rec.evaluate_at_end(int(model.num_timesteps), evaluate)


def sb3_missing() -> str | None:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return "stable_baselines3 is not installed (pip install -e '.[bench]', or `make bench`)"
    return None


def warm_up(contenders: list[harness.Contender]) -> None:
    """One short untimed run per contender before the measured ones.

    The first algorithm built in a process pays one-time costs (lazy imports,
    torch's first calls: about 1.5 s of build and 1.5 s of the first train()
    here) that would otherwise land on seed 0 of whichever contender runs first.
    """
    for name in dict.fromkeys(c.name for c in contenders):
        if name == "sb3_dqn":
            model = make_sb3_dqn(WARMUP_SEED)
            model.learn(total_timesteps=SB3_DQN_HPARAMS["learning_starts"] + SB3_DQN_HPARAMS["train_freq"])
            greedy_return_mean(lambda obs: model.predict(obs, deterministic=True)[0], [WARMUP_SEED])
            continue
        from rlfrontier.configure import build_config
        from rlfrontier.evaluation import act

        _, config, _ = build_config(algo=name, env=ENV_ID, seed=WARMUP_SEED, evaluation_interval=0)
        algo = config.build_algo()
        try:
            algo.train()  # ~1000 env steps: up to learning_starts and the first update
            greedy_return_mean(lambda obs: act(algo.get_module(), obs, explore=False), [WARMUP_SEED])
        finally:
            algo.stop()


# Flags and plan ---------------------------------------------------------------------------------------------


def algo_list(text: str) -> list[str]:
    algos = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in algos if a not in ALGOS]
    if unknown or not algos:
        raise argparse.ArgumentTypeError(f"unknown {unknown or 'empty list'}; choose from {','.join(ALGOS)}")
    return algos


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=harness.positive_int, default=5, help="seeds per contender: 0..N-1 (default 5)")
    p.add_argument("--algos", type=algo_list, default=list(ALGOS), help=f"comma-separated subset of {','.join(ALGOS)}")
    p.add_argument("--max-steps", type=harness.positive_int, default=60_000,
                   help="env-step budget of soft_q and sb3_dqn")
    p.add_argument("--dqn-max-steps", type=harness.positive_int, default=60_000, help="env-step budget of RLlib's dqn")
    p.add_argument("--eval-every", type=harness.positive_int, default=2000, help="env steps between evaluations")
    p.add_argument("--target", type=float, default=450.0, help="greedy mean return that ends a run")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed warm-up run of each contender")


def contender(name: str, args: argparse.Namespace) -> harness.Contender:
    if name == "sb3_dqn":
        return harness.Contender(name=name, run=run_sb3_dqn, budget=args.max_steps, label=LABELS[name],
                                 available=sb3_missing)
    budget = args.dqn_max_steps if name == "dqn" else args.max_steps
    return harness.Contender(name=name, run=partial(run_rllib, name), budget=budget, label=LABELS[name])


def session(contenders: list[harness.Contender], results: dict[str, Any]):
    from contextlib import nullcontext

    if all(c.name == "sb3_dqn" for c in contenders):
        return nullcontext()
    return ray_session(results, num_cpus=2)


def plan(args: argparse.Namespace) -> harness.Plan:
    return harness.Plan(
        contenders=[contender(name, args) for name in args.algos],
        seeds=range(args.seeds),
        settings={
            "env": ENV_ID,
            "algos": args.algos,
            "max_steps": args.max_steps,
            "dqn_max_steps": args.dqn_max_steps,
            "eval_episodes": EVAL_EPISODES,
            "eval_seed_base": EVAL_SEED_BASE,
            "warmup": args.warmup,
            "sb3_dqn_hyperparameters": SB3_DQN_HPARAMS,
        },
        target=args.target,
        eval_every=args.eval_every,
        reference=REFERENCE,
        session=session,
        warmup=warm_up if args.warmup else None,
    )


# Tables and plot ----------------------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    settings, target = results["settings"], results["target"]
    summaries = harness.summarize(results)
    budgets = ", ".join(f"{c['name']} {c['budget']:,}" for c in results["contenders"])
    label = f"{target:g}"
    lines = [
        f"# {ENV_ID}: soft_q vs RLlib DQN vs SB3 DQN",
        "",
        harness.machine_line(results),
        "",
        f"Target: greedy mean return >= {label} over {settings['eval_episodes']} episodes, evaluated every "
        f"{results['eval_every']:,} env steps. Step budgets: {budgets}. Wall clock is training time only "
        "(evaluation excluded, setup apart). Medians count a run that never reached the target as infinitely "
        "slow (never: the median run did not reach it).",
        "",
        harness.summary_table(summaries, harness.standard_columns(label)),
        "",
        "Per seed, env steps to the target:",
        "",
        *harness.per_run_lines(summaries, lambda r: harness.fmt(r.get("steps_to_target"))
                               if r.get("reached") else "never"),
        "",
        "Per seed, wall-clock to the target (s):",
        "",
        *harness.per_run_lines(summaries, lambda r: harness.fmt(r.get("wall_s_to_target"), 1)
                               if r.get("reached") else "never"),
    ]
    ratios = harness.ratio_table(summaries, results["reference"]) if results.get("reference") else None
    if ratios:
        lines += ["", ratios]
    notes = harness.notes(results)
    if notes:
        lines += ["", *notes]
    lines += ["", f"![learning curves]({PLOT})", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    return harness.plot_learning_curves(
        results, path, ylabel=f"greedy return (mean of {results['settings']['eval_episodes']} episodes)",
        title=f"{ENV_ID}: one line per seed", ylim=(0, 510))


BENCHMARK = harness.Benchmark(
    name="cartpole_soft_q",
    doc=__doc__,
    default_out=DEFAULT_OUT,
    add_arguments=add_arguments,
    plan=plan,
    render=render,
    plots={PLOT: plot},
)


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
