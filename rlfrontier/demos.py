"""Demonstrations: an expert's episodes, stored as Parquet transition rows with a JSON manifest.

A demonstrations folder DIR holds

    DIR/manifest.json          what was recorded: env id, env_config, spaces, source, seed, counts, returns,
                               the actions' units (the env's: FORMAT_VERSION 2)
    DIR/transitions.parquet    one row per transition (COLUMNS), in episode then time order

`ray.data.read_parquet(DIR)` reads the rows (it skips manifest.json: only
*.parquet files are read), pyarrow reads the file, and `load(DIR)` gives
numpy arrays for algorithms that keep demonstrations in memory; `check`
also refuses demonstrations recorded on another env, env_config or spaces,
and `check_config` does so against an AlgorithmConfig (the setup of gail,
airl and bc, for a config built in Python as much as from the command line).

`rlfrontier demos record` writes a folder from a checkpoint's policy (acting
as its EnvRunner did, through `rlfrontier.evaluation`) or from a scripted
expert (`EXPERTS`). Episode i starts from `env.reset(seed=seed + i)`, so a
record is reproducible.

A run gets demonstrations as a path (`train --demos DIR`, `demos:` in a tune
file), set on its AlgorithmConfig's `demos` field by `rlfrontier.configure`;
the path, not the data, travels to Ray's workers. On a cluster DIR must
therefore be on storage every node reads (a shared filesystem), as with Tune
storage.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from rlfrontier import envs
from rlfrontier.validation import BadInput, check_range

FORMAT = "rlfrontier-demos"
# 2: the manifest says the units of the actions ("action_units": "env"). Version-1 Box actions recorded from a
# checkpoint may be the module's normalised ones (see read_manifest); every other version-1 recording holds
# the env's.
FORMAT_VERSION = 2
# What a manifest's "action_units" says: the actions the env received (Box actions in its own units).
ACTION_UNITS = "action_units"
ENV_UNITS = "env"
MANIFEST_FILE = "manifest.json"
DATA_FILE = "transitions.parquet"

# Columns, one row per transition.
EPISODE = "episode"  # int64, 0 .. episodes - 1
STEP = "t"  # int64, step within the episode
OBS = "obs"  # list<float32>: the observation acted on, flattened
ACTION = "action"  # int64 (Discrete) or list<float32> (Box, flattened)
REWARD = "reward"  # float64
NEXT_OBS = "next_obs"  # list<float32>: the observation after the step (the final one at an episode's end)
TERMINATED = "terminated"  # bool, only ever true on an episode's last row
TRUNCATED = "truncated"  # bool, only ever true on an episode's last row
COLUMNS = (EPISODE, STEP, OBS, ACTION, REWARD, NEXT_OBS, TERMINATED, TRUNCATED)

_MANIFEST_KEYS = ("format", "version", "env", "env_config", "source", "episodes", "transitions",
                  "observation_space", "action_space", "seed")
PROGRESS_EVERY_S = 2.0


# Action units ------------------------------------------------------------------------------
# Demonstrations hold the actions the env received: a Box action in the env's own units. RLlib's
# episodes hold the module's actions instead: with `normalize_actions` (RLlib's default) a Box action
# in [-1, 1] that the EnvRunner unsquashes to [low, high] and clips (RLlib's NormalizeAndClipActions
# connector), without it the module's action, clipped to the bounds with `clip_actions`. Only Box spaces
# bounded on both sides with a float dtype are rescaled, as RLlib's own unsquash_action does.


def rescaled_box(space: gym.Space) -> bool:
    """Whether RLlib rescales this action space under normalize_actions (a float Box bounded on both sides)."""
    return (isinstance(space, gym.spaces.Box) and bool(np.all(space.bounded_below))
            and bool(np.all(space.bounded_above)) and np.issubdtype(space.dtype, np.floating))


def env_actions(actions: np.ndarray, space: gym.Space, *, normalize_actions: bool, clip_actions: bool
                ) -> np.ndarray:
    """Rows of a module's actions as the env received them (what a demonstration records)."""
    if not isinstance(space, gym.spaces.Box):
        return actions
    # What RLlib's NormalizeAndClipActions connector does, by its own functions.
    from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

    rows = np.asarray(actions, dtype=np.float64).reshape(len(actions), *space.shape)
    if normalize_actions:
        rows = unsquash_action(rows, space)
    elif clip_actions:
        rows = clip_action(rows, space)
    return np.asarray(rows, dtype=np.float32).reshape(np.shape(actions))


