"""MAML for RL (Finn et al. 2017, algorithm 3) on a task distribution, with tasks spread over the EnvRunners.

One training iteration (`MAML.training_step`):

1. the driver draws `meta_batch_size` tasks with the env's `sample_tasks`
   from a numpy Generator seeded by the run's seed and the iteration
   (rlfrontier.seeding), and gives each EnvRunner (those with envs: the local
   one when there are no remote ones) a contiguous share;
2. pre-adaptation: each EnvRunner sets one task per sub-env
   (rlfrontier.meta_tasks) and samples `pre_adaptation_episodes` episodes per
   task with the meta-policy pi_theta, from fresh resets; with more tasks
   than sub-envs it takes them num_envs_per_env_runner at a time (and fills
   a short last round by repeating tasks, whose surplus episodes are dropped);
3. the learner computes each task's adapted weights theta'_i =
   theta - inner_lr * grad L_in (`inner_steps` times), L_in the REINFORCE loss
   with a linear feature baseline fit per task (baseline.py, as the paper);
   steps after the first reuse theta's episodes with importance weights
   (losses.inner_loss; MAMLConfig's inner_steps);
4. post-adaptation: each EnvRunner takes its tasks one at a time: it loads
   the task's theta'_i into its module, sets the task on all its sub-envs,
   samples `post_adaptation_episodes` episodes, and finally reloads the
   meta-policy's weights. One task per sampling call keeps the EnvRunner's
   module an ordinary module (no per-sub-env parameters) at the cost of a
   vector env that steps one task at a time; every episode then comes from
   the one policy its task adapted to;
5. the meta-step: `num_epochs` full-batch Adam steps of the PPO-clip loss of
   the post-adaptation episodes under theta'_i(theta), recomputed from the
   pre-adaptation episodes at every epoch, through the inner step
   (second order, torch.func.functional_call with create_graph) or around it
   (first_order); the importance ratio is against the adapted policy that
   sampled (losses.maml_loss);
6. the meta-policy's new weights go to the EnvRunners.

Each episode records the task its sub-env held when it started
(`record_task`, an on_episode_start callback); the driver checks it against
the task it planned for that sub-env, so an episode never counts for a task
it did not run.

Every task gets at least the episodes asked for in each phase from the
EnvRunner that answered for it, or the iteration raises
(`check_episodes_per_task`): no task is silently dropped or under-sampled.

Metrics (under learners/default_policy/): pre_adaptation_return_mean and
post_adaptation_return_mean (mean undiscounted return of this iteration's
episodes before and after adaptation), adaptation_gain (their difference),
inner_loss, outer_loss and outer_clip_fraction (mean over tasks, at the last
outer epoch's theta), and adapted_logp_mismatch (the
largest |log pi_theta'(a|s) - log pi_sampled(a|s)| at the first outer epoch:
~0 when every EnvRunner acted with its task's adapted weights).
env_runners/episode_return_mean averages pre- and post-adaptation episodes.
Timers (under timers/): pre_adaptation_sampling, adaptation and
post_adaptation_sampling, and env_runner_sampling_timer, the iteration's
total sampling time (their sum).

Meta-test (`held_out_metrics`, the registry's evaluation hook, run after each
evaluation): steps 2-4 on `meta_batch_size` held-out tasks, drawn once per
run from a stream seeded by the config's `held_out_seed` (not the run's
seed: every trial of a sweep is ranked on the same tasks), without the
meta-step; it reports held_out_pre_adaptation_return_mean,
held_out_post_adaptation_return_mean and held_out_adaptation_gain under the
result's "metrics", and the shared meta-test's form of them (rlfrontier.meta_test:
held_out_return_k0 and held_out_return_k{inner_steps}, the oracle's and the
task-blind policy's returns on the same tasks, and held_out_gap_closed, the
share of the gap to the oracle that adaptation closes). Its sampling is not training: the EnvRunners' metrics of
it are drained and dropped (no env steps, episodes or returns of it in
env_runners/), and its timers have keys of their own (held_out_...). RLlib's
own evaluation (eval_return_mean) runs the unadapted meta-policy, greedily,
on the env's default task.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np

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

from rlfrontier import envs, meta_test, meta_tasks, seeding
from rlfrontier.algorithms.maml import baseline
from rlfrontier.envs.tasks import Task
from rlfrontier.validation import BadInput, check_choice, check_range

# Learner batch columns besides RLlib's OBS, ACTIONS, ACTION_LOGP and ADVANTAGES.
TASK_INDEX = "task_index"  # the row's task within this iteration's meta-batch
PRE_ADAPTATION = "pre_adaptation"  # 1.0 for a pre-adaptation row, 0.0 for a post-adaptation one
# Episode custom_data keys (record_task): the sub-env's index and its task when the episode started.
EPISODE_ENV_INDEX = "maml_env_index"
EPISODE_TASK = "maml_task"
# Metric keys (under learners/default_policy/).
PRE_ADAPTATION_RETURN_MEAN = "pre_adaptation_return_mean"
POST_ADAPTATION_RETURN_MEAN = "post_adaptation_return_mean"
ADAPTATION_GAIN = "adaptation_gain"
INNER_LOSS = "inner_loss"
OUTER_LOSS = "outer_loss"
OUTER_CLIP_FRACTION = "outer_clip_fraction"
ADAPTED_LOGP_MISMATCH = "adapted_logp_mismatch"
# Timer keys (under timers/; the held-out runs' with the HELD_OUT prefix). ENV_RUNNER_SAMPLING_TIMER (RLlib's key)
# is the iteration's total sampling time, the sum of the two phases'.
PRE_ADAPTATION_SAMPLING_TIMER = "pre_adaptation_sampling"
ADAPTATION_TIMER = "adaptation"
POST_ADAPTATION_SAMPLING_TIMER = "post_adaptation_sampling"
# The evaluation hook's keys: the held-out tasks' PRE_ADAPTATION_RETURN_MEAN etc. with this prefix.
HELD_OUT = "held_out_"
# The purposes of the task samplers' random streams (rlfrontier.seeding); the iteration indexes the training one.
META_TASKS = "meta_tasks"
HELD_OUT_TASKS = "held_out_tasks"
MAML_SAMPLING = "maml_sampling_"  # + the phase: the EnvRunners' reset seeds


# The EnvRunners' side ---------------------------------------------------------------------------
def record_task(*, episode, env, env_index: int, **kwargs) -> None:
    """on_episode_start callback: the episode keeps its sub-env's index and task (a TaskEnv's; else none)."""
    episode.custom_data[EPISODE_ENV_INDEX] = int(env_index)
    try:
        episode.custom_data[EPISODE_TASK] = meta_tasks.get_env_tasks(env)[env_index]
    except (BadInput, TypeError):
        pass


def _tagged(episodes: list, plan: Sequence[tuple[int, Task]]) -> list[tuple[int, Any]]:
    """(task id, episode) pairs: each episode's task id from its sub-env's index in `plan`. Whether the
    episode really ran under that task (the task it recorded) is checked on the driver (check_recorded_tasks):
    an exception raised on an EnvRunner would reach the driver as a failed runner, not as this error."""
    return [(plan[episode.custom_data[EPISODE_ENV_INDEX]][0], episode) for episode in episodes]


def check_recorded_tasks(seen: Iterable[tuple[int, int, Any]], planned: Mapping[int, Task]) -> None:
    """RuntimeError naming the first episode whose recorded task is not the one planned for its task id.

    Args:
        seen: (EnvRunner index, task id, the task the episode recorded) per episode.
        planned: {task id: the task it was planned to run}.
    """
    for index, task_id, recorded in seen:
        if recorded != planned[task_id]:
            raise RuntimeError(f"EnvRunner {index}: an episode of task {task_id} ran under {recorded!r}, "
                               f"not its planned task {planned[task_id]!r}")


def _first_per_task(tagged: list[tuple[int, Any]], count: int) -> list[tuple[int, Any]]:
    seen: dict[int, int] = {}
    out = []
    for task_id, episode in tagged:
        if seen.get(task_id, 0) < count:
            seen[task_id] = seen.get(task_id, 0) + 1
            out.append((task_id, episode))
    return out


def check_episodes_per_task(by_task: Mapping[int, Sequence[Any]], task_ids: Iterable[int], count: int, *,
                            phase: str) -> None:
    """RuntimeError naming every task in `task_ids` with fewer than `count` episodes in `by_task` ({task id:
    episodes}).

    Pre-adaptation sampling asks each EnvRunner for num_envs * count
    episodes over all its sub-envs at once (RLlib counts episodes, not per
    sub-env): with fixed-length episodes (every current task env) each
    sub-env, i.e. each task, ends exactly `count`, but a task whose episodes
    run longer than the others' could end fewer, or none, and would otherwise
    be under-sampled or silently dropped from the meta-batch.
    """
    short = {i: len(by_task.get(i, ())) for i in task_ids if len(by_task.get(i, ())) < count}
    if short:
        listed = ", ".join(f"task {i}: {n}" for i, n in sorted(short.items()))
        raise RuntimeError(f"{phase} sampling: {len(short)} task(s) got fewer than the {count} episodes asked for "
                           f"({listed}); RLlib counts the episodes of all sub-envs together, so with one task per "
                           "sub-env and episodes of varying length a task can fall short")


def _call_seed(seed: int | None, runner_index: int, call: int) -> int | None:
    """The reset seed of one sample() call of one EnvRunner (see meta_tasks.set_reset_seed): distinct per runner
    and call, with room for 1,000 sub-envs a call."""
    return None if seed is None else (seed + 1_000_000 * runner_index + 1_000 * call) % 2**32


def sample_pre_adaptation(jobs: Mapping[int, Sequence[tuple[int, Task]]], episodes_per_task: int,
                          runner, seed: int | None = None) -> tuple[int, list, Any]:
    """On an EnvRunner: its tasks (jobs[its worker index]) one per sub-env, `episodes_per_task` episodes each
    with its current weights. Returns (worker index, [(task id, episode)], its metrics) (no envs: empty).
    `seed` (from the driver, per phase and iteration) seeds each sample() call's resets; None: RLlib's own."""
    index = int(runner.worker_index or 0)
    mine = list(jobs.get(index, ()))
    if getattr(runner, "env", None) is None or not mine:
        return index, [], None
    n = runner.num_envs
    out = []
    for start in range(0, len(mine), n):
        chunk = mine[start:start + n]
        plan = [chunk[i % len(chunk)] for i in range(n)]
        meta_tasks.set_env_tasks(runner.env, [task for _, task in plan])
        meta_tasks.set_reset_seed(runner, _call_seed(seed, index, start))
        # Fresh resets (num_episodes always resets): no episode straddles two tasks.
        episodes = runner.sample(num_episodes=n * episodes_per_task, explore=True, force_reset=True)
        out += _first_per_task(_tagged(episodes, plan), episodes_per_task)
    return index, out, runner.get_metrics()


def sample_post_adaptation(jobs: Mapping[int, Sequence[tuple[int, Task, dict]]], episodes_per_task: int,
                           runner, seed: int | None = None) -> tuple[int, list, Any]:
    """On an EnvRunner: for each of its (task id, task, adapted module state), that state and that task on every
    sub-env, `episodes_per_task` episodes; then the meta-policy's weights again. Returns as sample_pre_adaptation."""
    index = int(runner.worker_index or 0)
    mine = list(jobs.get(index, ()))
    if getattr(runner, "env", None) is None or not mine:
        return index, [], None
    # Copies: RLlib's get_state may return views of the module's tensors (it copies today only by a dtype cast),
    # which set_state would then overwrite with the adapted weights.
    meta_weights = {k: np.array(v, copy=True) for k, v in runner.module.get_state().items()}
    out = []
    try:
        for call, (task_id, task, weights) in enumerate(mine):
            runner.module.set_state(weights)
            plan = [(task_id, task)] * runner.num_envs
            meta_tasks.set_env_tasks(runner.env, [task] * runner.num_envs)
            meta_tasks.set_reset_seed(runner, _call_seed(seed, index, call))
            out += _tagged(runner.sample(num_episodes=episodes_per_task, explore=True, force_reset=True), plan)
    finally:
        runner.module.set_state(meta_weights)
    return index, out, runner.get_metrics()


