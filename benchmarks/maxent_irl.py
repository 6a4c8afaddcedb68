#!/usr/bin/env python
"""MaxEnt inverse RL (issue 9, part 8): the project's maxent_irl against the `imitation` library's MCE IRL.

Four contenders, side by side in one run, on the same tabular worlds and the same demonstrations:

- `ours_linear`, `ours_mlp`: rlfrontier's `maxent_irl` (reward_model linear / mlp), built in this process with
  `rlfrontier.configure.build_config` (what `rlfrontier train` builds) on one local Ray (num_cpus=1), one
  `algo.train()` per reward update;
- `imitation_linear`, `imitation_mlp`: `imitation.algorithms.mce_irl.MCEIRL` (imitation 1.0.1) with a
  `BasicRewardNet` of the state features (no hidden layer / the same hidden sizes as ours), run as a subprocess
  with `.venv-imitation/bin/python benchmarks/imitation_side/mce_irl.py` (imitation pins gymnasium 0.29; this
  project runs 1.2). That script imports neither ray nor rlfrontier: it gets the MDP (transition tensor
  P[s, a, s'], state features as its observation matrix, start distribution, horizon, discount) and the
  demonstrations through an .npz file written here, builds a seals `TabularModelPOMDP` from them (its reward
  matrix all zeros), and writes back the learned state reward (and snapshots of it) as .npz. Without the venv
  (`make imitation-env` makes it) these two are skipped with a note.

Worlds (`--worlds`), the README's acceptance settings:

- `gridworld_exact`: rlfrontier/GridWorld-v0 (8 x 8, defaults), the expert's exact expected state counts under
  the world's optimal policy (no sampling; ours: `expert: optimal`; imitation: the same policy's occupancy
  measure in imitation's convention, below, as an array);
- `gridworld_50`: the same world, 50 demonstrations of its optimal policy;
- `objectworld_64`: rlfrontier/ObjectWorld-v0 (16 x 16, defaults), 64 demonstrations of its optimal policy.

Demonstrations are recorded once per world and seed with `rlfrontier.demos.record(scripted="optimal")` (what
`rlfrontier demos record --scripted optimal` runs) into a temporary folder: seed index i is the README's demo set
k = --demo-set-base + i (5, 6, 7 by default: held out, no default was tuned on them), recorded with seed 1000 k,
and k is the run's seed too, so ours reproduces the README's table. Ours reads the folder with `--demos`;
imitation gets the same episodes as trajectories (each episode's T + 1 states, the final one included, and its
actions) and computes its occupancy measure itself.

Settings are the same for every contender on a world: --updates (300) reward updates (imitation's max_iter; it
may stop earlier on its own criteria, linf_eps 1e-3 and grad_l2_eps 1e-4, its defaults: the tables report the
updates made), Adam with the README's step size (GridWorld 0.05, our default; ObjectWorld 0.01), MLP hidden
sizes [32, 32] with ReLU, the same L2 prior (ours: `reward_l2` 0.03 on every parameter; imitation has none of its
own, so `--imitation-prior matched` gives Adam's coupled weight decay 2 * reward_l2 * T, the same gradient
direction as ours, whose data term is divided by T; `none`: the library as it comes). A linear reward starts at
zero on both sides.

Measures, identical for every contender: the final learned state reward r[S] is judged by rlfrontier.tabular
(the expected value difference, `expected_value_difference`: the true value of the optimal policy minus the true
value of the policy optimal for the learned reward, from the start distribution over the horizon, as % of the
optimal value; and Pearson's correlation of r with the true reward), also every --snapshot-every updates for the
curves. Wall-clock: the training loop's seconds (ours: the `algo.train()` calls; imitation: `MCEIRL.train`, timed
inside the subprocess), snapshots excluded; set-up apart (ours: building the algorithm; imitation: the
subprocess's start, imports and construction).

What the two optimise (both finite-horizon maximum causal entropy IRL, Ziebart 2010, with the same soft Bellman
backup Q_t = r + gamma P V_{t+1}, V_t = logsumexp_a Q_t, V_T = 0, and time-indexed policies; gamma = 1 here):

- imitation counts states over t = 0 .. T (its occupancy D[0..T], T + 1 states, the one reached after the last
  action included, for the expert and for the model), while its backup covers only the T decisions; ours counts
  t = 0 .. T - 1, the states acted from, which are what an episode's return sum_{t<T} r(s_t) scores here. So
  imitation's gradient has an extra term, the final state's distribution under the expert minus under the model,
  which no decision is optimised for;
- ours divides the data term by T and has the L2 prior in the loss; imitation's loss is unnormalised and has no
  prior (matched, or not, through Adam's weight decay, above);
- imitation's linear reward has a bias (no effect on any policy on a fixed horizon); ours has none;
- ours can also run the discounted infinite-horizon messages (`stationary=true`); imitation's MCE IRL is
  finite-horizon only. Neither is used here.

Runs on benchmarks/harness (results.json, results.md, MLflow; see benchmarks/README.md); "env steps" in the
harness's records are reward updates here.

    .venv/bin/python benchmarks/maxent_irl.py                      # 3 seeds, all worlds and contenders
    .venv/bin/python benchmarks/maxent_irl.py --seeds 1 --updates 30 --worlds gridworld_exact --no-mlflow \\
        --out /tmp/maxent_irl_smoke                                 # smoke: about a minute
    .venv/bin/python benchmarks/maxent_irl.py --from-json benchmarks/results/maxent_irl/results.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch load their thread pools

import numpy as np  # noqa: E402

import harness  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIDE_SCRIPT = Path(__file__).resolve().parent / "imitation_side" / "mce_irl.py"
DEFAULT_IMITATION_VENV = ROOT / ".venv-imitation"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "maxent_irl"
PLOT_CURVES = "evd_curves.png"
GAMMA = 1.0
WARMUP_SEED = 999


@dataclass(frozen=True)
class World:
    """A tabular world and where its expert's counts come from (episodes None: exact)."""

    name: str
    label: str
    env: str
    episodes: int | None
    lr: float
    env_config: Mapping[str, Any] = field(default_factory=dict)


