#!/usr/bin/env python
"""Adversarial imitation benchmark (issue 9, part 8): gail and airl against the `imitation` library's GAIL.

One run, one task (--env), one set of demonstrations: DEMO_EPISODES (20)
episodes of the task's scripted expert (`rlfrontier demos record --scripted
cartpole|pendulum`, episode i reset with seed --demo-seed + i), recorded once
at the start (or read from --demos DIR). Two tasks:

- `rlfrontier/CartPoleFixedHorizon-v0` (the default; CartPole that never
  terminates, exactly 500 steps, reward 1 while the pole is up;
  rlfrontier/envs/cartpole_fixed.py), the scripted CartPole expert (500);
- `Pendulum-v1` (gymnasium's: 200 steps, a torque in [-2, 2], reward
  -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), never terminated), the scripted
  swing-up expert (rlfrontier/demos.py `pendulum_action`: about -140).

Contenders, one at a time, seed by seed:

- `expert`: the scripted controller itself, judged like the others (a reference, 0 env steps);
- `random`: uniformly random actions (the action space's own sampler, seeded
  with the run's seed), judged like the others (a reference, 0 env steps; on
  Pendulum its return sets the target, below; by default on Pendulum only);
- `bc`: our behavioural cloning (the registry's `bc`, defaults: soft_q's module
  for CartPole, ppo's for Pendulum, 100 updates of 256 demonstrated
  transitions per iteration); it samples no env step, so its "env steps to
  90%" is 0 and its budget counts iterations;
- `gail`, `airl`: ours, the registry's defaults (RLlib's PPO with the
  registry's CartPole settings plus lambda 0.95 and vf_clip_param 10,000;
  the discriminator's 8 Adam steps of 512 pairs per iteration), built in this
  process by `rlfrontier.configure.build_config` with the demonstrations as
  `--demos` would set them. On Pendulum the PPO settings are RLlib's own
  tuned Pendulum example instead (PENDULUM_PPO: rllib/tuned_examples/ppo/
  pendulum_ppo.py in ray-project/ray, the new API stack's: lr 2e-4, gamma
  0.95, lambda 0.5, train_batch_size_per_learner 1024, minibatch_size 128,
  PPO's default num_epochs 30 and vf_loss_coeff 1.0, ReLU hidden layers;
  vf_clip_param stays the adversarial default 10,000 for the learned reward;
  its MeanStdFilter is left out: it would hand the discriminator filtered
  observations against raw demonstrated ones); the module's actions are
  RLlib's default [-1, 1] units (normalize_actions), into which gail, airl
  and bc put the demonstrated torques (rlfrontier.demos.module_actions). One resource setting differs from `rlfrontier
  train`'s: the 8 envs sample in the driver's EnvRunner (num_env_runners 0,
  num_envs_per_env_runner 8, as the learning tests do; the CLI's default is
  two remote EnvRunners of one env), so one Ray of one CPU suffices;
- `imitation_gail`: the `imitation` library's GAIL (1.0.1; stable-baselines3 PPO
  as its generator). On CartPole with its documented CartPole settings (8
  envs; PPO batch_size 64, ent_coef 0, learning_rate 4e-4, gamma 0.95,
  n_epochs 5, n_steps 2048; BasicRewardNet with RunningNorm; demo_batch_size
  1024, gen_replay_buffer_capacity 512, n_disc_updates_per_round 8), from
  docs/algorithms/gail.rst and docs/tutorials/3_train_gail.ipynb at
  HumanCompatibleAI/imitation v1.0.1, whose comment says "Train for 800_000
  steps to match expert"; benchmarks/imitation_side/gail_cartpole.py's
  docstring has the details. On Pendulum with its sacred script's settings
  (`train_adversarial gail with pendulum`: 8 envs; PPO n_steps 256,
  batch_size 64, learning_rate 3e-4, n_epochs 10, ent_coef 0,
  FeedForward32Policy; BasicRewardNet with RunningNorm; demo_batch_size 1024,
  gen_replay_buffer_capacity 2048, n_disc_updates_per_round 4; 1e6 steps),
  benchmarks/imitation_side/gail_pendulum.py's docstring has the sources.
  imitation pins gymnasium 0.29, so it runs as a subprocess in
  `.venv-imitation` (`make imitation-env`): on our CartPole env written again
  for gymnasium 0.29 (benchmarks/imitation_side/fixed_cartpole.py, the same
  start states, physics, stops, reward and horizon), on gymnasium 0.29's own
  Pendulum-v1 (the same code as 1.2's but for documentation and rendering),
  and reports its evaluations as JSON lines. Without that venv it is
  skipped, noted.

Judged alike: the greedy policy plays EVAL_EPISODES (10) episodes (500
steps on CartPole, 200 on Pendulum) on fresh envs, episode k of seed s reset
with EVAL_SEED_BASE + 100 s + k (none of them a demonstration's or a training
env's seed); its mean return is the evaluation. Greedy: the argmax action
(Discrete), or the action distribution's mean (Box: RLlib's deterministic
action, sent to the env as RLlib's NormalizeAndClipActions connector would:
clipped to the bounds here; SB3's predict(deterministic=True) likewise).

The target is TARGET_FRACTION (90%) of the expert: on CartPole 90% of the
demonstrations' mean return (500 for this expert, so 450); on Pendulum,
whose returns are negative, 90% of the way from a uniformly random policy's
mean return to the demonstrations' mean return, R + 0.9 (E - R), where R is
`random`'s mean return measured by this benchmark at the start, on the
evaluation episodes of every seed of the run (-1,111 on seed 0's 10
episodes against the expert's -137.5: a target of -234.8). Ours are evaluated every --eval-every env
steps (default 4,000 on CartPole: each PPO iteration; 4,096 on Pendulum:
every 4th of 1,024), imitation's after every GAIL round (16,384 env steps on
CartPole, 2,048 on Pendulum: where its policy changes). A run stops at its
first evaluation that reaches the target (--full-budget: goes on to the end
of its budget) or at its budget: ours 400,000 env steps on CartPole and
500,000 on Pendulum, imitation's 1,000,000 (whole rounds: 999,424 on both).
Reported per contender: env steps and training wall-clock to the target
(evaluation excluded, set-up apart), the best and the final evaluation, env
steps/s. Runs on benchmarks/harness; see benchmarks/README.md.

    python benchmarks/imitation_gail.py --seeds 1
    python benchmarks/imitation_gail.py --env Pendulum-v1 --seeds 1   # into results/imitation_gail_pendulum
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
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Iterable

import harness
from harness.rllib import ray_session

ENV_ID = "rlfrontier/CartPoleFixedHorizon-v0"  # the default task
PENDULUM_ID = "Pendulum-v1"
DEMO_EPISODES = 20
EVAL_EPISODES = 10
# Evaluation episode k of a run with seed s starts from reset(seed=EVAL_SEED_BASE + 100*s + k).
EVAL_SEED_BASE = 1_000_000
TARGET_FRACTION = 0.9
CONTENDERS = ("expert", "random", "bc", "gail", "airl", "imitation_gail")
REFERENCES = ("expert", "random")  # judged, not trained: 0 env steps by construction
REFERENCE = "imitation_gail"
LABELS = {
    "expert": "scripted expert (reference)",
    "random": "uniformly random actions (reference)",
    "bc": "bc (rlfrontier, behavioural cloning)",
    "gail": "gail (rlfrontier, RLlib PPO)",
    "airl": "airl (rlfrontier, RLlib PPO)",
    "imitation_gail": "imitation 1.0.1 GAIL (SB3 PPO)",
}
# Ours sample in the driver's EnvRunner (the docstring says why).
RESOURCES = {"num_env_runners": 0, "num_envs_per_env_runner": 8}
ROOT = Path(__file__).resolve().parents[1]
IMITATION_PYTHON = ROOT / ".venv-imitation" / "bin" / "python"
SIDE = Path(__file__).resolve().parent / "imitation_side"
SIDE_SCRIPT = SIDE / "gail_cartpole.py"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "imitation_gail"
PLOT = "learning_curves.png"
SMOKE = {"budget": 8_000, "imitation_budget": 16_384, "bc_iters": 2, "eval_episodes": 3}

# RLlib's tuned PPO for Pendulum-v1 on the new API stack: rllib/tuned_examples/ppo/pendulum_ppo.py in
# ray-project/ray (the DefaultModelConfig version: train_batch_size_per_learner 1024, minibatch_size 128,
# lr 0.0002 (one learner), gamma 0.95, lambda_ 0.5, its num_epochs left at PPO's default, 30, and
# fcnet_activation relu; reward -300 within 400,000 env steps). The registry's gail and airl start from its
# CartPole settings (num_epochs 6, vf_loss_coeff 0.01), so PPO's defaults for those two are set here
# again. Its MeanStdFilter connector is not taken (the module docstring says why).
PENDULUM_PPO = {
    "lr": 0.0002,
    "gamma": 0.95,
    "lambda_": 0.5,
    "train_batch_size_per_learner": 1024,
    "minibatch_size": 128,
    "num_epochs": 30,
    "vf_loss_coeff": 1.0,
    "model_config": {"fcnet_activation": "relu"},
}


@dataclass(frozen=True)
class Task:
    """One --env choice: its expert, its side script and its defaults.

    from_random: the target is measured from `random`'s return (else from 0);
    rllib: settings over the registry's defaults for gail and airl, bc: for bc.
    """

    env_id: str
    expert: str  # `rlfrontier demos record --scripted NAME`
    expert_label: str
    horizon: int
    side_script: Path
    round_steps: int  # env steps of one imitation GAIL round
    budget: int
    imitation_budget: int
    eval_every: int
    algos: tuple[str, ...]
    default_out: Path
    from_random: bool = False
    rllib: dict[str, Any] = field(default_factory=dict)
    bc: dict[str, Any] = field(default_factory=dict)
    ylim: tuple[float, float] | None = None


TASKS = {task.env_id: task for task in (
    Task(env_id=ENV_ID, expert="cartpole", expert_label="the scripted CartPole expert", horizon=500,
         side_script=SIDE_SCRIPT, round_steps=16_384, budget=400_000, imitation_budget=1_000_000,
         eval_every=4000, algos=("expert", "bc", "gail", "airl", "imitation_gail"), default_out=DEFAULT_OUT,
         ylim=(0, 510)),
    Task(env_id=PENDULUM_ID, expert="pendulum", expert_label="the scripted Pendulum swing-up expert", horizon=200,
         side_script=SIDE / "gail_pendulum.py", round_steps=2048, budget=500_000, imitation_budget=1_000_000,
         eval_every=4096, algos=CONTENDERS, default_out=DEFAULT_OUT.with_name("imitation_gail_pendulum"),
         from_random=True, rllib=dict(PENDULUM_PPO),
         bc={"model_config": {"fcnet_activation": "relu"}}),
)}


def task_of(env_id: str | None) -> Task:
    return TASKS[env_id or ENV_ID]


def rllib_settings(name: str, task: Task) -> dict[str, Any]:
    """Settings over the registry's defaults for our contender `name` on `task` (none on CartPole)."""
    return dict(task.bc if name == "bc" else task.rllib)


