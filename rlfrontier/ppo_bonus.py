"""Exploration bonuses for RLlib's PPO: `--bonus count` and `--bonus rnd` (issue 8).

Where each part runs:

- The Algorithm (the driver) sees every sampled step once, between sampling
  and the learner update (`PPOWithBonus.training_step`). There the bonus takes
  the steps into its statistics and gives each its intrinsic reward
  (`EpisodeBonus.annotate`), written into the episode as the per-step column
  `INTRINSIC` (an `extra_model_outputs` entry, so it survives the slicing that
  shares episodes out among learners). So the count table, and RND's
  observation and intrinsic-return normalisers, are one for the whole run,
  whatever the number of EnvRunners and learners, and every learner sees the
  same bonuses; `bonuses.BonusState` puts them in the checkpoint.
- Statistics first, then rewards: a batch's own visits are counted before its
  bonuses are read (Tang et al. 2017, algorithm 1: update n, then
  r+ = beta / sqrt(n)), so a cell first met in this batch gets at most beta,
  as in soft_q, where a transition is counted when it goes into replay.
- `count` (one reward stream): the first learner connector piece rewrites each
  episode's rewards to T(r) + b (T the run's reward transform), before PPO's
  value bootstrap and GAE.
- `rnd` (Burda et al. 2018, sections 2.2-2.4): two reward streams. The rewards
  stay T(r); the intrinsic stream has its own value head
  (`IntrinsicValuePPOModule.vf_intrinsic`), its own discount (the bonus's
  `gamma`, 0.99; the extrinsic one is the config's `gamma`, the paper's 0.999)
  and is non-episodic (`non_episodic_value_targets`). `TwoHeadGAE` replaces
  RLlib's GAE piece: the policy's advantage is ext_coeff * A_ext +
  int_coeff * A_int (the paper's 2 and 1), both heads are trained, and the
  predictor (`PPORNDModule`, learner-only) trains on the batch's next
  observations. The intrinsic reward is the predictor's error on the
  normalised next observation over the running std of the non-episodic
  intrinsic return (`bonuses.RNDBonus`, computed on the driver with its copy
  of the predictor as of the last update, which is the learners' predictor
  before this update, as in the paper's algorithm 1; unlike it, the
  observation normaliser already holds this batch, RNDBonus's order, and no
  random-agent steps initialise it).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.algorithms.ppo import PPO
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.learner import (
    AddNextObservationsFromEpisodesToTrainBatch,
    AddObservationsFromEpisodesToBatch,
    GeneralAdvantageEstimation,
)
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import CRITIC, ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

from rlfrontier import bonuses, modules, rnd, seeding
from rlfrontier.rewards import (
    PPOTransformedLearner,
    PPOWithRewardTransform,
    RewardTransformConnector,
    build as build_transform,
    episode_columns,
    FIELD as TRANSFORM_FIELD,
)

# The per-step column the Algorithm writes into every sampled episode: each step's intrinsic reward.
INTRINSIC = Columns.INTRINSIC_REWARDS
# Batch column and learner metric of the intrinsic value head (under learners/<policy module>).
INTRINSIC_VALUE_TARGETS = "intrinsic_value_targets"
VF_LOSS_INTRINSIC = "vf_loss_intrinsic"


# Equations ------------------------------------------------------------------------------------
def non_episodic_value_targets(*, values: np.ndarray, rewards: np.ndarray, terminateds: np.ndarray,
                               truncateds: np.ndarray, gamma: float, lambda_: float,
                               restart_value: float | None = None) -> np.ndarray:
    """GAE(lambda) value targets of a non-episodic return (Burda et al. 2018, section 2.3).

    The intrinsic return is not cut at an episode's end: the game goes on in
    the next episode, so a terminal step is bootstrapped from the value of
    the state the next episode starts in, `restart_value` (V(s_0')), instead
    of 0. GAE does not propagate across the boundary (the next episode is
    another chunk). Without `restart_value` it bootstraps from the value RLlib
    computed for the terminal observation, V(s_T), which the head is never
    trained on (it is the extra, masked step). Elsewhere the same recursion as
    RLlib's `compute_value_targets`:
    delta_t = r_t + gamma * V(s_{t+1}) - V(s_t), A_t = delta_t + gamma * lambda * A_{t+1}.

    Args:
        values: V(s_t), [N] (episodes concatenated, each with RLlib's extra bootstrap step).
        rewards: intrinsic rewards, [N].
        terminateds, truncateds: [N], as RLlib's AddOneTsToEpisodesAndTruncate writes them.
        restart_value: V(s_0') for terminal steps (e.g. the mean over the batch's initial observations).

    Returns:
        The targets A_t + V(s_t), [N] float32 (at the extra steps after a
        termination: A_t + restart_value; those rows are masked out of every loss).
    """
    values = np.array(values, dtype=np.float32)
    terminal = np.asarray(terminateds, dtype=bool)
    if restart_value is not None:
        # The extra step after a terminal step is only ever that step's bootstrap.
        after = np.flatnonzero(terminal[:-1]) + 1
        values[after] = restart_value
    boundary = np.logical_or(terminal, np.asarray(truncateds, dtype=bool))
    return compute_value_targets(values=values, rewards=np.asarray(rewards, np.float32),
                                 terminateds=np.zeros(len(boundary), dtype=np.float32),
                                 truncateds=boundary.astype(np.float32), gamma=gamma, lambda_=lambda_)


def combined_advantages(*, ext: np.ndarray, intrinsic: np.ndarray, ext_coeff: float, int_coeff: float) -> np.ndarray:
    """A = ext_coeff * A_ext + int_coeff * A_int (Burda et al. 2018, section 2.3; their 2 and 1), [N]."""
    return ext_coeff * np.asarray(ext, np.float32) + int_coeff * np.asarray(intrinsic, np.float32)


def standardized(advantages: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(A - mean) / max(1e-4, std), as RLlib's GAE piece, with the statistics of the rows in `mask`."""
    rows = advantages if mask is None else advantages[np.asarray(mask, dtype=bool)]
    return ((advantages - rows.mean()) / max(1e-4, float(rows.std()))).astype(np.float32)


def clipped_value_loss(*, values: torch.Tensor, targets: torch.Tensor, clip: float) -> torch.Tensor:
    """Per-row min((V(s) - target)^2, clip), [B]: PPO's value loss as RLlib clips it (vf_clip_param)."""
    return torch.clamp((values - targets).pow(2), 0, clip)


# Modules ----------------------------------------------------------------------------------------
class IntrinsicValuePPOModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO module with a second value head, V_int, on the critic's embedding.

    The intrinsic head is trained only (absent from EnvRunners' inference-only copies).
    """

    def setup(self):
        super().setup()
        self.vf_intrinsic = self.catalog.build_vf_head(framework=self.framework)

    def get_non_inference_attributes(self) -> list[str]:
        return [*super().get_non_inference_attributes(), "vf_intrinsic"]

    def _critic_embeddings(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.is_stateful():
            raise ValueError("bonus rnd's two value heads need a non-recurrent PPO module")
        if hasattr(self.encoder, "critic_encoder"):
            return self.encoder.critic_encoder(batch)[ENCODER_OUT]
        return self.encoder(batch)[ENCODER_OUT][CRITIC]

    def compute_intrinsic_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """V_int(s), [B]."""
        embeddings = self._critic_embeddings(batch) if embeddings is None else embeddings
        return self.vf_intrinsic(embeddings).squeeze(-1)

    def compute_both_values(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(V_ext(s), V_int(s)), each [B], from one pass of the critic's encoder."""
        embeddings = self._critic_embeddings(batch)
        return self.vf(embeddings).squeeze(-1), self.vf_intrinsic(embeddings).squeeze(-1)


class PPORNDModule(rnd.RNDModule):
    """RND's predictor and target for PPO: the loss leaves out RLlib's artificial bootstrap step (LOSS_MASK)."""

    def compute_self_supervised_loss(self, *, learner, module_id, config, batch, fwd_out, **kwargs) -> torch.Tensor:
        errors = fwd_out[rnd.RND_ERROR]
        mask = batch.get(Columns.LOSS_MASK)
        loss = errors.mean() if mask is None else errors[mask].sum() / mask.sum().clamp(min=1)
        learner.metrics.log_value((module_id, rnd.PREDICTOR_LOSS), loss.detach(), window=1)
        return loss


# The bonuses PPO takes ------------------------------------------------------------------------
def _coefficient(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"bonus rnd {key}={value!r} must be a number >= 0")
    return float(value)


class PPORNDBonus(bonuses.RNDBonus):
    """RND with PPO's two value heads (Burda et al. 2018): RNDBonus's reward and normalisers, plus

    ext_coeff and int_coeff, the weights of the extrinsic and intrinsic
    advantages (the paper's 2 and 1). `gamma` is the intrinsic discount (also
    the intrinsic-return normaliser's, as in the paper).
    """

    two_value_heads: ClassVar[bool] = True

    def __init__(self, *, beta: float = 1.0, gamma: float = 0.99, hidden_sizes: list[int] | None = None,
                 embedding_dim: int = 32, lr: float = 1e-3, obs_clip: float = 5.0, ext_coeff: float = 2.0,
                 int_coeff: float = 1.0, observation_space: gym.Space | None = None, seed: int | None = None):
        super().__init__(beta=beta, gamma=gamma, hidden_sizes=hidden_sizes, embedding_dim=embedding_dim, lr=lr,
                         obs_clip=obs_clip, observation_space=observation_space, seed=seed)
        self.ext_coeff = _coefficient("ext_coeff", ext_coeff)
        self.int_coeff = _coefficient("int_coeff", int_coeff)

    @classmethod
    def module_spec(cls, settings):
        bonus = cls(**settings)
        return {rnd.MODULE_ID: RLModuleSpec(module_class=PPORNDModule, model_config=bonus.model_config,
                                            learner_only=True)}


BONUSES: dict[str, type[bonuses.Bonus]] = {"count": bonuses.CountBonus, "rnd": PPORNDBonus}


def two_value_heads(bonus: bonuses.Bonus | None) -> bool:
    return bool(getattr(bonus, "two_value_heads", False))


# The driver's side --------------------------------------------------------------------------
def sample_episodes(algorithm) -> list:
    """PPO's sampling step (ray 2.60, new API stack): one train batch of episodes from the EnvRunners,
    timed and their metrics aggregated as PPO.training_step does; [] when none came back."""
    config = algorithm.config
    with algorithm.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
        budget = ({"max_agent_steps": config.total_train_batch_size} if config.count_steps_by == "agent_steps"
                  else {"max_env_steps": config.total_train_batch_size})
        episodes, env_runner_results = synchronous_parallel_sample(
            worker_set=algorithm.env_runner_group, sample_timeout_s=config.sample_timeout_s,
            _uses_new_env_runners=True, _return_metrics=True, **budget)
        if episodes:
            algorithm.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
    return episodes


def set_step_column(episode, key: str, values: np.ndarray) -> None:
    """Writes a per-step column into a SingleAgentEpisode chunk (its lookback filled with zeros)."""
    values = np.asarray(values, dtype=np.float32)
    if len(values) != len(episode):
        raise ValueError(f"column {key!r} has {len(values)} rows for an episode chunk of {len(episode)} steps")
    lookback = episode.actions.lookback
    data = np.concatenate([np.zeros(lookback, dtype=np.float32), values])
    episode.extra_model_outputs[key] = InfiniteLookbackBuffer(data=data if episode.is_numpy else data.tolist(),
                                                              lookback=lookback)


class EpisodeBonus:
    """The Algorithm's side of a bonus for episode-based learning: statistics, then per-step bonuses."""

    def __init__(self, bonus: bonuses.Bonus):
        self.bonus = bonus
        self.intrinsic_mean: float | None = None

    def annotate(self, episodes: list) -> np.ndarray:
        """Takes the episodes' steps into the bonus's statistics, then writes each step's intrinsic
        reward into its episode (column INTRINSIC). Returns the intrinsic rewards, [sum of lengths]."""
        chunks = [e for e in episodes if len(e)]
        if any(not hasattr(e, "get_observations") or hasattr(e, "agent_episodes") for e in chunks):
            raise ValueError("exploration bonuses on PPO support single-agent episodes only")
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        per_chunk = [episode_columns(e) for e in chunks]
        columns = {k: np.concatenate([c[k] for c in per_chunk]) for k in per_chunk[0]}
        columns.update(self.bonus.observe(columns))  # statistics first (the docstring above says why)
        intrinsic = np.asarray(self.bonus.intrinsic(columns), dtype=np.float32)
        start = 0
        for episode in chunks:
            set_step_column(episode, INTRINSIC, intrinsic[start:start + len(episode)])
            start += len(episode)
        self.intrinsic_mean = float(intrinsic.mean())
        return intrinsic

    def log(self, metrics) -> None:
        if self.intrinsic_mean is None:
            return
        metrics.log_value((bonuses.RESULTS, bonuses.INTRINSIC_MEAN), self.intrinsic_mean, window=1)
        for key, value in self.bonus.metrics().items():
            metrics.log_value((bonuses.RESULTS, key), value, window=1)


# The learner's side ---------------------------------------------------------------------------
class BonusRewardConnector(RewardTransformConnector):
    """The first learner connector piece: rewards T(r) + b with one reward stream (count), T(r) with two (rnd).

    b is the episode's INTRINSIC column. Logs the extrinsic and the new
    rewards' means (rewards.REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN).
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, transform=None,
                 add_intrinsic: bool, **kwargs):
        super().__init__(input_observation_space, input_action_space, transform=transform, **kwargs)
        self.add_intrinsic = add_intrinsic

    def new_rewards(self, episode, columns):
        new = super().new_rewards(episode, columns)
        if self.add_intrinsic:
            if INTRINSIC not in episode.extra_model_outputs:
                raise ValueError(f"episode {episode.id_} has no {INTRINSIC!r} column: PPOWithBonus writes it")
            new = new + np.asarray(episode.get_extra_model_outputs(INTRINSIC), dtype=np.float32)
        return new


def restart_value(module: "IntrinsicValuePPOModule", episodes, device) -> float | None:
    """V_int at the initial observations among `episodes` (their mean), or None when none starts here.

    Where a non-episodic intrinsic return goes after a termination: into the
    next episode's first state (Burda et al. 2018's "return not truncated at
    game over"). RLlib's episodes are not linked per env, so the mean over the
    batch's initial states stands in for the next episode's own.
    """
    starts = [np.asarray(e.get_observations(0)) for e in episodes
              if getattr(e, "t_started", 0) == 0 and len(e.get_observations(slice(None))) > 0]
    if not starts:
        return None
    with torch.no_grad():
        obs = torch.as_tensor(np.stack(starts), dtype=torch.float32, device=device)
        return float(module.compute_intrinsic_values({Columns.OBS: obs}).mean())


class TwoHeadGAE(ConnectorV2):
    """RLlib's GAE piece for a module with two value heads (IntrinsicValuePPOModule); its other modules untouched.

    Writes Postprocessing.ADVANTAGES (ext_coeff * A_ext + int_coeff * A_int,
    standardised over the real steps), Postprocessing.VALUE_TARGETS (the
    extrinsic head's, episodic, discount `gamma`) and INTRINSIC_VALUE_TARGETS
    (non-episodic, discount `gamma_intrinsic`, rewards: the INTRINSIC column;
    a terminal step bootstraps from V_int of the batch's initial states,
    `restart_value`). Advantages are standardised over the real steps only
    (RLlib's piece includes its extra bootstrap steps).
    Needs RLlib's extra bootstrap step (AddOneTsToEpisodesAndTruncate) and a
    tensor batch, as RLlib's piece does.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float,
                 gamma_intrinsic: float, lambda_: float, ext_coeff: float, int_coeff: float, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.gamma, self.gamma_intrinsic, self.lambda_ = gamma, gamma_intrinsic, lambda_
        self.ext_coeff, self.int_coeff = ext_coeff, int_coeff

    def __call__(self, *, rl_module, episodes, batch, **kwargs):
        for module_id, module_batch in batch.items():
            module = rl_module[module_id].unwrapped()
            if not isinstance(module, IntrinsicValuePPOModule):
                continue
            with torch.no_grad():
                v_ext, v_int = module.compute_both_values(module_batch)
            device = v_ext.device
            v_ext, v_int = v_ext.cpu().numpy(), v_int.cpu().numpy()

            def column(key):
                value = module_batch[key]
                return value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)

            terminateds, truncateds = column(Columns.TERMINATEDS), column(Columns.TRUNCATEDS)
            ext_targets = compute_value_targets(values=v_ext, rewards=column(Columns.REWARDS),
                                                terminateds=terminateds, truncateds=truncateds,
                                                gamma=self.gamma, lambda_=self.lambda_)
            int_targets = non_episodic_value_targets(values=v_int, rewards=column(INTRINSIC),
                                                     terminateds=terminateds, truncateds=truncateds,
                                                     gamma=self.gamma_intrinsic, lambda_=self.lambda_,
                                                     restart_value=restart_value(module, episodes, device))
            advantages = combined_advantages(ext=ext_targets - v_ext, intrinsic=int_targets - v_int,
                                             ext_coeff=self.ext_coeff, int_coeff=self.int_coeff)
            mask = column(Columns.LOSS_MASK) if Columns.LOSS_MASK in module_batch else None
            module_batch[Postprocessing.ADVANTAGES] = torch.as_tensor(standardized(advantages, mask), device=device)
            module_batch[Postprocessing.VALUE_TARGETS] = torch.as_tensor(ext_targets, device=device)
            module_batch[INTRINSIC_VALUE_TARGETS] = torch.as_tensor(int_targets, device=device)
        return batch


class ShareBatchWith(ConnectorV2):
    """The last piece: learner-only modules train on the policy module's rows (the same tensors)."""

    def __init__(self, input_observation_space=None, input_action_space=None, *, module_ids: tuple[str, ...],
                 **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.module_ids = tuple(module_ids)

    def __call__(self, *, rl_module, batch, **kwargs):
        for module_id in self.module_ids:
            batch[module_id] = batch[DEFAULT_MODULE_ID]
        return batch


class PPOBonusLearner(PPOTransformedLearner):
    """RLlib's PPO torch learner with the bonus's pieces: the reward rewrite, and for two heads the
    next observations, TwoHeadGAE instead of RLlib's GAE, the rows for RND's predictor and the
    intrinsic value loss."""

    def _bonus(self) -> bonuses.Bonus | None:
        return bonuses.build(getattr(self.config, bonuses.FIELD, None), kinds=BONUSES)

    def build(self) -> None:
        super().build()
        bonus = self._bonus()
        if not two_value_heads(bonus) or self._learner_connector is None:
            return
        pipeline = self._learner_connector
        names = [type(piece).__name__ for piece in pipeline.connectors]
        for needed in (AddObservationsFromEpisodesToBatch, GeneralAdvantageEstimation):
            if needed.__name__ not in names:
                raise ValueError(f"bonus rnd needs RLlib's default learner connector pieces ({needed.__name__})")
        pipeline.insert_after(AddObservationsFromEpisodesToBatch, AddNextObservationsFromEpisodesToTrainBatch())
        pipeline.insert_before(GeneralAdvantageEstimation, TwoHeadGAE(
            gamma=self.config.gamma, gamma_intrinsic=bonus.gamma, lambda_=self.config.lambda_,
            ext_coeff=bonus.ext_coeff, int_coeff=bonus.int_coeff))
        pipeline.remove(GeneralAdvantageEstimation)
        pipeline.append(ShareBatchWith(module_ids=(rnd.MODULE_ID,)))

    def reward_connector(self):
        bonus = self._bonus()
        if bonus is None:
            return super().reward_connector()
        return BonusRewardConnector(transform=build_transform(getattr(self.config, TRANSFORM_FIELD, None)),
                                    add_intrinsic=not two_value_heads(bonus))

    def configure_optimizers(self) -> None:
        # RND's predictor brings its own optimizer (rlfrontier.modules); the policy gets PPO's.
        modules.configure_optimizers(self, policy_apis=self.rl_module_required_apis())

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        total = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        if INTRINSIC_VALUE_TARGETS not in batch:
            return total
        module = self.module[module_id].unwrapped()
        values = module.compute_intrinsic_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        loss = clipped_value_loss(values=values, targets=batch[INTRINSIC_VALUE_TARGETS], clip=config.vf_clip_param)
        mask = batch.get(Columns.LOSS_MASK)
        mean = loss.mean() if mask is None else loss[mask].sum() / mask.sum().clamp(min=1)
        self.metrics.log_value((module_id, VF_LOSS_INTRINSIC), mean.detach(), window=1)
        return total + config.vf_loss_coeff * mean


# Config and Algorithm ---------------------------------------------------------------------------
class PPOBonusConfig(bonuses.BonusFields, PPOWithRewardTransform):
    """RLlib's PPOConfig plus the `reward_transform` and `bonus` fields (bonus kinds: BONUSES).

    Without a bonus the algorithm is RLlib's PPO (with the reward transform).
    """

    bonus_kinds = BONUSES

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PPOWithBonus)

    def _two_value_heads(self) -> bool:
        return isinstance(self.bonus, Mapping) and two_value_heads(self.bonus_kinds.get(self.bonus.get("type")))

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        if self._two_value_heads():
            return RLModuleSpec(module_class=IntrinsicValuePPOModule, catalog_class=PPOCatalog)
        return super().get_default_rl_module_spec()

    def get_default_learner_class(self):
        return PPOBonusLearner if self.framework_str == "torch" else super().get_default_learner_class()


class PPOWithBonus(bonuses.BonusState, PPO):
    """RLlib's PPO whose driver computes an exploration bonus between sampling and the update."""

    @classmethod
    def get_default_config(cls) -> PPOBonusConfig:
        return PPOBonusConfig()

    def setup(self, config) -> None:
        super().setup(config)
        bonus = bonuses.build(getattr(self.config, bonuses.FIELD, None),
                              observation_space=bonuses.env_observation_space(self),
                              seed=seeding.derive_seed(self.config.seed, seeding.BONUS), kinds=BONUSES)
        self._episode_bonus = None if bonus is None else EpisodeBonus(bonus)
        if bonus is not None:
            bonus.attach(self.learner_group)

    def _bonus(self) -> bonuses.Bonus | None:
        episode_bonus = getattr(self, "_episode_bonus", None)
        return None if episode_bonus is None else episode_bonus.bonus

    def training_step(self) -> None:
        """RLlib's PPO.training_step (ray 2.60, new API stack), with the bonus between sampling and the update.

        Sample; take the steps into the bonus's statistics and write their
        intrinsic rewards into the episodes (EpisodeBonus.annotate); hand the
        learners the bonus's normalisers (before_update); update; fetch the
        trained predictor (after_update); sync the policy to the EnvRunners
        (learner-only modules stay on the learners).
        """
        if self._episode_bonus is None:
            return super().training_step()
        config = self.config
        episodes = sample_episodes(self)
        if not episodes:
            return

        bonus = self._episode_bonus.bonus
        self._episode_bonus.annotate(episodes)
        bonus.before_update(self.learner_group)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)),
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                        (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0),
                },
                num_epochs=config.num_epochs,
                minibatch_size=config.minibatch_size,
                shuffle_batch_per_epoch=config.shuffle_batch_per_epoch,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        bonus.after_update(self.learner_group)
        self._episode_bonus.log(self.metrics)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            acting = set(learner_results[0]) - {ALL_MODULES} - set(modules.learner_only_module_ids(config))
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, policies=acting,
                                               inference_only=True)