WORLDS: dict[str, World] = {w.name: w for w in (
    World("gridworld_exact", "GridWorld 8 x 8, exact expert occupancies", "rlfrontier/GridWorld-v0", None, 0.05),
    World("gridworld_50", "GridWorld 8 x 8, 50 demonstrations", "rlfrontier/GridWorld-v0", 50, 0.05),
    World("objectworld_64", "ObjectWorld 16 x 16, 64 demonstrations", "rlfrontier/ObjectWorld-v0", 64, 0.01),
)}
CONTENDERS = {
    "ours_linear": "maxent_irl, linear reward (ours)",
    "ours_mlp": "maxent_irl, MLP reward (ours, deep MaxEnt)",
    "imitation_linear": "imitation MCEIRL, linear reward",
    "imitation_mlp": "imitation MCEIRL, MLP reward",
}
IMITATION = ("imitation_linear", "imitation_mlp")
PRIORS = ("matched", "none")


# Measures (the same function for every contender) --------------------------------------------------------------


def world_mdp(world: World):
    """The world's rlfrontier.tabular.TabularMDP (the algorithm's own, built once per process)."""
    from rlfrontier.algorithms.maxent_irl.maxent_irl import world as tabular_world

    return tabular_world(world.env, world.env_config)


def finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def reward_measures(mdp, reward: np.ndarray) -> dict[str, float | None]:
    """A learned state reward [S] against the world's true one, by rlfrontier.tabular for every contender:
    the expected value difference (absolute and as % of the optimal value), the optimal value, Pearson's r."""
    from rlfrontier import tabular

    reward = np.asarray(reward, dtype=np.float64)
    if reward.shape != (mdp.num_states,):
        raise ValueError(f"learned reward has shape {reward.shape}, the world {(mdp.num_states,)}")
    evd, best = tabular.expected_value_difference(mdp, reward, gamma=GAMMA)
    return {
        "evd": float(evd),
        "evd_pct": finite_or_none(100.0 * evd / abs(best)) if best else None,
        "optimal_value": float(best),
        "correlation": finite_or_none(tabular.pearson(reward, mdp.reward)),
    }


def state_marginals(mdp, policy: np.ndarray) -> np.ndarray:
    """d_t(s) for t = 0 .. T under a time-indexed policy [T, S, A]: shape (T + 1, S)."""
    d = np.asarray(mdp.initial, dtype=np.float64)
    out = [d]
    for t in range(mdp.horizon):
        d = np.einsum("s,sa,sax->x", d, policy[t], mdp.transitions)
        out.append(d)
    return np.stack(out)