# The criterion and the evaluation --------------------------------------------------------------------------


def target_of(expert_return: float, fraction: float = TARGET_FRACTION, random_return: float | None = None) -> float:
    """The return that counts as imitating: `fraction` of the way from `random_return` to the expert's
    mean return; without a random return, from 0 (`fraction` of the expert's: CartPole)."""
    floor = 0.0 if random_return is None else float(random_return)
    return floor + fraction * (float(expert_return) - floor)


def eval_seeds(run_seed: int, episodes: int = EVAL_EPISODES) -> list[int]:
    return [EVAL_SEED_BASE + 100 * run_seed + k for k in range(episodes)]


@lru_cache(maxsize=None)
def action_space(env_id: str):
    from rlfrontier import envs

    return envs.check_env(env_id, {})[1]  # registers the project's envs with gymnasium


def box_return_mean(policy: Callable, env_id: str, seeds: list[int]) -> float:
    """Mean undiscounted return of `policy` (a batch of observations -> a batch of Box actions), one episode
    per reset seed, the envs stepped as one vector env until each has ended once."""
    import gymnasium as gym
    import numpy as np

    games = gym.vector.SyncVectorEnv([partial(gym.make, env_id) for _ in seeds])
    try:
        obs, _ = games.reset(seed=list(seeds))
        returns, running = np.zeros(len(seeds)), np.ones(len(seeds), dtype=bool)
        while running.any():
            actions = np.asarray(policy(obs.astype(np.float32)), dtype=games.action_space.dtype)
            obs, reward, terminated, truncated, _ = games.step(actions.reshape(games.action_space.shape))
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
    finally:
        games.close()
    return float(returns.mean())


