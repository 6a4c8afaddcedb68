"""`evaluate`: run a checkpoint's policy in fresh envs, as its EnvRunner acts, without Ray.

The policy is rebuilt from the checkpoint's own algorithm config as an RLlib
EnvRunner in this process: the config's EnvRunner class, its env-to-module
and module-to-env connector pipelines (with their saved states, e.g.
observation filters), recurrent state handling, and the learner's RLModule
weights. So every algorithm evaluates as it acted in training: bootstrapped
DQN's head picker draws one head per episode (`--explore`), a Boltzmann
policy samples its action distribution, an inference run takes the
deterministic action. A checkpoint is checked in seconds on any machine with
the package.

`evaluate --metrics` (`algorithm_metrics`) asks the algorithm instead: the
checkpoint's algorithm is built again from its config in a local Ray, given
the checkpoint's RLModule weights, and its registry evaluation hook runs, the
numbers a run logs at each evaluation (the meta-test of maml, pearl and rl2 on
held-out tasks, gail's and airl's expert-return ratio, maxent_irl's and gcl's
reward metrics), with config settings changed first (`--set
held_out_tasks=500 held_out_seed=1`: another, larger set of held-out tasks
than the run chose its best checkpoint by).
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rlfrontier import envs
from rlfrontier import trainable as T
from rlfrontier.validation import BadInput, check_range

ENV_RUNNER_PATH = "env_runner"
CTOR_FILE = "class_and_ctor_args.pkl"
# At most this many envs step side by side.
MAX_ENVS = 10


def checkpoint_config(checkpoint: Path):
    """The AlgorithmConfig a checkpoint's EnvRunner was built from (else the algorithm's own)."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    runner_ctor = checkpoint / ENV_RUNNER_PATH / CTOR_FILE
    algo_ctor = checkpoint / CTOR_FILE
    try:
        if runner_ctor.is_file():
            with runner_ctor.open("rb") as f:
                return pickle.load(f)["ctor_args_and_kwargs"][1]["config"]
        if algo_ctor.is_file():
            with algo_ctor.open("rb") as f:
                return AlgorithmConfig.from_state(pickle.load(f)["ctor_args_and_kwargs"][0][0])
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad checkpoint
        raise BadInput(f"checkpoint {str(checkpoint)!r}: its config cannot be read ({type(exc).__name__}: {exc})") from None
    raise BadInput(f"checkpoint {str(checkpoint)!r} holds no algorithm config ({CTOR_FILE}): not an RLlib checkpoint")


def _checked(checkpoint: str | Path) -> tuple[Path, dict[str, Any], Path]:
    """(checkpoint path, its meta, its RLModule folder); BadInput when one is missing."""
    path = Path(checkpoint).resolve()
    if not path.is_dir():
        raise BadInput(f"checkpoint {str(checkpoint)!r} does not exist")
    meta = T.read_meta(path)
    if not meta:
        raise BadInput(f"checkpoint {str(checkpoint)!r} has no {T.META_FILE}: not made by rlfrontier train")
    module_dir = path / T.MODULE_PATH / meta.get("module_id", "default_policy")
    if not module_dir.is_dir():
        raise BadInput(f"checkpoint {str(checkpoint)!r} holds no RLModule at {module_dir}")
    return path, meta, module_dir


def build_env_runner(checkpoint: str | Path, *, num_envs: int = 1, env: str | None = None, seed: int = 0,
                     env_config: dict[str, Any] | None = None):
    """An EnvRunner in this process that acts as the checkpoint's EnvRunners did.

    Args:
        checkpoint: a checkpoint written by `rlfrontier train` or `tune`.
        num_envs: envs stepped side by side.
        env: another env id with the same spaces (its default env_config);
            None: the checkpoint's env and env_config (the run's DeepSea
            mapping included).
        seed: the envs' reset seeds and the EnvRunner's random streams.
        env_config: settings of the env instead of the checkpoint's (or
            of `env`'s defaults), e.g. held-out physics of a RandomCartPole;
            the spaces must stay the checkpoint's.

    Returns:
        (runner, meta): a SingleAgentEnvRunner (or the config's subclass) and
        the checkpoint's meta; call `runner.stop()` when done.
    """
    path, meta, module_dir = _checked(checkpoint)
    config = checkpoint_config(path).copy(copy_frozen=False)
    env_id = env or meta["env"]
    other = env is not None or env_config is not None  # not the checkpoint's own env: check its spaces
    if env_config is not None:
        env_config = dict(env_config)
    else:
        env_config = dict(config.env_config) if env is None else {}
    obs_space, act_space = envs.check_env(env_id, env_config)  # registers the project's envs with gymnasium
    if other and (repr(obs_space) != meta["observation_space"] or repr(act_space) != meta["action_space"]):
        what = f"--env {env_id!r}" if env is not None else f"--env-config {env_config!r}"
        raise BadInput(f"{what}: its spaces differ from the checkpoint's ({meta['observation_space']}, {meta['action_space']})")
    config.environment(env_id, env_config=env_config)
    config.env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs, num_gpus_per_env_runner=0)
    config.debugging(seed=seed)

    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    runner_cls = config.env_runner_cls or SingleAgentEnvRunner
    logging.disable(logging.WARNING)  # RLlib's deprecation notices on build and load
    try:
        runner = runner_cls(config=config, worker_index=0, num_workers=0)
        try:
            if (path / ENV_RUNNER_PATH).is_dir():  # connector states (filters), step counters
                runner.restore_from_path(path / ENV_RUNNER_PATH)
            runner.module.restore_from_path(module_dir)
        except BaseException:
            runner.stop()
            raise
    finally:
        logging.disable(logging.NOTSET)
    runner.module.eval()
    return runner, meta