def exact_expert_occupancy_imitation(mdp) -> np.ndarray:
    """The optimal policy's expected state counts in imitation's convention: sum over t = 0 .. T (T + 1 states)."""
    from rlfrontier import tabular

    policy = tabular.one_hot_policy(tabular.optimal_policy(mdp, gamma=GAMMA), mdp.num_actions)
    return state_marginals(mdp, policy).sum(axis=0)


# The imitation side: files and subprocess ----------------------------------------------------------------------


def write_side_input(path: Path, mdp, *, config: Mapping[str, Any], demo_states: np.ndarray | None = None,
                     demo_actions: np.ndarray | None = None, occupancy: np.ndarray | None = None) -> None:
    """The .npz that benchmarks/imitation_side/mce_irl.py reads (its read_input): the MDP's arrays, the
    demonstrations (states [N, T + 1] and actions [N, T], or an occupancy [S]) and the config as JSON."""
    if (demo_states is None) == (occupancy is None):
        raise ValueError("give demo_states or occupancy (one of them)")
    arrays: dict[str, Any] = {
        "transitions": np.asarray(mdp.transitions, dtype=np.float64),
        "features": np.asarray(mdp.features, dtype=np.float64),
        "initial": np.asarray(mdp.initial, dtype=np.float64),
        "horizon": np.asarray(int(mdp.horizon)),
        "discount": np.asarray(float(GAMMA)),
        "config": np.asarray(json.dumps(dict(config))),
    }
    if demo_states is not None:
        arrays["demo_states"] = np.asarray(demo_states, dtype=np.int64)
        if demo_actions is not None:
            arrays["demo_actions"] = np.asarray(demo_actions, dtype=np.int64)
    else:
        arrays["occupancy"] = np.asarray(occupancy, dtype=np.float64)
    np.savez(path, **arrays)


def read_side_output(path: Path) -> dict[str, Any]:
    """The side script's .npz (its write_output): reward [S], snapshots, and its info (JSON)."""
    with np.load(path, allow_pickle=False) as data:
        return {
            "reward": np.asarray(data["reward"], dtype=np.float64),
            "snapshot_iters": [int(i) for i in data["snapshot_iters"]],
            "snapshot_rewards": np.asarray(data["snapshot_rewards"], dtype=np.float64),
            "snapshot_wall_s": [float(w) for w in data["snapshot_wall_s"]],
            "info": json.loads(str(data["info"])),
        }


def venv_python(venv: Path) -> Path:
    return Path(venv) / "bin" / "python"


@functools.lru_cache(maxsize=4)
def imitation_missing(venv: Path) -> str | None:
    """Why imitation's MCE IRL cannot run from `venv` (None: it can)."""
    python = venv_python(venv)
    if not python.is_file():
        return f"no {python}: `make imitation-env` makes the imitation venv (imitation 1.0.1, gymnasium 0.29)"
    probe = subprocess.run([str(python), "-c", "import imitation.algorithms.mce_irl, seals.base_envs"],
                           capture_output=True, text=True, env=side_env(), timeout=300)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"{python} cannot import imitation's MCE IRL ({last[:200]}): `make imitation-env` makes it"
    return None


def side_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def run_side(venv: Path, input_path: Path, output_path: Path, *, timeout: float) -> tuple[dict[str, Any], float]:
    """The side script in the imitation venv: (its output, the command's wall clock)."""
    cmd = [str(venv_python(venv)), str(SIDE_SCRIPT), str(input_path), str(output_path)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=side_env(), timeout=timeout, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not output_path.is_file():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"imitation side exited {proc.returncode}: {tail[-600:]}")
    return read_side_output(output_path), wall


# Demonstrations ----------------------------------------------------------------------------------------------------


def demo_set(args: argparse.Namespace, seed: int) -> int:
    """The README's demo set k of seed index `seed` (also the run's seed); recorded with seed 1000 k."""
    return args.demo_set_base + seed


