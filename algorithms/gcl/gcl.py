"""Guided cost learning (Finn, Levine & Abbeel 2016): sample-based MaxEnt IRL for unknown dynamics.

MaxEnt IRL needs the partition function Z of p(tau) = exp(R_psi(tau)) / Z;
with unknown dynamics it comes from samples, by importance sampling
(losses.py has the objective and its gradient). The sampler is a policy
trained on the current reward, which GCL improves as the reward improves, so
the samples come from where the reward's mass is:

1. the EnvRunners sample with soft_q's Boltzmann policy; the new steps go into
   soft_q's replay, and the Algorithm (the driver) joins each episode's chunks
   into whole trajectories with log q(tau) = sum_t log pi(a_t|s_t), the
   log-probabilities the EnvRunner sampled with (Columns.ACTION_LOGP);
2. the reward r_psi (a learner-only module, torch/cost.py) takes one Adam
   step on GCL's IOC loss per `cost_update_interval` env steps sampled (the
   fraction carried over, so the schedule does not depend on how many env
   steps one sample call brings). Each row of a step pairs one of
   the newest `sample_trajectories` complete trajectories with one
   demonstration (`--demos`), so every minibatch, on every learner, holds as
   many of each, all of them in the importance-sampled log-sum (the
   demonstrations "mixed into the samples", GCL's algorithm 2);
3. the driver fetches the updated reward into its own copy, and soft_q's
   updates replay transitions with their rewards recomputed as r_psi(s, a) at
   replay time (rewards.ReplayRewardHook: the project's reward-transform
   seam), so every update uses the current reward, whatever step sampled them.

Steps 1-3 are GCL's algorithm 1 (generate samples, update the cost, update
the policy), with soft_q in place of guided policy search: a soft-optimal
policy of r_psi is, up to its temperature, the MaxEnt model exp(R_psi)
itself, so the sampler tracks the distribution whose Z is estimated.

What is not kept across a restore: the trajectory pool (like soft_q's replay
buffer, it is rebuilt from new samples). The env's reward stays what the
EnvRunners report (episode_return_mean) and what evaluation measures; the
learned reward's means are logged beside it (learners/default_policy/
reward_transformed_mean, learners/gcl_reward/). The registry's evaluation
hook reports the last greedy return over the demonstrations' mean return
and, on a tabular world (rlfrontier/GridWorld-v0, ObjectWorld-v0), the
learned reward's correlation with the true one and the expected value
difference of its optimal policy, as maxent_irl does.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    TIMERS,
)

from rlfrontier import demos, modules, offpolicy, replay, rewards, seeding
from rlfrontier.algorithms.gcl.torch import cost
from rlfrontier.algorithms.soft_q.soft_q import SoftQ, SoftQConfig
from rlfrontier.validation import BadInput, check_choice, check_range

# The purpose of the trajectory sampler's random stream (rlfrontier.seeding).
TRAJECTORY_SAMPLER = "gcl_trajectories"
REWARD_UPDATE_TIMER = "reward_update"
# Driver metrics (top level of the result).
TRAJECTORIES_POOLED = "gcl_trajectories_pooled"
TRAJECTORIES_COMPLETED = "gcl_trajectories_completed"
REWARD_STEPS = "gcl_reward_steps"
# The evaluation hook's keys.
EXPERT_RETURN_RATIO = "expert_return_ratio"
# Episodes whose chunks are still arriving, at most (older ones are dropped: an EnvRunner restarted).
MAX_OPEN_EPISODES = 4096


@dataclass(frozen=True)
class Trajectory:
    """One whole episode: obs [T, ...], actions [T], and log q = sum_t log pi(a_t|s_t) (nan: unknown)."""

    obs: np.ndarray
    actions: np.ndarray
    log_q: float = float("nan")

    def __len__(self) -> int:
        return len(self.actions)


class TrajectoryPool:
    """Joins EnvRunner chunks into whole episodes and keeps the newest `capacity` of them.

    A chunk continues its episode when it starts where the held part ends
    (RLlib keeps `episode.id_` and counts `t_started` across chunks); a chunk
    that does not (a lost chunk) drops the held part, so a kept trajectory is
    always a whole episode with the log-probabilities it was sampled with.
    """

    def __init__(self, capacity: int):
        self.trajectories: deque[Trajectory] = deque(maxlen=capacity)
        self._open: OrderedDict[Any, dict[str, list]] = OrderedDict()

    def add(self, episodes: list) -> int:
        """Takes sampled chunks (single-agent, with ACTION_LOGP); returns how many episodes they completed."""
        completed = 0
        for episode in episodes:
            steps = len(episode)
            if not steps:
                continue
            held = self._open.pop(episode.id_, None)
            if held is None or held["t"] != episode.t_started:
                held = None if episode.t_started else {"obs": [], "actions": [], "logp": [], "t": 0}
            if held is None:  # the episode's start was never seen: not a whole trajectory
                continue
            columns = rewards.episode_columns(episode)
            held["obs"].append(columns[replay.OBS])
            held["actions"].append(columns[replay.ACTIONS])
            held["logp"].append(np.asarray(episode.get_extra_model_outputs(Columns.ACTION_LOGP), np.float64))
            held["t"] += steps
            if episode.is_done:
                self.trajectories.append(Trajectory(np.concatenate(held["obs"]), np.concatenate(held["actions"]),
                                                    float(np.concatenate(held["logp"]).sum())))
                completed += 1
            else:
                self._open[episode.id_] = held
        while len(self._open) > MAX_OPEN_EPISODES:
            self._open.popitem(last=False)
        return completed

    def __len__(self) -> int:
        return len(self.trajectories)


def demo_trajectories(path: str) -> tuple[list[Trajectory], float]:
    """The demonstrations' episodes as trajectories (log q unknown: the learner computes it) and their mean return."""
    loaded = demos.load(path, where="--demos")
    episodes = [Trajectory(np.asarray(e[demos.OBS], np.float32), np.asarray(e[demos.ACTION]))
                for e in loaded.episodes()]
    if not episodes:
        raise BadInput(f"--demos {path}: holds no episode")
    return episodes, float(loaded.manifest["return_mean"])