def received_module_actions(actions: np.ndarray, space: gym.Space, *, normalize_actions: bool) -> np.ndarray:
    """Rows of a module's actions as the env received them (bounded Box actions clipped to the bounds, as
    RLlib's unsquashing does), back in the module's units: what a discriminator that learnt from
    demonstrations compares (rlfrontier.algorithms.adversarial)."""
    received = env_actions(actions, space, normalize_actions=normalize_actions, clip_actions=True)
    return module_actions(received, space, normalize_actions=normalize_actions)


def module_actions(actions: np.ndarray, space: gym.Space, *, normalize_actions: bool) -> np.ndarray:
    """Rows of demonstrated actions in the units of a module's actions, to compare or fit them with
    the module's: with normalize_actions, 2 (a - low) / (high - low) - 1 on a bounded Box (the inverse of
    env_actions); otherwise, and for other spaces, unchanged."""
    if not (normalize_actions and rescaled_box(space)):
        return actions
    rows = np.asarray(actions, dtype=np.float64).reshape(len(actions), *space.shape)
    rows = 2.0 * (rows - space.low) / (space.high - space.low) - 1.0
    return rows.astype(np.float32).reshape(np.shape(actions))


# Spaces ----------------------------------------------------------------------------------


def expert_return_ratio(value: float, expert: float) -> float:
    """A return measured against the demonstrations' mean return `expert`: 1 + (value - expert) / |expert|.

    It rises with `value` whatever the sign of the returns and is 1 at the expert's. Where the expert's
    return is positive it is value / expert (CartPole: 450 / 500 = 0.9); where it is negative (Pendulum,
    expert -137.5) a plain value / expert would fall as the return rises, and a search or a best checkpoint
    that maximises it would pick the worst policy. NaN without an expert return (0) or a value.
    """
    if not expert or value is None or not math.isfinite(float(value)):
        return float("nan")
    return 1.0 + (float(value) - float(expert)) / abs(float(expert))