class Demos:
    """Demonstration folders, recorded once per world and demo set in a temporary folder (the session's)."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self._folders: dict[tuple[str, int], Path] = {}

    @contextmanager
    def session(self) -> Iterator[None]:
        self.root = Path(tempfile.mkdtemp(prefix="maxent_irl_demos_"))
        try:
            yield
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root, self._folders = None, {}

    def folder(self, world: World, k: int) -> Path:
        key = (world.name, k)
        if key not in self._folders:
            from rlfrontier import demos

            if self.root is None:
                raise RuntimeError("Demos.folder outside its session")
            out = self.root / f"{world.name}_{k}"
            demos.record(out=out, env_id=world.env, env_config=dict(world.env_config), episodes=world.episodes,
                         scripted="optimal", seed=1000 * k)
            self._folders[key] = out
        return self._folders[key]


def demo_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(states [N, T + 1]: s_0 .. s_T of each episode, actions [N, T], returns) from a demonstrations folder."""
    from rlfrontier import demos

    episodes = demos.load(folder).episodes()
    states = [np.append(np.argmax(e["obs"], axis=1), np.argmax(e["next_obs"][-1])) for e in episodes]
    return (np.stack(states).astype(np.int64), np.stack([e["action"] for e in episodes]).astype(np.int64),
            [float(e["reward"].sum()) for e in episodes])


# Contenders ---------------------------------------------------------------------------------------------------------


def reward_model(contender: str) -> str:
    return contender.rsplit("_", 1)[1]


def record_final(rec: harness.Recorder, mdp, reward: np.ndarray, *, iterations: int) -> None:
    final = reward_measures(mdp, reward)
    rec.extra.update(final)
    rec.extra["updates"] = int(iterations)
    rec.extra["learned_reward"] = [round(float(x), 6) for x in reward]
    harness.log(f"{rec.name}: {iterations} updates, EVD {harness.fmt(final['evd_pct'], 2)}% of optimal, "
                f"correlation {harness.fmt(final['correlation'], 3)}, {harness.fmt(rec.train_wall_s, 1)} s")


def run_ours(contender: str, world: World, args: argparse.Namespace, demos: Demos, seed: int, budget: int,
             rec: harness.Recorder) -> None:
    from rlfrontier.configure import build_config

    mdp = world_mdp(world)
    k = demo_set(args, seed)
    folder = None if world.episodes is None else demos.folder(world, k)
    rec.extra["demo_set"], rec.extra["run_seed"] = (k if folder else None), k
    _, config, _ = build_config(
        algo="maxent_irl", env=world.env, env_config=dict(world.env_config), seed=k, evaluation_interval=0,
        demos=None if folder is None else str(folder),
        overrides={"reward_model": reward_model(contender), "lr": world.lr, "reward_l2": args.reward_l2,
                   "hidden_sizes": list(args.hidden_sizes)})
    with rec.setup():
        algo = config.build_algo()
    try:
        rec.start()
        for i in range(1, int(budget) + 1):
            algo.train()
            if i % args.snapshot_every == 0 or i == budget:
                wall = rec.clock.elapsed()
                with rec.clock.paused():
                    point = reward_measures(mdp, algo.learned_reward())
                rec.record(i, wall_s=wall, **point)
        rec.stop(int(budget))
        record_final(rec, mdp, algo.learned_reward(), iterations=int(budget))
    finally:
        algo.stop()


def imitation_config(contender: str, world: World, args: argparse.Namespace, *, seed: int, horizon: int,
                     budget: int) -> dict[str, Any]:
    """The side script's config: the same step size, hidden sizes, budget and (matched) prior as ours."""
    return {
        "reward_model": reward_model(contender),
        "hidden_sizes": list(args.hidden_sizes),
        "lr": world.lr,
        "weight_decay": 2.0 * args.reward_l2 * horizon if args.imitation_prior == "matched" else 0.0,
        "max_iter": int(budget),
        "seed": int(seed),
        "snapshot_every": args.snapshot_every,
        "zero_init": True,
    }


