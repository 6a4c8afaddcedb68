"""Reward transforms: one object that rewrites rewards for every kind of learner.

A `RewardTransform` maps one-step transitions (s, a, r, s', terminated) to new
one-step rewards. The same object plugs into two places:

- replay-based algorithms (soft_q, boot_dqn) call it at replay time, on the
  one-step rewards of each sampled n-step window before they are folded
  (`ReplayRewardHook`, handed to `rlfrontier.replay.TransitionReplayBuffer.sample`),
  so a bonus or a learned reward is recomputed with the current model every
  time a transition is replayed;
- episode-based algorithms (RLlib's PPO) rewrite the rewards of the episodes
  a learner receives, as the first piece of its learner connector pipeline
  (`RewardTransformConnector`), before value targets and advantages are
  computed. RLlib runs learner connectors only on episodes; the replay path
  hands the learner a ready batch, which is why there are two seams.

Both log the mean extrinsic (environment) and transformed reward of what they
rewrote, under the policy module's learner results (`REWARD_EXTRINSIC_MEAN`,
`REWARD_TRANSFORMED_MEAN`), so MLflow and Tune see both. The return an
EnvRunner reports (`episode_return_mean`) and every evaluation stay extrinsic.

A transform is configured by a mapping, the config field `reward_transform`:
`{"type": "affine", "scale": 2.0, "shift": -1.0}`, set like any other field
(`--set 'reward_transform={type: affine, scale: 2}'`, or in a YAML). Kinds are
registered in `TRANSFORMS`; exploration bonuses and learned rewards add theirs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Mapping

import numpy as np

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import LEARNER_RESULTS

from rlfrontier import bonuses, replay, seeding

# Learner-result keys, defined once here.
REWARD_EXTRINSIC_MEAN = "reward_extrinsic_mean"
REWARD_TRANSFORMED_MEAN = "reward_transformed_mean"

# The config field.
FIELD = "reward_transform"


class RewardTransform:
    """Rewrites one-step rewards; subclasses set `kind` and implement `rewrite`.

    Columns (numpy, any leading shape L: [B, n] for a replay window, [T] for an
    episode): replay.OBS [*L, ...obs], replay.ACTIONS [*L], replay.REWARDS [*L]
    (extrinsic), replay.NEXT_OBS [*L, ...obs], replay.TERMINATEDS [*L].
    `rewrite` returns the new rewards, shape L.
    """

    kind: ClassVar[str]

    def rewrite(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def check_run(self, config) -> None:
        """Refuses (BadInput naming the setting) a run, given by its AlgorithmConfig, whose transitions the
        transform cannot rewrite as it should: e.g. a learned reward's run with other action units or
        another discount than the run that learnt it. Nothing by default."""

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        rewards = np.asarray(columns[replay.REWARDS])
        new = np.asarray(self.rewrite(columns), dtype=np.float32)
        if new.shape != rewards.shape:
            raise ValueError(
                f"reward transform {self.kind!r} returned shape {new.shape} for rewards of shape {rewards.shape}"
            )
        return new


def _number(kind: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"reward_transform {kind} {key}={value!r} must be a finite number")
    return float(value)


class Affine(RewardTransform):
    """r' = scale * r + shift: reward scaling, or a constant living cost or bonus."""

    kind = "affine"

    def __init__(self, *, scale: float = 1.0, shift: float = 0.0):
        self.scale = _number(self.kind, "scale", scale)
        self.shift = _number(self.kind, "shift", shift)

    def rewrite(self, columns):
        return self.scale * np.asarray(columns[replay.REWARDS], dtype=np.float32) + self.shift


class Clip(RewardTransform):
    """r' = clip(r, low, high), as DQN's Atari reward clipping (low=-1, high=1)."""

    kind = "clip"

    def __init__(self, *, low: float = -1.0, high: float = 1.0):
        self.low = _number(self.kind, "low", low)
        self.high = _number(self.kind, "high", high)
        if self.low > self.high:
            raise ValueError(f"reward_transform clip low={low!r} is above high={high!r}")

    def rewrite(self, columns):
        return np.clip(np.asarray(columns[replay.REWARDS], dtype=np.float32), self.low, self.high)


TRANSFORMS: dict[str, type[RewardTransform]] = {cls.kind: cls for cls in (Affine, Clip)}
# Kinds whose module imports torch networks or this module: (module, class), imported on first use.
LAZY_TRANSFORMS: dict[str, tuple[str, str]] = {
    "airl": ("rlfrontier.algorithms.adversarial.learned_reward", "AIRLLearnedReward"),
    "gail": ("rlfrontier.algorithms.adversarial.learned_reward", "GAILLearnedReward"),
    "gcl": ("rlfrontier.algorithms.gcl.gcl", "GCLLearnedReward"),
}


def _transform_class(kind: Any) -> type[RewardTransform] | None:
    if isinstance(kind, str) and kind not in TRANSFORMS and kind in LAZY_TRANSFORMS:
        import importlib

        module, name = LAZY_TRANSFORMS[kind]
        TRANSFORMS[kind] = getattr(importlib.import_module(module), name)
    return TRANSFORMS.get(kind) if isinstance(kind, str) else None