def describe_space(space: gym.Space) -> dict[str, Any]:
    """What a manifest says of a space, to compare: its type, repr and size (n, or shape and dtype)."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "repr": repr(space), "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "repr": repr(space), "shape": list(space.shape), "dtype": str(space.dtype)}
    raise BadInput(f"{space!r} is not a Box or Discrete space: demonstrations store only those")


def _check_spaces(env_id: str, obs_space: gym.Space, act_space: gym.Space) -> None:
    if not isinstance(obs_space, gym.spaces.Box):
        raise BadInput(f"--env {env_id}: its observation space {obs_space!r} is not a Box "
                       f"(demonstrations store observations as float vectors)")
    if not isinstance(act_space, (gym.spaces.Box, gym.spaces.Discrete)):
        raise BadInput(f"--env {env_id}: its action space {act_space!r} is not Discrete or Box")


# Scripted experts ------------------------------------------------------------------------

# An expert's policy: (observation, info, step within the episode) -> action.
Policy = Callable[[np.ndarray, dict, int], Any]

# Push right iff this weighted sum of (x, x_dot, theta, theta_dot) is positive: the pole's angle and
# angular velocity keep it up; the small cart terms pull the cart back to the centre, so it never
# drifts off the track (measured: 500 on every one of 200 CartPole-v1 seeds, and all 5,000 steps of
# 50 seeds with |x| < 0.12 when the time limit is lifted).
CARTPOLE_GAINS = np.array([0.1, 0.5, 1.0, 0.5])


def cartpole_action(obs: np.ndarray) -> int:
    """The scripted CartPole controller: 1 (push right) or 0 (push left)."""
    return int(float(np.dot(CARTPOLE_GAINS, obs)) > 0.0)


def _cartpole_unfit(env: gym.Env) -> str | None:
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    if env.observation_space != CartPoleEnv().observation_space or env.action_space != gym.spaces.Discrete(2):
        return f"has {env.observation_space!r} and {env.action_space!r}, not CartPole's observation and actions"
    return None


def _cartpole_policy(env: gym.Env) -> Policy:
    return lambda obs, info, t: cartpole_action(obs)


# Pendulum-v1 (gymnasium's: theta = 0 upright, g 10, m 1, l 1, torque clipped to +-2, dt 0.05).
# Near the top (|theta| < PENDULUM_CONE) a PD law -(10 theta + 2 theta_dot) holds it; elsewhere energy
# pumping: the full torque along the swing while the pendulum's energy E = theta_dot^2 / 6 + 5 cos(theta)
# (a rod: inertia m l^2 / 3, centre of mass at l / 2) is below the upright rest's 5, against it above.
# Measured: mean return -139.7 over reset seeds 0-49 (-365 to 0; a policy trained with SAC is
# typically reported near -150), and upright (|theta| < 1e-10) at the last step of each of seeds 0-199.
PENDULUM_GAINS = (10.0, 2.0)
PENDULUM_CONE = 0.5
PENDULUM_UPRIGHT_ENERGY = 5.0


def pendulum_action(obs: np.ndarray) -> np.ndarray:
    """The scripted Pendulum controller: a torque in [-2, 2], shape (1,)."""
    cos, sin, velocity = (float(v) for v in np.asarray(obs).reshape(3))
    if cos > np.cos(PENDULUM_CONE):
        torque = -(PENDULUM_GAINS[0] * np.arctan2(sin, cos) + PENDULUM_GAINS[1] * velocity)
    else:
        energy = velocity * velocity / 6.0 + PENDULUM_UPRIGHT_ENERGY * cos
        torque = 2.0 * (np.sign((PENDULUM_UPRIGHT_ENERGY - energy) * velocity) if velocity else 1.0)
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


def _pendulum_unfit(env: gym.Env) -> str | None:
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    if not isinstance(env.unwrapped, PendulumEnv):
        return "is not gymnasium's Pendulum (the controller knows its physics)"
    return None


def _pendulum_policy(env: gym.Env) -> Policy:
    return lambda obs, info, t: pendulum_action(obs)


def _optimal_unfit(env: gym.Env) -> str | None:
    from rlfrontier.registry import TABULAR_MDP_API

    missing = [name for name in TABULAR_MDP_API if not hasattr(env.unwrapped, name)]
    if missing:
        return f"is not a tabular world with known dynamics (lacks {', '.join(missing)})"
    return None


def _optimal_policy(env: gym.Env) -> Policy:
    from rlfrontier.tabular import TabularMDP, optimal_policy

    # The MDP depends only on the env config (rlfrontier.envs.gridworld), so one policy serves every episode.
    actions = optimal_policy(TabularMDP.from_env(env))  # (T, S)
    return lambda obs, info, t: int(actions[min(t, len(actions) - 1), int(info["state"])])


@dataclass(frozen=True)
class ScriptedExpert:
    """A hand-made policy: `unfit(env)` says why it cannot act in an env (None: it can); `policy(env)` builds it."""

    name: str
    summary: str
    unfit: Callable[[gym.Env], str | None]
    policy: Callable[[gym.Env], Policy]


EXPERTS = {
    e.name: e
    for e in (
        ScriptedExpert("optimal", "the optimal finite-horizon policy of a tabular world with known dynamics",
                       _optimal_unfit, _optimal_policy),
        ScriptedExpert("cartpole", "a linear controller of CartPole's pole and cart (500 on CartPole-v1)",
                       _cartpole_unfit, _cartpole_policy),
        ScriptedExpert("pendulum", "energy-pumping swing-up, then a PD law at the top (-140 on Pendulum-v1)",
                       _pendulum_unfit, _pendulum_policy),
    )
}


def get_expert(name: str) -> ScriptedExpert:
    if name not in EXPERTS:
        raise BadInput(f"--scripted {name!r} is not a scripted expert: choose one of {', '.join(sorted(EXPERTS))}")
    return EXPERTS[name]


# Episodes as arrays ----------------------------------------------------------------------


def _episode(obs: list, actions: list, rewards: list, *, terminated: bool, truncated: bool, act_space: gym.Space
             ) -> dict[str, np.ndarray]:
    """One episode's columns from its T + 1 observations, T actions and T rewards."""
    steps = len(actions)
    flat = np.asarray(obs, dtype=np.float32).reshape(steps + 1, -1)
    ends = np.zeros(steps, dtype=bool)
    return {
        STEP: np.arange(steps, dtype=np.int64),
        OBS: flat[:-1],
        ACTION: (np.asarray(actions, dtype=np.int64).reshape(steps) if isinstance(act_space, gym.spaces.Discrete)
                 else np.asarray(actions, dtype=np.float32).reshape(steps, -1)),
        REWARD: np.asarray(rewards, dtype=np.float64).reshape(steps),
        NEXT_OBS: flat[1:],
        TERMINATED: np.concatenate([ends[:-1], [terminated]]),
        TRUNCATED: np.concatenate([ends[:-1], [truncated]]),
    }