def run_imitation(contender: str, world: World, args: argparse.Namespace, demos: Demos, seed: int, budget: int,
                  rec: harness.Recorder) -> None:
    mdp = world_mdp(world)
    k = demo_set(args, seed)
    config = imitation_config(contender, world, args, seed=k, horizon=mdp.horizon, budget=int(budget))
    rec.extra["run_seed"], rec.extra["weight_decay"] = k, config["weight_decay"]
    with tempfile.TemporaryDirectory(prefix="maxent_irl_side_") as tmp:
        input_path, output_path = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        if world.episodes is None:
            write_side_input(input_path, mdp, config=config, occupancy=exact_expert_occupancy_imitation(mdp))
            rec.extra["demo_set"] = None
        else:
            states, actions, _ = demo_arrays(demos.folder(world, k))
            write_side_input(input_path, mdp, config=config, demo_states=states, demo_actions=actions)
            rec.extra["demo_set"] = k
        out, wall = run_side(args.imitation_venv, input_path, output_path, timeout=args.side_timeout)
    info = out["info"]
    for it, reward, w in zip(out["snapshot_iters"], out["snapshot_rewards"], out["snapshot_wall_s"]):
        rec.record(it, wall_s=w, **reward_measures(mdp, reward))
    rec.stop(int(info["iterations"]))
    rec.train_wall_s = float(info["train_s"])
    rec.setup_s = max(wall - rec.train_wall_s, 0.0)
    rec.extra.update({"command_wall_s": wall, "side_import_s": info["import_s"], "side_setup_s": info["setup_s"],
                      "demo_occupancy_sum": info["demo_occupancy_sum"], "side_versions": info["versions"]})
    record_final(rec, mdp, out["reward"], iterations=int(info["iterations"]))


def warm_up(args: argparse.Namespace, contenders: list[harness.Contender]) -> None:
    """One untimed build and two updates of ours (one-time imports and torch's first calls), if it runs."""
    if not any(c.name.startswith("ours_") for c in contenders):
        return
    from rlfrontier.configure import build_config

    _, config, _ = build_config(algo="maxent_irl", env=WORLDS["gridworld_exact"].env, seed=WARMUP_SEED,
                                evaluation_interval=0, overrides={"reward_model": "mlp"})
    algo = config.build_algo()
    try:
        for _ in range(2):
            algo.train()
        algo.learned_reward()
    finally:
        algo.stop()


# Flags and plan ---------------------------------------------------------------------------------------------------


def name_list(choices: Sequence[str]):
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {unknown or 'empty list'}; choose from {','.join(choices)}")
        return names

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=harness.positive_int, default=3,
                   help="seed indices 0..N-1: demo sets (and run seeds) --demo-set-base + i (default 3)")
    p.add_argument("--worlds", type=name_list(list(WORLDS)), default=list(WORLDS),
                   help=f"comma-separated subset of {','.join(WORLDS)}")
    p.add_argument("--contenders", type=name_list(list(CONTENDERS)), default=list(CONTENDERS),
                   help=f"comma-separated subset of {','.join(CONTENDERS)}")
    p.add_argument("--updates", type=harness.positive_int, default=300,
                   help="reward updates per run (imitation's max_iter; default 300)")
    p.add_argument("--snapshot-every", type=harness.positive_int, default=25,
                   help="reward updates between the curves' measures (default 25)")
    p.add_argument("--reward-l2", type=float, default=0.03, help="L2 prior on the reward's parameters (default 0.03)")
    p.add_argument("--hidden-sizes", type=harness.positive_int, nargs="+", default=[32, 32],
                   help="the MLP rewards' hidden layers (default 32 32)")
    p.add_argument("--imitation-prior", choices=PRIORS, default="matched",
                   help="imitation's Adam weight decay: matched to --reward-l2 (2 * l2 * T) or none (default matched)")
    p.add_argument("--demo-set-base", type=int, default=5, help="demo set of seed index 0 (default 5: held out)")
    p.add_argument("--imitation-venv", type=Path, default=DEFAULT_IMITATION_VENV,
                   help=f"the imitation venv (default {DEFAULT_IMITATION_VENV}; `make imitation-env`)")
    p.add_argument("--side-timeout", type=float, default=1800.0, help="seconds one imitation run may take")
    p.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip ours' untimed warm-up")


def contender(name: str, world: World, args: argparse.Namespace, demos: Demos) -> harness.Contender:
    if name in IMITATION:
        return harness.Contender(name=name, run=partial(run_imitation, name, world, args, demos), budget=args.updates,
                                 label=CONTENDERS[name], group={"world": world.name},
                                 available=partial(imitation_missing, args.imitation_venv.resolve()))
    return harness.Contender(name=name, run=partial(run_ours, name, world, args, demos), budget=args.updates,
                             label=CONTENDERS[name], group={"world": world.name})


