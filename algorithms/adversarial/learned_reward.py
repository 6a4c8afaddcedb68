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

The run that applies it must see the transitions as the discriminator did
(`check_run`, at the run's config validation: BadInput naming the setting,
exit 2 from the command line):
- Box actions (a reward that reads them: gail's, airl's with state_only
  False) in the same units: the run's normalize_actions must be the one the
  discriminator learnt under ([-1, 1] or the env's units), which its
  model_config records (disc.NORMALIZE_ACTIONS; for an older checkpoint, the
  checkpoint's config). Like the adversarial run's own reward, an action
  beyond the bounds is clipped to them first (what the env received);
- airl's part "f" holds the shaping gamma h(s') - h(s) of the airl run's
  gamma: the run's gamma must be that one (potential-based shaping keeps the
  optimal policies only under its own discount). Part "g" has no shaping.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from rlfrontier import replay
from rlfrontier.algorithms.adversarial.torch import discriminator as disc
from rlfrontier.rewards import RewardTransform, _number
from rlfrontier.validation import BadInput

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


def checkpoint_config(checkpoint: str | Path) -> dict[str, Any]:
    """The AlgorithmConfig (as a dict) an RLlib Algorithm checkpoint was saved with; {} when it cannot be read."""
    import pickle

    from ray.rllib.utils.checkpoints import Checkpointable

    path = Path(checkpoint).expanduser() / Checkpointable.CLASS_AND_CTOR_ARGS_FILE_NAME
    try:
        with open(path, "rb") as file:
            args = pickle.load(file)["ctor_args_and_kwargs"][0]
    except Exception:  # noqa: BLE001 - no readable config: the caller says what it cannot tell
        return {}
    return dict(args[0]) if args and isinstance(args[0], dict) else {}


def learned_normalize_actions(checkpoint: str | Path, module: disc.Discriminator) -> bool | None:
    """The normalize_actions the discriminator learnt under: its model_config's, else the checkpoint's config's
    (a checkpoint from before it was recorded there); None when neither says."""
    value = (module.model_config or {}).get(disc.NORMALIZE_ACTIONS)
    if value is None:
        value = checkpoint_config(checkpoint).get("normalize_actions")
    return None if value is None else bool(value)


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


class _DiscriminatorReward(RewardTransform):
    """What the GAIL and AIRL rewards share: the checkpoint's discriminator, the units of the actions it
    learnt from, and the check of a run against them (the module docstring)."""

    discriminator_class: type[disc.Discriminator]

    def __init__(self, *, checkpoint: str, clip: float | None):
        self.clip = _clip_bound(self.kind, clip)
        self.checkpoint = str(checkpoint)
        self.module = load_discriminator(checkpoint, self.discriminator_class, self.kind)
        from rlfrontier import demos

        # Box actions that RLlib rescales: their units depend on normalize_actions.
        self.rescaled = demos.rescaled_box(self.module.action_space)
        self.normalize_actions = learned_normalize_actions(checkpoint, self.module)

    @property
    def reads_actions(self) -> bool:
        return True

    def _where(self) -> str:
        return f"reward_transform {self.kind} checkpoint={self.checkpoint!r}"

    def check_run(self, config) -> None:
        if not (self.rescaled and self.reads_actions):
            return
        if self.normalize_actions is None:
            raise BadInput(f"{self._where()}: its discriminator does not say whether it learnt Box actions in "
                           f"[-1, 1] or in the env's units (normalize_actions): give a checkpoint of "
                           f"`rlfrontier train {self.kind}`")
        run = bool(getattr(config, "normalize_actions", True))
        if run != self.normalize_actions:
            raise BadInput(f"{self._where()}: its discriminator learnt from actions under "
                           f"normalize_actions={self.normalize_actions}, this run has normalize_actions={run}: "
                           f"set normalize_actions={self.normalize_actions}")

    def _actions(self, columns: Mapping[str, np.ndarray], lead: tuple[int, ...]) -> torch.Tensor:
        """The run's actions as the discriminator learnt them: a Box action as the env received it (clipped to
        the bounds), in the units of `normalize_actions` (check_run: the run's); others unchanged."""
        rows = _rows(columns, replay.ACTIONS, lead)
        if not self.rescaled or self.normalize_actions is None:
            return rows
        from rlfrontier import demos

        return torch.as_tensor(demos.received_module_actions(rows.numpy(), self.module.action_space,
                                                             normalize_actions=self.normalize_actions))


class AIRLLearnedReward(_DiscriminatorReward):
    """r' = g(s) (part "g", the default) or f(s, a, s') (part "f") of a trained AIRL discriminator,
    clamped to [-clip, clip] when clip is set."""

    kind = "airl"
    discriminator_class = disc.AIRLDiscriminator

    def __init__(self, *, checkpoint: str, part: str = "g", clip: float | None = None):
        if part not in PARTS:
            raise ValueError(f"reward_transform airl part={part!r} is not one of {', '.join(map(repr, PARTS))}")
        self.part = part
        super().__init__(checkpoint=checkpoint, clip=clip)

    @property
    def reads_actions(self) -> bool:
        return not self.module.state_only

    def check_run(self, config) -> None:
        super().check_run(config)
        gamma = getattr(config, "gamma", None)
        if self.part == "f" and gamma is not None and not math.isclose(float(gamma), self.module.gamma,
                                                                       rel_tol=1e-9, abs_tol=1e-12):
            raise BadInput(f"{self._where()}: part 'f' holds the shaping gamma h(s') - h(s) of the airl run's "
                           f"gamma={self.module.gamma:g}, this run has gamma={float(gamma):g}: set "
                           f"gamma={self.module.gamma:g}, or take part 'g' (no shaping)")

    def rewrite(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        lead = np.asarray(columns[replay.REWARDS]).shape
        with torch.no_grad():
            obs, actions = _rows(columns, replay.OBS, lead), self._actions(columns, lead)
            if self.part == "g":
                reward = self.module.reward_g(obs=obs, actions=actions)
            else:
                reward = self.module.f(obs=obs, actions=actions, next_obs=_rows(columns, replay.NEXT_OBS, lead),
                                       terminateds=_rows(columns, replay.TERMINATEDS, lead))
        return _clamped(reward, self.clip, lead)


class GAILLearnedReward(_DiscriminatorReward):
    """r' = -log(1 - D(s, a)) of a trained GAIL discriminator, clamped to [-clip, clip] when clip is set."""

    kind = "gail"
    discriminator_class = disc.GAILDiscriminator

    def __init__(self, *, checkpoint: str, clip: float | None = None):
        super().__init__(checkpoint=checkpoint, clip=clip)

    def rewrite(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        lead = np.asarray(columns[replay.REWARDS]).shape
        with torch.no_grad():
            obs, actions = _rows(columns, replay.OBS, lead), self._actions(columns, lead)
            reward = self.module.policy_reward(obs=obs, actions=actions, next_obs=obs, terminateds=None)
        return _clamped(reward, self.clip, lead)