def _scripted_episodes(expert: ScriptedExpert, env: gym.Env, *, episodes: int, seed: int, report: Callable):
    policy = expert.policy(env)
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        observations, actions, rewards = [obs], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action = policy(obs, info, len(actions))
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
        yield _episode(observations, actions, rewards, terminated=bool(terminated), truncated=bool(truncated),
                       act_space=env.action_space)
        report(i + 1)


def _checkpoint_episodes(runner, *, episodes: int, seed: int, explore: bool, act_space: gym.Space,
                         report: Callable):
    for i in range(episodes):
        # One env, one episode per sample() call: RLlib resets the env with the runner's seed on every
        # sample(num_episodes=...) (SingleAgentEnvRunner._reset_envs), so setting it gives episode i
        # the reset seed seed + i, as a scripted expert's.
        runner._seed = seed + i
        (episode,) = runner.sample(num_episodes=1, explore=explore)
        actions = env_actions(np.asarray(episode.get_actions()), act_space,
                              normalize_actions=runner.config.normalize_actions,
                              clip_actions=runner.config.clip_actions)
        yield _episode(list(episode.get_observations()), list(actions), list(episode.get_rewards()),
                       terminated=episode.is_terminated, truncated=episode.is_truncated, act_space=act_space)
        report(i + 1)


# Writing ---------------------------------------------------------------------------------


def _table(episodes: list[dict[str, np.ndarray]]):
    import pyarrow as pa

    def lists(key: str) -> pa.Array:
        rows = np.concatenate([e[key] for e in episodes])
        width = rows.shape[1]
        offsets = np.arange(0, len(rows) * width + 1, width, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.reshape(-1), type=pa.float32()))

    def column(key: str) -> pa.Array:
        rows = np.concatenate([e[key] for e in episodes])
        return lists(key) if rows.ndim == 2 else pa.array(rows)

    episode_index = np.concatenate([np.full(len(e[STEP]), i, dtype=np.int64) for i, e in enumerate(episodes)])
    return pa.table({EPISODE: pa.array(episode_index), **{key: column(key) for key in COLUMNS[1:]}})