def plan(args: argparse.Namespace) -> harness.Plan:
    from harness.rllib import ray_session

    demos = Demos()
    contenders = [contender(name, WORLDS[w], args, demos) for w in args.worlds for name in args.contenders]

    @contextmanager
    def session(available: list[harness.Contender], results: dict[str, Any]) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(demos.session())
            if any(c.name.startswith("ours_") for c in available):
                stack.enter_context(ray_session(results, num_cpus=1))
            yield

    return harness.Plan(
        contenders=contenders,
        seeds=range(args.seeds),
        settings={
            "worlds": {w: {"env": WORLDS[w].env, "env_config": dict(WORLDS[w].env_config),
                           "episodes": WORLDS[w].episodes, "lr": WORLDS[w].lr, "label": WORLDS[w].label}
                       for w in args.worlds},
            "contenders": args.contenders,
            "updates": args.updates,
            "snapshot_every": args.snapshot_every,
            "reward_l2": args.reward_l2,
            "hidden_sizes": list(args.hidden_sizes),
            "imitation_prior": args.imitation_prior,
            "demo_sets": [args.demo_set_base + s for s in range(args.seeds)],
            "demo_record_seed": "1000 * demo set",
            "gamma": GAMMA,
            "imitation_venv": str(args.imitation_venv),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "ray_num_cpus": 1,
        },
        session=session,
        warmup=partial(warm_up, args) if args.warmup else None,
    )


# Tables and plots ---------------------------------------------------------------------------------------------------


def ok_runs(results: dict[str, Any], contender_name: str, world: str) -> list[dict[str, Any]]:
    return sorted((r for r in results["runs"] if r["contender"] == contender_name and not r.get("error")
                   and (r.get("group") or {}).get("world") == world and "evd_pct" in (r.get("extra") or {})),
                  key=lambda r: r["seed"])