def greedy_return_mean(policy: Callable, seeds: list[int], env_id: str = ENV_ID) -> float:
    """Discrete actions: rlfrontier.evaluation's (as before); Box actions: box_return_mean."""
    import gymnasium as gym

    if isinstance(action_space(env_id), gym.spaces.Box):
        return box_return_mean(policy, env_id, seeds)
    from rlfrontier.evaluation import greedy_return_mean as play

    return play(policy, env_id, seeds=seeds)


def random_policy(env_id: str, seed: int) -> Callable:
    """Uniformly random actions, one per observation, from the action space's own sampler seeded with `seed`."""
    import copy

    import numpy as np

    space = copy.deepcopy(action_space(env_id))
    space.seed(seed)
    return lambda obs: np.stack([space.sample() for _ in range(len(obs))])


def random_return(env_id: str, seed: int, episodes: int = EVAL_EPISODES) -> float:
    """`random`'s mean return on the evaluation episodes of run seed `seed`."""
    return greedy_return_mean(random_policy(env_id, seed), eval_seeds(seed, episodes), env_id)


# The imitation side: availability, its JSON lines ----------------------------------------------------------


def imitation_missing(python: Path | None = None, script: Path | None = None) -> str | None:
    """Why the `imitation` contender cannot run here (None: it can); `python` defaults to IMITATION_PYTHON,
    `script` to SIDE_SCRIPT."""
    python = IMITATION_PYTHON if python is None else Path(python)
    script = SIDE_SCRIPT if script is None else Path(script)
    if not Path(python).is_file() or not os.access(python, os.X_OK):
        return (f"{python} not found: the `imitation` library lives in its own venv (it pins gymnasium 0.29); "
                "create it with `make imitation-env`")
    if not script.is_file():
        return f"{script} is missing"
    return None


