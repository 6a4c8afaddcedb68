#!/usr/bin/env python
"""Adversarial imitation benchmark (issue 9, part 8): gail and airl against the `imitation` library's GAIL.

One run, one task, one set of demonstrations: `rlfrontier/CartPoleFixedHorizon-v0`
(CartPole that never terminates, exactly 500 steps, reward 1 while the pole
is up; rlfrontier/envs/cartpole_fixed.py) and DEMO_EPISODES (20) episodes of
the scripted CartPole expert (`rlfrontier demos record --scripted cartpole`,
episode i reset with seed --demo-seed + i), recorded once at the start
(or read from --demos DIR). Contenders, one at a time, seed by seed:

- `expert`: the scripted controller itself, judged like the others (a reference, 0 env steps);
- `bc`: our behavioural cloning (the registry's `bc`, defaults: soft_q's module,
  100 updates of 256 demonstrated transitions per iteration); it samples no env
  step, so its "env steps to 90%" is 0 and its budget counts iterations;
- `gail`, `airl`: ours, the registry's defaults (RLlib's PPO with the
  registry's CartPole settings plus lambda 0.95 and vf_clip_param 10,000;
  the discriminator's 8 Adam steps of 512 pairs per 4,000-step iteration),
  built in this process by `rlfrontier.configure.build_config` with the
  demonstrations as `--demos` would set them. One resource setting differs
  from `rlfrontier train`'s: the 8 envs sample in the driver's EnvRunner
  (num_env_runners 0, num_envs_per_env_runner 8, as the learning tests do;
  the CLI's default is two remote EnvRunners of one env), so one Ray of one
  CPU suffices;
- `imitation_gail`: the `imitation` library's GAIL (1.0.1; stable-baselines3 PPO
  as its generator) with its documented CartPole settings (8 envs; PPO
  batch_size 64, ent_coef 0, learning_rate 4e-4, gamma 0.95, n_epochs 5,
  n_steps 2048; BasicRewardNet with RunningNorm; demo_batch_size 1024,
  gen_replay_buffer_capacity 512, n_disc_updates_per_round 8), from
  docs/algorithms/gail.rst and docs/tutorials/3_train_gail.ipynb at
  HumanCompatibleAI/imitation v1.0.1, whose comment says "Train for 800_000
  steps to match expert"; benchmarks/imitation_side/gail_cartpole.py's
  docstring has the details. imitation pins gymnasium 0.29, so it runs as a
  subprocess in `.venv-imitation` (`make imitation-env`) on our env written
  again for gymnasium 0.29 (benchmarks/imitation_side/fixed_cartpole.py, the
  same start states, physics, stops, reward and horizon), and reports its
  evaluations as JSON lines. Without that venv it is skipped, noted.

Judged alike: the greedy policy plays EVAL_EPISODES (10) episodes of 500 steps
on fresh CartPoleFixedHorizon envs, episode k of seed s reset with
EVAL_SEED_BASE + 100 s + k (none of them a demonstration's or a training
env's seed); its mean return is the evaluation. The target is
TARGET_FRACTION (90%) of the demonstrations' mean return (500 for this
expert, so 450). Ours are evaluated every --eval-every env steps (default
4,000: each PPO iteration, where their policy changes), imitation's after
every GAIL round (16,384 env steps, where its policy changes). A run stops
at its first evaluation that reaches the target (--full-budget: goes on to
the end of its budget) or at its budget: ours 400,000 env steps,
imitation's 1,000,000 (whole rounds: 999,424). Reported per contender:
env steps and training wall-clock to the target (evaluation excluded, set-up
apart), the best and the final evaluation, env steps/s. Runs on
benchmarks/harness; see benchmarks/README.md.

    python benchmarks/imitation_gail.py --seeds 1
    python benchmarks/imitation_gail.py --smoke --no-mlflow          # tiny budgets, into a temporary folder
    python benchmarks/imitation_gail.py --from-json benchmarks/results/imitation_gail/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

import harness
from harness.rllib import ray_session

ENV_ID = "rlfrontier/CartPoleFixedHorizon-v0"
DEMO_EPISODES = 20
EVAL_EPISODES = 10
# Evaluation episode k of a run with seed s starts from reset(seed=EVAL_SEED_BASE + 100*s + k).
EVAL_SEED_BASE = 1_000_000
TARGET_FRACTION = 0.9
CONTENDERS = ("expert", "bc", "gail", "airl", "imitation_gail")
REFERENCE = "imitation_gail"
LABELS = {
    "expert": "scripted expert (reference)",
    "bc": "bc (rlfrontier, behavioural cloning)",
    "gail": "gail (rlfrontier, RLlib PPO)",
    "airl": "airl (rlfrontier, RLlib PPO)",
    "imitation_gail": "imitation 1.0.1 GAIL (SB3 PPO)",
}
# Ours sample in the driver's EnvRunner (the docstring says why).
RESOURCES = {"num_env_runners": 0, "num_envs_per_env_runner": 8}
ROOT = Path(__file__).resolve().parents[1]
IMITATION_PYTHON = ROOT / ".venv-imitation" / "bin" / "python"
SIDE_SCRIPT = Path(__file__).resolve().parent / "imitation_side" / "gail_cartpole.py"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "imitation_gail"
PLOT = "learning_curves.png"
SMOKE = {"budget": 8_000, "imitation_budget": 16_384, "bc_iters": 2, "eval_episodes": 3}


# The criterion and the evaluation --------------------------------------------------------------------------


def target_of(expert_return: float, fraction: float = TARGET_FRACTION) -> float:
    """The return that counts as imitating: `fraction` of the expert's mean return."""
    return fraction * float(expert_return)


