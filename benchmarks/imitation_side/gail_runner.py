"""What the `imitation` side scripts share: our demonstrations as imitation's, GAIL's loop, JSON lines.

Runs in `.venv-imitation` (`make imitation-env`: imitation 1.0.1, gymnasium
0.29, stable-baselines3, CPU torch, pyarrow), as a subprocess of
benchmarks/imitation_gail.py; it imports neither ray nor rlfrontier. A side
script (gail_cartpole.py, gail_pendulum.py) states one task's env and
settings, with their sources, as a `SideTask`, and hands it to `main`, which
gives it two commands:

    SCRIPT train --demos DIR --seed S --budget N --eval-seeds A,B,... --target T [--full-budget]
    SCRIPT rollout --seed S --horizon H --actions A1,A2,...

`train` reads the demonstrations the project recorded (`rlfrontier demos
record`: DIR/transitions.parquet, one row per transition, rlfrontier/demos.py)
with pyarrow into imitation's `Trajectory` objects (one per episode: its
T + 1 observations, its T actions, terminal at the horizon), builds the
task's vectorised env, SB3 PPO generator, reward net and GAIL, and trains.

After every round (the policy and the discriminator change only there) the
greedy policy (`predict(deterministic=True)`: the argmax, or for Box actions
the Gaussian's mean clipped to the bounds) plays one episode per
--eval-seeds seed on fresh envs of the task, reset with that seed, all
stepped as one batch for the task's fixed horizon (neither task terminates
early); the mean return is reported. A run stops at the first evaluation
>= --target unless --full-budget, else after the last whole round that fits
in --budget env steps.

Progress goes to stdout as JSON lines, one object each, with an "event" key
(the benchmark parses them; anything the libraries print is sent to stderr):

    {"event": "setup", "setup_s": ..., "import_s": ..., "settings": {...}, "versions": {...}, "demos": {...}}
    {"event": "eval", "round": r, "env_steps": n, "wall_s": t, "eval_return": x, "eval_s": e}
    {"event": "done", "env_steps": n, "wall_s": t, "rounds": r, "reached": bool, "eval_s": e}

`wall_s` is the training clock: from the first round's start, less the time
spent evaluating (`eval_s`); `setup_s` is building the env, PPO and GAIL
(after the imports, `import_s`). `rollout` plays the given actions (comma
separated: 0/1 for CartPole, torques for Pendulum) after reset(seed) and
prints one JSON object with the observations, rewards, terminated and
truncated flags (the equivalence tests against our envs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

_OUT = sys.stdout  # replaced in main(): JSON lines only, on the process's real stdout


@dataclass(frozen=True)
class SideTask:
    """One task of the imitation side: its env and imitation's settings for it (the side script says whence).

    make_env(horizon) builds one env that never terminates early and truncates at `horizon`;
    ppo_kwargs go to SB3's PPO as they are (n_steps included), with `policy` its policy class
    or name; make_reward_net(venv) builds the discriminator's net; gail_kwargs go to GAIL.
    """

    name: str
    make_env: Callable[[int], Any]
    horizon: int
    n_envs: int
    ppo_kwargs: dict[str, Any]
    policy: Callable[[], Any]
    make_reward_net: Callable[[Any], Any]
    reward_net: str
    gail_kwargs: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)


def emit(event: str, **fields) -> None:
    _OUT.write(json.dumps({"event": event, **fields}) + "\n")
    _OUT.flush()


def claim_stdout() -> None:
    """JSON lines keep the real stdout; whatever else prints (SB3, imitation, tqdm) goes to stderr."""
    global _OUT
    _OUT = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


# Demonstrations ------------------------------------------------------------------------------------


def read_episodes(folder: Path) -> list[dict[str, np.ndarray]]:
    """Our Parquet rows as episodes: obs (T + 1, obs_dim) float32, acts (T,) int64 (Discrete) or
    (T, act_dim) float32 (Box), rewards (T,), in episode order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(Path(folder) / "transitions.parquet",
                          columns=["episode", "t", "obs", "action", "reward", "next_obs"])

    def rows(name: str) -> np.ndarray:
        column = table.column(name).combine_chunks()
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        return values.reshape(len(column), -1)

    episode = table.column("episode").to_numpy()
    step = table.column("t").to_numpy()
    obs, next_obs = rows("obs"), rows("next_obs")
    box = pa.types.is_list(table.schema.field("action").type)  # rlfrontier.demos: Box actions are lists
    action = rows("action") if box else table.column("action").to_numpy().astype(np.int64)
    reward = table.column("reward").to_numpy().astype(np.float64)
    out = []
    for e in np.unique(episode):
        idx = np.flatnonzero(episode == e)
        idx = idx[np.argsort(step[idx], kind="stable")]
        if not np.array_equal(step[idx], np.arange(len(idx))):
            raise ValueError(f"episode {e}: steps are not 0..{len(idx) - 1}")
        out.append({"obs": np.concatenate([obs[idx], next_obs[idx[-1:]]]), "acts": action[idx],
                    "rewards": reward[idx]})
    return out


