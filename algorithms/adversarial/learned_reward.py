"""The rewards adversarial runs learned, as reward transforms: train a fresh policy on them.

`{"type": "airl", "checkpoint": DIR, "part": "g"}` replaces each one-step
reward by the trained AIRL discriminator's
- "g": g(s) (or g(s, a) for a run with state_only: False), the reward without
  its shaping: Fu et al. 2018's disentangled reward, the one that transfers to
  new dynamics (section 5; with state_only it is a function of the state only);
- "f": f(s, a, s') = g + gamma * (1 - done) * h(s') - h(s), the shaped
  reward, the same optimal policies on the training dynamics.
The entropy term -log pi of AIRL's training reward is left out: the new
policy's own learner regularises as it does.

`"clip": C` (both kinds) clamps the reward to [-C, C]. A discriminator is
trained on the states the expert and the policy visit; far from them its
reward extrapolates linearly (on CartPole, g falls by about 8 per unit of cart
position and to -110..-175 at a fallen pole), and a fresh policy then learns to
limit that extrapolated loss (park the cart after the pole falls) rather than
to reach the expert's states. Clamped, every state far from the expert's is
equally bad. Measured in the README (airl, "reward transfer").

`{"type": "gail", "checkpoint": DIR}` replaces it by a trained GAIL
discriminator's -log(1 - D(s, a)), the reward GAIL's policy learnt from: what
AIRL's transfer is compared with (a discriminator is not a reward: at GAIL's
equilibrium D is 1/2 everywhere the expert goes, Fu et al. 2018, section 4).

DIR is a checkpoint of `rlfrontier train airl|gail` (its learners'
discriminator, learner_group/learner/rl_module/discriminator), on storage every
node reads. Every process that applies the transform (a PPO learner's
connector, a replay Algorithm's hook) loads it once; its observation
statistics stay as trained (eval mode, no update).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from rlfrontier import replay
from rlfrontier.algorithms.adversarial.torch import discriminator as disc
from rlfrontier.rewards import RewardTransform, _number

# Where an rlfrontier checkpoint keeps the learners' modules (rlfrontier.trainable.MODULE_PATH).
MODULE_PATH = Path("learner_group", "learner", "rl_module")
PARTS = ("g", "f")


def load_discriminator(checkpoint: str | Path, kind: type[disc.Discriminator], algo: str) -> disc.Discriminator:
    """The trained discriminator of an `algo` checkpoint, a `kind` (eval mode); ValueError saying what is wrong."""
    return load_learned_module(checkpoint, disc.MODULE_ID, kind, algo, what="discriminator")


def load_learned_module(checkpoint: str | Path, module_id: str, kind: type, algo: str, *, what: str):
    """The learner-only module `module_id` of an `algo` checkpoint, a `kind` (eval mode); ValueError saying
    what is wrong (`what` names the module in it)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(checkpoint).expanduser() / MODULE_PATH / module_id
    if not path.is_dir():
        raise ValueError(f"reward_transform {algo} checkpoint={str(checkpoint)!r} holds no {what} ({path} "
                         f"is missing): give a checkpoint of `rlfrontier train {algo}`")
    module = RLModule.from_checkpoint(str(path))
    if not isinstance(module, kind):
        raise ValueError(f"reward_transform {algo} checkpoint={str(checkpoint)!r} holds a {type(module).__name__}, "
                         f"not {algo}'s {what}")
    module.eval()
    return module


def _clip_bound(kind: str, clip: float | None) -> float | None:
    """The `clip` setting checked: None (no clamping) or a positive finite number."""
    if clip is None:
        return None
    bound = _number(kind, "clip", clip)
    if bound <= 0:
        raise ValueError(f"reward_transform {kind} clip={clip!r} must be above 0 (the reward is clamped to "
                         f"[-clip, clip])")
    return bound


def _clamped(reward: torch.Tensor, bound: float | None, lead: tuple[int, ...]) -> np.ndarray:
    if bound is not None:
        reward = reward.clamp(-bound, bound)
    return reward.numpy().astype(np.float32).reshape(lead)


def _rows(columns: Mapping[str, np.ndarray], key: str, lead: tuple[int, ...]) -> torch.Tensor:
    """A column as [N, ...] float/int tensor rows (N = prod(lead)), copied: replay columns are read-only."""
    value = np.asarray(columns[key])
    return torch.tensor(value.reshape(int(np.prod(lead)), *value.shape[len(lead):]))


class AIRLLearnedReward(RewardTransform):
    """r' = g(s) (part "g", the default) or f(s, a, s') (part "f") of a trained AIRL discriminator,
    clamped to [-clip, clip] when clip is set."""

    kind = "airl"

    def __init__(self, *, checkpoint: str, part: str = "g", clip: float | None = None):
        if part not in PARTS:
            raise ValueError(f"reward_transform airl part={part!r} is not one of {', '.join(map(repr, PARTS))}")
        self.part = part
        self.clip = _clip_bound(self.kind, clip)
        self.checkpoint = str(checkpoint)
        self.module = load_discriminator(checkpoint, disc.AIRLDiscriminator, "airl")

    def rewrite(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        lead = np.asarray(columns[replay.REWARDS]).shape
        with torch.no_grad():
            obs, actions = _rows(columns, replay.OBS, lead), _rows(columns, replay.ACTIONS, lead)
            if self.part == "g":
                reward = self.module.reward_g(obs=obs, actions=actions)
            else:
                reward = self.module.f(obs=obs, actions=actions, next_obs=_rows(columns, replay.NEXT_OBS, lead),
                                       terminateds=_rows(columns, replay.TERMINATEDS, lead))
        return _clamped(reward, self.clip, lead)


class GAILLearnedReward(RewardTransform):
    """r' = -log(1 - D(s, a)) of a trained GAIL discriminator, clamped to [-clip, clip] when clip is set."""

    kind = "gail"

    def __init__(self, *, checkpoint: str, clip: float | None = None):
        self.clip = _clip_bound(self.kind, clip)
        self.checkpoint = str(checkpoint)
        self.module = load_discriminator(checkpoint, disc.GAILDiscriminator, "gail")

    def rewrite(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        lead = np.asarray(columns[replay.REWARDS]).shape
        with torch.no_grad():
            obs, actions = _rows(columns, replay.OBS, lead), _rows(columns, replay.ACTIONS, lead)
            reward = self.module.policy_reward(obs=obs, actions=actions, next_obs=obs, terminateds=None)
        return _clamped(reward, self.clip, lead)