def eval_seeds(run_seed: int, episodes: int = EVAL_EPISODES) -> list[int]:
    return [EVAL_SEED_BASE + 100 * run_seed + k for k in range(episodes)]


def greedy_return_mean(policy: Callable, seeds: list[int]) -> float:
    from rlfrontier.evaluation import greedy_return_mean as play

    return play(policy, ENV_ID, seeds=seeds)


# The imitation side: availability, its JSON lines ----------------------------------------------------------


def imitation_missing(python: Path | None = None) -> str | None:
    """Why the `imitation` contender cannot run here (None: it can); `python` defaults to IMITATION_PYTHON."""
    python = IMITATION_PYTHON if python is None else Path(python)
    if not Path(python).is_file() or not os.access(python, os.X_OK):
        return (f"{python} not found: the `imitation` library lives in its own venv (it pins gymnasium 0.29); "
                "create it with `make imitation-env`")
    if not SIDE_SCRIPT.is_file():
        return f"{SIDE_SCRIPT} is missing"
    return None


def parse_side_line(line: str) -> dict[str, Any] | None:
    """One line of gail_cartpole.py's stdout: its JSON object if it is one with an "event", else None."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("event"), str) else None


def apply_side_event(rec: harness.Recorder, event: dict[str, Any]) -> bool:
    """Records one side-script event on the run's recorder; True once it is "done".

    setup -> set-up time, its settings, versions and demonstrations in extra;
    eval -> a point (env steps, the side's training clock, the greedy return);
    done -> totals (env steps, training wall-clock, evaluation time, rounds).
    """
    kind = event["event"]
    if kind == "setup":
        rec.setup_s = float(event.get("setup_s") or 0.0)
        rec.extra.update({"import_s": event.get("import_s"), "imitation_settings": event.get("settings"),
                          "imitation_versions": event.get("versions"), "imitation_demos": event.get("demos")})
    elif kind == "eval":
        was = rec.reached
        reached = rec.record(int(event["env_steps"]), eval_return=float(event["eval_return"]),
                             wall_s=float(event["wall_s"]), round=int(event.get("round", 0)))
        harness.log(f"{rec.name}: {int(event['env_steps']):>7} steps {float(event['wall_s']):8.1f} s  eval return "
                    f"{float(event['eval_return']):8.2f}" + ("  -> target reached" if reached and not was else ""))
    elif kind == "done":
        rec.stop(int(event["env_steps"]), rounds=event.get("rounds"))
        rec.train_wall_s = float(event["wall_s"])
        rec.eval_s = float(event.get("eval_s") or 0.0)
        return True
    return False


def side_command(*, demos: Path, seed: int, budget: int, target: float | None, eval_episodes: int,
                 full_budget: bool, python: Path | None = None) -> list[str]:
    cmd = [str(IMITATION_PYTHON if python is None else python), str(SIDE_SCRIPT), "train", "--demos", str(demos),
           "--seed", str(seed), "--budget", str(int(budget)),
           "--eval-seeds", ",".join(map(str, eval_seeds(seed, eval_episodes)))]
    if target is not None:
        cmd += ["--target", repr(float(target))]
    if full_budget:
        cmd.append("--full-budget")
    return cmd


def run_imitation(args: argparse.Namespace, demos: Path, target: float, seed: int, budget: int,
                  rec: harness.Recorder) -> None:
    cmd = side_command(demos=demos, seed=seed, budget=budget, target=target, eval_episodes=args.eval_episodes,
                       full_budget=args.full_budget)
    rec.extra["command"] = cmd
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=20)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def pump() -> None:  # its stderr (SB3, tqdm): only the tail is kept, for an error
        for line in proc.stderr:
            tail.append(line.rstrip())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    done = False
    try:
        for line in proc.stdout:
            event = parse_side_line(line)
            if event is not None:
                done = apply_side_event(rec, event) or done
        proc.wait()
    finally:
        if proc.poll() is None:  # interrupted here: do not leave it running
            proc.kill()
            proc.wait()
        thread.join(timeout=5)
    if proc.returncode != 0 or not done:
        raise RuntimeError(f"the imitation side script exited {proc.returncode} "
                           f"{'' if done else 'without its done line '}: {' | '.join(list(tail)[-4:])}")


# Our contenders -------------------------------------------------------------------------------------------


def run_expert(args: argparse.Namespace, manifest: dict[str, Any], seed: int, budget: int,
               rec: harness.Recorder) -> None:
    """The scripted controller on the evaluation episodes: the reference every imitator is judged against."""
    import numpy as np

    from rlfrontier.demos import cartpole_action

    rec.start()
    rec.evaluate(0, lambda: greedy_return_mean(
        lambda obs: np.array([cartpole_action(o) for o in obs]), eval_seeds(seed, args.eval_episodes)))
    rec.stop(0, demos_return_mean=manifest.get("return_mean"), demos_return_std=manifest.get("return_std"))


def sampled_steps(result: dict[str, Any]) -> int:
    """Env steps sampled so far, from an algo.train() result (0 where nothing was sampled: bc)."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    return int((result.get(ENV_RUNNER_RESULTS) or {}).get(NUM_ENV_STEPS_SAMPLED_LIFETIME) or 0)


def train_loop(algo, rec: harness.Recorder, evaluate: Callable[[], float], *, full_budget: bool,
               steps: Callable[[dict[str, Any], int], int], every_iteration: bool = False) -> None:
    """algo.train() until the budget (and, unless full_budget, until the target); evaluates on the schedule.

    `steps(result, iterations)` is what the budget counts (env steps; bc: iterations). With
    `every_iteration`, every iteration is evaluated. Stops algo.
    """
    env_steps, iterations, used = 0, 0, 0
    try:
        rec.start()
        while used < rec.budget:
            result = algo.train()
            iterations += 1
            env_steps, used = sampled_steps(result), steps(result, iterations)
            if every_iteration or rec.due(env_steps) or used >= rec.budget:
                reached = rec.evaluate(env_steps, evaluate, iteration=iterations)
                if reached and not full_budget:
                    break
        rec.stop(env_steps, iterations=iterations)
    finally:
        algo.stop()


def run_rllib(name: str, args: argparse.Namespace, demos: Path, seed: int, budget: int,
              rec: harness.Recorder) -> None:
    """bc, gail or airl with the registry's defaults, on --demos, sampling in the driver (RESOURCES)."""
    from rlfrontier.configure import build_config
    from rlfrontier.evaluation import act

    _, config, _ = build_config(algo=name, env=ENV_ID, seed=seed, demos=str(demos), evaluation_interval=0,
                                **RESOURCES)
    with rec.setup():
        algo = config.build_algo()
    seeds = eval_seeds(seed, args.eval_episodes)
    if name == "bc":
        train_loop(algo, rec, lambda: greedy_return_mean(lambda obs: act(algo.get_module(), obs, explore=False),
                                                         seeds),
                   full_budget=args.full_budget, steps=lambda result, iterations: iterations, every_iteration=True)
    else:
        train_loop(algo, rec, lambda: greedy_return_mean(lambda obs: act(algo.get_module(), obs, explore=False),
                                                         seeds),
                   full_budget=args.full_budget, steps=lambda result, iterations: sampled_steps(result))


# Demonstrations ---------------------------------------------------------------------------------------------


def demonstrations(folder: Path | None, *, seed: int) -> tuple[Path, dict[str, Any]]:
    """The folder of the 20 expert episodes every contender learns from, and its manifest.

    An existing --demos folder is read (and must be of ENV_ID); otherwise they are recorded into
    a temporary folder.
    """
    from rlfrontier import demos

    if folder is not None and (Path(folder) / demos.MANIFEST_FILE).is_file():
        manifest = demos.read_manifest(folder, where="--demos")
        if manifest["env"] != ENV_ID:
            raise SystemExit(f"--demos {folder}: recorded on {manifest['env']}, not {ENV_ID}")
        return Path(folder).resolve(), manifest
    out = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="imitation_gail_demos_"))
    harness.log(f"recording {DEMO_EPISODES} scripted-expert episodes of {ENV_ID} into {out}")
    manifest = demos.record(out=out, env_id=ENV_ID, episodes=DEMO_EPISODES, scripted="cartpole", seed=seed)
    return out.resolve(), manifest