# Episodes to learner rows ---------------------------------------------------------------------------
def episode_columns(episode) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(observations before each action [T, ...], actions [T, ...], rewards [T], log pi at sampling [T])."""
    obs = np.asarray(episode.get_observations())[:-1]
    return (obs, np.asarray(episode.get_actions()), np.asarray(episode.get_rewards(), np.float64),
            np.asarray(episode.get_extra_model_outputs(Columns.ACTION_LOGP), np.float32))


def task_batch(episodes_per_task: Sequence[Sequence[Any]], *, pre: bool, gamma: float) -> dict[str, np.ndarray]:
    """Learner rows of one phase: episodes_per_task[i] are task i's episodes (baseline.task_advantages per task)."""
    parts = []
    for task_index, episodes in enumerate(episodes_per_task):
        columns = [episode_columns(e) for e in episodes]
        advantages = baseline.task_advantages([(c[0], c[2]) for c in columns], gamma=gamma)
        for (obs, actions, _, logp), adv in zip(columns, advantages):
            parts.append({Columns.OBS: obs.astype(np.float32), Columns.ACTIONS: actions.astype(np.float32),
                          Columns.ACTION_LOGP: logp, Columns.ADVANTAGES: adv,
                          TASK_INDEX: np.full(len(obs), task_index, np.int64),
                          PRE_ADAPTATION: np.full(len(obs), float(pre), np.float32)})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def assign_tasks(num_tasks: int, runner_indexes: Sequence[int]) -> dict[int, list[int]]:
    """Contiguous shares of task ids 0..num_tasks-1 over the EnvRunners, as even as can be."""
    runners = sorted(runner_indexes)
    if not runners:
        raise RuntimeError("no EnvRunner has an env to sample tasks on")
    bounds = np.linspace(0, num_tasks, len(runners) + 1).round().astype(int)
    return {r: list(range(bounds[i], bounds[i + 1])) for i, r in enumerate(runners) if bounds[i + 1] > bounds[i]}


