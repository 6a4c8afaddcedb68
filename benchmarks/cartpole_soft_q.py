#!/usr/bin/env python
"""CartPole-v1 benchmark: soft_q against RLlib's DQN and Stable-Baselines3's DQN.

Every contender is trained for N seeds and judged by the same harness-side
evaluation: every --eval-every env steps, 10 greedy episodes on fresh
CartPole-v1 envs with fixed seeds. A run stops at the first evaluation whose
mean return reaches --target (450) or at its step budget. Training wall clock
excludes evaluation; setup (ray.init, building the algorithm) is recorded
apart. See benchmarks/README.md.

    python benchmarks/cartpole_soft_q.py --seeds 5
    python benchmarks/cartpole_soft_q.py --from-json benchmarks/results/results.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

ENV_ID = "CartPole-v1"
ALGOS = ("soft_q", "dqn", "sb3_dqn")
LABELS = {
    "soft_q": "soft_q (rlfrontier)",
    "dqn": "RLlib DQN (tuned CartPole)",
    "sb3_dqn": "SB3 DQN (rl-zoo CartPole)",
}
COLOURS = {"soft_q": "tab:blue", "dqn": "tab:orange", "sb3_dqn": "tab:green"}
EVAL_EPISODES = 10
# Evaluation episode k of a run with seed s starts from reset(seed=EVAL_SEED_BASE + 100*s + k):
# the same episodes for every contender and every evaluation of that seed, and
# none of them a training seed.
EVAL_SEED_BASE = 1_000_000
DEFAULT_OUT = Path(__file__).resolve().parent / "results"

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


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Evaluation -------------------------------------------------------------------


def eval_seeds(run_seed: int) -> list[int]:
    return [EVAL_SEED_BASE + 100 * run_seed + k for k in range(EVAL_EPISODES)]


def greedy_return_mean(policy: Policy, seeds: list[int]) -> float:
    """Mean undiscounted return of one episode per seed, all envs stepped as one batch."""
    import gymnasium as gym

    envs = [gym.make(ENV_ID) for _ in seeds]
    try:
        obs = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
        returns = np.zeros(len(envs))
        alive = list(range(len(envs)))
        while alive:
            batch = np.stack([obs[i] for i in alive]).astype(np.float32)
            actions = np.asarray(policy(batch)).reshape(-1)
            still_alive = []
            for i, action in zip(alive, actions):
                obs[i], reward, terminated, truncated, _ = envs[i].step(int(action))
                returns[i] += float(reward)
                if not (terminated or truncated):
                    still_alive.append(i)
            alive = still_alive
    finally:
        for env in envs:
            env.close()
    return float(returns.mean())


class TrainingClock:
    """Wall clock of training: runs from start(), stands still inside paused()."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._excluded = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()
        self._excluded = 0.0

    def elapsed(self) -> float:
        assert self._start is not None, "clock not started"
        return time.perf_counter() - self._start - self._excluded

    @contextmanager
    def paused(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._excluded += time.perf_counter() - t0


class RunRecorder:
    """Evaluation schedule, learning curve and stop decision of one (algo, seed) run."""

    def __init__(self, algo: str, seed: int, *, eval_every: int, target: float, budget: int) -> None:
        self.algo = algo
        self.seed = seed
        self.eval_every = eval_every
        self.target = target
        self.budget = budget
        self.clock = TrainingClock()
        self.next_eval = eval_every
        self.curve: list[dict[str, float]] = []
        self.steps_to_target: int | None = None
        self.wall_s_to_target: float | None = None
        self.eval_s = 0.0
        self._seeds = eval_seeds(seed)

    def due(self, env_steps: int) -> bool:
        return env_steps >= self.next_eval

    @property
    def last_eval_steps(self) -> int | None:
        return int(self.curve[-1]["env_steps"]) if self.curve else None

    def evaluate(self, env_steps: int, policy: Policy) -> bool:
        """Evaluates with the training clock paused; True once the target is reached."""
        wall_s = self.clock.elapsed()
        t0 = time.perf_counter()
        with self.clock.paused():
            ret = greedy_return_mean(policy, self._seeds)
        self.eval_s += time.perf_counter() - t0
        self.curve.append({"env_steps": int(env_steps), "wall_s": wall_s, "eval_return_mean": ret})
        while self.next_eval <= env_steps:
            self.next_eval += self.eval_every
        reached = ret >= self.target
        if reached and self.steps_to_target is None:
            self.steps_to_target = int(env_steps)
            self.wall_s_to_target = wall_s
        log(
            f"{self.algo} seed {self.seed}: {env_steps:>6} steps  {wall_s:7.1f} s  "
            f"eval return {ret:6.1f}" + ("  -> target reached" if reached else "")
        )
        return reached

    def result(self, *, env_steps: int, train_s: float, setup_s: float, **extra: Any) -> dict[str, Any]:
        return {
            "algo": self.algo,
            "seed": self.seed,
            "steps_to_target": self.steps_to_target,
            "wall_s_to_target": self.wall_s_to_target,
            "env_steps": int(env_steps),
            "train_wall_s": train_s,
            "env_steps_per_s": env_steps / train_s if train_s > 0 else None,
            "setup_s": setup_s,
            "eval_s": self.eval_s,
            "step_budget": self.budget,
            "curve": self.curve,
            **extra,
        }


# Contenders -------------------------------------------------------------------


def run_rllib(name: str, seed: int, *, budget: int, args: argparse.Namespace) -> dict[str, Any]:
    """soft_q or RLlib's dqn, built by the project's own build_config."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    from rlfrontier.configure import build_config
    from rlfrontier.evaluation import act

    _, config, _ = build_config(algo=name, env=ENV_ID, seed=seed, evaluation_interval=0)
    t0 = time.perf_counter()
    algo = config.build_algo()
    setup_s = time.perf_counter() - t0
    rec = RunRecorder(name, seed, eval_every=args.eval_every, target=args.target, budget=budget)

    def policy(obs: np.ndarray) -> np.ndarray:
        # The local EnvRunner's module: its weights are synced from the learner
        # after every update, and forward_inference with a deterministic
        # inference distribution is the greedy policy.
        return act(algo.get_module(), obs, explore=False)

    env_steps, iterations = 0, 0
    try:
        rec.clock.start()
        while env_steps < budget:
            result = algo.train()
            iterations += 1
            env_steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
            if (rec.due(env_steps) or env_steps >= budget) and rec.evaluate(env_steps, policy):
                break
        train_s = rec.clock.elapsed()
    finally:
        algo.stop()
    return rec.result(env_steps=env_steps, train_s=train_s, setup_s=setup_s, iterations=iterations)


def run_sb3_dqn(seed: int, *, budget: int, args: argparse.Namespace) -> dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    t0 = time.perf_counter()
    model = DQN("MlpPolicy", gym.make(ENV_ID), seed=seed, device="cpu", verbose=0, **SB3_DQN_HPARAMS)
    setup_s = time.perf_counter() - t0
    rec = RunRecorder("sb3_dqn", seed, eval_every=args.eval_every, target=args.target, budget=budget)

    def policy(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    class EvalEvery(BaseCallback):
        """Evaluates when num_timesteps crosses the next multiple of eval_every; False stops learn()."""

        def _on_step(self) -> bool:
            if rec.due(self.num_timesteps):
                return not rec.evaluate(self.num_timesteps, policy)
            return True

    rec.clock.start()
    model.learn(total_timesteps=budget, callback=EvalEvery(), progress_bar=False)
    train_s = rec.clock.elapsed()
    env_steps = int(model.num_timesteps)
    if rec.steps_to_target is None and rec.last_eval_steps != env_steps:
        rec.evaluate(env_steps, policy)  # the policy at the end of the budget
    return rec.result(env_steps=env_steps, train_s=train_s, setup_s=setup_s)


WARMUP_SEED = 10_000


def warm_up(algos: list[str]) -> float:
    """One short untimed run per contender before the measured ones.

    The first algorithm built in a process pays one-time costs (lazy imports,
    torch's first calls: about 1.5 s of build and 1.5 s of the first train()
    here) that would otherwise land on seed 0 of whichever contender runs first.
    """
    t0 = time.perf_counter()
    for name in algos:
        if name == "sb3_dqn":
            import gymnasium as gym
            from stable_baselines3 import DQN

            model = DQN("MlpPolicy", gym.make(ENV_ID), seed=WARMUP_SEED, device="cpu", verbose=0, **SB3_DQN_HPARAMS)
            model.learn(total_timesteps=SB3_DQN_HPARAMS["learning_starts"] + SB3_DQN_HPARAMS["train_freq"])
            greedy_return_mean(lambda obs: model.predict(obs, deterministic=True)[0], [WARMUP_SEED])
        else:
            from rlfrontier.configure import build_config
            from rlfrontier.evaluation import act

            _, config, _ = build_config(algo=name, env=ENV_ID, seed=WARMUP_SEED, evaluation_interval=0)
            algo = config.build_algo()
            try:
                algo.train()  # ~1000 env steps: up to learning_starts and the first update
                greedy_return_mean(lambda obs: act(algo.get_module(), obs, explore=False), [WARMUP_SEED])
            finally:
                algo.stop()
    return time.perf_counter() - t0


# Machine info and I/O ---------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    try:
        repo = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "torch_num_threads": torch.get_num_threads(),
        "versions": {
            "torch": _version("torch"),
            "ray": _version("ray"),
            "stable_baselines3": _version("stable-baselines3"),
            "gymnasium": _version("gymnasium"),
            "numpy": _version("numpy"),
        },
        "git_commit": _git_commit(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


# Report -----------------------------------------------------------------------


def _median_censored(values: list[float | None]) -> float | None:
    """Median with runs that never reached the target counted as infinitely slow.

    None when that median is itself 'never' (at least half the runs failed),
    so a contender cannot look fast by its lucky seeds alone.
    """
    if not values:
        return None
    med = statistics.median(math.inf if v is None else float(v) for v in values)
    return None if math.isinf(med) else med


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _per_seed(runs: list[dict[str, Any]], key: str, digits: int) -> str:
    return ", ".join(
        f"s{r['seed']}: " + ("error" if r.get("error") else _fmt(r.get(key), digits)) for r in runs
    )


def summarize(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_algo: dict[str, list[dict[str, Any]]] = {}
    for run in data["runs"]:
        by_algo.setdefault(run["algo"], []).append(run)
    out = {}
    for algo in [a for a in ALGOS if a in by_algo] + [a for a in by_algo if a not in ALGOS]:
        runs = sorted(by_algo[algo], key=lambda r: r["seed"])
        ok = [r for r in runs if not r.get("error")]
        speeds = [r["env_steps_per_s"] for r in ok if r.get("env_steps_per_s")]
        out[algo] = {
            "runs": runs,
            "n": len(runs),
            "reached": sum(r.get("steps_to_target") is not None for r in runs),
            "median_steps": _median_censored([r.get("steps_to_target") for r in runs]),
            "median_wall_s": _median_censored([r.get("wall_s_to_target") for r in runs]),
            "median_steps_per_s": statistics.median(speeds) if speeds else None,
            "median_setup_s": statistics.median([r["setup_s"] for r in ok]) if ok else None,
        }
    return out


def _ratio_line(summary: dict[str, dict[str, Any]], other: str) -> str | None:
    if "soft_q" not in summary or other not in summary:
        return None
    a, b = summary["soft_q"]["median_wall_s"], summary[other]["median_wall_s"]
    head = f"- median wall-clock to target, soft_q / {other}: "
    if a is None or b is None:
        missing = " and ".join(n for n, v in (("soft_q", a), (other, b)) if v is None)
        return head + f"n/a ({missing}: median run did not reach the target)"
    ratio = a / b
    verdict = f"soft_q {1 / ratio:.1f}x faster" if ratio < 1 else f"soft_q {ratio:.1f}x slower"
    return head + f"**{ratio:.2f}** ({verdict})"


def render_markdown(data: dict[str, Any]) -> str:
    meta, settings = data["meta"], data["settings"]
    target = settings["target"]
    summary = summarize(data)
    budgets = ", ".join(
        f"{algo} {settings['dqn_max_steps'] if algo == 'dqn' else settings['max_steps']}"
        for algo in settings["algos"]
    )
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    lines = [
        f"# {ENV_ID}: soft_q vs RLlib DQN vs SB3 DQN",
        "",
        f"{meta['date']} · {meta.get('cpu_model') or 'unknown CPU'} · {meta['cpus_usable']} usable of "
        f"{meta['cpu_count']} CPUs · {meta['platform']} · Python {meta['python']} · {versions}"
        + (f" · commit {meta['git_commit'][:10]}" if meta.get("git_commit") else ""),
        "",
        f"Target: greedy mean return >= {target:g} over {settings['eval_episodes']} episodes, evaluated every "
        f"{settings['eval_every']} env steps. Step budgets: {budgets}. "
        "Wall clock is training time only (evaluation excluded, setup apart). "
        "Medians count a run that never reached the target as infinitely slow (—: the median run did not reach it).",
        "",
        f"| algo | reached {target:g} | median steps to {target:g} | steps per seed | "
        f"median wall-clock to {target:g} (s) | wall-clock per seed (s) | median env steps/s | median setup (s) |",
        "| --- | --- | ---: | --- | ---: | --- | ---: | ---: |",
    ]
    for algo, s in summary.items():
        lines.append(
            f"| {LABELS.get(algo, algo)} | {s['reached']}/{s['n']} | {_fmt(s['median_steps'])} | "
            f"{_per_seed(s['runs'], 'steps_to_target', 0)} | {_fmt(s['median_wall_s'], 1)} | "
            f"{_per_seed(s['runs'], 'wall_s_to_target', 1)} | {_fmt(s['median_steps_per_s'])} | "
            f"{_fmt(s['median_setup_s'], 1)} |"
        )
    ratios = [line for line in (_ratio_line(summary, "dqn"), _ratio_line(summary, "sb3_dqn")) if line]
    if ratios:
        lines += ["", *ratios]
    extras = []
    if data.get("ray_init_s") is not None:
        extras.append(f"- ray.init (once, before all RLlib runs): {data['ray_init_s']:.1f} s")
    if data.get("warmup_s") is not None:
        extras.append(f"- untimed warm-up run of each contender before the measured runs: {data['warmup_s']:.1f} s")
    for algo, why in (data.get("skipped") or {}).items():
        extras.append(f"- {algo} skipped: {why}")
    for run in data["runs"]:
        if run.get("error"):
            extras.append(f"- {run['algo']} seed {run['seed']} failed: {run['error']}")
    if extras:
        lines += ["", *extras]
    lines += ["", "![learning curves](learning_curves.png)", ""]
    return "\n".join(lines)


def render_plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = data["settings"]["target"]
    fig, (ax_steps, ax_wall) = plt.subplots(1, 2, figsize=(13, 4.8))
    labelled: set[str] = set()
    order = {algo: i for i, algo in enumerate(ALGOS)}
    for run in sorted(data["runs"], key=lambda r: (order.get(r["algo"], len(order)), r["algo"], r["seed"])):
        curve = run.get("curve") or []
        if not curve:
            continue
        algo = run["algo"]
        label = None if algo in labelled else LABELS.get(algo, algo)
        labelled.add(algo)
        returns = [p["eval_return_mean"] for p in curve]
        style = {"color": COLOURS.get(algo), "alpha": 0.75, "linewidth": 1.3, "marker": ".", "markersize": 3}
        ax_steps.plot([p["env_steps"] for p in curve], returns, label=label, **style)
        ax_wall.plot([p["wall_s"] for p in curve], returns, label=label, **style)
    for ax, xlabel in ((ax_steps, "env steps"), (ax_wall, "training wall clock (s, evaluation excluded)")):
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"greedy return (mean of {data['settings']['eval_episodes']} episodes)")
        ax.set_ylim(0, 510)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    ax_steps.legend(loc="lower right")
    fig.suptitle(f"{ENV_ID}: one line per seed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(render_markdown(data))
    render_plot(data, out / "learning_curves.png")
    log(f"wrote {out / 'results.md'} and {out / 'learning_curves.png'}")


# Main -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, help="seeds per contender: 0..N-1 (default 5)")
    p.add_argument("--algos", default=",".join(ALGOS), help=f"comma-separated subset of {','.join(ALGOS)}")
    p.add_argument("--max-steps", type=int, default=60_000, help="env-step budget of soft_q and sb3_dqn")
    p.add_argument("--dqn-max-steps", type=int, default=60_000, help="env-step budget of RLlib's dqn")
    p.add_argument("--eval-every", type=int, default=2000, help="env steps between evaluations")
    p.add_argument("--target", type=float, default=450.0, help="greedy mean return that ends a run")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT}; "
                   "with --from-json: the folder of that file)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed warm-up run of each contender")
    p.add_argument("--from-json", type=Path, default=None, help="re-render results.md/.png from this results.json")
    args = p.parse_args(argv)
    if args.from_json is None:
        args.algos = [a.strip() for a in args.algos.split(",") if a.strip()]
        unknown = [a for a in args.algos if a not in ALGOS]
        if unknown or not args.algos:
            p.error(f"--algos: unknown {unknown or 'empty list'}; choose from {','.join(ALGOS)}")
        for flag in ("seeds", "max_steps", "dqn_max_steps", "eval_every"):
            if getattr(args, flag) < 1:
                p.error(f"--{flag.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        render(data, args.out or args.from_json.resolve().parent)
        return 0

    out: Path = args.out or DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    algos: list[str] = args.algos
    data: dict[str, Any] = {
        "meta": machine_info(),
        "settings": {
            "env": ENV_ID,
            "algos": algos,
            "seeds": list(range(args.seeds)),
            "max_steps": args.max_steps,
            "dqn_max_steps": args.dqn_max_steps,
            "eval_every": args.eval_every,
            "eval_episodes": EVAL_EPISODES,
            "eval_seed_base": EVAL_SEED_BASE,
            "target": args.target,
            "sb3_dqn_hyperparameters": SB3_DQN_HPARAMS,
        },
        "ray_init_s": None,
        "warmup_s": None,
        "skipped": {},
        "runs": [],
    }

    if "sb3_dqn" in algos:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            why = "stable_baselines3 is not installed (pip install -e '.[bench]', or `make bench`)"
            log(f"sb3_dqn skipped: {why}")
            data["skipped"]["sb3_dqn"] = why
            algos = [a for a in algos if a != "sb3_dqn"]

    rllib_algos = [a for a in algos if a != "sb3_dqn"]
    if rllib_algos:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        data["ray_init_s"] = time.perf_counter() - t0
        log(f"ray.init: {data['ray_init_s']:.1f} s")

    failed = False
    try:
        if args.warmup:
            log(f"warm-up (untimed): {', '.join(algos)}")
            data["warmup_s"] = warm_up(algos)
            log(f"warm-up: {data['warmup_s']:.1f} s")
        # Seed-major order: contenders alternate, so slow drift in the machine's
        # load spreads over all of them; one run at a time, never in parallel.
        for seed in range(args.seeds):
            for algo in algos:
                budget = args.dqn_max_steps if algo == "dqn" else args.max_steps
                log(f"{algo} seed {seed}: start (budget {budget} env steps)")
                try:
                    if algo == "sb3_dqn":
                        run = run_sb3_dqn(seed, budget=budget, args=args)
                    else:
                        run = run_rllib(algo, seed, budget=budget, args=args)
                except Exception as exc:  # noqa: BLE001 - record, go on with the other runs
                    traceback.print_exc()
                    failed = True
                    run = {"algo": algo, "seed": seed, "error": f"{type(exc).__name__}: {exc}",
                           "steps_to_target": None, "wall_s_to_target": None, "curve": []}
                else:
                    log(
                        f"{algo} seed {seed}: done: steps to target {run['steps_to_target']}, "
                        f"wall {_fmt(run['wall_s_to_target'], 1)} s, {run['env_steps']} steps at "
                        f"{_fmt(run['env_steps_per_s'])} steps/s, setup {run['setup_s']:.1f} s"
                    )
                data["runs"].append(run)
                write_json(out / "results.json", data)
    except KeyboardInterrupt:
        log("interrupted: writing what has finished")
        failed = True
    finally:
        if rllib_algos:
            import ray

            ray.shutdown()

    write_json(out / "results.json", data)
    render(data, out)
    print(render_markdown(data))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