@torch.no_grad()
def act(module, obs: np.ndarray, *, explore: bool) -> np.ndarray:
    """A bare module's actions for a batch of observations (no connectors: no
    per-episode state, no recurrent state); for benchmark loops that hold a module."""
    from ray.rllib.core.columns import Columns

    batch = {Columns.OBS: torch.as_tensor(np.asarray(obs))}
    if explore:
        out = module.forward_exploration(batch)
        dist_cls = module.get_exploration_action_dist_cls()
    else:
        out = module.forward_inference(batch)
        dist_cls = module.get_inference_action_dist_cls()
    if Columns.ACTIONS in out:
        return out[Columns.ACTIONS].cpu().numpy()
    dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
    if not explore:
        dist = dist.to_deterministic()
    return dist.sample().cpu().numpy()


def greedy_return_mean(
    policy: Callable[[np.ndarray], np.ndarray], env_id: str, *, seeds: list[int],
    env_config: dict[str, Any] | None = None,
) -> float:
    """Mean undiscounted return of `policy`, one episode per reset seed, all envs stepped as one batch.

    `policy` maps a float32 batch of observations to one discrete action per
    row: `lambda obs: act(module, obs, explore=False)` for an RLModule, an SB3
    model's `predict`. No EnvRunner, no connectors: the learning tests and
    benchmarks judge a policy on fixed start states this way, cheaply.
    """
    import gymnasium as gym

    envs.check_env(env_id, env_config or {})  # registers the project's envs with gymnasium
    games = [gym.make(env_id, **(env_config or {})) for _ in seeds]
    try:
        obs = [game.reset(seed=s)[0] for game, s in zip(games, seeds)]
        returns = np.zeros(len(games))
        alive = list(range(len(games)))
        while alive:
            actions = np.asarray(policy(np.stack([obs[i] for i in alive]).astype(np.float32))).reshape(-1)
            still = []
            for i, action in zip(alive, actions):
                obs[i], reward, terminated, truncated, _ = games[i].step(int(action))
                returns[i] += float(reward)
                if not (terminated or truncated):
                    still.append(i)
            alive = still
    finally:
        for game in games:
            game.close()
    return float(returns.mean())


def run_episodes(checkpoint: str | Path, *, episodes: int, env: str | None = None, seed: int = 0,
                 explore: bool = False, env_config: dict[str, Any] | None = None) -> tuple[list, dict[str, Any]]:
    """(the finished episodes, the checkpoint's meta): `episodes` SingleAgentEpisodes, in the order they ended."""
    check_range("--episodes", episodes, 1, None, integer=True)
    runner, meta = build_env_runner(checkpoint, num_envs=min(episodes, MAX_ENVS), env=env, seed=seed,
                                     env_config=env_config)
    try:
        done = runner.sample(num_episodes=episodes, explore=explore)
    finally:
        runner.stop()
    return done[:episodes], meta


def algorithm_metrics(checkpoint: str | Path, *, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint's algorithm's own evaluation (its registry hook) on the checkpoint's weights.

    The algorithm is rebuilt from the checkpoint's config with `overrides`
    (AlgorithmConfig fields, as `train --set`) applied, one local learner on the
    CPU and no remote EnvRunners unless `overrides` ask for them; only the
    RLModule's weights are restored (not optimiser state, counters or replay),
    so what the hook measures is the trained policy, sampled afresh. BadInput
    when the algorithm has no hook or a setting is unknown or refused.
    """
    from rlfrontier import registry, session
    from rlfrontier.configure import apply_overrides
    from rlfrontier.spec import first_line

    path, meta, _ = _checked(checkpoint)
    spec = registry.get_algorithm(str(meta.get("algo")))
    if spec.evaluation_hook is None:
        with_hook = ", ".join(name for name, s in sorted(registry.ALGORITHMS.items()) if s.evaluation_hook)
        raise BadInput(f"evaluate --metrics: {spec.name} has no evaluation of its own (those that do: {with_hook}); "
                       "drop --metrics for greedy episodes")
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    # Through its state, onto a fresh config of its class: a field added since the checkpoint was written
    # takes its default instead of being missing from the unpickled object.
    config = AlgorithmConfig.from_state(checkpoint_config(path).get_state())
    config.env_runners(num_env_runners=0)
    config.learners(num_learners=0, num_gpus_per_learner=0)
    config.evaluation(evaluation_interval=None)
    apply_overrides(config, overrides or {}, source="evaluate --set")
    try:
        config.validate()
    except (ValueError, TypeError) as exc:
        raise BadInput(f"evaluate --set: {first_line(exc)}") from None
    session.init_ray()
    algo = config.build_algo()
    try:
        T.restore_weights(algo, path)
        metrics = registry.evaluation_metrics(spec, algo)
    finally:
        algo.stop()
    return {
        "checkpoint": str(path),
        "algo": spec.name,
        "env": meta["env"],
        "overrides": dict(overrides or {}),
        "metrics": metrics,
    }


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 10,
    env: str | None = None,
    seed: int = 0,
    explore: bool = False,
    env_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    done, meta = run_episodes(checkpoint, episodes=episodes, env=env, seed=seed, explore=explore,
                              env_config=env_config)
    returns = [float(e.get_return()) for e in done]
    lengths = [len(e) for e in done]
    r = np.asarray(returns)
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "algo": meta.get("algo"),
        "env": env or meta["env"],
        **({"env_config": env_config} if env_config is not None else {}),
        "episodes": episodes,
        "seed": seed,
        "explore": explore,
        "return_mean": float(r.mean()),
        "return_std": float(r.std()),
        "return_min": float(r.min()),
        "return_max": float(r.max()),
        "episode_len_mean": float(np.mean(lengths)),
        "returns": returns,
    }