def _check_out(out: str | Path, *, overwrite: bool) -> Path:
    """The folder to write; BadInput (before anything is written) when it cannot be one."""
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise BadInput(f"--out {out}: is a file, not a folder")
    if (path / MANIFEST_FILE).exists() and not overwrite:
        raise BadInput(f"--out {out}: already holds demonstrations ({MANIFEST_FILE}); pass --overwrite to replace them")
    if path.is_dir():
        others = sorted(p.name for p in path.glob("*.parquet") if p.name != DATA_FILE)
        if others:
            raise BadInput(f"--out {out}: holds other Parquet files ({', '.join(others[:3])}) that "
                           f"ray.data.read_parquet would read as demonstrations; choose another folder")
    parent = next((p for p in (path, *path.parents) if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK):
        raise BadInput(f"--out {out}: cannot be written ({parent} is not writable)")
    return path


def write(out: Path, episodes: list[dict[str, np.ndarray]], manifest: dict[str, Any]) -> None:
    """Writes the rows, then the manifest (so a folder with a manifest is complete); replaces only these two files."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    data_tmp, manifest_tmp = out / f".{DATA_FILE}.tmp", out / f".{MANIFEST_FILE}.tmp"
    pq.write_table(_table(episodes), data_tmp)
    manifest_tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(data_tmp, out / DATA_FILE)
    os.replace(manifest_tmp, out / MANIFEST_FILE)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def record(
    *,
    out: str | Path,
    env_id: str,
    episodes: int,
    env_config: dict[str, Any] | None = None,
    scripted: str | None = None,
    checkpoint: str | Path | None = None,
    explore: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    progress=None,
) -> dict[str, Any]:
    """Records `episodes` episodes of a scripted expert or a checkpoint's policy into the folder `out`.

    Args:
        out: the folder (created with its parents); one that already holds a
            manifest is refused unless `overwrite`, which replaces only the
            manifest and the rows.
        env_id, env_config: the env. From a checkpoint, `env_config` must be
            empty or the one the policy runs on (the checkpoint's for its own
            env, the defaults for another env with the same spaces).
        scripted: a name in EXPERTS; or `checkpoint`: a checkpoint of `rlfrontier train`.
        explore: a checkpoint's exploration policy instead of its greedy one.
        seed: episode i resets with seed + i.
        progress: a stream for progress lines (None: none).

    Returns:
        The manifest written. Everything is checked before anything is written (BadInput).
    """
    if (scripted is None) == (checkpoint is None):
        raise BadInput("demos record: give a CHECKPOINT or --scripted NAME (one of them)")
    check_range("--episodes", episodes, 1, None, integer=True)
    check_range("--seed", seed, 0, 2**31 - 1 - episodes, integer=True)
    env_config = dict(env_config or {})
    target = _check_out(out, overwrite=overwrite)
    started = time.monotonic()
    last = [started]
    returns: list[float] = []

    def report(done: int) -> None:
        now = time.monotonic()
        if progress is not None and (now - last[0] >= PROGRESS_EVERY_S or done == episodes):
            last[0] = now
            print(f"recording: {done}/{episodes} episodes, return mean {np.mean(returns):.4g}, "
                  f"{now - started:.0f} s", file=progress, flush=True)

    recorded: list[dict[str, np.ndarray]] = []

    def collect(stream) -> None:
        for episode in stream:
            returns.append(float(episode[REWARD].sum()))
            recorded.append(episode)

    if scripted is not None:
        expert = get_expert(scripted)
        obs_space, act_space = envs.check_env(env_id, env_config)
        _check_spaces(env_id, obs_space, act_space)
        env = gym.make(env_id, **env_config)
        try:
            why = expert.unfit(env)
            if why:
                raise BadInput(f"--scripted {scripted}: {env_id} {why}")
            source, extra = f"scripted:{scripted}", {}
            collect(_scripted_episodes(expert, env, episodes=episodes, seed=seed, report=report))
        finally:
            env.close()
    else:
        from rlfrontier import evaluation, trainable

        meta = trainable.read_meta(checkpoint) if Path(checkpoint).is_dir() else {}
        runner, meta = evaluation.build_env_runner(
            checkpoint, num_envs=1, env=None if meta.get("env") == env_id else env_id, seed=seed
        )
        try:
            used = dict(runner.config.env_config)
            if env_config and _jsonable(env_config) != _jsonable(used):
                raise BadInput(f"--env-config {env_config}: a checkpoint's policy runs on {env_id} with "
                               f"env_config {used} (the checkpoint's for its own env, else the defaults)")
            env_config = used
            obs_space, act_space = envs.check_env(env_id, env_config)
            _check_spaces(env_id, obs_space, act_space)
            source = str(Path(checkpoint).resolve())
            extra = {"algo": meta.get("algo"), "explore": explore}
            collect(_checkpoint_episodes(runner, episodes=episodes, seed=seed, explore=explore,
                                         act_space=act_space, report=report))
        finally:
            runner.stop()

    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "env": env_id,
        "env_config": _jsonable(env_config),
        "source": source,
        **extra,
        "episodes": len(recorded),
        "transitions": int(sum(len(e[STEP]) for e in recorded)),
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "returns": returns,
        "observation_space": describe_space(obs_space),
        "action_space": describe_space(act_space),
        ACTION_UNITS: ENV_UNITS,
        "seed": seed,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "columns": list(COLUMNS),
        "files": [DATA_FILE],
    }
    write(target, recorded, manifest)
    return {**manifest, "path": str(target)}


# Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demonstrations:
    """Recorded episodes in memory.

    Attributes:
        path: the folder.
        manifest: its manifest.json.
    """

    path: Path
    manifest: dict[str, Any]
    _columns: dict[str, np.ndarray] = field(repr=False)

    @property
    def num_episodes(self) -> int:
        return int(self.manifest["episodes"])

    @property
    def num_transitions(self) -> int:
        return len(self._columns[STEP])

    def transitions(self) -> dict[str, np.ndarray]:
        """Every transition, in episode then time order: obs and next_obs (N, *obs shape) float32,
        action (N,) int64 or (N, *action shape) float32, reward (N,) float64, terminated and
        truncated (N,) bool, episode and t (N,) int64. Arrays are shared: copy before changing them."""
        return dict(self._columns)

    def episodes(self) -> list[dict[str, np.ndarray]]:
        """One dict of the same arrays per episode, in time order."""
        starts = np.flatnonzero(np.diff(self._columns[EPISODE], prepend=-1))
        bounds = [*starts, self.num_transitions]
        return [{k: v[a:b] for k, v in self._columns.items()} for a, b in zip(bounds[:-1], bounds[1:])]


def _bad(where: str, path: str | Path, why: str) -> BadInput:
    return BadInput(f"{where} {path}: {why}")


def read_manifest(path: str | Path, *, where: str = "demonstrations") -> dict[str, Any]:
    """The manifest of the demonstrations folder `path`; BadInput naming `where` and `path` when it is not one."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise _bad(where, path, "does not exist" if not folder.exists() else "is not a folder")
    file = folder / MANIFEST_FILE
    if not file.is_file():
        raise _bad(where, path, f"holds no {MANIFEST_FILE}: not a demonstrations folder (`rlfrontier demos record` "
                                "makes one)")
    try:
        manifest = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(where, path, f"{MANIFEST_FILE} is malformed: {exc}") from None
    if not isinstance(manifest, dict):
        raise _bad(where, path, f"{MANIFEST_FILE} is malformed: not a JSON object")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise _bad(where, path, f"{MANIFEST_FILE} is malformed: it lacks {', '.join(missing)}")
    if manifest["format"] != FORMAT or not isinstance(manifest["version"], int):
        raise _bad(where, path, f"{MANIFEST_FILE} is not an {FORMAT} manifest (format {manifest['format']!r})")
    if manifest["version"] > FORMAT_VERSION:
        raise _bad(where, path, f"was written in format version {manifest['version']}; this rlfrontier reads up "
                                f"to {FORMAT_VERSION}")
    for key in ("observation_space", "action_space"):
        if not isinstance(manifest[key], dict) or "repr" not in manifest[key]:
            raise _bad(where, path, f"{MANIFEST_FILE} is malformed: {key} is not a space description")
    _check_action_units(manifest, where=where, path=path)
    if not isinstance(manifest["transitions"], int) or not isinstance(manifest["episodes"], int):
        raise _bad(where, path, f"{MANIFEST_FILE} is malformed: episodes and transitions must be integers")
    return manifest


def _check_action_units(manifest: dict[str, Any], *, where: str, path: str | Path) -> None:
    """BadInput unless the manifest's actions are the env's.

    Version 2 says so (ACTION_UNITS). Version 1 did not: Box actions recorded
    from a checkpoint before the units fix (rlfrontier 06332fd) are the
    module's [-1, 1] actions under RLlib's normalize_actions, and a version-1
    folder cannot tell which it holds, so all such are refused; Discrete
    actions and scripted experts' (env units always) still load.
    """
    if manifest["version"] >= 2:
        units = manifest.get(ACTION_UNITS)
        if units != ENV_UNITS:
            raise _bad(where, path, f"{MANIFEST_FILE} is malformed: {ACTION_UNITS} is {units!r}, not "
                                    f"{ENV_UNITS!r} (the actions the env received)")
        return
    source = manifest.get("source")
    if manifest["action_space"].get("type") == "Box" and not (isinstance(source, str)
                                                              and source.startswith("scripted:")):
        raise _bad(where, path, f"format version 1 Box actions recorded from a checkpoint ({source}) may be the "
                                f"policy's normalised [-1, 1] actions, not the env's: record them again with this "
                                f"rlfrontier (`rlfrontier demos record CHECKPOINT --env {manifest['env']} --out DIR`), "
                                f"which writes format {FORMAT_VERSION} in the env's units")


def _numpy(column, *, shape: tuple[int, ...] | None) -> np.ndarray:
    """A Parquet column as numpy: list columns as (N, *shape) float32."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        return column.to_numpy(zero_copy_only=False)
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    width = int(np.prod(shape)) if shape else None
    lengths = np.diff(column.offsets.to_numpy())
    if width is None or np.any(lengths != width) or column.null_count:
        raise ValueError(f"rows of {len(set(lengths.tolist()))} lengths, not all {width}")
    return values.reshape(len(column), *shape)


def load(path: str | Path, *, where: str = "demonstrations") -> Demonstrations:
    """Reads a demonstrations folder; BadInput naming `where` and `path` when it is missing or malformed."""
    import pyarrow.parquet as pq

    manifest = read_manifest(path, where=where)
    file = Path(path).expanduser() / DATA_FILE
    if not file.is_file():
        raise _bad(where, path, f"holds a {MANIFEST_FILE} but no {DATA_FILE}")
    try:
        table = pq.read_table(file)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad folder
        raise _bad(where, path, f"{DATA_FILE} cannot be read: {type(exc).__name__}: {exc}") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise _bad(where, path, f"{DATA_FILE} lacks the columns {', '.join(missing)}")
    obs_shape = tuple(manifest["observation_space"].get("shape") or ())
    action_shape = tuple(manifest["action_space"].get("shape") or ())
    try:
        columns = {
            c: _numpy(table.column(c), shape=action_shape if c == ACTION else obs_shape) for c in COLUMNS
        }
    except (ValueError, TypeError) as exc:
        raise _bad(where, path, f"{DATA_FILE} does not fit its manifest's spaces: {exc}") from None
    if table.num_rows != manifest["transitions"]:
        raise _bad(where, path, f"{DATA_FILE} holds {table.num_rows} transitions, its manifest says "
                                f"{manifest['transitions']}")
    order = np.lexsort((columns[STEP], columns[EPISODE]))
    if np.any(order != np.arange(len(order))):  # written in order; a hand-made file may not be
        columns = {k: v[order] for k, v in columns.items()}
    if len(np.unique(columns[EPISODE])) != manifest["episodes"]:
        raise _bad(where, path, f"{DATA_FILE} holds {len(np.unique(columns[EPISODE]))} episodes, its manifest says "
                                f"{manifest['episodes']}")
    return Demonstrations(path=Path(path).expanduser().resolve(), manifest=manifest, _columns=columns)


def _same(a: Any, b: Any) -> bool:
    return _jsonable(a) == _jsonable(b)


def check(
    path: str | Path,
    env_id: str,
    env_config: dict[str, Any],
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    where: str = "--demos",
) -> Demonstrations:
    """`load(path)`, refused (BadInput naming `where`, `path` and the mismatch) unless it was recorded
    on `env_id` with `env_config` and these spaces."""
    demos = load(path, where=where)
    m = demos.manifest
    if m["env"] != env_id:
        raise _bad(where, path, f"recorded on {m['env']}, not {env_id}")
    if not _same(m["env_config"], env_config or {}):
        raise _bad(where, path, f"recorded with env_config {m['env_config']}, not {dict(env_config or {})}")
    for key, space in (("observation_space", observation_space), ("action_space", action_space)):
        try:
            expected = describe_space(space)
        except BadInput:
            raise _bad(where, path, f"the run's {key.replace('_', ' ')} {space!r} is not a Box or Discrete "
                                    f"space, as recorded demonstrations are") from None
        if not _same(m[key], expected):
            raise _bad(where, path, f"recorded with {key.replace('_', ' ')} {m[key].get('repr')}, "
                                    f"not {expected['repr']}")
    return demos


def check_config(path: str | Path, config: Any, *, where: str = "--demos") -> Demonstrations:
    """`check(path, ...)` against an AlgorithmConfig's env, env_config and that env's spaces: what the
    command line checks (rlfrontier.configure) for a config built in Python (`GAILConfig().environment(...)
    .training(demos=...)`), so an algorithm's setup refuses demonstrations of another env before it
    builds anything. The env must be a gymnasium id, as every recording's is."""
    manifest = read_manifest(path, where=where)
    env_id, env_config = config.env, dict(config.env_config or {})
    if manifest["env"] != env_id:  # before making the env: a class or a Ray-registered name is not an id
        shown = env_id if isinstance(env_id, str) else repr(env_id)
        raise _bad(where, path, f"recorded on {manifest['env']}, not {shown}")
    if not _same(manifest["env_config"], env_config):
        raise _bad(where, path, f"recorded with env_config {manifest['env_config']}, not {env_config}")
    observation_space, action_space = envs.check_env(env_id, env_config)
    return check(path, env_id, env_config, observation_space, action_space, where=where)


# Printing --------------------------------------------------------------------------------


def summary_line(manifest: dict[str, Any]) -> str:
    return (f"recorded {manifest['episodes']} episodes ({manifest['transitions']:,} transitions) of "
            f"{manifest['env']} from {manifest['source']}: return mean {manifest['return_mean']:.4g} "
            f"± {manifest['return_std']:.4g} -> {manifest['path']}")


def manifest_table(manifest: dict[str, Any], *, path: str | Path) -> str:
    """The manifest as aligned `key  value` lines."""
    returns = manifest.get("returns") or []
    spread = f" (min {min(returns):.4g}, max {max(returns):.4g})" if returns else ""
    rows = [
        ("folder", str(path)),
        ("env", manifest["env"]),
        ("env_config", json.dumps(manifest["env_config"])),
        ("source", manifest["source"] + (f" ({manifest['algo']})" if manifest.get("algo") else "")
         + (", exploring" if manifest.get("explore") else "")),
        ("episodes", str(manifest["episodes"])),
        ("transitions", f"{manifest['transitions']:,}"),
        ("return", f"{_g(manifest.get('return_mean'))} ± {_g(manifest.get('return_std'))}{spread}"),
        ("observations", manifest["observation_space"]["repr"]),
        ("actions", manifest["action_space"]["repr"] + _units(manifest)),
        ("seed", f"{manifest['seed']} (episode i resets with seed + i)"),
        ("created", str(manifest.get("created", "-"))),
        ("format", f"{manifest['format']} {manifest['version']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _units(manifest: dict[str, Any]) -> str:
    """What the table says of a Box's units: the env's (version 2 says so; read_manifest lets through only
    version-1 Box actions of scripted experts, which are the env's too)."""
    if manifest["action_space"].get("type") != "Box":
        return ""
    units = manifest.get(ACTION_UNITS, ENV_UNITS)
    return ", in the env's units" if units == ENV_UNITS else f", in {units} units"


def _g(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) or not math.isfinite(value) else format(value, ".4g")


def show(path: str | Path) -> dict[str, Any]:
    """The manifest of a folder, after checking its rows' count (Parquet metadata only, not the rows)."""
    import pyarrow.parquet as pq

    where = "demos show"
    manifest = read_manifest(path, where=where)
    file = Path(path).expanduser() / DATA_FILE
    try:
        rows = pq.read_metadata(file).num_rows
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad folder
        raise _bad(where, path, f"{DATA_FILE} cannot be read: {type(exc).__name__}: {exc}") from None
    if rows != manifest["transitions"]:
        raise _bad(where, path, f"{DATA_FILE} holds {rows} transitions, its manifest says {manifest['transitions']}")
    return {**manifest, "path": str(Path(path).expanduser().resolve())}