def parse_side_line(line: str) -> dict[str, Any] | None:
    """One line of a side script's stdout: its JSON object if it is one with an "event", else None."""
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
                 full_budget: bool, python: Path | None = None, script: Path | None = None) -> list[str]:
    cmd = [str(IMITATION_PYTHON if python is None else python), str(SIDE_SCRIPT if script is None else script),
           "train", "--demos", str(demos), "--seed", str(seed), "--budget", str(int(budget)),
           "--eval-seeds", ",".join(map(str, eval_seeds(seed, eval_episodes)))]
    if target is not None:
        cmd += ["--target", repr(float(target))]
    if full_budget:
        cmd.append("--full-budget")
    return cmd


def run_imitation(args: argparse.Namespace, demos: Path, target: float, seed: int, budget: int,
                  rec: harness.Recorder) -> None:
    cmd = side_command(demos=demos, seed=seed, budget=budget, target=target, eval_episodes=args.eval_episodes,
                       full_budget=args.full_budget, script=task_of(args.env).side_script)
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


def expert_policy(env_id: str) -> Callable:
    """The scripted expert of `env_id`'s task, for a batch of observations."""
    import numpy as np

    from rlfrontier.demos import cartpole_action, pendulum_action

    one = pendulum_action if task_of(env_id).expert == "pendulum" else cartpole_action
    return lambda obs: np.array([one(o) for o in obs])


