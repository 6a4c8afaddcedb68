"""Adversarial imitation on RLlib's PPO: GAIL (Ho & Ermon 2016) and AIRL (Fu et al. 2018).

One base, `Adversarial`, owns the loop; GAIL and AIRL differ only in their
discriminator's logits and the reward it hands the policy
(torch/discriminator.py). Each training iteration (`Adversarial.training_step`):

1. the EnvRunners sample episodes with the current policy pi_k (RLlib records
   log pi_k(a|s) of every action as Columns.ACTION_LOGP);
2. the discriminator (a learner-only module beside the policy) takes
   `disc_updates` Adam steps, each on `disc_minibatch_size` rows; a row pairs
   one of this iteration's policy transitions with an expert transition drawn
   uniformly from the demonstrations (`--demos`), so every minibatch, on every
   learner, holds as many of each. AIRL's expert log pi is pi_k's, computed by
   the learner with its policy module (not yet updated: the same policy that
   sampled). The logistic loss; metrics under learners/discriminator/;
3. the Algorithm (the driver) fetches the updated discriminator into its own
   copy and computes the imitation reward of every sampled step (GAIL
   -log(1 - D), AIRL f - log pi), written into the episodes as the per-step
   column IMITATION_REWARD (rlfrontier.ppo_bonus.set_step_column);
4. PPO updates the policy on the episodes: the first learner connector piece
   (`ImitationRewardConnector`, the project's reward-rewrite seam) turns each
   episode's rewards into that column before PPO's value bootstrap and GAE;
5. the policy goes to the EnvRunners (the discriminator stays on the learners).

Steps 2-4 are the papers' order (Ho & Ermon's algorithm 1, Fu et al.'s
algorithm 1): the discriminator is trained on the new samples, then the
policy steps on the rewards of the updated discriminator.

Why the reward is computed on the driver (step 3), not in a learner connector:
the driver already holds this iteration's transitions (it builds the
discriminator's batch from them), computes every step's reward once whatever
the number of learners, and logs their mean from the same numbers the learners
receive; it costs one fetch of the discriminator's few weights per iteration.

The env's reward stays what the EnvRunners report (episode_return_mean) and
what evaluation measures; the learners log the mean env reward and the mean
imitation reward they trained on (learners/default_policy/reward_extrinsic_mean,
reward_transformed_mean), and the driver the mean imitation reward
(learners/default_policy/imitation_reward_mean). `expert_return_ratio()` (the
registry's evaluation hook) measures the last greedy evaluation return against the
demonstrations' mean return: their quotient where the expert's return is positive, and
in general 1 + (return - expert) / |expert|, which rises with the return (Pendulum).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env import INPUT_ENV_SINGLE_SPACES
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rlfrontier import demos, modules, replay, seeding
from rlfrontier.algorithms.adversarial.torch import discriminator as disc
from rlfrontier.ppo_bonus import sample_episodes, set_step_column
from rlfrontier.rewards import RewardTransformConnector, episode_columns
from rlfrontier.validation import BadInput, check_choice, check_range

# The per-step column the Algorithm writes into every sampled episode: each step's imitation reward.
IMITATION_REWARD = "imitation_reward"
# Metric keys: under learners/default_policy/ (the driver's mean of what PPO is handed), and the
# evaluation hook's.
IMITATION_REWARD_MEAN = "imitation_reward_mean"
EXPERT_RETURN_RATIO = "expert_return_ratio"
DISCRIMINATOR_UPDATE_TIMER = "discriminator_update"
# The purpose of the expert sampler's random stream (rlfrontier.seeding).
EXPERT_SAMPLER = "expert_sampler"


# Transitions ----------------------------------------------------------------------------------
def policy_transitions(episodes: list, action_space=None, *, normalize_actions: bool = False
                       ) -> dict[str, np.ndarray]:
    """The sampled steps of single-agent episode chunks as one-step columns, concatenated.

    Keys: Columns.OBS, ACTIONS, NEXT_OBS, TERMINATEDS (the chunk's last step only,
    when its episode terminated there) and ACTION_LOGP (log pi(a|s) at sampling
    time, [N]); chunks of no step are skipped.

    With a Box `action_space`, ACTIONS are what the env received (the episode
    holds the module's raw sample; the EnvRunner unsquashes and clips it), in
    the module's units: the units of the demonstrated actions
    (`expert_transitions`), so that the discriminator cannot tell a sample
    beyond the bounds from the saturated action the env got. ACTION_LOGP stays
    the raw sample's.
    """
    chunks = [e for e in episodes if len(e)]
    if any(not hasattr(e, "get_observations") or hasattr(e, "agent_episodes") for e in chunks):
        raise ValueError("adversarial imitation supports single-agent episodes only")
    if not chunks:
        raise ValueError("no sampled step to imitate from")
    parts = []
    for episode in chunks:
        columns = episode_columns(episode)
        parts.append({
            Columns.OBS: columns[replay.OBS], Columns.ACTIONS: columns[replay.ACTIONS],
            Columns.NEXT_OBS: columns[replay.NEXT_OBS], Columns.TERMINATEDS: columns[replay.TERMINATEDS],
            Columns.ACTION_LOGP: np.asarray(episode.get_extra_model_outputs(Columns.ACTION_LOGP), np.float32),
        })
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if action_space is not None:
        columns[Columns.ACTIONS] = demos.received_module_actions(columns[Columns.ACTIONS], action_space,
                                                                 normalize_actions=normalize_actions)
    return columns


def expert_transitions(path, action_space=None, *, normalize_actions: bool = False
                       ) -> tuple[dict[str, np.ndarray], float]:
    """The demonstrations' transitions (keys: the discriminator's EXPERT_* columns) and their mean return.

    `path`: a demonstrations folder, or one already loaded (demos.Demonstrations).
    Box actions are put in the units of the policy's own (`demos.module_actions`): the discriminator
    compares them with the actions RLlib's episodes hold, [-1, 1] under `normalize_actions`.
    """
    loaded = path if isinstance(path, demos.Demonstrations) else demos.load(path, where="--demos")
    rows = loaded.transitions()
    if not len(rows[demos.OBS]):
        raise BadInput(f"--demos {loaded.path}: holds no transition")
    actions = demos.module_actions(rows[demos.ACTION], action_space, normalize_actions=normalize_actions)
    columns = {
        disc.EXPERT_OBS: rows[demos.OBS], disc.EXPERT_ACTIONS: actions,
        disc.EXPERT_NEXT_OBS: rows[demos.NEXT_OBS], disc.EXPERT_TERMINATEDS: rows[demos.TERMINATED],
    }
    return columns, float(loaded.manifest["return_mean"])


def paired_rows(policy: dict[str, np.ndarray], expert: dict[str, np.ndarray], *, size: int,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`size` rows, each one policy transition beside one expert transition.

    The policy's rows go through this iteration's transitions in a random order
    (again from the start when `size` exceeds them); the expert's are drawn
    uniformly with replacement from the demonstrations.
    """
    n = len(policy[Columns.OBS])
    order = np.concatenate([rng.permutation(n) for _ in range(-(-size // n))])[:size]
    drawn = rng.integers(len(expert[disc.EXPERT_OBS]), size=size)
    return {**{k: v[order] for k, v in policy.items()}, **{k: v[drawn] for k, v in expert.items()}}


# The learner's side ---------------------------------------------------------------------------
class ImitationRewardConnector(RewardTransformConnector):
    """The first learner connector piece: each episode's rewards become its IMITATION_REWARD column.

    The Algorithm writes the column (Adversarial.training_step); the piece logs
    the env's and the new rewards' means as every reward rewrite does
    (rewards.REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN).
    """

    def __init__(self, input_observation_space=None, input_action_space=None, **kwargs):
        super().__init__(input_observation_space, input_action_space, transform=None, **kwargs)

    def new_rewards(self, episode, columns):
        if IMITATION_REWARD not in episode.extra_model_outputs:
            raise ValueError(f"episode {episode.id_} has no {IMITATION_REWARD!r} column: the adversarial "
                             "Algorithm writes it before the update")
        return np.asarray(episode.get_extra_model_outputs(IMITATION_REWARD), dtype=np.float32)


# Config ---------------------------------------------------------------------------------------
def _hidden_sizes(value: Any) -> None:
    if not (isinstance(value, (list, tuple)) and value
            and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in value)):
        raise BadInput(f"disc_hidden_sizes={value!r} must be a non-empty list of positive integers")


class AdversarialConfig(PPOConfig):
    """RLlib's PPOConfig plus the discriminator's fields (set through `training()`).

    Fields:
        demos: a demonstrations folder (rlfrontier.demos), set by `--demos`.
        disc_updates: the discriminator's Adam steps per training iteration.
        disc_minibatch_size: rows per step, per learner; each row is one policy
            and one expert transition.
        disc_lr: the discriminator's Adam step size.
        disc_hidden_sizes: the hidden layers of its networks (ReLU).
        disc_normalize_obs: standardise its observations by their running mean and
            variance (disc.RunningNorm).
    Subclasses name their discriminator (`discriminator_class`).
    """

    discriminator_class: ClassVar[type[disc.Discriminator]]

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        # PPO's, for a learned reward whose returns run to tens or hundreds: RLlib's vf_clip_param (10)
        # clamps the squared value error, so the value head gets no gradient wherever its error exceeds
        # ~3 and the advantages are barely better than Monte Carlo returns; GAE(0.95) for RLlib's 1.0.
        # On rlfrontier/CartPoleFixedHorizon-v0 with the env's reward (RLlib's PPO, the registry's
        # CartPole settings, seed 0): eval 166 after 100,000 env steps with RLlib's values, 500 from
        # 64,000 steps with these. gail, seed 0, before disc_normalize_obs: eval 52 after 100,000 steps with
        # RLlib's values; with these 52 after 150,000 and 500 from 224,000.
        self.lambda_ = 0.95
        self.vf_clip_param = 10_000.0
        self.demos: str | None = None
        self.disc_updates = 8
        self.disc_minibatch_size = 512
        self.disc_lr = 1e-3
        self.disc_hidden_sizes = [32, 32]
        self.disc_normalize_obs = True

    def training(self, *, demos: str | None = NotProvided, disc_updates: int = NotProvided,
                 disc_minibatch_size: int = NotProvided, disc_lr: float = NotProvided,
                 disc_hidden_sizes: list[int] = NotProvided, disc_normalize_obs: bool = NotProvided,
                 **kwargs) -> "AdversarialConfig":
        super().training(**kwargs)
        for name, value in (("demos", demos), ("disc_updates", disc_updates),
                            ("disc_minibatch_size", disc_minibatch_size), ("disc_lr", disc_lr),
                            ("disc_hidden_sizes", disc_hidden_sizes), ("disc_normalize_obs", disc_normalize_obs)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        name = self.algo_class.__name__.lower()
        if not self.demos:
            raise BadInput(f"{name} needs demonstrations (--demos DIR)")
        check_range("disc_updates", self.disc_updates, 1, None, integer=True)
        check_range("disc_minibatch_size", self.disc_minibatch_size, 1, None, integer=True)
        check_range("disc_lr", self.disc_lr, 0.0, None, low_open=True)
        _hidden_sizes(self.disc_hidden_sizes)
        check_choice("disc_normalize_obs", self.disc_normalize_obs, (True, False))
        super().validate()

    def discriminator_model_config(self) -> dict[str, Any]:
        # NORMALIZE_ACTIONS: the units of the Box actions it learns from, for a run that reuses its reward
        # (learned_reward); the discriminator itself does not read it.
        return {disc.HIDDEN_SIZES: list(self.disc_hidden_sizes), disc.LR: float(self.disc_lr),
                disc.GAMMA: float(self.gamma), disc.NORMALIZE_OBS: self.disc_normalize_obs,
                disc.NORMALIZE_ACTIONS: bool(self.normalize_actions)}

    def discriminator_spec(self, observation_space=None, action_space=None) -> RLModuleSpec:
        """The discriminator's learner-only RLModuleSpec (spaces None: the policy's, filled in by RLlib)."""
        return RLModuleSpec(module_class=self.discriminator_class, observation_space=observation_space,
                            action_space=action_space, model_config=self.discriminator_model_config(),
                            learner_only=True)

    def own_learner_only_module_ids(self) -> tuple[str, ...]:
        return (disc.MODULE_ID,)

    def get_multi_rl_module_spec(self, *, inference_only: bool = False, **kwargs):
        spec = super().get_multi_rl_module_spec(inference_only=inference_only, **kwargs)
        return modules.add_beside_policy(spec, {disc.MODULE_ID: self.discriminator_spec()},
                                         inference_only=inference_only, owner="the discriminator")

    def get_default_learner_class(self):
        if self.framework_str != "torch":
            raise ValueError(f"{self.algo_class.__name__} has a torch learner only")
        from rlfrontier.algorithms.adversarial.torch.adversarial_torch_learner import AdversarialPPOLearner

        return AdversarialPPOLearner


# Algorithm ------------------------------------------------------------------------------------
class Adversarial(PPO):
    """RLlib's PPO with the discriminator's update and the imitation reward between sampling and
    the policy's update (the module docstring)."""

    def setup(self, config) -> None:
        # The command line's check (rlfrontier.configure), also for a config built in Python: demonstrations
        # of another env, env_config or spaces are refused before any EnvRunner or Learner is built.
        recorded = demos.check_config(self.config.demos, self.config)
        super().setup(config)
        observation_space, action_space = self.spaces[INPUT_ENV_SINGLE_SPACES]
        self._expert, self._expert_return_mean = expert_transitions(
            recorded, action_space, normalize_actions=self.config.normalize_actions)
        self._rng = seeding.rng(self.config.seed, EXPERT_SAMPLER)
        # The driver's copy of the learners' discriminator, refreshed after every update of theirs.
        self._discriminator = self.config.discriminator_spec(observation_space, action_space).build()
        self._discriminator.eval()
        self._fetch_discriminator()

    def _fetch_discriminator(self) -> None:
        weights = self.learner_group.get_weights(module_ids=[disc.MODULE_ID])[disc.MODULE_ID]
        # Strict: a copy that silently kept some random weights would give wrong rewards.
        self._discriminator.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()}, strict=True)

    def imitation_rewards(self, policy: dict[str, np.ndarray]) -> np.ndarray:
        """The reward the policy is handed for each of `policy_transitions`' steps, [N] float32."""
        with torch.no_grad():
            tensors = {k: torch.as_tensor(v) for k, v in policy.items()}
            rewards = self._discriminator.policy_reward(
                obs=tensors[Columns.OBS], actions=tensors[Columns.ACTIONS], next_obs=tensors[Columns.NEXT_OBS],
                terminateds=tensors[Columns.TERMINATEDS], log_pi=tensors[Columns.ACTION_LOGP])
        return rewards.numpy().astype(np.float32)

    def _timesteps(self) -> dict[str, Any]:
        return {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME),
                                                              default=0),
            NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0),
        }

    def update_discriminator(self, policy: dict[str, np.ndarray]) -> None:
        """`disc_updates` Adam steps of the discriminator on paired rows (one learner-group call)."""
        cfg = self.config
        size = cfg.disc_updates * cfg.disc_minibatch_size * max(cfg.num_learners, 1)
        rows = paired_rows(policy, self._expert, size=size, rng=self._rng)
        # env_steps: its rows, by which RLlib shards a batch among learners; they are not env steps trained
        # (AdversarialPPOLearner leaves them out of that count: only PPO's update adds to it).
        batch = MultiAgentBatch({disc.MODULE_ID: SampleBatch(rows)}, env_steps=size)
        results = self.learner_group.update(batch=batch, minibatch_size=cfg.disc_minibatch_size, num_epochs=1,
                                            shuffle_batch_per_epoch=False, timesteps=self._timesteps())
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self._fetch_discriminator()

    def training_step(self) -> None:
        """RLlib's PPO.training_step (ray 2.60, new API stack) with steps 2-3 of the module docstring
        between sampling and the policy's update."""
        config = self.config
        episodes = sample_episodes(self)
        if not episodes:
            return

        policy = policy_transitions(episodes, self.spaces[INPUT_ENV_SINGLE_SPACES][1],
                                    normalize_actions=config.normalize_actions)
        with self.metrics.log_time((TIMERS, DISCRIMINATOR_UPDATE_TIMER)):
            self.update_discriminator(policy)
        rewards = self.imitation_rewards(policy)
        start = 0
        for episode in (e for e in episodes if len(e)):
            set_step_column(episode, IMITATION_REWARD, rewards[start:start + len(episode)])
            start += len(episode)
        self.metrics.log_value((LEARNER_RESULTS, DEFAULT_MODULE_ID, IMITATION_REWARD_MEAN), float(rewards.mean()),
                               window=1)

        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes, timesteps=self._timesteps(), num_epochs=config.num_epochs,
                minibatch_size=config.minibatch_size, shuffle_batch_per_epoch=config.shuffle_batch_per_epoch)
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            acting = set(learner_results[0]) - {ALL_MODULES, disc.MODULE_ID}
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, policies=acting,
                                               inference_only=True)

    def expert_return_ratio(self) -> dict[str, float]:
        """{EXPERT_RETURN_RATIO: the last evaluation's return mean against the demonstrations' return mean,
        rlfrontier.demos.expert_return_ratio (their quotient where the expert's return is positive)}."""
        value = self.metrics.peek((EVALUATION_RESULTS, ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN), default=np.nan)
        return {EXPERT_RETURN_RATIO: demos.expert_return_ratio(value, self._expert_return_mean)}