def make_task_env(env_id: Any, env_config: Mapping[str, Any] | None, algo: str = "maml") -> gym.Env:
    """The driver's copy of the env, to draw tasks from; BadInput (naming `algo`) unless it is a task
    distribution."""
    envs.register_envs()
    env = gym.make(env_id, **dict(env_config or {}))
    missing = [name for name in ("sample_tasks", "set_task") if not hasattr(env.unwrapped, name)]
    if missing:
        env.close()
        raise BadInput(f"{algo} needs a task distribution (an env with sample_tasks, set_task); "
                       f"{env_id} lacks {', '.join(missing)}")
    return env


# Config ---------------------------------------------------------------------------------------
class MAMLConfig(AlgorithmConfig):
    """MAML's fields (set through `training()`) and RLlib's that it uses.

    Fields:
        meta_batch_size: tasks per iteration.
        inner_steps: policy-gradient steps from theta to each task's theta', all on the pre-adaptation
            episodes sampled with theta: the first is REINFORCE, each later one (at theta_k, k >= 1) the
            importance-weighted surrogate -mean(pi_theta_k / pi_theta * A) (losses.inner_loss). This is an
            off-policy approximation to the paper's inner steps, which sample fresh episodes with every theta_k
            (its variance grows as theta_k moves away from theta); one step (the default) is exact.
        inner_lr: their step size (on standardised advantages, baseline.py).
        first_order: drop the second-order term of the meta-gradient (FOMAML).
        pre_adaptation_episodes: episodes per task with theta (the inner step's data).
        post_adaptation_episodes: episodes per task with theta' (the outer step's data).
        clip_param: PPO's clip epsilon of the outer step.
        held_out_seed: seeds the held-out tasks of `held_out_metrics` (an integer >= 0), on its own: runs
            with different `seed`s (Tune trials) are ranked on the same held-out tasks.
        and RLlib's num_epochs (full-batch outer Adam steps per iteration), lr
        (the outer Adam's), gamma, grad_clip and model_config
        (gaussian_policy: hidden_sizes, initial_log_std).
    Defaults: Finn et al. 2017's 2-D navigation (20 tasks, 20 episodes each,
    one inner step of 0.1; their outer step was TRPO), with PPO-clip's 0.2 and
    5 epochs, and each of the 20 tasks on its own sub-env of the one local EnvRunner.

    Sampling steps no surplus sub-env when num_envs_per_env_runner divides each
    EnvRunner's share of the tasks (pre-adaptation: a short last round repeats
    tasks) and post_adaptation_episodes (post-adaptation: all sub-envs run the
    one task; a round that needs fewer episodes than sub-envs still steps them
    all). The defaults, and 10 tasks on each of 2 EnvRunners with 10 sub-envs
    and 10 episodes (tune_configs/maml_pointnav.yaml), waste none.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or MAML)
        self.meta_batch_size = 20
        self.inner_steps = 1
        self.inner_lr = 0.1
        self.first_order = False
        self.pre_adaptation_episodes = 20
        self.post_adaptation_episodes = 20
        self.clip_param = 0.2
        self.held_out_seed = 0
        # RLlib fields with defaults that suit this algorithm.
        self.num_epochs = 5
        self.lr = 1e-3
        self.gamma = 0.99
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 20
        self.min_sample_timesteps_per_iteration = 0
        self.min_time_s_per_iteration = None
        self.evaluation_config = {"explore": False}
        self.callbacks_on_episode_start = record_task

    def training(self, *, meta_batch_size: int = NotProvided, inner_steps: int = NotProvided,
                 inner_lr: float = NotProvided, first_order: bool = NotProvided,
                 pre_adaptation_episodes: int = NotProvided, post_adaptation_episodes: int = NotProvided,
                 clip_param: float = NotProvided, held_out_seed: int = NotProvided, **kwargs) -> "MAMLConfig":
        super().training(**kwargs)
        for name, value in (("meta_batch_size", meta_batch_size), ("inner_steps", inner_steps),
                            ("inner_lr", inner_lr), ("first_order", first_order),
                            ("pre_adaptation_episodes", pre_adaptation_episodes),
                            ("post_adaptation_episodes", post_adaptation_episodes), ("clip_param", clip_param),
                            ("held_out_seed", held_out_seed)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        check_range("meta_batch_size", self.meta_batch_size, 1, None, integer=True)
        check_range("inner_steps", self.inner_steps, 1, None, integer=True)
        check_range("inner_lr", self.inner_lr, 0.0, None, low_open=True)
        check_choice("first_order", self.first_order, (True, False))
        check_range("pre_adaptation_episodes", self.pre_adaptation_episodes, 1, None, integer=True)
        check_range("post_adaptation_episodes", self.post_adaptation_episodes, 1, None, integer=True)
        check_range("clip_param", self.clip_param, 0.0, 1.0, low_open=True, high_open=True)
        check_range("held_out_seed", self.held_out_seed, 0, None, integer=True)
        check_range("num_epochs", self.num_epochs, 1, None, integer=True)
        if self.num_learners > 1:
            raise BadInput(f"num_learners={self.num_learners}: maml runs one learner (0 or 1); RLlib would shard "
                           "the meta-batch across learners by rows, splitting tasks")
        check_records_tasks(self)
        super().validate()

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rlfrontier.algorithms.maml.torch.gaussian_policy import GaussianPolicyModule

        return RLModuleSpec(module_class=GaussianPolicyModule)

    def get_default_learner_class(self):
        if self.framework_str != "torch":
            raise ValueError("maml has a torch learner only")
        from rlfrontier.algorithms.maml.torch.maml_torch_learner import MAMLTorchLearner

        return MAMLTorchLearner


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_records_tasks(config: AlgorithmConfig) -> None:
    """BadInput unless the config's on_episode_start callbacks include record_task (each episode records its
    sub-env and task, which the meta-RL samplers rely on)."""
    if record_task not in _as_list(config.callbacks_on_episode_start):
        raise BadInput("callbacks_on_episode_start must include rlfrontier.algorithms.maml.maml.record_task "
                       "(each episode records its sub-env and task)")


def held_out_tasks(task_env: gym.Env, config: "MAMLConfig") -> list[Task]:
    """The run's held-out tasks: config.meta_batch_size of them from the stream of config.held_out_seed
    (independent of config.seed)."""
    return task_env.unwrapped.sample_tasks(config.meta_batch_size,
                                           seeding.rng(config.held_out_seed, HELD_OUT_TASKS))


def _adapted_weights(batch: Mapping[str, np.ndarray], learner) -> list[dict[str, np.ndarray]]:
    return learner.adapted_weights(batch)


# Algorithm ------------------------------------------------------------------------------------
class MAML(Algorithm):
    """The loop of the module docstring."""

    @classmethod
    def get_default_config(cls) -> MAMLConfig:
        return MAMLConfig()

    def setup(self, config) -> None:
        super().setup(config)
        self._task_env = make_task_env(self.config.env, self.config.env_config)
        self._held_out_tasks = held_out_tasks(self._task_env, self.config)
        # As of the last call of adapt_and_sample (for tests and logs): the task ids per EnvRunner, the tasks,
        # and per phase, (worker index, task id, the task the episode recorded) of every episode kept.
        self.last_assignment: dict[int, list[int]] = {}
        self.last_tasks: list[Task] = []
        self.last_episode_runners: dict[str, list[tuple[int, int, Task]]] = {}
        self._references: dict[str, float] | None = None  # the meta-test's, computed at its first call

    def reference_metrics(self) -> dict[str, float]:
        """The oracle's and the task-blind policy's mean returns on the held-out tasks (rlfrontier.meta_test),
        `post_adaptation_episodes` episodes a task, rolled out once per run on the driver's copy of the env."""
        if self._references is None:
            self._references = meta_test.reference_metrics(
                self._task_env, self._held_out_tasks, episodes=self.config.post_adaptation_episodes,
                seed=self.config.held_out_seed)
        return self._references

    def cleanup(self) -> None:
        self._task_env.close()
        super().cleanup()

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self._task_env.unwrapped.sample_tasks(n, rng)

    def _sample(self, fn, jobs: Mapping[int, list], episodes_per_task: int, phase: str,
                metrics_key: str | None) -> dict[int, list]:
        """One call of `fn` on every EnvRunner; {task id: episodes}, at least `episodes_per_task` for each task
        of every EnvRunner that answered (check_episodes_per_task). The runners' metrics (get_metrics, which
        drains them) are aggregated under `metrics_key` (ENV_RUNNER_RESULTS: counted as training, as RLlib's
        own sampling) or, with None, dropped."""
        # Each call's resets seeded apart (meta_tasks.set_reset_seed), per phase and iteration: held-out
        # phases alike at every evaluation, training ones new every iteration.
        seed = seeding.derive_seed(self.config.seed, MAML_SAMPLING + phase,
                                   0 if phase.startswith(HELD_OUT) else self.iteration + 1)
        results = self.env_runner_group.foreach_env_runner(functools.partial(fn, jobs, episodes_per_task, seed=seed))
        by_task: dict[int, list] = {}
        seen = []
        metrics = []
        answered = []
        for index, tagged, runner_metrics in results:
            answered.append(index)
            for task_id, episode in tagged:
                by_task.setdefault(task_id, []).append(episode)
                seen.append((index, task_id, episode.custom_data.get(EPISODE_TASK)))
            if runner_metrics is not None:
                metrics.append(runner_metrics)
        if metrics and metrics_key is not None:
            self.metrics.aggregate(metrics, key=metrics_key)
        self.last_episode_runners[phase] = seen
        check_recorded_tasks(seen, {job[0]: job[1] for index in answered for job in jobs.get(index, ())})
        check_episodes_per_task(by_task, [job[0] for index in answered for job in jobs.get(index, ())],
                                episodes_per_task, phase=phase)
        return by_task

    def _timesteps(self) -> dict[str, Any]:
        return {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME),
                                                              default=0),
            NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0),
        }

    def adapt_and_sample(self, tasks: Sequence[Task], *, phase: str = "", metrics_key: str | None = ENV_RUNNER_RESULTS
                         ) -> tuple[list, list, dict[str, np.ndarray]]:
        """Steps 1-4 of the module docstring for `tasks`: (pre-adaptation episodes per task, post-adaptation
        episodes per task, the pre-adaptation learner rows), for the tasks whose episodes all came back
        (every one unless an EnvRunner failed). The EnvRunners keep the meta-policy's weights.

        `phase` prefixes the keys of last_episode_runners and of the timers; the EnvRunners' metrics go
        under `metrics_key` (None: drained and dropped), see `_sample`."""
        cfg = self.config
        # The EnvRunners with envs (worker indexes; the local one only when there are no remote ones).
        assignment = assign_tasks(len(tasks), list(meta_tasks.get_tasks(self.env_runner_group)))
        self.last_assignment, self.last_tasks = assignment, list(tasks)
        start = time.perf_counter()
        with self.metrics.log_time((TIMERS, phase + PRE_ADAPTATION_SAMPLING_TIMER)):
            pre = self._sample(sample_pre_adaptation,
                               {r: [(i, tasks[i]) for i in ids] for r, ids in assignment.items()},
                               cfg.pre_adaptation_episodes, phase + "pre", metrics_key)
        sampling_s = time.perf_counter() - start
        task_ids = sorted(pre)
        if not task_ids:
            self.metrics.log_value((TIMERS, phase + ENV_RUNNER_SAMPLING_TIMER), sampling_s, reduce="ema")
            return [], [], {}
        pre_rows = task_batch([pre[i] for i in task_ids], pre=True, gamma=cfg.gamma)
        with self.metrics.log_time((TIMERS, phase + ADAPTATION_TIMER)):
            results = self.learner_group.foreach_learner(functools.partial(_adapted_weights, pre_rows))
            adapted = dict(zip(task_ids, [r.get() for r in results][0]))
        runner_of = {i: r for r, ids in assignment.items() for i in ids}
        jobs: dict[int, list] = {}
        for i in task_ids:
            jobs.setdefault(runner_of[i], []).append((i, tasks[i], adapted[i]))
        start = time.perf_counter()
        with self.metrics.log_time((TIMERS, phase + POST_ADAPTATION_SAMPLING_TIMER)):
            post = self._sample(sample_post_adaptation, jobs, cfg.post_adaptation_episodes, phase + "post",
                                metrics_key)
        sampling_s += time.perf_counter() - start
        # One value an iteration (as log_time's default, an EMA over iterations): the total of both phases.
        self.metrics.log_value((TIMERS, phase + ENV_RUNNER_SAMPLING_TIMER), sampling_s, reduce="ema")
        if any(not post.get(i) for i in task_ids):
            task_ids = [i for i in task_ids if post.get(i)]
            pre_rows = task_batch([pre[i] for i in task_ids], pre=True, gamma=cfg.gamma) if task_ids else {}
        return [pre[i] for i in task_ids], [post[i] for i in task_ids], pre_rows

    def training_step(self) -> None:
        cfg = self.config
        tasks = self.sample_tasks(cfg.meta_batch_size, seeding.rng(cfg.seed, META_TASKS, self.iteration))
        pre, post, pre_rows = self.adapt_and_sample(tasks)
        if not pre:
            return
        post_rows = task_batch(post, pre=False, gamma=cfg.gamma)
        rows = {k: np.concatenate([pre_rows[k], post_rows[k]]) for k in pre_rows}
        size = len(rows[TASK_INDEX])
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(
                batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(rows)}, env_steps=size),
                timesteps=self._timesteps(), num_epochs=cfg.num_epochs, minibatch_size=None,
                shuffle_batch_per_epoch=False)
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        for key, value in adaptation_returns(pre, post).items():
            self.metrics.log_value((LEARNER_RESULTS, DEFAULT_MODULE_ID, key), value, window=1)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                               inference_only=True)

    def held_out_metrics(self) -> dict[str, float]:
        """Meta-test on the run's held-out tasks (the registry's evaluation hook): the mean return before and
        after adaptation, and their difference, of `meta_batch_size` tasks drawn once from their own stream
        (never trained on), with the config's episode counts and inner step(s). The meta-policy is unchanged."""
        # Not training: the EnvRunners' metrics of these episodes are drained and dropped (none in the next
        # result's env_runners/ counts or returns), and the timers are HELD_OUT-prefixed.
        pre, post, _ = self.adapt_and_sample(self._held_out_tasks, phase=HELD_OUT, metrics_key=None)
        if not pre:
            return {}
        returns = adaptation_returns(pre, post)
        # The shared meta-test's form (k = inner steps), with the references and the share of the gap closed.
        shared = meta_test.adaptation_metrics(
            {0: returns[PRE_ADAPTATION_RETURN_MEAN], self.config.inner_steps: returns[POST_ADAPTATION_RETURN_MEAN]},
            self.reference_metrics())
        return {**{HELD_OUT + k: v for k, v in returns.items()}, **shared}


def adaptation_returns(pre: Sequence[Sequence[Any]], post: Sequence[Sequence[Any]]) -> dict[str, float]:
    """{PRE_ADAPTATION_RETURN_MEAN, POST_ADAPTATION_RETURN_MEAN, ADAPTATION_GAIN} over all tasks' episodes."""
    before = float(np.mean([e.get_return() for episodes in pre for e in episodes]))
    after = float(np.mean([e.get_return() for episodes in post for e in episodes]))
    return {PRE_ADAPTATION_RETURN_MEAN: before, POST_ADAPTATION_RETURN_MEAN: after, ADAPTATION_GAIN: after - before}
