"""`evaluate`: run a checkpoint's policy in fresh envs, without Ray.

Loads only the RLModule (learner_group/learner/rl_module/<module>) and acts
greedily (the inference action distribution made deterministic), so a
checkpoint can be checked in seconds on any machine with the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlfrontier import envs
from rlfrontier import trainable as T
from rlfrontier.validation import BadInput, check_range


def load_module(checkpoint: str | Path):
    """The checkpoint's RLModule (torch), in eval mode, and the checkpoint's meta."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(checkpoint).resolve()
    if not path.is_dir():
        raise BadInput(f"checkpoint {str(checkpoint)!r} does not exist")
    meta = T.read_meta(path)
    if not meta:
        raise BadInput(f"checkpoint {str(checkpoint)!r} has no {T.META_FILE}: not made by rlfrontier train")
    module_dir = path / T.MODULE_PATH / meta.get("module_id", "default_policy")
    if not module_dir.is_dir():
        raise BadInput(f"checkpoint {str(checkpoint)!r} holds no RLModule at {module_dir}")
    import logging

    logging.disable(logging.WARNING)  # RLlib's own deprecation notice on load
    try:
        module = RLModule.from_checkpoint(module_dir)
    finally:
        logging.disable(logging.NOTSET)
    module.eval()
    return module, meta


@torch.no_grad()
def act(module, obs: np.ndarray, *, explore: bool) -> np.ndarray:
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


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 10,
    env: str | None = None,
    seed: int = 0,
    explore: bool = False,
) -> dict[str, Any]:
    check_range("--episodes", episodes, 1, None, integer=True)
    module, meta = load_module(checkpoint)
    env_id = env or meta["env"]
    env_config = meta.get("env_config", {}) if env is None else {}
    obs_space, act_space = envs.check_env(env_id, env_config)
    if env is not None and (repr(obs_space) != meta["observation_space"] or repr(act_space) != meta["action_space"]):
        raise BadInput(f"--env {env_id!r}: its spaces differ from the checkpoint's ({meta['observation_space']}, {meta['action_space']})")
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **env_config) for _ in range(min(episodes, 10))])
    returns: list[float] = []
    lengths: list[int] = []
    try:
        obs, _ = vec.reset(seed=seed)
        running = np.zeros(vec.num_envs)
        steps = np.zeros(vec.num_envs, dtype=int)
        # Only count as many episodes as asked; next-step autoreset in gymnasium 1.x
        # means the step after a done is a reset step, skipped below.
        just_done = np.zeros(vec.num_envs, dtype=bool)
        while len(returns) < episodes:
            actions = act(module, obs, explore=explore)
            obs, rewards, terminated, truncated, _ = vec.step(actions)
            running += np.where(just_done, 0.0, rewards)
            steps += np.where(just_done, 0, 1)
            done = (terminated | truncated) & ~just_done
            for i in np.flatnonzero(done):
                if len(returns) < episodes:
                    returns.append(float(running[i]))
                    lengths.append(int(steps[i]))
                running[i] = 0.0
                steps[i] = 0
            just_done = done
    finally:
        vec.close()
    r = np.asarray(returns)
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "algo": meta.get("algo"),
        "env": env_id,
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