# GAIL and AIRL --------------------------------------------------------------------------------
class GAILConfig(AdversarialConfig):
    """GAIL: the discriminator D(s, a) = sigmoid(net(s, a)), the policy's reward -log(1 - D)."""

    discriminator_class = disc.GAILDiscriminator

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or GAIL)


class GAIL(Adversarial):
    @classmethod
    def get_default_config(cls) -> GAILConfig:
        return GAILConfig()


class AIRLConfig(AdversarialConfig):
    """AIRL: D = exp(f) / (exp(f) + pi), the policy's reward f - entropy_weight * log pi.

    Fields:
        state_only: g(s), the paper's disentangled reward (default), or g(s, a).
        entropy_weight: the weight of -log pi in the policy's reward: 1 is the paper's
            log D - log(1 - D); 0 is f alone (the `imitation` library's AIRL). None (the default): 1 with
            Discrete actions, 0 with Box actions. With Box actions that the env clips, -log pi rewards a
            wider Gaussian without bound (README, inverse RL: on Pendulum at weight 1 the policy's entropy
            rose from 2 to 10 nats and the return collapsed; at 0, 3 of 3 seeds reached the target).
    """

    discriminator_class = disc.AIRLDiscriminator

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or AIRL)
        self.state_only = True
        self.entropy_weight: float | None = None  # by the action space: see the class docstring

    def training(self, *, state_only: bool = NotProvided, entropy_weight: float | None = NotProvided,
                 **kwargs) -> "AIRLConfig":
        if state_only is not NotProvided:
            self.state_only = state_only
        if entropy_weight is not NotProvided:
            self.entropy_weight = entropy_weight
        return super().training(**kwargs)

    def validate(self) -> None:
        check_choice("state_only", self.state_only, (True, False))
        if self.entropy_weight is not None:
            check_range("entropy_weight", self.entropy_weight, 0.0, None)
        super().validate()

    def discriminator_model_config(self) -> dict[str, Any]:
        return {**super().discriminator_model_config(), disc.STATE_ONLY: self.state_only,
                disc.ENTROPY_WEIGHT: None if self.entropy_weight is None else float(self.entropy_weight)}


class AIRL(Adversarial):
    @classmethod
    def get_default_config(cls) -> AIRLConfig:
        return AIRLConfig()