def run_expert(args: argparse.Namespace, manifest: dict[str, Any], seed: int, budget: int,
               rec: harness.Recorder) -> None:
    """The scripted controller on the evaluation episodes: the reference every imitator is judged against."""
    env_id = task_of(args.env).env_id
    rec.start()
    rec.evaluate(0, lambda: greedy_return_mean(expert_policy(env_id), eval_seeds(seed, args.eval_episodes), env_id))
    rec.stop(0, demos_return_mean=manifest.get("return_mean"), demos_return_std=manifest.get("return_std"))


def run_random(args: argparse.Namespace, seed: int, budget: int, rec: harness.Recorder) -> None:
    """Uniformly random actions on the evaluation episodes: the floor of Pendulum's target."""
    rec.start()
    rec.evaluate(0, lambda: random_return(task_of(args.env).env_id, seed, args.eval_episodes))
    rec.stop(0)


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


def greedy_policy(algo, env_id: str) -> Callable:
    """The module's deterministic action for a batch of observations, as the env would get it from the
    algorithm's EnvRunner (demos.env_actions: Box actions unsquashed or clipped as its config says)."""
    from rlfrontier.demos import env_actions
    from rlfrontier.evaluation import act

    config = algo.config
    return lambda obs: env_actions(act(algo.get_module(), obs, explore=False), action_space(env_id),
                                   normalize_actions=bool(config.normalize_actions),
                                   clip_actions=bool(config.clip_actions))


def run_rllib(name: str, args: argparse.Namespace, demos: Path, seed: int, budget: int,
              rec: harness.Recorder) -> None:
    """bc, gail or airl with the registry's defaults (and the task's settings), on --demos, sampling in the
    driver (RESOURCES)."""
    from rlfrontier.configure import build_config

    task = task_of(args.env)
    _, config, _ = build_config(algo=name, env=task.env_id, seed=seed, demos=str(demos), evaluation_interval=0,
                                overrides=rllib_settings(name, task) or None, **RESOURCES)
    with rec.setup():
        algo = config.build_algo()
    seeds = eval_seeds(seed, args.eval_episodes)
    policy = greedy_policy(algo, task.env_id)
    if name == "bc":
        train_loop(algo, rec, lambda: greedy_return_mean(policy, seeds, task.env_id),
                   full_budget=args.full_budget, steps=lambda result, iterations: iterations, every_iteration=True)
    else:
        train_loop(algo, rec, lambda: greedy_return_mean(policy, seeds, task.env_id),
                   full_budget=args.full_budget, steps=lambda result, iterations: sampled_steps(result))


# Demonstrations ---------------------------------------------------------------------------------------------