def build(spec: Mapping[str, Any] | None, *, run=None) -> RewardTransform | None:
    """The transform a `reward_transform` mapping describes (None: none), checked against the AlgorithmConfig
    `run` that applies it when given (RewardTransform.check_run).

    Raises ValueError naming the bad kind, key or value (BadInput, one of them, for a run it cannot serve).
    """
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ValueError(f"reward_transform must be a mapping with a 'type', got {spec!r}")
    params = dict(spec)
    kind = params.pop("type", None)
    cls = _transform_class(kind)
    if cls is None:
        known = sorted({*TRANSFORMS, *LAZY_TRANSFORMS})
        raise ValueError(f"reward_transform type {kind!r} is unknown: choose one of {', '.join(known)}")
    try:
        transform = cls(**params)
    except TypeError:
        import inspect

        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(params) - set(allowed))
        raise ValueError(
            f"reward_transform {kind} has no setting {', '.join(map(repr, unknown))}: it takes {', '.join(allowed)}"
        ) from None
    if run is not None:
        transform.check_run(run)
    return transform


class RewardTransformFields:
    """Config mixin: the `reward_transform` field, checked by `validate()`.

    Put it before the AlgorithmConfig base: `class C(RewardTransformFields, SomeConfig)`.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.reward_transform: dict[str, Any] | None = None

    def validate(self) -> None:
        build(self.reward_transform, run=self)  # ValueError names the bad part
        super().validate()


class ReplayRewardHook:
    """The replay-time seam: `TransitionReplayBuffer.sample(..., reward_hook=hook)`.

    Rewrites each replayed one-step reward as T(r) + b: the transform T
    (identity when None) and the exploration bonus b (rlfrontier.bonuses,
    none when None). `on_add` hands the bonus every new transition once, as
    it goes into replay, and returns the columns it stores beside them.

    Keeps the means and the range of what it rewrote in the last call (steps
    inside the windows only); the range feeds the Q-value bounds, which must
    follow the rewards the learner actually sees.
    """

    def __init__(self, transform: RewardTransform | None = None, bonus=None):
        self.transform = transform
        self.bonus = bonus
        self.extrinsic_mean: float | None = None
        self.transformed_mean: float | None = None
        self.intrinsic_mean: float | None = None
        self.low, self.high = math.inf, -math.inf

    @property
    def private_columns(self) -> tuple[str, ...]:
        """Stored columns for the bonus alone: dropped from the batches sent to learners."""
        return () if self.bonus is None else self.bonus.private_columns

    def on_add(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {} if self.bonus is None else self.bonus.observe(columns)

    def attach(self, learner_group) -> None:
        if self.bonus is not None:
            self.bonus.attach(learner_group)

    def before_update(self, learner_group) -> None:
        if self.bonus is not None:
            self.bonus.before_update(learner_group)

    def after_update(self, learner_group) -> None:
        if self.bonus is not None:
            self.bonus.after_update(learner_group)

    def __call__(self, window: dict[str, np.ndarray]) -> np.ndarray:
        extrinsic = np.asarray(window[replay.REWARDS], dtype=np.float32)
        new = extrinsic if self.transform is None else self.transform(window)
        intrinsic = None
        if self.bonus is not None:
            intrinsic = np.asarray(self.bonus.intrinsic(window), dtype=np.float32)
            new = new + intrinsic
        inside = window.get(replay.WINDOW_MASK)
        if inside is None:
            inside = np.ones(new.shape, dtype=bool)
        if inside.any():
            self.extrinsic_mean = float(extrinsic[inside].mean())
            self.transformed_mean = float(new[inside].mean())
            if intrinsic is not None:
                self.intrinsic_mean = float(intrinsic[inside].mean())
            self.low = min(self.low, float(new[inside].min()))
            self.high = max(self.high, float(new[inside].max()))
        return new

    def log(self, metrics, module_id: str = DEFAULT_MODULE_ID) -> None:
        """Logs the last call's means into an Algorithm's metrics: beside the learner's results, and the bonus's own."""
        if self.extrinsic_mean is None:
            return
        metrics.log_value((LEARNER_RESULTS, module_id, REWARD_EXTRINSIC_MEAN), self.extrinsic_mean, window=1)
        metrics.log_value((LEARNER_RESULTS, module_id, REWARD_TRANSFORMED_MEAN), self.transformed_mean, window=1)
        if self.bonus is not None:
            metrics.log_value((bonuses.RESULTS, bonuses.INTRINSIC_MEAN), self.intrinsic_mean, window=1)
            for key, value in self.bonus.metrics().items():
                metrics.log_value((bonuses.RESULTS, key), value, window=1)


def attach_replay_hook(algo) -> ReplayRewardHook | None:
    """The replay hook of a replay Algorithm (built in its setup, after its learners): built and attached."""
    hook = replay_hook(algo.config, observation_space=bonuses.env_observation_space(algo))
    if hook is not None:
        hook.attach(algo.learner_group)
        if hook.bonus is not None and hook.bonus.needs_step_next_obs:
            algo.replay_buffer.keep_step_next_obs = True
    return hook


def replay_hook(config, *, observation_space=None) -> ReplayRewardHook | None:
    """The replay hook for an algorithm's config: its reward transform and its bonus (None when neither).

    The bonus draws from the run's own stream (seeding.BONUS) and reads the
    observation space to pick its hash.
    """
    transform = build(getattr(config, FIELD, None), run=config)
    bonus = bonuses.build(getattr(config, bonuses.FIELD, None), observation_space=observation_space,
                          seed=seeding.derive_seed(getattr(config, "seed", None), seeding.BONUS))
    if transform is None and bonus is None:
        return None
    return ReplayRewardHook(transform, bonus)


def episode_columns(episode) -> dict[str, np.ndarray]:
    """A SingleAgentEpisode chunk as one-step columns (its lookback buffer left out)."""
    num_steps = len(episode)
    obs = np.asarray(episode.get_observations())
    terminateds = np.zeros(num_steps, dtype=bool)
    terminateds[-1] = bool(episode.is_terminated)
    return {
        replay.OBS: obs[:-1],
        replay.ACTIONS: np.asarray(episode.get_actions()),
        replay.REWARDS: np.asarray(episode.get_rewards(), dtype=np.float32),
        replay.NEXT_OBS: obs[1:],
        replay.TERMINATEDS: terminateds,
    }


class RewardTransformConnector(ConnectorV2):
    """The episode seam: a learner connector piece that rewrites the episodes' rewards in place.

    It must run first in the learner pipeline (see `EpisodeRewardTransformLearner`):
    every later piece, e.g. PPO's value bootstrap and GAE, then sees the new
    rewards, and the one-step columns are those the env produced (PPO's
    AddOneTsToEpisodesAndTruncate appends an artificial step, which is not
    rewritten). A learner runs its connector once per update, so each episode
    is rewritten once.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, transform: RewardTransform | None,
                 **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.transform = transform

    def new_rewards(self, episode, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The episode's new one-step rewards, shape [len(episode)] (None transform: the env's own)."""
        if self.transform is None:
            return np.array(columns[replay.REWARDS], dtype=np.float32)
        return self.transform(columns)

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, metrics=None, **kwargs):
        extrinsic_sum = transformed_sum = 0.0
        count = 0
        for episode in episodes:
            if not hasattr(episode, "get_observations") or hasattr(episode, "agent_episodes"):
                raise ValueError("reward transforms support single-agent episodes only")
            if len(episode) == 0:
                continue
            columns = episode_columns(episode)
            new = self.new_rewards(episode, columns)
            if episode.is_numpy:
                # Episodes that came through Ray's object store hold read-only arrays.
                if not episode.rewards.data.flags.writeable:
                    episode.rewards.data = episode.rewards.data.copy()
                with warnings.catch_warnings():
                    # RLlib checks each reward with its Box's contains(), which gymnasium answers for a
                    # numpy scalar with a "Casting input x to numpy array." warning: one per episode chunk.
                    warnings.filterwarnings("ignore", message=".*Casting input x to numpy array")
                    episode.set_rewards(new_data=new)
            else:
                episode.set_rewards(new_data=new.tolist())
            extrinsic_sum += float(columns[replay.REWARDS].sum())
            transformed_sum += float(new.sum())
            count += len(new)
        if metrics is not None and count:
            metrics.log_value((DEFAULT_MODULE_ID, REWARD_EXTRINSIC_MEAN), extrinsic_sum / count, window=1)
            metrics.log_value((DEFAULT_MODULE_ID, REWARD_TRANSFORMED_MEAN), transformed_sum / count, window=1)
        return batch


class EpisodeRewardTransformLearner:
    """Learner mixin for episode-based algorithms: puts the config's transform first in the learner connector.

    `class L(EpisodeRewardTransformLearner, PPOTorchLearner)`; the algorithm's
    own pieces (PPO's extra bootstrap step, GAE) are added by its `build()`,
    so the transform is prepended after it.
    """

    def build(self) -> None:
        super().build()
        connector = self.reward_connector()
        if connector is not None and self._learner_connector is not None:
            self._learner_connector.prepend(connector)

    def reward_connector(self) -> RewardTransformConnector | None:
        """The piece that rewrites the episodes' rewards (None: they stay the env's)."""
        transform = build(getattr(self.config, FIELD, None), run=self.config)
        return None if transform is None else RewardTransformConnector(transform=transform)


# RLlib's PPO, able to take a reward transform ------------------------------------------------


class PPOTransformedLearner(EpisodeRewardTransformLearner, PPOTorchLearner):
    """RLlib's PPO torch learner, with the config's reward transform first in its connector."""


class PPOWithRewardTransform(RewardTransformFields, PPOConfig):
    """RLlib's PPOConfig plus the `reward_transform` field (also a `training()` keyword)."""

    def training(self, *, reward_transform=NotProvided, **kwargs) -> "PPOWithRewardTransform":
        if reward_transform is not NotProvided:
            self.reward_transform = reward_transform
        return super().training(**kwargs)

    def get_default_learner_class(self):
        return PPOTransformedLearner if self.framework_str == "torch" else super().get_default_learner_class()