# Flags and plan ---------------------------------------------------------------------------------------------


def contender_list(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in names if a not in CONTENDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {unknown or 'empty list'}; choose from {','.join(CONTENDERS)}")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=harness.positive_int, default=1, help="seeds per contender: 0..N-1 (default 1)")
    p.add_argument("--algos", type=contender_list, default=list(CONTENDERS),
                   help=f"comma-separated subset of {','.join(CONTENDERS)}")
    p.add_argument("--budget", type=harness.positive_int, default=400_000,
                   help="env-step budget of gail and airl (default 400000)")
    p.add_argument("--imitation-budget", type=harness.positive_int, default=1_000_000,
                   help="env-step budget of imitation's GAIL, whole rounds of 16,384 (default 1000000)")
    p.add_argument("--bc-iters", type=harness.positive_int, default=20,
                   help="bc's budget in iterations of 100 updates (default 20)")
    p.add_argument("--eval-every", type=harness.positive_int, default=4000,
                   help="env steps between evaluations of gail and airl (default 4000: every iteration)")
    p.add_argument("--eval-episodes", type=harness.positive_int, default=EVAL_EPISODES,
                   help=f"greedy episodes per evaluation (default {EVAL_EPISODES})")
    p.add_argument("--full-budget", action="store_true",
                   help="go on after reaching the target to the end of each budget (best and final then differ)")
    p.add_argument("--demos", type=Path, default=None,
                   help="demonstrations folder to use (recorded there if it holds none; default: a temporary one)")
    p.add_argument("--demo-seed", type=int, default=0, help="episode i of the demonstrations resets with this + i")
    p.add_argument("--smoke", action="store_true",
                   help=f"tiny budgets for a quick check ({SMOKE}); without --out, a temporary output folder")


def smoke_defaults(args: argparse.Namespace) -> None:
    """--smoke: tiny budgets and a throw-away output folder (unless given)."""
    if not args.smoke:
        return
    args.budget, args.imitation_budget = SMOKE["budget"], SMOKE["imitation_budget"]
    args.bc_iters, args.eval_episodes = SMOKE["bc_iters"], SMOKE["eval_episodes"]
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="imitation_gail_smoke_"))