def med_range(values: Sequence[float | None], digits: int) -> str:
    """'median (min–max)' of the values that are there; '—' without any."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return "—"
    text = f"{statistics.median(present):,.{digits}f}"
    return text if len(present) == 1 else f"{text} ({min(present):,.{digits}f}–{max(present):,.{digits}f})"


def world_table(results: dict[str, Any], world: str) -> str | None:
    rows = []
    for name in results["settings"]["contenders"]:
        runs = ok_runs(results, name, world)
        if not runs:
            continue
        extra = [r["extra"] for r in runs]
        rates = [r["env_steps"] / r["train_wall_s"] for r in runs if r.get("train_wall_s")]
        rows.append([
            CONTENDERS[name], str(len(runs)),
            med_range([e["evd_pct"] for e in extra], 2),
            med_range([e["evd"] for e in extra], 3),
            med_range([e["correlation"] for e in extra], 3),
            med_range([r["train_wall_s"] for r in runs], 1),
            med_range([r["setup_s"] for r in runs], 1),
            med_range([e["updates"] for e in extra], 0),
            med_range(rates, 0),
        ])
    if not rows:
        return None
    headers = ["contender", "runs", "EVD % of optimal", "EVD", "reward correlation", "training wall-clock (s)",
               "set-up (s)", "reward updates", "updates/s"]
    return harness.markdown_table(headers, rows, ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:",
                                                  "---:"])


def per_seed_lines(results: dict[str, Any], world: str) -> list[str]:
    lines = []
    for name in results["settings"]["contenders"]:
        runs = [r for r in results["runs"] if r["contender"] == name and (r.get("group") or {}).get("world") == world]
        if not runs:
            continue
        cells = []
        for r in sorted(runs, key=lambda r: r["seed"]):
            e = r.get("extra") or {}
            if r.get("error") or "evd_pct" not in e:
                cells.append(f"s{r['seed']}: error")
                continue
            where = f" (set {e['demo_set']})" if e.get("demo_set") is not None else ""
            cells.append(f"s{r['seed']}{where}: {harness.fmt(e['evd_pct'], 2)}% / {harness.fmt(e['correlation'], 3)}")
        lines.append(f"- {CONTENDERS[name]}: " + ", ".join(cells))
    return lines


def deep_vs_linear(results: dict[str, Any], world: str) -> list[str]:
    """Per side: on how many seeds the MLP reward's EVD is below the linear one's."""
    out = []
    for side in ("ours", "imitation"):
        linear = {r["seed"]: r["extra"]["evd"] for r in ok_runs(results, f"{side}_linear", world)}
        deep = {r["seed"]: r["extra"]["evd"] for r in ok_runs(results, f"{side}_mlp", world)}
        both = sorted(set(linear) & set(deep))
        if both:
            wins = sum(deep[s] < linear[s] for s in both)
            out.append(f"{side}: MLP below linear on {wins} of {len(both)} seeds")
    return out


def render(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        "# MaxEnt IRL: maxent_irl (ours) against the imitation library's MCE IRL",
        "",
        harness.machine_line(results),
        "",
        f"{settings['updates']} reward updates per run (imitation: at most, it may stop on its own criteria), "
        f"L2 prior {settings['reward_l2']:g} (imitation: {settings['imitation_prior']}, as Adam weight decay "
        f"2 x l2 x T), MLP hidden sizes {settings['hidden_sizes']}, gamma {settings['gamma']:g} (finite horizon); "
        f"demo sets {settings['demo_sets']} (recorded from the worlds' optimal policies with seed 1000 x set, "
        "the run's seed = the set). Every learned reward judged by rlfrontier.tabular: EVD = true value of the "
        "optimal policy minus that of the policy optimal for the learned reward (from the start distribution, "
        "over the horizon), as % of the optimal value; reward correlation = Pearson's r with the true state "
        "reward. Cells: median (min–max) over seeds. Training wall-clock excludes set-up (ours: building the "
        "algorithm in a running Ray; imitation: the subprocess's start, imports and construction).",
        "",
    ]
    for world, spec in settings["worlds"].items():
        table = world_table(results, world)
        if table is None:
            continue
        lr = f"Adam step size {spec['lr']:g}"
        lines += [f"## {spec['label']}", "", f"`{spec['env']}` (defaults), {lr}.", "", table, "",
                  "Per seed, EVD % / correlation:", "", *per_seed_lines(results, world), ""]
        verdicts = deep_vs_linear(results, world)
        if verdicts:
            lines += ["Deep against linear (lower EVD): " + "; ".join(verdicts) + ".", ""]
    notes = harness.notes(results)
    if notes:
        lines += ["Notes:", "", *notes, ""]
    lines.append(f"![EVD against reward updates and training wall-clock]({PLOT_CURVES})")
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any], path: Path) -> bool:
    worlds = [w for w in results["settings"]["worlds"]
              if any((r.get("group") or {}).get("world") == w and r.get("points") for r in results["runs"])]
    if not worlds:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = {name: f"C{i}" for i, name in enumerate(CONTENDERS)}
    fig, axes = plt.subplots(2, len(worlds), figsize=(5.2 * len(worlds), 8), squeeze=False)
    for j, world in enumerate(worlds):
        for row, key in enumerate(("env_steps", "wall_s")):
            ax = axes[row][j]
            labelled: set[str] = set()
            for r in results["runs"]:
                if (r.get("group") or {}).get("world") != world:
                    continue
                pts = [(p[key], p["evd_pct"]) for p in r.get("points") or [] if p.get("evd_pct") is not None]
                if not pts:
                    continue
                name = r["contender"]
                ax.plot(*zip(*pts), color=palette.get(name), alpha=0.75, marker=".", markersize=3, linewidth=1.2,
                        label=None if name in labelled else CONTENDERS.get(name, name))
                labelled.add(name)
            ax.set_yscale("symlog", linthresh=0.1)
            ax.set_xlabel("reward updates" if key == "env_steps" else "training wall-clock (s)")
            ax.set_ylabel("EVD, % of optimal value")
            ax.set_title(results["settings"]["worlds"][world]["label"], fontsize=9)
            ax.grid(alpha=0.3, which="both")
            if j == 0 and row == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


BENCHMARK = harness.Benchmark(
    name="maxent_irl",
    doc=__doc__,
    default_out=DEFAULT_OUT,
    add_arguments=add_arguments,
    plan=plan,
    render=render,
    plots={PLOT_CURVES: plot_curves},
)


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
