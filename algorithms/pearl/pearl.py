"""PEARL (Rakelly et al. 2019): off-policy meta-RL with a probabilistic context variable z, inferred by an
amortised variational encoder q(z | c) from the transitions c of a task (losses.py, torch/pearl_module.py).

Tasks: `num_train_tasks` tasks drawn once per run from the env's `sample_tasks` (a stream of the run's seed),
each with its own replay: an RL buffer (everything collected on the task, for the actor-critic) and an
encoder buffer (what the encoder may see: emptied each time the task is visited, as PEARL's, so the context
comes from the current policy's recent episodes of it).

One training iteration (`PEARL.training_step`), PEARL's algorithm 1 with oyster's data collection:

1. the first iteration (and the first after a restore: the buffers are not in the checkpoint) collects
   `initial_episodes` per train task with z from the prior, into both buffers;
2. `num_tasks_sample` train tasks are drawn; each one's encoder buffer is emptied; the EnvRunners collect
   on them (one task per sub-env, tasks spread over the runners as maml's):
   `prior_episodes` with z ~ N(0, I), then `posterior_episodes` with z ~ q(z | c), c a fresh sample of
   `context_batch_size` transitions of the task's episodes collected so far in this visit (exactly the
   task's encoder buffer), both into both buffers; then `extra_rl_posterior_episodes` the same way into the
   RL buffer only. z is redrawn before every episode (oyster's update_post_train = 1);
3. `num_train_steps_per_iteration` gradient steps, each on `meta_batch_size` distinct train tasks: per task a
   context of `context_batch_size` transitions from its encoder buffer and an RL batch of `rl_batch_size`
   from its RL buffer, one task-major batch (every column's first dimension the task) through
   `LearnerGroup.update` (losses.pearl_losses: the critic's Bellman error and kl_lambda * KL(q(z|c) ||
   N(0, I)) train the encoder, the soft value and the policy see z detached; Polyak-averaged target V);
4. the new weights (encoder and policy) go to the EnvRunners.

Which rewards. The encoder always sees the env's reward (SparsePointNav's sparse one). The critic trains on
`critic_reward`: "reward", the same, or the name of a key of the env's step info, e.g. "dense_reward",
SparsePointNav's minus-distance: oyster's sparse point robot trains its critic on the dense reward and its
encoder on the sparse one (tune_configs/pearl_sparse_point.yaml does the same and says so).

Meta-test (`held_out_metrics`, the registry's evaluation hook), on `held_out_tasks` tasks drawn once per run
from the stream of `held_out_seed`: per task one trial of `context_episodes + 1` episodes on one sub-env;
episode 1 acts with z from the prior, episode k + 1 with z from the posterior of all transitions of episodes
1..k (PEARL's online posterior sampling); actions are the policy's mean (oyster's deterministic evaluation).
It reports held_out_return_k{k} (the mean return of episode k + 1, rlfrontier.meta_test's form, with the
oracle and task-blind references and the share of the gap closed) and, on envs with a `goal_radius`,
held_out_goal_reached_k{k}: the share of tasks whose episode k + 1 came within goal_radius of the goal, beside
held_out_posterior_sampling_reached_k{k} where the env can say it: the share an ideal posterior-sampling agent
(PEARL's exploration with a perfect encoder and policy) reaches, 0.13 / 0.26 / 0.38 for k = 0 / 1 / 2 on
SparsePointNav; and, on envs with an oracle, held_out_revealed_return_mean (and held_out_revealed_goal_reached):
one more episode per task with z from q(z | the oracle's episode of the task), the encoder and policy judged
with exploration taken out (PEARL.revealed_contexts);
held_out_adapted_return_mean repeats the return at k = context_episodes under a name that does not depend on it
(the registry's primary metric).

Actions are stored as the module emits them, in [-1, 1] (RLlib's EnvRunner scales them to the Box bounds,
normalize_actions=True).
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
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

from rlfrontier import meta_tasks, meta_test, seeding
from rlfrontier.algorithms.maml.maml import (
    EPISODE_ENV_INDEX,
    EPISODE_TASK,
    assign_tasks,
    check_recorded_tasks,
    check_records_tasks,
    make_task_env,
    record_task,
)
from rlfrontier.algorithms.pearl.losses import CONTEXT
from rlfrontier.envs.tasks import Task
from rlfrontier.validation import BadInput, check_choice, check_range

ENV_REWARD = "reward"  # critic_reward's value for the env's own reward
# meta_test_context: the posterior after k context episodes is q(z | every transition of them) (SEEN, oyster's
# meta-test), or q(z | context_batch_size transitions resampled from them) (RESAMPLED, as collection draws the
# contexts of its posterior episodes and training those of its gradient steps).
SEEN, RESAMPLED = "seen", "resampled"
# Per-task buffer fields (numpy columns of one transition each).
FIELDS = ("obs", "actions", "rewards", "critic_rewards", "next_obs", "terminateds")
# Collection phases (collect_on_runner): z from the prior, or from the posterior into both buffers, or into RL only.
PRIOR, POSTERIOR, EXTRA_RL = "prior", "posterior", "extra_rl"
# The meta-test's metric keys.
HELD_OUT = meta_test.HELD_OUT
GOAL_REACHED_K = HELD_OUT + "goal_reached_k{}"
# What ideal posterior sampling reaches on the same env (SparsePointNavEnv.posterior_sampling_reach).
POSTERIOR_SAMPLING_REACHED_K = HELD_OUT + "posterior_sampling_reached_k{}"
# After a context that shows the goal (the oracle's episode of the task, with its rewards): inference and the
# policy without exploration (PEARL.revealed_contexts).
REVEALED_RETURN_MEAN = HELD_OUT + "revealed_return_mean"
REVEALED_GOAL_REACHED = HELD_OUT + "revealed_goal_reached"
ADAPTED_RETURN_MEAN = HELD_OUT + "adapted_return_mean"  # held_out_return_k{context_episodes}: what Tune ranks by
# Random streams (rlfrontier.seeding).
TRAIN_TASKS = "pearl_train_tasks"
HELD_OUT_TASKS = "held_out_tasks"  # maml's and rl2's string: one held_out_seed draws the same tasks
REPLAY = "pearl_replay"
LATENTS = "pearl_latents"
SAMPLING = "pearl_sampling"


# Episodes to transitions -------------------------------------------------------------------------
def episode_transitions(episode, critic_reward: str) -> dict[str, np.ndarray]:
    """FIELDS of one finished episode: T transitions (obs before each action, the action in [-1, 1], the env's
    reward, the critic's reward, the next obs, 1.0 on a terminating step)."""
    obs = np.asarray(episode.get_observations(), np.float32)
    rewards = np.asarray(episode.get_rewards(), np.float32)
    if critic_reward == ENV_REWARD:
        critic = rewards
    else:
        infos = list(episode.get_infos())[1:]  # the reset's info first
        try:
            critic = np.asarray([info[critic_reward] for info in infos], np.float32)
        except KeyError:
            raise RuntimeError(f"critic_reward={critic_reward!r}: the env's step info has no such key") from None
    terminateds = np.zeros(len(rewards), np.float32)
    terminateds[-1] = float(episode.is_terminated)
    return {"obs": obs[:-1], "actions": np.asarray(episode.get_actions(), np.float32), "rewards": rewards,
            "critic_rewards": critic, "next_obs": obs[1:], "terminateds": terminateds}


def context_rows(transitions: Mapping[str, np.ndarray], use_next_obs: bool) -> np.ndarray:
    """The encoder's input per transition, [N, context_dim]: concat(obs, action, env reward[, next obs]), the
    order PEARLTorchRLModule.context_dim counts."""
    parts = [transitions["obs"], transitions["actions"], transitions["rewards"][:, None]]
    if use_next_obs:
        parts.append(transitions["next_obs"])
    return np.concatenate(parts, axis=1).astype(np.float32)


def _concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}


