"""The `imitation` library's MCE IRL on a tabular MDP given as arrays: the reference side of benchmarks/maxent_irl.py.

Runs in the `imitation` venv (`make imitation-env`: imitation 1.0.1, gymnasium 0.29, seals, torch CPU), never in
the project's: it imports neither ray nor rlfrontier. The driver writes the MDP and the demonstrations to an .npz
file; this script builds a seals `TabularModelPOMDP` from them (the attributes imitation's MCE IRL reads:
transition_matrix, observation_matrix, horizon, initial_state_dist, state_space, action_space, state_dim,
action_dim; its reward_matrix is all zeros, so the true reward never reaches the library), trains
`imitation.algorithms.mce_irl.MCEIRL` with a linear or an MLP `BasicRewardNet` on the state features, and writes
the learned state reward, snapshots of it along the way, and its timings to an output .npz; one JSON line of
summary goes to stdout.

    .venv-imitation/bin/python benchmarks/imitation_side/mce_irl.py IN.npz OUT.npz

Input (.npz, see `read_input`): transitions [S, A, S], features [S, F], initial [S], horizon, discount; the
demonstrations as `demo_states` [N, T + 1] (every episode's states s_0 .. s_T, the final one included, as
imitation's trajectories hold them; optionally `demo_actions` [N, T], which MCE IRL does not use) or as `occupancy` [S] (an expert's expected state counts in imitation's
convention: sum over t = 0 .. T); and `config`, a JSON object: reward_model ("linear" | "mlp"), hidden_sizes,
lr (Adam), weight_decay (Adam's coupled L2), max_iter, seed, snapshot_every, linf_eps, grad_l2_eps, and
zero_init (a linear reward's weights start at zero).

Reading and writing the files needs only numpy, so the project's tests import this module from its own venv.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ARRAYS = ("transitions", "features", "initial")
CONFIG_DEFAULTS: dict[str, Any] = {
    "reward_model": "linear",
    "hidden_sizes": [32, 32],
    "lr": 0.01,
    "weight_decay": 0.0,
    "max_iter": 300,
    "seed": 0,
    "snapshot_every": 25,
    "linf_eps": 1e-3,  # MCEIRL's defaults: it stops early when either is reached
    "grad_l2_eps": 1e-4,
    "zero_init": True,
}
REWARD_MODELS = ("linear", "mlp")


def read_input(path: str | Path) -> dict[str, Any]:
    """The driver's .npz: arrays as float64 / int64, horizon int, discount float, config merged over the defaults.

    Raises ValueError naming what is missing or inconsistent.
    """
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in (*ARRAYS, "horizon", "discount", "config") if k not in data.files]
        if missing:
            raise ValueError(f"{path}: lacks {', '.join(missing)}")
        out: dict[str, Any] = {k: np.asarray(data[k], dtype=np.float64) for k in ARRAYS}
        out["horizon"] = int(data["horizon"])
        out["discount"] = float(data["discount"])
        out["demo_states"] = np.asarray(data["demo_states"], dtype=np.int64) if "demo_states" in data.files else None
        out["demo_actions"] = (np.asarray(data["demo_actions"], dtype=np.int64) if "demo_actions" in data.files
                               else None)
        out["occupancy"] = np.asarray(data["occupancy"], dtype=np.float64) if "occupancy" in data.files else None
        config = json.loads(str(data["config"]))
    unknown = sorted(set(config) - set(CONFIG_DEFAULTS))
    if unknown:
        raise ValueError(f"{path}: unknown config keys {', '.join(unknown)}")
    out["config"] = {**CONFIG_DEFAULTS, **config}
    num_states = out["transitions"].shape[0]
    if out["transitions"].ndim != 3 or out["transitions"].shape[2] != num_states:
        raise ValueError(f"{path}: transitions has shape {out['transitions'].shape}, not (S, A, S)")
    if out["features"].shape[0] != num_states or out["initial"].shape != (num_states,):
        raise ValueError(f"{path}: features {out['features'].shape} / initial {out['initial'].shape} do not fit "
                         f"{num_states} states")
    if (out["demo_states"] is None) == (out["occupancy"] is None):
        raise ValueError(f"{path}: give demo_states or occupancy (one of them)")
    if out["demo_states"] is not None and out["demo_states"].shape[1] != out["horizon"] + 1:
        raise ValueError(f"{path}: demo_states has {out['demo_states'].shape[1]} states per episode, not horizon + 1 "
                         f"= {out['horizon'] + 1}")
    if out["demo_actions"] is not None and (out["demo_states"] is None
                                           or out["demo_actions"].shape != (len(out["demo_states"]), out["horizon"])):
        raise ValueError(f"{path}: demo_actions has shape {out['demo_actions'].shape}, not (N, horizon) beside "
                         "demo_states")
    if out["config"]["reward_model"] not in REWARD_MODELS:
        raise ValueError(f"{path}: reward_model {out['config']['reward_model']!r} is not one of {REWARD_MODELS}")
    return out


def write_output(path: str | Path, *, reward: np.ndarray, snapshot_iters: list[int], snapshot_rewards: list[np.ndarray],
                 snapshot_wall_s: list[float], info: dict[str, Any]) -> None:
    """The learned state reward [S], its snapshots [K, S] at iterations [K] and train seconds [K], and `info` (JSON)."""
    np.savez(
        path,
        reward=np.asarray(reward, dtype=np.float64),
        snapshot_iters=np.asarray(snapshot_iters, dtype=np.int64),
        snapshot_rewards=np.asarray(snapshot_rewards, dtype=np.float64).reshape(len(snapshot_iters), -1),
        snapshot_wall_s=np.asarray(snapshot_wall_s, dtype=np.float64),
        info=np.asarray(json.dumps(info)),
    )


def _run(spec: dict[str, Any]) -> tuple[np.ndarray, list[int], list[np.ndarray], list[float], dict[str, Any]]:
    t_import = time.perf_counter()
    import torch
    from seals import base_envs

    import imitation
    from imitation.algorithms import mce_irl
    from imitation.data import types
    from imitation.rewards import reward_nets

    import_s = time.perf_counter() - t_import
    cfg = spec["config"]
    torch.set_num_threads(1)
    torch.manual_seed(int(cfg["seed"]))
    rng = np.random.default_rng(int(cfg["seed"]))

    t_setup = time.perf_counter()
    num_states = spec["transitions"].shape[0]
    env = base_envs.TabularModelPOMDP(
        transition_matrix=spec["transitions"],
        observation_matrix=spec["features"].astype(np.float32),
        reward_matrix=np.zeros(num_states),  # the learner never sees the true reward
        horizon=spec["horizon"],
        initial_state_dist=spec["initial"],
    )
    hidden = () if cfg["reward_model"] == "linear" else tuple(int(h) for h in cfg["hidden_sizes"])
    net = reward_nets.BasicRewardNet(env.observation_space, env.action_space, use_action=False, hid_sizes=hidden)
    if cfg["reward_model"] == "linear" and cfg["zero_init"]:
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
    if spec["demo_states"] is not None:
        actions = spec["demo_actions"]
        if actions is None:  # MCE IRL counts states only; a Trajectory needs actions of the right length
            actions = np.zeros((len(spec["demo_states"]), spec["horizon"]), dtype=np.int64)
        demos: Any = [types.Trajectory(obs=states, acts=acts, infos=None, terminal=True)
                      for states, acts in zip(spec["demo_states"], actions)]
    else:
        demos = spec["occupancy"]
    obs_matrix = torch.as_tensor(env.observation_matrix, dtype=net.dtype, device=net.device)
    snapshots: list[tuple[int, np.ndarray, float]] = []
    clock = {"excluded": 0.0, "start": 0.0}

    def reward_now() -> np.ndarray:
        with torch.no_grad():
            return mce_irl.squeeze_r(net(obs_matrix, None, None, None)).double().cpu().numpy()

    class CountingMCEIRL(mce_irl.MCEIRL):
        """MCEIRL with its reward updates counted and the reward kept every `snapshot_every` of them
        (outside the training clock)."""

        iterations = 0

        def _train_step(self, obs_mat):
            out = super()._train_step(obs_mat)
            self.iterations += 1
            if self.iterations % int(cfg["snapshot_every"]) == 0:
                t0 = time.perf_counter()
                wall = t0 - clock["start"] - clock["excluded"]
                snapshots.append((self.iterations, reward_now(), wall))
                clock["excluded"] += time.perf_counter() - t0
            return out

    trainer = CountingMCEIRL(
        demos, env, net, rng,
        optimizer_kwargs={"lr": float(cfg["lr"]), "weight_decay": float(cfg["weight_decay"])},
        discount=spec["discount"], linf_eps=float(cfg["linf_eps"]), grad_l2_eps=float(cfg["grad_l2_eps"]),
        log_interval=None,
    )
    setup_s = time.perf_counter() - t_setup
    clock["start"] = time.perf_counter()
    trainer.train(max_iter=int(cfg["max_iter"]))
    train_s = time.perf_counter() - clock["start"] - clock["excluded"]
    reward = reward_now()
    if not snapshots or snapshots[-1][0] != trainer.iterations:
        snapshots.append((trainer.iterations, reward, train_s))
    info = {
        "iterations": trainer.iterations,
        "import_s": import_s,
        "setup_s": setup_s,
        "train_s": train_s,
        "demo_occupancy_sum": float(np.sum(trainer.demo_state_om)),
        "versions": {"imitation": imitation.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "python": sys.version.split()[0],
    }
    return (reward, [s[0] for s in snapshots], [s[1] for s in snapshots], [s[2] for s in snapshots], info)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: mce_irl.py IN.npz OUT.npz", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    spec = read_input(argv[0])
    reward, iters, rewards, walls, info = _run(spec)
    write_output(argv[1], reward=reward, snapshot_iters=iters, snapshot_rewards=rewards, snapshot_wall_s=walls,
                 info=info)
    print(json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
