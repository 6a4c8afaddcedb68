"""RL² trials (Duan et al. 2016, section 2.2): one RLlib episode is one trial of `episodes_per_trial` episodes.

RL² learns to adapt with a recurrent policy whose hidden state carries what
it has learnt about the task from one episode of the trial to the next. RLlib
resets a module's recurrent state at the start of every episode it sees
(`AddStatesFromEpisodesToBatch` takes the initial state for an episode with
no steps yet), so the trial, not the task's own episode, must be RLlib's
episode. `TrialEnv` makes it so:

- `reset` starts a trial: it resets the inner env, draws the trial's task
  from the inner env's `np_random` (seeded by `reset(seed=...)`, as a
  TaskEnv's `resample_on_reset` draws it, after the state reset) unless a
  task is fixed (`fixed_task`), and sets it;
- when an inner episode ends (terminated or truncated) before the trial's
  last, the wrapper resets the inner env itself, keeping the task, and the
  trial goes on; when the last one ends, the trial is over and reported as
  terminated (never truncated): RL² maximises the return of the trial,
  which has a fixed number of episodes, so nothing follows it and PPO must
  not bootstrap a value past it;
- the observation is concat(inner observation, previous action, previous
  reward, done), the paper's input (its figure 1): the previous action one-hot
  for a Discrete space (gymnasium's `flatten`; a Box action as its flat
  vector), `done` 1.0 when the previous step ended an inner episode (the
  inner observation is then the next episode's first), all three 0 at the
  trial's start;
- info: the inner step's info plus TRIAL_EPISODE, the index of the inner
  episode the step belongs to (0-based); the reset info carries the trial's
  task (TRIAL_TASK) as well.

The inner env must follow the TaskEnv contract (rlfrontier.envs.tasks) and
must not draw its own task at every reset (`resample_on_reset=True` would
change the task between the episodes of a trial): the wrapper draws tasks.
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlfrontier.envs.tasks import Task, check_positive_int, is_task_env
from rlfrontier.validation import BadInput

TRIAL_EPISODE = "trial_episode"  # info key: the inner episode (0-based) of the trial the step belongs to
TRIAL_TASK = "trial_task"  # reset-info key: the trial's task


def check_trial_env(env: gym.Env, *, env_id: Any = None) -> None:
    """BadInput unless `env` (behind any wrappers) can run RL² trials: a TaskEnv that does not draw its own tasks."""
    name = env_id if env_id is not None else type(env.unwrapped).__name__
    if not is_task_env(env):
        raise BadInput(f"rl2 needs a task distribution (an env with sample_tasks, set_task); {name} is none")
    if getattr(env.unwrapped, "resample_on_reset", False):
        raise BadInput(f"resample_on_reset=True on {name}: rl2 draws one task per trial itself, and the env's own "
                       "draw at every reset would change the task between the episodes of a trial")


class TrialEnv(gym.Wrapper):
    """One trial of `episodes_per_trial` episodes of one task of a TaskEnv as one episode (module docstring).

    Args:
        env: a TaskEnv (behind any wrappers) with resample_on_reset False.
        episodes_per_trial: inner episodes per trial, at least 1.

    Observation: float32 [flat inner obs | flat previous action | previous reward | done].
    Actions: the inner env's. Episodes end terminated, after the trial's last inner episode.
    `task` (get) is the inner env's current task; setting it fixes it for every later trial
    (`fixed_task`; None draws one per trial again), and it takes effect at once, as TaskEnv's.
    """

    def __init__(self, env: gym.Env, *, episodes_per_trial: int = 1) -> None:
        check_trial_env(env)
        super().__init__(env)
        self.episodes_per_trial = check_positive_int("episodes_per_trial", episodes_per_trial)
        obs = spaces.flatten_space(env.observation_space)
        act = spaces.flatten_space(env.action_space)
        self._obs_size, self._act_size = int(obs.shape[0]), int(act.shape[0])
        low = np.concatenate([obs.low, act.low, [-np.inf, 0.0]]).astype(np.float32)
        high = np.concatenate([obs.high, act.high, [np.inf, 1.0]]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._fixed_task: Task | None = None
        self._episode = 0
        self._over = True

    # Layout ------------------------------------------------------------------------------------------
    @property
    def layout(self) -> dict[str, slice]:
        """Where each part sits in the observation: {"obs", "prev_action", "prev_reward", "done": slice}."""
        a, b = self._obs_size, self._obs_size + self._act_size
        return {"obs": slice(0, a), "prev_action": slice(a, b), "prev_reward": slice(b, b + 1),
                "done": slice(b + 1, b + 2)}

    def _observe(self, obs: Any, action: Any, reward: float, done: bool) -> np.ndarray:
        flat_action = (np.zeros(self._act_size, np.float32) if action is None
                       else spaces.flatten(self.env.action_space, action))
        return np.concatenate([spaces.flatten(self.env.observation_space, obs), flat_action,
                               [reward, float(done)]]).astype(np.float32)

    # Tasks -------------------------------------------------------------------------------------------
    @property
    def fixed_task(self) -> Task | None:
        return None if self._fixed_task is None else dict(self._fixed_task)

    @fixed_task.setter
    def fixed_task(self, task: Task | None) -> None:
        if task is None:
            self._fixed_task = None
            return
        base = self.env.unwrapped
        base.set_task(task)  # checked by the env (BadInput naming a bad value)
        self._fixed_task = base.get_task()

    @property
    def task(self) -> Task:
        return self.env.unwrapped.get_task()

    @task.setter
    def task(self, task: Task) -> None:
        self.fixed_task = task

    # Stepping ----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)  # seeds np_random, which draws the task
        base = self.env.unwrapped
        task = self._fixed_task if self._fixed_task is not None else base.sample_tasks(1, base.np_random)[0]
        if task != base.get_task():
            base.set_task(task)
            # The trial's first episode starts under its task (an env's start state or reset info may depend
            # on it: PointNav's info["distance"]); the stream seeded above goes on.
            obs, info = self.env.reset(options=options)
        self._episode, self._over = 0, False
        return self._observe(obs, None, 0.0, False), {**info, TRIAL_TASK: base.get_task(), TRIAL_EPISODE: 0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._over:
            raise RuntimeError("the trial is over (or never started); call reset()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, TRIAL_EPISODE: self._episode}
        episode_over = bool(terminated or truncated)
        if episode_over:
            self._episode += 1
            if self._episode >= self.episodes_per_trial:
                self._over = True
            else:
                obs, _ = self.env.reset()  # the next episode of the same task; the hidden state goes on
        return self._observe(obs, action, float(reward), episode_over), float(reward), self._over, False, info


def make_trial_env(env_id: str, env_config: Mapping[str, Any] | None = None, *,
                   episodes_per_trial: int = 1) -> TrialEnv:
    """TrialEnv around `env_id` made with `env_config`: Ray's registry first (an env registered there), else
    gymnasium's (the project's own ids registered on import)."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rlfrontier.envs import register_envs

    if isinstance(env_id, str) and _global_registry.contains(ENV_CREATOR, env_id):
        from ray.rllib.env.env_context import EnvContext

        context = env_config if isinstance(env_config, EnvContext) else EnvContext(dict(env_config or {}),
                                                                                   worker_index=0)
        inner = _global_registry.get(ENV_CREATOR, env_id)(context)
    else:
        register_envs()
        inner = gym.make(env_id, **dict(env_config or {}))
    try:
        return TrialEnv(inner, episodes_per_trial=episodes_per_trial)
    except BaseException:
        inner.close()
        raise


class TrialEnvCreator:
    """RLlib's env creator for trials of `env_id` (`config.environment(env=TrialEnvCreator(...))`: RLlib calls it
    with the env_config as an EnvContext). A plain class, so it pickles by reference to other processes."""

    def __init__(self, env_id: str, *, episodes_per_trial: int = 1) -> None:
        self.env_id = env_id
        self.episodes_per_trial = episodes_per_trial

    def __call__(self, env_context: Mapping[str, Any]) -> TrialEnv:
        return make_trial_env(self.env_id, env_context, episodes_per_trial=self.episodes_per_trial)

    def __repr__(self) -> str:
        return f"TrialEnvCreator({self.env_id!r}, episodes_per_trial={self.episodes_per_trial})"