def _order(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` indexes into n items: random permutations one after another (distinct within each n)."""
    return np.concatenate([rng.permutation(n) for _ in range(-(-size // n))])[:size]


def _padded(trajectories: list[Trajectory], length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """obs [B, length, ...], actions [B, length], mask [B, length] (1 on real steps, zero padding after)."""
    first = trajectories[0]
    obs = np.zeros((len(trajectories), length, *first.obs.shape[1:]), np.float32)
    actions = np.zeros((len(trajectories), length), first.actions.dtype)
    mask = np.zeros((len(trajectories), length), np.float32)
    for i, t in enumerate(trajectories):
        obs[i, :len(t)], actions[i, :len(t)], mask[i, :len(t)] = t.obs, t.actions, 1.0
    return obs, actions, mask


def paired_trajectories(samples: list[Trajectory], demos: list[Trajectory], *, size: int,
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`size` rows, each one sampled trajectory beside one demonstration, padded to the longest of them.

    Both sides go through their pool in random orders (again from the start when
    `size` exceeds it), so a minibatch of at most a pool's size repeats none.
    """
    drawn = [samples[i] for i in _order(len(samples), size, rng)]
    shown = [demos[i] for i in _order(len(demos), size, rng)]
    length = max(len(t) for t in drawn + shown)
    sample_obs, sample_actions, sample_mask = _padded(drawn, length)
    demo_obs, demo_actions, demo_mask = _padded(shown, length)
    return {
        cost.SAMPLE_OBS: sample_obs, cost.SAMPLE_ACTIONS: sample_actions, cost.SAMPLE_MASK: sample_mask,
        cost.SAMPLE_LOG_Q: np.array([t.log_q for t in drawn], np.float32),
        cost.DEMO_OBS: demo_obs, cost.DEMO_ACTIONS: demo_actions, cost.DEMO_MASK: demo_mask,
    }


class CurrentReward(rewards.RewardTransform):
    """r' = r_psi(s, a) of the Algorithm's copy of the learned reward (fetched after every update of it)."""

    kind = "gcl_current"

    def __init__(self, module: cost.GCLReward):
        self.module = module

    def rewrite(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return self.module.step_reward(torch.as_tensor(np.asarray(columns[replay.OBS])),
                                           torch.as_tensor(np.asarray(columns[replay.ACTIONS]))).numpy()


class GCLLearnedReward(CurrentReward):
    """`{"type": "gcl", "checkpoint": DIR}`: r' = r_psi(s, a) of a `rlfrontier train gcl` checkpoint's reward.

    Trains a fresh policy (any algorithm that takes a reward transform) on what
    gcl learned; the reward's observation statistics stay as trained (eval
    mode). DIR must be on storage every node reads.
    """

    kind = "gcl"

    def __init__(self, *, checkpoint: str):
        from rlfrontier.algorithms.adversarial.learned_reward import load_learned_module

        self.checkpoint = str(checkpoint)
        super().__init__(load_learned_module(checkpoint, cost.MODULE_ID, cost.GCLReward, "gcl", what="reward"))


def _hidden_sizes(value: Any) -> None:
    if not (isinstance(value, (list, tuple))
            and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in value)):
        raise BadInput(f"cost_hidden_sizes={value!r} must be a list of positive integers ([]: a linear reward)")


class GCLConfig(SoftQConfig):
    """soft_q's config (the policy) plus the learned reward's fields, set through `training()`.

    Fields:
        demos: the demonstrations folder (`--demos`): the reward's data, not
            replayed (soft_q's DQfD fields do not apply).
        cost_update_interval: env steps sampled per Adam step of the reward
            (32: 4 steps per sample call of 8 envs x 16 steps, 32 per 1,024).
        cost_batch_size: rows per step, per learner; a row is one sampled
            trajectory and one demonstration.
        cost_lr: the reward's Adam step size.
        cost_hidden_sizes: its hidden layers (ReLU).
        cost_state_only: r_psi(s) (True) or r_psi(s, a).
        cost_normalize_obs: standardise its observations by their running
            statistics: true, false, or "auto" (unless they lie in [0, 1]: one-hot).
        cost_l2: weight of the sum of its squared parameters in its loss (a Gaussian prior).
        sample_trajectories: how many of the newest complete trajectories the
            reward contrasts with the demonstrations.
    """

    demos_in_replay = False

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or GCL)
        # Per env step, not per sample call: a call of 4 envs x 16 steps with 4 steps a call (twice this
        # rate) drove the reward to the zero network under the L2 prior within 6 iterations on GridWorld
        # (a review's run: every state's reward equal, expected value difference 76% of the optimal value).
        self.cost_update_interval = 32
        self.cost_batch_size = 16
        self.cost_lr = 1e-3
        self.cost_hidden_sizes = [32, 32]
        self.cost_state_only = True
        self.cost_normalize_obs = "auto"
        self.cost_l2 = 0.5
        self.sample_trajectories = 64
        self.demo_pretrain_updates = 0

    def training(self, *, cost_update_interval: int = NotProvided, cost_batch_size: int = NotProvided,
                 cost_lr: float = NotProvided, cost_hidden_sizes: list[int] = NotProvided,
                 cost_state_only: bool = NotProvided, cost_normalize_obs: bool | str = NotProvided,
                 cost_l2: float = NotProvided, sample_trajectories: int = NotProvided, **kwargs) -> "GCLConfig":
        super().training(**kwargs)
        for name, value in (("cost_update_interval", cost_update_interval), ("cost_batch_size", cost_batch_size),
                            ("cost_lr", cost_lr), ("cost_hidden_sizes", cost_hidden_sizes),
                            ("cost_state_only", cost_state_only), ("cost_normalize_obs", cost_normalize_obs),
                            ("cost_l2", cost_l2), ("sample_trajectories", sample_trajectories)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        if not self.demos:
            raise BadInput("gcl needs demonstrations (--demos DIR)")
        if self.reward_transform:
            raise BadInput("reward_transform: gcl's policy learns from its learned reward; it takes no other")
        if self.bonus:
            raise BadInput("bonus: gcl does not take an exploration bonus")
        check_range("cost_update_interval", self.cost_update_interval, 1, None, integer=True)
        check_range("cost_batch_size", self.cost_batch_size, 1, None, integer=True)
        check_range("cost_lr", self.cost_lr, 0.0, None, low_open=True)
        _hidden_sizes(self.cost_hidden_sizes)
        check_choice("cost_state_only", self.cost_state_only, (True, False))
        if not any(self.cost_normalize_obs is c or self.cost_normalize_obs == "auto" for c in (True, False)):
            raise BadInput(f"cost_normalize_obs={self.cost_normalize_obs!r} is not one of true, false, 'auto'")
        check_range("cost_l2", self.cost_l2, 0.0, None)
        check_range("sample_trajectories", self.sample_trajectories, 1, None, integer=True)
        super().validate()

    def reward_model_config(self) -> dict[str, Any]:
        return {cost.HIDDEN_SIZES: list(self.cost_hidden_sizes), cost.LR: float(self.cost_lr),
                cost.L2: float(self.cost_l2), cost.STATE_ONLY: self.cost_state_only,
                cost.NORMALIZE_OBS: self.cost_normalize_obs}

    def reward_spec(self, observation_space=None, action_space=None) -> RLModuleSpec:
        """The learned reward's learner-only RLModuleSpec (spaces None: the policy's, filled in by RLlib)."""
        return RLModuleSpec(module_class=cost.GCLReward, observation_space=observation_space,
                            action_space=action_space, model_config=self.reward_model_config(), learner_only=True)

    def own_learner_only_module_ids(self) -> tuple[str, ...]:
        return (cost.MODULE_ID,)

    def get_multi_rl_module_spec(self, *, inference_only: bool = False, **kwargs):
        spec = super().get_multi_rl_module_spec(inference_only=inference_only, **kwargs)
        return modules.add_beside_policy(spec, {cost.MODULE_ID: self.reward_spec()}, inference_only=inference_only,
                                         owner="gcl's reward")

    def get_default_learner_class(self):
        from rlfrontier.algorithms.gcl.torch.gcl_torch_learner import GCLTorchLearner

        return GCLTorchLearner


class GCL(SoftQ):
    """soft_q on the learned reward, the reward updated between sampling and the policy's updates."""

    @classmethod
    def get_default_config(cls) -> GCLConfig:
        return GCLConfig()

    def setup(self, config) -> None:
        super().setup(config)
        self._demos, self._demo_return_mean = demo_trajectories(self.config.demos)
        self._pool = TrajectoryPool(self.config.sample_trajectories)
        self._rng = seeding.rng(self.config.seed, TRAJECTORY_SAMPLER)
        self._reward_credit = 0.0  # reward steps due, carried across sample calls
        observation_space, action_space = self.spaces[DEFAULT_MODULE_ID]
        # The driver's copy of the learners' reward, refreshed after every update of theirs.
        self._reward = self.config.reward_spec(observation_space, action_space).build()
        self._reward.eval()
        self._fetch_reward()
        # soft_q learns on r_psi itself: its policy softmax(Q / alpha) is the soft-optimal policy of r_psi at
        # temperature alpha, sharper than the model exp(R_psi) / Z (temperature 1), so the samples gather
        # where the reward is high. The weights use the sampler's own densities, not the model's, so Z's
        # estimate does not need the two to agree. Measured against alpha * r_psi (temperature 1, the model
        # itself) with the defaults, seed 0: GridWorld greedy return 0.9 of the expert's against 0.07-0.29
        # at 10,000-14,000 env steps (the reward stayed near 0 under the L2 prior); CartPoleFixedHorizon
        # (cost_normalize_obs) a greedy 500 from 26,000 env steps against 175-243 at 50,000.
        self._reward_hook = rewards.ReplayRewardHook(CurrentReward(self._reward))
        self._tabular: bool | None = None  # whether the env is a tabular world (the evaluation hook's measures)

    def _fetch_reward(self) -> None:
        weights = self.learner_group.get_weights(module_ids=[cost.MODULE_ID])[cost.MODULE_ID]
        # Strict: a copy that silently kept some random weights would hand the policy a wrong reward.
        self._reward.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()}, strict=True)

    def set_state(self, state) -> None:
        super().set_state(state)
        self._fetch_reward()  # a restore's learners hold the checkpoint's reward: so does the driver's copy

    def update_reward(self, episodes: list) -> None:
        """Pools the new whole trajectories; then the reward steps due for the new env steps (one learner-group
        call, each step `cost_batch_size` paired rows per learner)."""
        cfg = self.config
        self.metrics.log_value(TRAJECTORIES_COMPLETED, self._pool.add(episodes), reduce="sum")
        self.metrics.log_value(TRAJECTORIES_POOLED, len(self._pool), window=1)
        if not len(self._pool):
            return
        self._reward_credit += sum(len(e) for e in episodes) / cfg.cost_update_interval
        steps_due = int(self._reward_credit)
        if not steps_due:
            return
        self._reward_credit -= steps_due
        self.metrics.log_value(REWARD_STEPS, steps_due, reduce="sum")
        size = steps_due * cfg.cost_batch_size * max(cfg.num_learners, 1)
        rows = paired_trajectories(list(self._pool.trajectories), self._demos, size=size, rng=self._rng)
        batch = MultiAgentBatch({cost.MODULE_ID: SampleBatch(rows)}, env_steps=size)
        steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        with self.metrics.log_time((TIMERS, REWARD_UPDATE_TIMER)):
            results = self.learner_group.update(batch=batch, minibatch_size=cfg.cost_batch_size, num_epochs=1,
                                                shuffle_batch_per_epoch=False,
                                                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps})
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self._fetch_reward()

    def training_step(self) -> None:
        offpolicy.replay_training_step(self, reward_hook=self._reward_hook, on_sampled=self.update_reward)
        self._reward_hook.log(self.metrics)
        self._log_q_bounds()

    # The registry's evaluation hook ----------------------------------------------------------
    def state_rewards(self, observations: np.ndarray) -> np.ndarray:
        """r_psi(s) of each observation [N, ...] (state-only reward; else the mean over actions), float64."""
        with torch.no_grad():
            obs = torch.as_tensor(np.asarray(observations, np.float32))
            if self._reward.state_only:
                return self._reward.step_reward(obs).double().numpy()
            n = self._reward.num_actions
            per_action = [self._reward.step_reward(obs, torch.full((len(obs),), a)) for a in range(n)]
            return torch.stack(per_action).mean(dim=0).double().numpy()

    def reward_metrics(self) -> dict[str, float]:
        """The last greedy return over the demonstrations' mean; on a tabular world, maxent_irl's measures too."""
        value = self.metrics.peek((EVALUATION_RESULTS, ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN), default=np.nan)
        out = {EXPERT_RETURN_RATIO: demos.expert_return_ratio(value, self._demo_return_mean)}
        from rlfrontier.algorithms.maxent_irl import maxent_irl

        if self._tabular is None:
            self._tabular = maxent_irl.is_tabular(self.config)
        if self._tabular:
            # One-hot observations of the states; the world's undiscounted finite-horizon values.
            mdp = maxent_irl.world_of(self.config)
            out |= maxent_irl.learned_reward_measures(mdp, self.state_rewards(np.eye(mdp.num_states)), gamma=1.0)
        return out
