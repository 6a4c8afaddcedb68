"""Environment lookup: gymnasium ids as they are, the project's own as rlfrontier/<Name>-v0."""

from __future__ import annotations

import functools
from typing import Any, Callable

import gymnasium as gym

from rlfrontier import seeding
from rlfrontier.validation import BadInput

PREFIX = "rlfrontier/"
# DeepSea, deterministic and bsuite's stochastic variant: one env class, a hidden action mapping.
DEEP_SEA_IDS = (f"{PREFIX}DeepSea-v0", f"{PREFIX}DeepSeaStochastic-v0")


def register_envs() -> None:
    """Registers the project's own environments with gymnasium (idempotent)."""
    # The project's own environments (DeepSea, GridWorld, ...) register here.
    if f"{PREFIX}DeepSea-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}DeepSea-v0", entry_point="rlfrontier.envs.deep_sea:DeepSeaEnv")
    if f"{PREFIX}DeepSeaStochastic-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}DeepSeaStochastic-v0", entry_point="rlfrontier.envs.deep_sea:DeepSeaEnv",
                     kwargs={"stochastic": True})
    # Tabular worlds with known dynamics for exact MaxEnt IRL; they truncate themselves at `horizon` (no TimeLimit).
    if f"{PREFIX}GridWorld-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}GridWorld-v0", entry_point="rlfrontier.envs.gridworld:GridWorldEnv",
                     max_episode_steps=None)
    if f"{PREFIX}ObjectWorld-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}ObjectWorld-v0", entry_point="rlfrontier.envs.objectworld:ObjectWorldEnv",
                     max_episode_steps=None)
    # CartPole without termination, for imitation; it truncates itself at `horizon` (no TimeLimit).
    if f"{PREFIX}CartPoleFixedHorizon-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}CartPoleFixedHorizon-v0",
                     entry_point="rlfrontier.envs.cartpole_fixed:CartPoleFixedHorizonEnv", max_episode_steps=None)
    # Task distributions for meta-RL (issue 10, rlfrontier.envs.tasks). The point and bandit envs truncate
    # themselves at their horizon (no TimeLimit); the randomised-dynamics ones keep gymnasium's limits.
    if f"{PREFIX}PointNav-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}PointNav-v0", entry_point="rlfrontier.envs.point_nav:PointNavEnv",
                     max_episode_steps=None)
    if f"{PREFIX}SparsePointNav-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}SparsePointNav-v0", entry_point="rlfrontier.envs.point_nav:SparsePointNavEnv",
                     max_episode_steps=None)
    if f"{PREFIX}Bandit-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}Bandit-v0", entry_point="rlfrontier.envs.bandit:BanditEnv", max_episode_steps=None)
    if f"{PREFIX}RandomCartPole-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}RandomCartPole-v0", entry_point="rlfrontier.envs.random_dynamics:RandomCartPoleEnv",
                     max_episode_steps=500, reward_threshold=475.0)
    if f"{PREFIX}RandomPendulum-v0" not in gym.registry:
        gym.register(id=f"{PREFIX}RandomPendulum-v0",
                     entry_point="rlfrontier.envs.random_dynamics:RandomPendulumEnv", max_episode_steps=200)


def with_run_seed(env_id: str, env_config: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """The env_config a run of `seed` builds its envs from: hidden task parameters follow the seed.

    DeepSea's action mapping is part of the MDP, so it must follow the run's
    seed (else "three seeds" are three agents on one MDP) and be the same in
    every env copy of the run (all EnvRunners, evaluation, `evaluate`).
    RLlib's per-env reset seeds (seed + worker index + vector index) differ
    between copies, so the mapping seed is derived once here, written into
    env_config and stored with the run's config. An explicit `mapping_seed`
    wins. Other envs' configs pass through unchanged (a copy).
    """
    env_config = dict(env_config or {})
    if env_id in DEEP_SEA_IDS and "mapping_seed" not in env_config and seed is not None:
        env_config["mapping_seed"] = seeding.derive_seed(seed, seeding.ENV_MAPPING)
    return env_config


def _make_own(env_id: str, env_config) -> gym.Env:
    register_envs()
    return gym.make(env_id, **dict(env_config or {}))


def register_with_ray(env_id: str) -> None:
    """Makes one of the project's own envs known to every Ray worker.

    A gymnasium registration lives only in the process that made it; RLlib's
    EnvRunners (other processes, other nodes) build envs from Ray's registry,
    which travels through the cluster. gymnasium ids need nothing.
    """
    if not env_id.startswith(PREFIX):
        return
    from ray.tune.registry import register_env

    register_env(env_id, functools.partial(_make_own, env_id))


def list_envs() -> list[dict[str, Any]]:
    register_envs()
    rows = []
    for env_id, spec in sorted(gym.registry.items()):
        entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
        rows.append(
            {
                "id": env_id,
                "source": "rlfrontier" if env_id.startswith(PREFIX) else "gymnasium",
                "entry_point": entry,
                "max_episode_steps": spec.max_episode_steps,
            }
        )
    return rows


def check_env(
    env_id: str, env_config: dict[str, Any], *, inspect: Callable[[gym.Env], None] | None = None
) -> tuple[gym.Space, gym.Space]:
    """Makes the env once; BadInput if the id is unknown or it cannot be built.

    `inspect`, if given, is called with the env before it is closed (e.g. to
    check that it offers what an algorithm needs) and may raise BadInput.

    Returns:
        (observation_space, action_space).
    """
    register_envs()
    if env_id not in gym.registry:
        close = [e for e in gym.registry if e.lower().startswith(env_id.split("-")[0].lower())][:3]
        hint = f" (did you mean {', '.join(close)}?)" if close else "; `rlfrontier envs` lists them"
        raise BadInput(f"unknown env {env_id!r}{hint}")
    try:
        env = gym.make(env_id, **env_config)
    except Exception as exc:  # noqa: BLE001 - any construction error is the user's input
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"env {env_id!r} with env_config {env_config} cannot be built: {text}") from None
    try:
        if inspect is not None:
            inspect(env)
        return env.observation_space, env.action_space
    finally:
        env.close()