def _min_distance(episode) -> float:
    """The smallest info["distance"] of an episode's steps (NaN when its env reports none)."""
    values = [info.get("distance") for info in list(episode.get_infos())[1:]]
    values = [v for v in values if v is not None]
    return float(min(values)) if values else float("nan")


# Per-task replay ---------------------------------------------------------------------------------
class TaskReplay:
    """One ring buffer of transitions (FIELDS) per task; storage is allocated at a task's first add."""

    def __init__(self, num_tasks: int, capacity: int) -> None:
        self.capacity = int(capacity)
        self._data: list[dict[str, np.ndarray] | None] = [None] * num_tasks
        self._size = [0] * num_tasks
        self._next = [0] * num_tasks

    def size(self, task: int) -> int:
        return self._size[task]

    def clear(self, task: int) -> None:
        self._size[task] = self._next[task] = 0

    def add(self, task: int, transitions: Mapping[str, np.ndarray]) -> None:
        n = len(transitions["rewards"])
        if self._data[task] is None:
            self._data[task] = {k: np.zeros((self.capacity, *np.shape(v)[1:]), np.float32)
                                for k, v in transitions.items()}
        data = self._data[task]
        # The last `capacity` of them when more arrive than fit.
        rows = (self._next[task] + np.arange(max(0, n - self.capacity), n)) % self.capacity
        for k, v in transitions.items():
            data[k][rows] = v[len(v) - len(rows):]
        self._next[task] = int((self._next[task] + n) % self.capacity)
        self._size[task] = min(self.capacity, self._size[task] + n)

    def sample(self, task: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """`n` transitions drawn uniformly with replacement (as PEARL's)."""
        if self._size[task] == 0:
            raise RuntimeError(f"task {task}'s buffer is empty")
        rows = rng.integers(0, self._size[task], n)
        return {k: v[rows] for k, v in self._data[task].items()}


# The EnvRunners' side ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CollectPlan:
    """What collect_on_runner does for each task: (phase, episodes) in order, and how it draws contexts."""

    phases: tuple[tuple[str, int], ...]
    context_batch_size: int
    use_next_obs: bool
    critic_reward: str


def _latents(module, contexts: Sequence[np.ndarray | None], rng: np.random.Generator) -> np.ndarray:
    """One z per sub-env: from the prior for a None context, else from q(z | that context) ([C, context_dim])."""
    dim = module.latent_dim
    mu, var = np.zeros((len(contexts), dim), np.float32), np.ones((len(contexts), dim), np.float32)
    with torch.no_grad():
        for i, context in enumerate(contexts):
            if context is not None and len(context):
                m, v = module.posterior(torch.as_tensor(context[None], dtype=torch.float32))
                mu[i], var[i] = m[0].numpy(), v[0].numpy()
    return (mu + np.sqrt(var) * rng.standard_normal(mu.shape)).astype(np.float32)


def resampled(rows: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """`size` rows drawn with replacement from `rows` (a context as training and collection draw it); all of
    `rows` as they are for size None."""
    return rows if size is None else rows[rng.integers(0, len(rows), size)]


def _by_env_index(episodes: Sequence[Any], n: int) -> list[Any]:
    """The first episode of each sub-env 0..n-1 (RuntimeError if one has none)."""
    out: list[Any] = [None] * n
    for episode in episodes:
        i = episode.custom_data[EPISODE_ENV_INDEX]
        if out[i] is None:
            out[i] = episode
    missing = [i for i, e in enumerate(out) if e is None]
    if missing:
        raise RuntimeError(f"sub-envs {missing} finished no episode; pearl's sampling needs episodes of one length")
    return out


def _rounds(jobs: Mapping[int, Sequence[tuple[int, Task]]], runner) -> tuple[int, list[list[tuple[int, Task]]]]:
    """(worker index, its (task id, task) jobs in rounds of at most one per sub-env); none without envs or jobs."""
    index = int(runner.worker_index or 0)
    mine = list(jobs.get(index, ()))
    if getattr(runner, "env", None) is None or not mine:
        return index, []
    return index, [mine[start:start + runner.num_envs] for start in range(0, len(mine), runner.num_envs)]


def _set_round(runner, chunk: Sequence[tuple[int, Task]]) -> None:
    """The round's tasks on the sub-envs, one each; a short last round repeats tasks (their episodes dropped)."""
    meta_tasks.set_env_tasks(runner.env, [chunk[i % len(chunk)][1] for i in range(runner.num_envs)])


def _sample_round(runner, seed: int | None, index: int, call: int, *, explore: bool) -> list[Any]:
    """One episode per sub-env from fresh resets (seeded per runner and call), in sub-env order."""
    meta_tasks.set_reset_seed(runner, None if seed is None else (seed + 1_000_000 * index + call) % 2**32)
    return _by_env_index(runner.sample(num_episodes=runner.num_envs, explore=explore, force_reset=True),
                         runner.num_envs)


def collect_on_runner(jobs: Mapping[int, Sequence[tuple[int, Task]]], runner, *, plan: CollectPlan,
                      seed: int | None = None) -> tuple[int, list, Any]:
    """On an EnvRunner: its tasks (jobs[its worker index]) one per sub-env, each through plan.phases.

    Returns (worker index, [(task id, phase, transitions, the task the episode recorded)], its metrics) (no
    envs or tasks: empty)."""
    index, rounds = _rounds(jobs, runner)
    if not rounds:
        return index, [], None
    n, module = runner.num_envs, runner.module
    rng = np.random.default_rng(None if seed is None else [seed, index])
    out, calls = [], itertools.count()
    for chunk in rounds:
        _set_round(runner, chunk)
        encoder_data: list[list[dict[str, np.ndarray]]] = [[] for _ in range(n)]
        for phase, episodes in plan.phases:
            for _ in range(episodes):
                contexts = [None] * n
                if phase != PRIOR:
                    for i in range(n):
                        if encoder_data[i]:
                            pool = context_rows(_concat(encoder_data[i]), plan.use_next_obs)
                            contexts[i] = resampled(pool, plan.context_batch_size, rng)
                module.set_latent(_latents(module, contexts, rng))
                for i, episode in enumerate(_sample_round(runner, seed, index, next(calls), explore=True)[:len(chunk)]):
                    transitions = episode_transitions(episode, plan.critic_reward)
                    out.append((chunk[i][0], phase, transitions, episode.custom_data.get(EPISODE_TASK)))
                    if phase != EXTRA_RL:
                        encoder_data[i].append(transitions)
    return index, out, runner.get_metrics()


def meta_test_on_runner(jobs: Mapping[int, Sequence[tuple[int, Task]]], runner, *, context_episodes: int,
                        use_next_obs: bool, revealed: Mapping[int, np.ndarray] | None = None,
                        context_size: int | None = None, seed: int | None = None) -> tuple[int, list, Any]:
    """On an EnvRunner: one trial of context_episodes + 1 episodes per task (module docstring, meta-test), then,
    with `revealed` (task id: context rows), one more episode per task with z from q(z | that context).
    Each posterior's context is every row seen (context_size None) or context_size rows resampled from them.

    Returns (worker index, [(task id, [return of episode k + 1 for each k], [its smallest distance]) + (the
    revealed episode's return, its smallest distance) with `revealed`], metrics).
    """
    index, rounds = _rounds(jobs, runner)
    if not rounds:
        return index, [], None
    n, module = runner.num_envs, runner.module
    rng = np.random.default_rng(None if seed is None else [seed, index])
    out, calls = [], itertools.count()
    for chunk in rounds:
        _set_round(runner, chunk)
        seen: list[list[np.ndarray]] = [[] for _ in range(n)]
        returns: list[list[float]] = [[] for _ in range(n)]
        distances: list[list[float]] = [[] for _ in range(n)]
        for _ in range(context_episodes + 1):
            module.set_latent(_latents(module, [resampled(np.concatenate(c), context_size, rng) if c else None
                                                for c in seen], rng))
            for i, episode in enumerate(_sample_round(runner, seed, index, next(calls), explore=False)):
                seen[i].append(context_rows(episode_transitions(episode, ENV_REWARD), use_next_obs))
                returns[i].append(float(episode.get_return()))
                distances[i].append(_min_distance(episode))
        if revealed is None:
            out += [(chunk[i][0], returns[i], distances[i]) for i in range(len(chunk))]
            continue
        module.set_latent(_latents(module, [resampled(revealed[chunk[i % len(chunk)][0]], context_size, rng)
                                            for i in range(n)], rng))
        shown = _sample_round(runner, seed, index, next(calls), explore=False)
        out += [(chunk[i][0], returns[i], distances[i], float(shown[i].get_return()), _min_distance(shown[i]))
                for i in range(len(chunk))]
    return index, out, runner.get_metrics()


def check_info_key(env_id: Any, env_config: Mapping[str, Any] | None, key: str) -> None:
    """BadInput unless one step of the env (a task distribution) reports `key` in its info."""
    env = make_task_env(env_id, env_config, "pearl")
    try:
        env.reset(seed=0)
        info = env.step(env.action_space.sample())[4]
    finally:
        env.close()
    if key not in info:
        raise BadInput(f"critic_reward={key!r}: {env_id}'s step info has no such key "
                       f"(it has {', '.join(sorted(info)) or 'none'})")


# Config --------------------------------------------------------------------------------------------
class PEARLConfig(AlgorithmConfig):
    """PEARL's fields (set through `training()`) and RLlib's that it uses.

    Fields (oyster's names in brackets where they differ):
        num_train_tasks [n_train_tasks]: tasks meta-trained on, drawn once per run from the run's seed.
        initial_episodes [num_initial_steps / path length]: per train task, with z from the prior, before training.
        num_tasks_sample: train tasks visited (data collected) per iteration.
        prior_episodes, posterior_episodes, extra_rl_posterior_episodes [num_steps_prior, num_steps_posterior,
            num_extra_rl_steps_posterior, in episodes]: per visited task, z from the prior; from the posterior,
            into both buffers; from the posterior, into the RL buffer only.
        num_train_steps_per_iteration [num_train_steps_per_itr]: gradient steps per iteration.
        meta_batch_size [meta_batch]: tasks per gradient step.
        rl_batch_size [batch_size]: RL transitions per task per gradient step.
        context_batch_size [embedding_batch_size]: context transitions per task (training and collection).
        replay_capacity: transitions per task per buffer.
        kl_lambda: weight of the KL of q(z | c) to the prior.
        reward_scale: multiplies the critic's rewards (sets the entropy's weight: SAC's temperature is 1).
        tau: Polyak rate of the target value network, per gradient step.
        critic_reward: "reward" (the env's) or a step-info key the critic trains on (module docstring).
        policy_mean_reg_weight, policy_std_reg_weight, policy_pre_activation_weight: oyster's policy
            regularisers (PEARLSoftActorCritic's defaults 1e-3, 1e-3, 0).
        held_out_seed, held_out_tasks, context_episodes: the meta-test's tasks and the most context (k) it
            measures.
        meta_test_context: "seen" (every transition of the context episodes, oyster's) or "resampled"
            (context_batch_size transitions drawn with replacement from them, as collection and training draw
            contexts: the same number of product-of-Gaussians factors the encoder trained with).
        and RLlib's lr (one Adam over all networks: oyster's four 3e-4 Adams do the same, each network's
        loss reaching only its own parameters), gamma, grad_clip and model_config (PEARLTorchRLModule:
        hidden_sizes, encoder_hidden_sizes, latent_dim, use_next_obs_in_context).
    Defaults: oyster's sparse point robot (80 train tasks, 10 sampled per iteration, 5 prior and 45 posterior
    episodes of 20 steps, kl_lambda 1, reward_scale 100, gamma 0.9, meta-batch 16 of 256 transitions) with
    smaller networks (2 x 128 against 3 x 300), a context of 256 transitions (oyster 1,024) and 500 gradient
    steps per iteration (oyster 1,000), for CPUs.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or PEARL)
        self.num_train_tasks = 80
        self.initial_episodes = 10
        self.num_tasks_sample = 10
        self.prior_episodes = 5
        self.posterior_episodes = 45
        self.extra_rl_posterior_episodes = 0
        self.num_train_steps_per_iteration = 500
        self.meta_batch_size = 16
        self.rl_batch_size = 256
        self.context_batch_size = 256
        self.replay_capacity = 100_000
        self.kl_lambda = 1.0
        self.reward_scale = 100.0
        self.tau = 0.005
        self.critic_reward = ENV_REWARD
        self.policy_mean_reg_weight = 1e-3
        self.policy_std_reg_weight = 1e-3
        self.policy_pre_activation_weight = 0.0
        self.held_out_seed = 0
        self.held_out_tasks = 20
        self.context_episodes = 2
        self.meta_test_context = SEEN
        # RLlib fields with defaults that suit this algorithm.
        self.lr = 3e-4
        self.gamma = 0.9
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 10
        self.min_sample_timesteps_per_iteration = 0
        self.min_time_s_per_iteration = None
        self.evaluation_config = {"explore": False}
        self.callbacks_on_episode_start = record_task

    _FIELDS = ("num_train_tasks", "initial_episodes", "num_tasks_sample", "prior_episodes", "posterior_episodes",
               "extra_rl_posterior_episodes", "num_train_steps_per_iteration", "meta_batch_size", "rl_batch_size",
               "context_batch_size", "replay_capacity", "kl_lambda", "reward_scale", "tau", "critic_reward",
               "policy_mean_reg_weight", "policy_std_reg_weight", "policy_pre_activation_weight", "held_out_seed",
               "held_out_tasks", "context_episodes", "meta_test_context")

    def training(self, **kwargs) -> "PEARLConfig":
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in self._FIELDS}
        super().training(**kwargs)
        for name, value in own.items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        for name in ("num_train_tasks", "num_tasks_sample", "num_train_steps_per_iteration", "meta_batch_size",
                     "rl_batch_size", "context_batch_size", "replay_capacity", "held_out_tasks"):
            check_range(name, getattr(self, name), 1, None, integer=True)
        for name in ("initial_episodes", "prior_episodes", "posterior_episodes", "extra_rl_posterior_episodes",
                     "held_out_seed"):
            check_range(name, getattr(self, name), 0, None, integer=True)
        check_range("context_episodes", self.context_episodes, 1, None, integer=True)
        if self.initial_episodes + self.prior_episodes + self.posterior_episodes == 0:
            raise BadInput("initial_episodes, prior_episodes and posterior_episodes are all 0: no train task "
                           "would ever have context for the encoder")
        check_range("num_tasks_sample", self.num_tasks_sample, 1, self.num_train_tasks, integer=True)
        check_range("kl_lambda", self.kl_lambda, 0.0, None)
        check_range("reward_scale", self.reward_scale, 0.0, None, low_open=True)
        check_range("tau", self.tau, 0.0, 1.0, low_open=True)
        check_range("policy_mean_reg_weight", self.policy_mean_reg_weight, 0.0, None)
        check_range("policy_std_reg_weight", self.policy_std_reg_weight, 0.0, None)
        check_range("policy_pre_activation_weight", self.policy_pre_activation_weight, 0.0, None)
        if not isinstance(self.critic_reward, str) or not self.critic_reward:
            raise BadInput(f"critic_reward={self.critic_reward!r} must be 'reward' or a key of the env's step info")
        if self.critic_reward != ENV_REWARD and self.env is not None:
            check_info_key(self.env, self.env_config, self.critic_reward)
        if self.num_learners > 1:
            raise BadInput(f"num_learners={self.num_learners}: pearl runs one learner (0 or 1) for now")
        check_choice("meta_test_context", self.meta_test_context, (SEEN, RESAMPLED))
        check_choice("normalize_actions", self.normalize_actions, (True,))
        check_records_tasks(self)
        super().validate()

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rlfrontier.algorithms.pearl.torch.pearl_module import PEARLTorchRLModule

        return RLModuleSpec(module_class=PEARLTorchRLModule)

    def get_default_learner_class(self):
        if self.framework_str != "torch":
            raise ValueError("pearl has a torch learner only")
        from rlfrontier.algorithms.pearl.torch.pearl_learner import PEARLTorchLearner

        return PEARLTorchLearner


# Algorithm -----------------------------------------------------------------------------------------
class PEARL(Algorithm):
    """The loop of the module docstring."""

    @classmethod
    def get_default_config(cls) -> PEARLConfig:
        return PEARLConfig()

    def setup(self, config) -> None:
        super().setup(config)
        cfg = self.config
        self._task_env = make_task_env(cfg.env, cfg.env_config, "pearl")
        base = self._task_env.unwrapped
        self.train_tasks = base.sample_tasks(cfg.num_train_tasks, seeding.rng(cfg.seed, TRAIN_TASKS))
        self.held_out = base.sample_tasks(cfg.held_out_tasks, seeding.rng(cfg.held_out_seed, HELD_OUT_TASKS))
        self.rl_replay = TaskReplay(cfg.num_train_tasks, cfg.replay_capacity)
        self.encoder_replay = TaskReplay(cfg.num_train_tasks, cfg.replay_capacity)
        self._rng = seeding.rng(cfg.seed, REPLAY)
        self._use_next_obs = bool(self.config.model_config.get("use_next_obs_in_context", False))
        self._references: dict[str, float] | None = None
        self._posterior_sampling: list[float] | None = None
        self._revealed: dict[int, np.ndarray] | None = None
        self.last_collected: list[tuple[int, int, str, Task | None]] = []

    def cleanup(self) -> None:
        self._task_env.close()
        super().cleanup()

    # Data collection --------------------------------------------------------------------------------
    def _on_runners(self, fn, task_ids: Sequence[int], tasks: Sequence[Task], purpose: str,
                    metrics_key: str | None) -> list:
        """`fn(jobs, runner, seed=...)` on every EnvRunner with its share of (task id, task); (worker index,
        row) for each row of their results. The runners' metrics go under `metrics_key` (None: dropped)."""
        runners = list(meta_tasks.get_tasks(self.env_runner_group))
        shares = assign_tasks(len(task_ids), runners)
        jobs = {r: [(task_ids[i], tasks[i]) for i in ids] for r, ids in shares.items()}
        seed = seeding.derive_seed(self.config.seed, purpose, self.iteration + 1)
        results = self.env_runner_group.foreach_env_runner(functools.partial(fn, jobs, seed=seed))
        rows, metrics = [], []
        for index, runner_rows, runner_metrics in results:
            rows += [(index, row) for row in runner_rows]
            if runner_metrics is not None:
                metrics.append(runner_metrics)
        if metrics and metrics_key is not None:
            self.metrics.aggregate(metrics, key=metrics_key)
        return rows

    def collect(self, task_ids: Sequence[int], phases: Sequence[tuple[str, int]]) -> None:
        """Collects on train tasks `task_ids` through `phases` (collect_on_runner) into their buffers."""
        cfg = self.config
        plan = CollectPlan(tuple(phases), cfg.context_batch_size, self._use_next_obs, cfg.critic_reward)
        rows = self._on_runners(functools.partial(collect_on_runner, plan=plan), list(task_ids),
                                [self.train_tasks[i] for i in task_ids], SAMPLING, ENV_RUNNER_RESULTS)
        # (worker index, task id, phase, the task the episode recorded) per episode, for tests and logs.
        self.last_collected = [(index, task_id, phase, recorded) for index, (task_id, phase, _, recorded) in rows]
        check_recorded_tasks([(index, task_id, recorded) for index, task_id, _, recorded in self.last_collected],
                             {i: self.train_tasks[i] for i in task_ids})
        for _, (task_id, phase, transitions, _) in rows:
            self.rl_replay.add(task_id, transitions)
            if phase != EXTRA_RL:
                self.encoder_replay.add(task_id, transitions)

    # Training -----------------------------------------------------------------------------------------
    def meta_batch(self, task_ids: Sequence[int]) -> dict[str, np.ndarray]:
        """One gradient step's task-major batch (losses.CONTEXT and RLlib's column names)."""
        cfg = self.config
        contexts, parts = [], []
        for t in task_ids:
            contexts.append(context_rows(self.encoder_replay.sample(t, cfg.context_batch_size, self._rng),
                                         self._use_next_obs))
            parts.append(self.rl_replay.sample(t, cfg.rl_batch_size, self._rng))
        return {CONTEXT: np.stack(contexts),
                Columns.OBS: np.stack([p["obs"] for p in parts]),
                Columns.ACTIONS: np.stack([p["actions"] for p in parts]),
                Columns.REWARDS: np.stack([p["critic_rewards"] for p in parts]),
                Columns.NEXT_OBS: np.stack([p["next_obs"] for p in parts]),
                Columns.TERMINATEDS: np.stack([p["terminateds"] for p in parts])}

    def _timesteps(self) -> dict[str, Any]:
        return {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME),
                                                              default=0),
            NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0),
        }

    def training_step(self) -> None:
        cfg = self.config
        start = time.perf_counter()
        empty = [t for t in range(cfg.num_train_tasks) if self.encoder_replay.size(t) == 0]
        if empty and cfg.initial_episodes:
            self.collect(empty, [(PRIOR, cfg.initial_episodes)])
        visit = sorted(self._rng.choice(cfg.num_train_tasks, cfg.num_tasks_sample, replace=False).tolist())
        for t in visit:
            self.encoder_replay.clear(t)
        self.collect(visit, [(PRIOR, cfg.prior_episodes), (POSTERIOR, cfg.posterior_episodes),
                             (EXTRA_RL, cfg.extra_rl_posterior_episodes)])
        self.metrics.log_value((TIMERS, ENV_RUNNER_SAMPLING_TIMER), time.perf_counter() - start, reduce="ema")
        ready = [t for t in range(cfg.num_train_tasks) if self.encoder_replay.size(t) and self.rl_replay.size(t)]
        if not ready:
            return
        results = []
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            for _ in range(cfg.num_train_steps_per_iteration):
                ids = self._rng.choice(ready, cfg.meta_batch_size, replace=len(ready) < cfg.meta_batch_size)
                batch = self.meta_batch(ids.tolist())
                results.append(self.learner_group.update(
                    batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(batch)}, env_steps=len(ids)),
                    timesteps=self._timesteps(), num_epochs=1, minibatch_size=None))
        self.metrics.aggregate([r for result in results for r in result], key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                               inference_only=True)

    # Meta-test ---------------------------------------------------------------------------------------------
    def reference_metrics(self) -> dict[str, float]:
        """The oracle's and the task-blind policy's mean returns on the held-out tasks (rlfrontier.meta_test),
        one episode a task, rolled out once per run on the driver's copy of the env."""
        if self._references is None:
            self._references = meta_test.reference_metrics(self._task_env, self.held_out, episodes=1,
                                                           seed=self.config.held_out_seed)
        return self._references

    def revealed_contexts(self) -> dict[int, np.ndarray] | None:
        """Per held-out task, the context of one episode of the env's oracle on it (context_rows: its
        observations, its actions in the module's units, the env's rewards), rolled out once per run on the
        driver; None for an env without an oracle.

        The episode after such a context measures task inference and the policy with exploration taken
        out: on SparsePointNav the oracle's path passes the goal with its rewards, which say where it is.
        """
        if self._revealed is None:
            from rlfrontier import demos

            env, base = self._task_env, self._task_env.unwrapped
            out = {}
            for task_id, task in enumerate(self.held_out):
                base.set_task(task)
                try:
                    columns = meta_test.play_episode(env, base.oracle_action, seed=self.config.held_out_seed + task_id)
                except NotImplementedError:
                    return None
                arrays = {k: np.asarray(v, np.float32) for k, v in columns.items()}
                arrays["actions"] = demos.module_actions(arrays["actions"], env.action_space,
                                                         normalize_actions=self.config.normalize_actions)
                out[task_id] = context_rows(arrays, self._use_next_obs)
            self._revealed = out
        return self._revealed

    def held_out_metrics(self) -> dict[str, float]:
        """The meta-test of the module docstring on the run's held-out tasks; the policy is unchanged."""
        cfg = self.config
        revealed = self.revealed_contexts()
        fn = functools.partial(meta_test_on_runner, context_episodes=cfg.context_episodes,
                               use_next_obs=self._use_next_obs, revealed=revealed,
                               context_size=cfg.context_batch_size if cfg.meta_test_context == RESAMPLED else None)
        rows = self._on_runners(fn, list(range(len(self.held_out))), self.held_out, HELD_OUT + SAMPLING, None)
        if not rows:
            return {}
        returns = np.array([row[1] for _, row in rows])  # [tasks, k]
        out = meta_test.adaptation_metrics({k: float(v) for k, v in enumerate(returns.mean(axis=0))},
                                           self.reference_metrics())
        out[ADAPTED_RETURN_MEAN] = float(returns[:, -1].mean())
        if revealed is not None:
            out[REVEALED_RETURN_MEAN] = float(np.mean([row[3] for _, row in rows]))
        radius = getattr(self._task_env.unwrapped, "goal_radius", None)
        if radius is not None:
            distances = np.array([row[2] for _, row in rows])
            for k, share in enumerate((distances <= radius).mean(axis=0)):
                out[GOAL_REACHED_K.format(k)] = float(share)
            if revealed is not None:
                out[REVEALED_GOAL_REACHED] = float(np.mean([row[4] <= radius for _, row in rows]))
        reach = getattr(self._task_env.unwrapped, "posterior_sampling_reach", None)
        if reach is not None:
            if self._posterior_sampling is None:  # a property of the env alone: once per run (~1 s)
                self._posterior_sampling = reach(cfg.context_episodes + 1)
            for k, share in enumerate(self._posterior_sampling):
                out[POSTERIOR_SAMPLING_REACHED_K.format(k)] = float(share)
        return out