def demonstrations(folder: Path | None, *, seed: int, task: Task | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder of the 20 expert episodes every contender learns from, and its manifest.

    An existing --demos folder is read (and must be of the task's env); otherwise they are recorded into
    a temporary folder.
    """
    from rlfrontier import demos

    task = task or task_of(None)
    if folder is not None and (Path(folder) / demos.MANIFEST_FILE).is_file():
        manifest = demos.read_manifest(folder, where="--demos")
        if manifest["env"] != task.env_id:
            raise SystemExit(f"--demos {folder}: recorded on {manifest['env']}, not {task.env_id}")
        return Path(folder).resolve(), manifest
    out = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="imitation_gail_demos_"))
    harness.log(f"recording {DEMO_EPISODES} scripted-expert episodes of {task.env_id} into {out}")
    manifest = demos.record(out=out, env_id=task.env_id, episodes=DEMO_EPISODES, scripted=task.expert, seed=seed)
    return out.resolve(), manifest


# Flags and plan ---------------------------------------------------------------------------------------------


def contender_list(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in names if a not in CONTENDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {unknown or 'empty list'}; choose from {','.join(CONTENDERS)}")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    cartpole, pendulum = TASKS[ENV_ID], TASKS[PENDULUM_ID]
    p.add_argument("--env", choices=list(TASKS), default=ENV_ID, help=f"the task (default {ENV_ID})")
    p.add_argument("--seeds", type=harness.positive_int, default=1, help="seeds per contender: 0..N-1 (default 1)")
    p.add_argument("--algos", type=contender_list, default=None,
                   help=f"comma-separated subset of {','.join(CONTENDERS)} (default: {','.join(cartpole.algos)}; "
                        "on Pendulum all of them)")
    p.add_argument("--budget", type=harness.positive_int, default=None,
                   help=f"env-step budget of gail and airl (default {cartpole.budget} on CartPole, "
                        f"{pendulum.budget} on Pendulum)")
    p.add_argument("--imitation-budget", type=harness.positive_int, default=None,
                   help=f"env-step budget of imitation's GAIL, whole rounds of {cartpole.round_steps:,} on CartPole "
                        f"and {pendulum.round_steps:,} on Pendulum (default {cartpole.imitation_budget})")
    p.add_argument("--bc-iters", type=harness.positive_int, default=20,
                   help="bc's budget in iterations of 100 updates (default 20)")
    p.add_argument("--eval-every", type=harness.positive_int, default=None,
                   help=f"env steps between evaluations of gail and airl (default {cartpole.eval_every} on CartPole: "
                        f"every iteration; {pendulum.eval_every} on Pendulum: every 4th)")
    p.add_argument("--eval-episodes", type=harness.positive_int, default=EVAL_EPISODES,
                   help=f"greedy episodes per evaluation (default {EVAL_EPISODES})")
    p.add_argument("--full-budget", action="store_true",
                   help="go on after reaching the target to the end of each budget (best and final then differ)")
    p.add_argument("--demos", type=Path, default=None,
                   help="demonstrations folder to use (recorded there if it holds none; default: a temporary one)")
    p.add_argument("--demo-seed", type=int, default=0, help="episode i of the demonstrations resets with this + i")
    p.add_argument("--smoke", action="store_true",
                   help=f"tiny budgets for a quick check ({SMOKE}); without --out, a temporary output folder")


def task_defaults(args: argparse.Namespace) -> Task:
    """Fills the flags left unset with the task's defaults (contenders, budgets, schedule, output folder)."""
    task = task_of(getattr(args, "env", None))
    args.env = task.env_id
    for name in ("budget", "imitation_budget", "eval_every"):
        if getattr(args, name, None) is None:
            setattr(args, name, getattr(task, name))
    if getattr(args, "algos", None) is None:
        args.algos = list(task.algos)
    if getattr(args, "out", None) is None and not getattr(args, "smoke", False) and task.env_id != ENV_ID:
        args.out = task.default_out
    return task


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
    if name == "random":
        return harness.Contender(name=name, run=partial(run_random, args), budget=0, label=LABELS[name])
    if name == "imitation_gail":
        script = task_of(getattr(args, "env", None)).side_script
        return harness.Contender(name=name, run=partial(run_imitation, args, demos, target),
                                 budget=args.imitation_budget, label=LABELS[name],
                                 available=partial(imitation_missing, None, script))
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
    task = task_defaults(args)
    smoke_defaults(args)
    demos, manifest = demonstrations(args.demos, seed=args.demo_seed, task=task)
    expert_return = float(manifest["return_mean"])
    random_mean = None
    if task.from_random:  # measured here, before any contender runs: the target depends on it
        random_mean = statistics.fmean(random_return(task.env_id, s, args.eval_episodes) for s in range(args.seeds))
        harness.log(f"random actions: mean return {random_mean:.2f} on the evaluation episodes of seeds "
                    f"0..{args.seeds - 1}")
    target = target_of(expert_return, random_return=random_mean)
    return harness.Plan(
        contenders=[contender(name, args, demos, manifest, target) for name in args.algos],
        seeds=range(args.seeds),
        settings={
            "env": task.env_id,
            "algos": args.algos,
            "demos": str(demos),
            "demo_episodes": manifest["episodes"],
            "demo_seed": args.demo_seed,
            "expert_return_mean": expert_return,
            "random_return_mean": random_mean,
            "target_fraction": TARGET_FRACTION,
            "target_rule": ("fraction of the way from random_return_mean to expert_return_mean" if task.from_random
                            else "fraction of expert_return_mean"),
            "budget": args.budget,
            "imitation_budget": args.imitation_budget,
            "imitation_round_steps": task.round_steps,
            "bc_iters": args.bc_iters,
            "eval_episodes": args.eval_episodes,
            "eval_seed_base": EVAL_SEED_BASE,
            "full_budget": args.full_budget,
            "smoke": args.smoke,
            "rllib_resources": RESOURCES,
            "rllib_settings": {name: rllib_settings(name, task) for name in ("bc", "gail", "airl")
                               if name in args.algos},
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        target=target,
        eval_every=args.eval_every,
        reference=REFERENCE,
        session=session,
        resume_ignores=frozenset({"demos"}),  # a temporary folder unless --demos: recorded again, the same
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


def target_sentence(settings: dict[str, Any], label: str) -> str:
    expert = settings["expert_return_mean"]
    if settings.get("random_return_mean") is None:
        return f"a greedy mean return >= {label} ({settings['target_fraction']:.0%} of the expert's)"
    return (f"a greedy mean return >= {label} ({settings['target_fraction']:.0%} of the way from uniformly random "
            f"actions' mean return on the evaluation episodes, {settings['random_return_mean']:.1f}, to the "
            f"expert's {expert:.1f})")


def references_sentence(results: dict[str, Any]) -> str:
    names = {c["name"] for c in results.get("contenders", [])}
    if "random" not in names:
        return "the expert is the reference return, not trained"
    return "the references (expert, random) are judged, not trained"


def render(results: dict[str, Any]) -> str:
    settings, target = results["settings"], results["target"]
    task = task_of(settings.get("env"))
    summaries = harness.summarize(results)
    label = f"{target:g}"
    round_steps = settings.get("imitation_round_steps", task.round_steps)
    budgets = (f"gail and airl {settings['budget']:,} env steps, imitation's GAIL {settings['imitation_budget']:,} "
               f"(whole rounds of {round_steps:,}), bc {settings['bc_iters']} iterations")
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
        f"# {task.env_id}: gail and airl against imitation's GAIL, the expert and bc",
        "",
        harness.machine_line(results),
        "",
        f"Demonstrations: {settings['demo_episodes']} episodes of {task.expert_label}, mean return "
        f"{settings['expert_return_mean']:g}. Target: {target_sentence(settings, label)} over "
        f"{settings['eval_episodes']} episodes of {task.horizon} steps on fresh envs, evaluated every "
        f"{results['eval_every']:,} env steps (gail, airl), after every round of {round_steps:,} env steps "
        f"(imitation's GAIL) or every iteration (bc). Budgets: {budgets}; {stop}. "
        "Wall-clock is training time only (evaluation excluded, set-up apart). bc samples no env step "
        f"(its env steps are 0); {references_sentence(results)}.",
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
    trained = [s for s in summaries if s.contender not in (*REFERENCES, "bc")]
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
    task = task_of(results["settings"].get("env"))
    runs = [r for r in results["runs"] if r["contender"] not in (*REFERENCES, "bc")]
    return harness.plot_learning_curves(
        results, path, runs=runs, ylim=task.ylim,
        ylabel=f"greedy return (mean of {results['settings']['eval_episodes']} episodes)",
        title=f"{task.env_id}: one line per seed (dashed: the target, 90% of the expert)")


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
