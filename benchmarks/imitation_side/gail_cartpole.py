#!/usr/bin/env python
"""The `imitation` library's GAIL on the fixed-horizon CartPole, for benchmarks/imitation_gail.py.

Runs in `.venv-imitation` (`make imitation-env`: imitation 1.0.1, gymnasium
0.29, stable-baselines3, CPU torch, pyarrow), as a subprocess of the
benchmark; it imports neither ray nor rlfrontier. Two commands:

    gail_cartpole.py train --demos DIR --seed S --budget N --eval-seeds A,B,... --target T [--full-budget]
    gail_cartpole.py rollout --seed S --horizon H --actions 0110...

`train` reads the demonstrations the project recorded (`rlfrontier demos
record --scripted cartpole --env rlfrontier/CartPoleFixedHorizon-v0`:
DIR/transitions.parquet, one row per transition, rlfrontier/demos.py) with
pyarrow into imitation's `Trajectory` objects (one per episode: its T + 1
observations, its T actions, terminal at the horizon), and trains GAIL on
fixed_cartpole.FixedHorizonCartPole (our env, written again for gymnasium
0.29; its docstring states the equivalence) with the settings of imitation's
own CartPole example, identical in v1.0.1's docs/algorithms/gail.rst and
docs/tutorials/3_train_gail.ipynb (HumanCompatibleAI/imitation, tag v1.0.1):

- 8 envs in one vectorised env (`make_vec_env(..., n_envs=8)` there; a
  DummyVecEnv of 8 here);
- generator: stable-baselines3 PPO, MlpPolicy, batch_size 64, ent_coef 0.0,
  learning_rate 4e-4, gamma 0.95, n_epochs 5, the rest SB3's defaults
  (n_steps 2048 per env, so one GAIL round samples 8 x 2048 = 16,384 env
  steps; gae_lambda 0.95, clip_range 0.2);
- discriminator: BasicRewardNet (state and action; two hidden layers of 32)
  with a RunningNorm input layer;
- GAIL(demo_batch_size=1024, gen_replay_buffer_capacity=512,
  n_disc_updates_per_round=8); the docs' comment: "Train for 800_000 steps to
  match expert" (the tutorial trains 200,000; the sacred config
  `seals_cartpole` in scripts/config/train_adversarial.py uses 1.4e6).

Differences from that example: the task is our CartPoleFixedHorizon (theirs
is seals/CartPole-v0, also 500 steps without termination, but its state runs
off unbounded and its reward is its own), the demonstrations are our 20
scripted-expert episodes (theirs: 60 episodes of a PPO expert from the
HuggingFace hub), and the seed is the benchmark's.

After every round (the policy and the discriminator change only there) the
greedy policy (`predict(deterministic=True)`) plays one episode per
--eval-seeds seed on fresh FixedHorizonCartPole envs, reset with that seed,
all stepped as one batch; the mean return is reported. A run stops at the
first evaluation >= --target unless --full-budget, else after the last
whole round that fits in --budget env steps.

Progress goes to stdout as JSON lines, one object each, with an "event" key
(the benchmark parses them; anything the libraries print is sent to stderr):

    {"event": "setup", "setup_s": ..., "import_s": ..., "settings": {...}, "versions": {...}, "demos": {...}}
    {"event": "eval", "round": r, "env_steps": n, "wall_s": t, "eval_return": x, "eval_s": e}
    {"event": "done", "env_steps": n, "wall_s": t, "rounds": r, "reached": bool, "eval_s": e}

`wall_s` is the training clock: from the first round's start, less the time
spent evaluating (`eval_s`); `setup_s` is building the env, PPO and GAIL
(after the imports, `import_s`). `rollout` plays the given actions after
reset(seed) and prints one JSON object with the observations, rewards,
terminated and truncated flags (the equivalence test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixed_cartpole import DEFAULT_HORIZON, FixedHorizonCartPole  # noqa: E402

N_ENVS = 8
PPO_KWARGS = {"batch_size": 64, "ent_coef": 0.0, "learning_rate": 4e-4, "gamma": 0.95, "n_epochs": 5}
GAIL_KWARGS = {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 512, "n_disc_updates_per_round": 8}

_OUT = sys.stdout  # replaced in main(): JSON lines only, on the process's real stdout


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
    """Our Parquet rows as episodes: obs (T + 1, 4) float32, acts (T,) int64, rewards (T,), in episode order."""
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
    action = table.column("action").to_numpy().astype(np.int64)
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


def greedy_return_mean(predict, seeds: list[int], horizon: int = DEFAULT_HORIZON) -> float:
    """One episode per reset seed, all envs stepped as one batch by `predict(obs batch) -> actions`."""
    games = [FixedHorizonCartPole(horizon=horizon) for _ in seeds]
    obs = np.stack([game.reset(seed=s)[0] for game, s in zip(games, seeds)])
    returns = np.zeros(len(games))
    for _ in range(horizon):  # never terminated: every episode lasts exactly `horizon` steps
        actions = np.asarray(predict(obs)).reshape(-1)
        stepped = [game.step(int(a)) for game, a in zip(games, actions)]
        obs = np.stack([s[0] for s in stepped])
        returns += [s[1] for s in stepped]
    return float(returns.mean())


# train -----------------------------------------------------------------------------------------------


class Stop(Exception):
    """Raised from the round callback once the target is reached."""


def train(args: argparse.Namespace) -> int:
    t_import = time.perf_counter()
    import torch
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util.networks import RunningNorm
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv
    from stable_baselines3.ppo import MlpPolicy

    torch.set_num_threads(args.torch_threads)
    import_s = time.perf_counter() - t_import

    t_setup = time.perf_counter()
    episodes = read_episodes(args.demos)
    demos = trajectories(episodes)
    venv = DummyVecEnv([lambda: FixedHorizonCartPole(horizon=args.horizon) for _ in range(args.n_envs)])
    venv.seed(args.seed)  # env i resets with seed + i first
    learner = PPO(env=venv, policy=MlpPolicy, seed=args.seed, device="cpu", verbose=0, **PPO_KWARGS)
    reward_net = BasicRewardNet(observation_space=venv.observation_space, action_space=venv.action_space,
                                normalize_input_layer=RunningNorm)
    workdir = tempfile.TemporaryDirectory(prefix="imitation_gail_")
    gail = GAIL(demonstrations=demos, venv=venv, gen_algo=learner, reward_net=reward_net,
                log_dir=workdir.name, custom_logger=imit_logger.configure(workdir.name, ["csv"]), **GAIL_KWARGS)
    setup_s = time.perf_counter() - t_setup

    import gymnasium
    import imitation
    import stable_baselines3

    returns = [float(e["rewards"].sum()) for e in episodes]
    emit("setup", setup_s=setup_s, import_s=import_s,
         settings={"n_envs": args.n_envs, "ppo": {**PPO_KWARGS, "n_steps": learner.n_steps, "policy": "MlpPolicy"},
                   "gail": GAIL_KWARGS, "reward_net": "BasicRewardNet(normalize_input_layer=RunningNorm)",
                   "gen_train_timesteps": gail.gen_train_timesteps, "budget": args.budget,
                   "rounds": args.budget // gail.gen_train_timesteps, "horizon": args.horizon,
                   "torch_threads": torch.get_num_threads()},
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
        ret = greedy_return_mean(lambda obs: learner.predict(obs, deterministic=True)[0], seeds, args.horizon)
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


def rollout(args: argparse.Namespace) -> int:
    env = FixedHorizonCartPole(horizon=args.horizon)
    obs, _ = env.reset(seed=args.seed)
    observations, rewards, terminated, truncated = [obs.tolist()], [], [], []
    for a in args.actions:
        obs, reward, term, trunc, _ = env.step(int(a))
        observations.append(obs.tolist())
        rewards.append(reward)
        terminated.append(bool(term))
        truncated.append(bool(trunc))
    emit("rollout", observations=observations, rewards=rewards, terminated=terminated, truncated=truncated)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="GAIL on FixedHorizonCartPole, JSON lines on stdout")
    t.add_argument("--demos", type=Path, required=True, help="a folder written by `rlfrontier demos record`")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--budget", type=int, default=1_000_000, help="env steps (whole rounds of 16,384 only)")
    t.add_argument("--eval-seeds", required=True, help="comma-separated reset seeds of the greedy evaluation")
    t.add_argument("--target", type=float, default=None, help="greedy mean return that ends the run")
    t.add_argument("--full-budget", action="store_true", help="go on after the target to the end of the budget")
    t.add_argument("--horizon", type=int, default=DEFAULT_HORIZON)
    t.add_argument("--n-envs", type=int, default=N_ENVS)
    t.add_argument("--torch-threads", type=int, default=1)
    r = sub.add_parser("rollout", help="play fixed actions, print one JSON object")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--horizon", type=int, default=DEFAULT_HORIZON)
    r.add_argument("--actions", default="", help="a string of 0s and 1s")
    args = p.parse_args(argv)
    claim_stdout()
    return train(args) if args.command == "train" else rollout(args)


if __name__ == "__main__":
    sys.exit(main())