def contender(name: str, args: argparse.Namespace, demos: Path, manifest: dict[str, Any],
              target: float) -> harness.Contender:
    if name == "expert":
        return harness.Contender(name=name, run=partial(run_expert, args, manifest), budget=0, label=LABELS[name])
    if name == "imitation_gail":
        return harness.Contender(name=name, run=partial(run_imitation, args, demos, target),
                                 budget=args.imitation_budget, label=LABELS[name], available=imitation_missing)
    budget = args.bc_iters if name == "bc" else args.budget
    return harness.Contender(name=name, run=partial(run_rllib, name, args, demos), budget=budget, label=LABELS[name])


def session(contenders: list[harness.Contender], results: dict[str, Any]):
    from contextlib import nullcontext

    if not any(c.name in ("bc", "gail", "airl") for c in contenders):
        return nullcontext()
    import torch

    torch.set_num_threads(1)
    return ray_session(results, num_cpus=1)


def plan(args: argparse.Namespace) -> harness.Plan:
    smoke_defaults(args)
    demos, manifest = demonstrations(args.demos, seed=args.demo_seed)
    expert_return = float(manifest["return_mean"])
    target = target_of(expert_return)
    return harness.Plan(
        contenders=[contender(name, args, demos, manifest, target) for name in args.algos],
        seeds=range(args.seeds),
        settings={
            "env": ENV_ID,
            "algos": args.algos,
            "demos": str(demos),
            "demo_episodes": manifest["episodes"],
            "demo_seed": args.demo_seed,
            "expert_return_mean": expert_return,
            "target_fraction": TARGET_FRACTION,
            "budget": args.budget,
            "imitation_budget": args.imitation_budget,
            "bc_iters": args.bc_iters,
            "eval_episodes": args.eval_episodes,
            "eval_seed_base": EVAL_SEED_BASE,
            "full_budget": args.full_budget,
            "smoke": args.smoke,
            "rllib_resources": RESOURCES,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        target=target,
        eval_every=args.eval_every,
        reference=REFERENCE,
        session=session,
    )


# Tables and plot ----------------------------------------------------------------------------------------------


def evaluated(run: dict[str, Any]) -> list[float]:
    return [p["eval_return"] for p in run.get("points", []) if p.get("eval_return") is not None]


def best_return(run: dict[str, Any]) -> float | None:
    returns = evaluated(run)
    return max(returns) if returns else None


def final_return(run: dict[str, Any]) -> float | None:
    returns = evaluated(run)
    return returns[-1] if returns else None


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def render(results: dict[str, Any]) -> str:
    settings, target = results["settings"], results["target"]
    summaries = harness.summarize(results)
    label = f"{target:g}"
    budgets = (f"gail and airl {settings['budget']:,} env steps, imitation's GAIL {settings['imitation_budget']:,} "
               f"(whole rounds of 16,384), bc {settings['bc_iters']} iterations")
    columns = [
        harness.CONTENDER,
        *harness.to_target_columns(label),
        harness.Column("best return", lambda s: harness.fmt(_median(best_return(r) for r in s.runs), 1)),
        harness.Column("final return", lambda s: harness.fmt(_median(final_return(r) for r in s.runs), 1)),
        harness.Column("env steps run", lambda s: harness.fmt(_median(r.get("env_steps") for r in s.runs))),
        harness.STEPS_PER_S,
        harness.SETUP,
    ]
    stop = ("each run went on to the end of its budget (--full-budget)" if settings.get("full_budget")
            else "a run stops at its first evaluation that reaches the target, so its final return is that one")
    lines = [
        f"# {ENV_ID}: gail and airl against imitation's GAIL, the expert and bc",
        "",
        harness.machine_line(results),
        "",
        f"Demonstrations: {settings['demo_episodes']} episodes of the scripted CartPole expert, mean return "
        f"{settings['expert_return_mean']:g}. Target: a greedy mean return >= {label} "
        f"({settings['target_fraction']:.0%} of the expert's) over {settings['eval_episodes']} episodes of 500 "
        f"steps on fresh envs, evaluated every {results['eval_every']:,} env steps (gail, airl), after every "
        f"round of 16,384 env steps (imitation's GAIL) or every iteration (bc). Budgets: {budgets}; {stop}. "
        "Wall-clock is training time only (evaluation excluded, set-up apart). bc samples no env step "
        "(its env steps are 0); the expert is the reference return, not trained.",
        "",
        harness.summary_table(summaries, columns),
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
        "",
        "Per seed, best / final greedy return:",
        "",
        *harness.per_run_lines(summaries, lambda r: f"{harness.fmt(best_return(r), 1)} / "
                                                    f"{harness.fmt(final_return(r), 1)}"),
    ]
    # The references (0 env steps by construction) have no ratio worth a row.
    trained = [s for s in summaries if s.contender not in ("expert", "bc")]
    ratios = harness.ratio_table(trained, results["reference"]) if results.get("reference") else None
    if ratios:
        lines += ["", ratios]
    notes = harness.notes(results)
    for run in results.get("runs", []):
        versions = (run.get("extra") or {}).get("imitation_versions")
        if versions:
            notes.append(f"- imitation_gail seed {run['seed']} ran in .venv-imitation: "
                         + ", ".join(f"{k} {v}" for k, v in versions.items()))
            break
    if notes:
        lines += ["", *notes]
    lines += ["", f"![learning curves]({PLOT})", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    runs = [r for r in results["runs"] if r["contender"] not in ("expert", "bc")]
    return harness.plot_learning_curves(
        results, path, runs=runs, ylim=(0, 510),
        ylabel=f"greedy return (mean of {results['settings']['eval_episodes']} episodes)",
        title=f"{ENV_ID}: one line per seed (dashed: 90% of the expert)")


BENCHMARK = harness.Benchmark(
    name="imitation_gail",
    doc=__doc__,
    default_out=DEFAULT_OUT,
    add_arguments=add_arguments,
    plan=plan,
    render=render,
    plots={PLOT: plot},
)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    sys.exit(harness.main(BENCHMARK))
