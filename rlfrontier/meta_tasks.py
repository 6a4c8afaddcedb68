"""Setting meta-RL tasks on the EnvRunners that sample them (issue 10, part 1).

RLlib 2.60 has no TaskSettableEnv: a meta-RL algorithm draws tasks on the
driver (`sample_tasks` of a `rlfrontier.envs.tasks.TaskEnv`, with its own
seeded rng) and sends each EnvRunner the tasks for its sub-envs through
`EnvRunnerGroup.foreach_env_runner`. More EnvRunners sample more tasks in
parallel.

How a task reaches an env. A SingleAgentEnvRunner's `.env` is
`DictInfoToList(SyncVectorEnv or AsyncVectorEnv)` (a vector wrapper that
does not forward `set_attr`), and each sub-env is the project's env behind
gymnasium's `make` wrappers twice over (RLlib's `rllib-single-agent-env-v0`
registration around `rlfrontier.envs`' own `gym.make`). `set_env_tasks`
unwraps the vector env and uses its `set_attr("task", ...)`, which
gymnasium passes down each sub-env's wrappers (`set_wrapper_attr`) to the
TaskEnv's `task` property, i.e. its validated `set_task`; for
AsyncVectorEnv it goes through the pipes to the worker processes.

The caller's side of the contract:
- a task takes effect at once; sample with `force_reset=True` after
  setting tasks (`EnvRunner.sample(..., force_reset=True)`), or the
  episodes in progress finish under the new task;
- tasks live in the runners' envs, not in RLlib's state: a runner that
  RLlib restarts after a failure comes back with its env's default task, so
  set tasks every iteration before sampling;
- a task is checked by the sub-env that takes it, on the runner. A bad
  one leaves that runner's sub-envs with the tasks they had
  (SyncVectorEnv, RLlib's default) and `set_tasks` raises BadInput on the
  driver naming the runner; runners set before it keep their new tasks.
  The runner returns the error rather than raising it: RLlib takes an
  EnvRunner whose remote call raises out of service, and with
  `restart_failed_env_runners` (the default) only logs the error. Under
  `gym_env_vectorize_mode="ASYNC"` gymnasium shuts down the worker process
  of a sub-env that raises, so check tasks you did not sample yourself;
- the driver's local EnvRunner has no env when there are remote ones
  (unless `create_env_on_local_worker`): it takes no tasks and `get_tasks`
  leaves it out.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import gymnasium as gym

from rlfrontier.envs.tasks import Task
from rlfrontier.validation import BadInput

TASK_ATTRIBUTE = "task"  # the TaskEnv property set_attr/get_attr reach


def _base_vector_env(vector_env: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    base = vector_env.unwrapped
    if not hasattr(base, "set_attr") or not hasattr(base, "get_attr"):
        raise TypeError(f"{type(base).__name__} is not a gymnasium Sync/AsyncVectorEnv: it has no set_attr/get_attr")
    return base


def get_env_tasks(vector_env: gym.vector.VectorEnv) -> list[Task]:
    """The task of each sub-env of a gymnasium vector env, in sub-env order; BadInput if one is not a TaskEnv."""
    base = _base_vector_env(vector_env)
    try:
        return [dict(task) for task in base.get_attr(TASK_ATTRIBUTE)]
    except AttributeError as exc:
        text = f"the sub-envs of {vector_env} are not task distributions (rlfrontier.envs.tasks): {exc}"
        raise BadInput(text) from None


def set_env_tasks(vector_env: gym.vector.VectorEnv, tasks: Sequence[Task]) -> None:
    """Sets tasks[i] on sub-env i of a gymnasium vector env (behind any wrappers); one task per sub-env.

    Raises:
        BadInput: the count differs from the number of sub-envs, a sub-env is
            not a TaskEnv, or a task is malformed (the env's own check); then
            the sub-envs of a SyncVectorEnv keep the tasks they had.
    """
    base = _base_vector_env(vector_env)
    if isinstance(tasks, (dict, str)) or not isinstance(tasks, Sequence) or len(tasks) != base.num_envs:
        raise BadInput(f"tasks must be a list of {base.num_envs} tasks, one per sub-env, got {tasks!r}")
    # Read first: set_attr would otherwise create a plain attribute on the outermost wrapper of an env
    # that has no `task`, and the env would silently keep its own.
    before = get_env_tasks(base)
    try:
        base.set_attr(TASK_ATTRIBUTE, list(tasks))
    except BadInput:
        # The sub-envs before the bad task took theirs. An AsyncVectorEnv's failed worker is gone: no restoring there.
        if isinstance(base, gym.vector.SyncVectorEnv):
            base.set_attr(TASK_ATTRIBUTE, before)
        raise


def set_reset_seed(runner: Any, seed: int | None) -> None:
    """The seed of `runner`'s next full reset (sub-env i gets seed + i); None leaves the runner's own.

    RLlib 2.60's SingleAgentEnvRunner resets its vector env with the same
    seed (its private `_seed`, from the config's seed and the worker index)
    at the start of EVERY `sample(num_episodes=...)` call: a loop of such
    calls on one runner replays the same start states and, for a stochastic
    env (Bandit-v0's rewards, RandomCartPole's start states), the same
    random draws, call after call. Meta-RL's per-task sampling is such a
    loop, so it gives each call a seed of its own through this.
    """
    if seed is not None:
        runner._seed = int(seed)


def _runner_layout(runner: Any) -> tuple[int, int | None]:
    """(worker index, number of sub-envs or None for a runner without envs) of one EnvRunner."""
    env = getattr(runner, "env", None)
    return int(runner.worker_index or 0), (None if env is None else env.unwrapped.num_envs)


def _set_runner_tasks(tasks_per_runner: Mapping[int, Sequence[Task]], runner: Any) -> tuple[int, str | None]:
    """(worker index, None or the BadInput's text): returned, not raised, so RLlib keeps the runner in service."""
    index = int(runner.worker_index or 0)
    if getattr(runner, "env", None) is not None and index in tasks_per_runner:
        try:
            set_env_tasks(runner.env, tasks_per_runner[index])
        except BadInput as exc:
            return index, str(exc)
    return index, None


def _runner_tasks(runner: Any) -> tuple[int, list[Task] | None, str | None]:
    """(worker index, its sub-envs' tasks or None without envs, None or the BadInput's text)."""
    index, env = int(runner.worker_index or 0), getattr(runner, "env", None)
    if env is None:
        return index, None, None
    try:
        return index, get_env_tasks(env), None
    except BadInput as exc:
        return index, None, str(exc)


def _raise_runner_errors(errors: list[tuple[int, str]]) -> None:
    if errors:
        raise BadInput("; ".join(f"EnvRunner {index}: {text}" for index, text in errors))


def set_tasks(env_runner_group: Any, tasks_per_runner: Mapping[int, Sequence[Task]]) -> None:
    """Sets one task list on each EnvRunner that has envs, keyed by its worker index (0 local, 1.. remote).

    Args:
        env_runner_group: an RLlib EnvRunnerGroup (e.g. `algo.env_runner_group`,
            or `algo.eval_env_runner_group`); anything with `foreach_env_runner`.
        tasks_per_runner: {worker_index: [one task per sub-env]} for every
            runner that has envs; `get_tasks(group)` shows the layout.

    Raises:
        BadInput: a runner with envs has no tasks, an index has no runner with
            envs, a list's length differs from the runner's number of sub-envs,
            or a task is malformed (checked on the runner, whose sub-envs then
            keep their tasks; the message names the runner).
    """
    layout = {index: n for index, n in env_runner_group.foreach_env_runner(_runner_layout) if n is not None}
    missing = sorted(set(layout) - set(tasks_per_runner))
    unknown = sorted(set(tasks_per_runner) - set(layout))
    if missing or unknown:
        raise BadInput(f"tasks_per_runner has keys {sorted(tasks_per_runner)}; the EnvRunners with envs have worker "
                       f"indexes {sorted(layout)} (missing {missing}, unknown {unknown})")
    for index, n in layout.items():
        tasks = tasks_per_runner[index]
        if isinstance(tasks, (dict, str)) or not isinstance(tasks, Sequence) or len(tasks) != n:
            raise BadInput(f"tasks_per_runner[{index}] must be a list of {n} tasks (one per sub-env), got {tasks!r}")
    # Every runner gets the whole (small) mapping and takes its own entry: foreach_env_runner calls one function
    # on all runners, and a runner knows its worker index. A partial of module functions pickles by reference.
    plain = {int(index): list(tasks) for index, tasks in tasks_per_runner.items()}
    results = env_runner_group.foreach_env_runner(functools.partial(_set_runner_tasks, plain))
    _raise_runner_errors([(index, text) for index, text in results if text is not None])


def get_tasks(env_runner_group: Any) -> dict[int, list[Task]]:
    """{worker index: the task of each of its sub-envs} for every EnvRunner that has envs."""
    rows = env_runner_group.foreach_env_runner(_runner_tasks)
    _raise_runner_errors([(index, text) for index, _, text in rows if text is not None])
    return {index: tasks for index, tasks, _ in rows if tasks is not None}