def trajectories(episodes: list[dict[str, np.ndarray]]):
    from imitation.data.types import Trajectory

    # terminal=True: each recorded episode is complete (it ends at the horizon, as the generator's do).
    return [Trajectory(obs=e["obs"], acts=e["acts"], infos=None, terminal=True) for e in episodes]


# Evaluation ----------------------------------------------------------------------------------------


def env_action(space, action: np.ndarray):
    """One row of a batch of actions as the env takes it: an int (Discrete) or an array of the space's shape."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        return int(action)
    return np.asarray(action, dtype=space.dtype).reshape(space.shape)


def greedy_return_mean(predict, task: SideTask, seeds: list[int], horizon: int | None = None) -> float:
    """One episode per reset seed, all envs stepped as one batch by `predict(obs batch) -> actions`."""
    horizon = task.horizon if horizon is None else horizon
    games = [task.make_env(horizon) for _ in seeds]
    space = games[0].action_space
    obs = np.stack([game.reset(seed=s)[0] for game, s in zip(games, seeds)])
    returns = np.zeros(len(games))
    for _ in range(horizon):  # neither task terminates early: every episode lasts exactly `horizon` steps
        actions = np.asarray(predict(obs)).reshape(len(games), *space.shape)
        stepped = [game.step(env_action(space, a)) for game, a in zip(games, actions)]
        obs = np.stack([s[0] for s in stepped])
        returns += [s[1] for s in stepped]
    return float(returns.mean())


# train -----------------------------------------------------------------------------------------------


class Stop(Exception):
    """Raised from the round callback once the target is reached."""


def train(task: SideTask, args: argparse.Namespace) -> int:
    t_import = time.perf_counter()
    import torch
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.util import logger as imit_logger
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(args.torch_threads)
    import_s = time.perf_counter() - t_import

    t_setup = time.perf_counter()
    episodes = read_episodes(args.demos)
    demos = trajectories(episodes)
    venv = DummyVecEnv([lambda: task.make_env(args.horizon) for _ in range(args.n_envs)])
    venv.seed(args.seed)  # env i resets with seed + i first
    learner = PPO(env=venv, policy=task.policy(), seed=args.seed, device="cpu", verbose=0, **task.ppo_kwargs)
    reward_net = task.make_reward_net(venv)
    workdir = tempfile.TemporaryDirectory(prefix="imitation_gail_")
    gail = GAIL(demonstrations=demos, venv=venv, gen_algo=learner, reward_net=reward_net,
                log_dir=workdir.name, custom_logger=imit_logger.configure(workdir.name, ["csv"]), **task.gail_kwargs)
    setup_s = time.perf_counter() - t_setup

    import gymnasium
    import imitation
    import stable_baselines3

    returns = [float(e["rewards"].sum()) for e in episodes]
    policy = task.policy()
    emit("setup", setup_s=setup_s, import_s=import_s,
         settings={"task": task.name, "n_envs": args.n_envs,
                   "ppo": {**task.ppo_kwargs, "n_steps": learner.n_steps,
                           "policy": policy if isinstance(policy, str) else policy.__name__},
                   "gail": task.gail_kwargs, "reward_net": task.reward_net,
                   "gen_train_timesteps": gail.gen_train_timesteps, "budget": args.budget,
                   "rounds": args.budget // gail.gen_train_timesteps, "horizon": args.horizon,
                   "torch_threads": torch.get_num_threads(), **task.notes},
         versions={"imitation": imitation.__version__, "gymnasium": gymnasium.__version__,
                   "stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
                   "numpy": np.__version__},
         demos={"episodes": len(episodes), "transitions": int(sum(len(e["acts"]) for e in episodes)),
                "return_mean": float(np.mean(returns))})

    seeds = [int(s) for s in args.eval_seeds.split(",") if s.strip()]
    state = {"eval_s": 0.0, "reached": False, "rounds": 0}
    t0 = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - t0 - state["eval_s"]

    def after_round(round_index: int) -> None:
        wall_s = clock()
        state["rounds"] = round_index + 1
        t_eval = time.perf_counter()
        ret = greedy_return_mean(lambda obs: learner.predict(obs, deterministic=True)[0], task, seeds, args.horizon)
        eval_s = time.perf_counter() - t_eval
        state["eval_s"] += eval_s
        emit("eval", round=round_index + 1, env_steps=int(learner.num_timesteps), wall_s=wall_s,
             eval_return=ret, eval_s=eval_s)
        if args.target is not None and ret >= args.target:
            state["reached"] = True
            if not args.full_budget:
                raise Stop

    try:
        gail.train(args.budget, callback=after_round)
    except Stop:
        pass
    emit("done", env_steps=int(learner.num_timesteps), wall_s=clock(), rounds=state["rounds"],
         reached=state["reached"], eval_s=state["eval_s"])
    workdir.cleanup()
    return 0


# rollout -----------------------------------------------------------------------------------------------


def rollout(task: SideTask, args: argparse.Namespace) -> int:
    env = task.make_env(args.horizon)
    obs, _ = env.reset(seed=args.seed)
    observations, rewards, terminated, truncated = [obs.tolist()], [], [], []
    for a in (float(x) for x in args.actions.split(",") if x.strip()):
        obs, reward, term, trunc, _ = env.step(env_action(env.action_space, np.array(a)))
        observations.append(obs.tolist())
        rewards.append(float(reward))
        terminated.append(bool(term))
        truncated.append(bool(trunc))
    emit("rollout", observations=observations, rewards=rewards, terminated=terminated, truncated=truncated)
    return 0


def main(task: SideTask, doc: str, argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help=f"GAIL on {task.name}, JSON lines on stdout")
    t.add_argument("--demos", type=Path, required=True, help="a folder written by `rlfrontier demos record`")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--budget", type=int, default=1_000_000, help="env steps (whole GAIL rounds only)")
    t.add_argument("--eval-seeds", required=True, help="comma-separated reset seeds of the greedy evaluation")
    t.add_argument("--target", type=float, default=None, help="greedy mean return that ends the run")
    t.add_argument("--full-budget", action="store_true", help="go on after the target to the end of the budget")
    t.add_argument("--horizon", type=int, default=task.horizon)
    t.add_argument("--n-envs", type=int, default=task.n_envs)
    t.add_argument("--torch-threads", type=int, default=1)
    r = sub.add_parser("rollout", help="play fixed actions, print one JSON object")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--horizon", type=int, default=task.horizon)
    r.add_argument("--actions", default="", help="comma-separated actions")
    args = p.parse_args(argv)
    claim_stdout()
    return train(task, args) if args.command == "train" else rollout(task, args)
