"""RL² (Duan et al. 2016): a recurrent policy trained with PPO over trials of several episodes of one task.

"Fast reinforcement learning via slow reinforcement learning": the slow
learner is RLlib's PPO; the fast one is the recurrent policy itself, whose
hidden state, kept across the episodes of a trial and reset between trials,
holds what it has found out about the task. Nothing else adapts at meta-test
time: no gradient step, no inferred latent.

The pieces:

- a trial is one RLlib episode (rlfrontier.envs.trials.TrialEnv): RLlib
  resets a module's recurrent state at every episode, so the trial's
  `episodes_per_trial` episodes of one task (drawn per trial from the env's
  own distribution) are one RLlib episode, whose observation is the paper's
  input: the env's observation, the previous action, reward and done flag;
- the EnvRunners wrap the run's env in it (`RL2EnvRunner`), so the run's
  env stays the task distribution the user named (`--env
  rlfrontier/Bandit-v0`), and `evaluate` and every EnvRunner (training,
  RLlib's evaluation, the held-out one) act on trials alike;
- the policy is RLlib's default PPO module with its LSTM
  (DefaultModelConfig(use_lstm=True)): a tokenizer MLP, one LSTM layer shared
  by the policy and value heads; PPO learns on sequences of `max_seq_len`
  steps from the stored recurrent state (RLlib's learner connectors).

Meta-test (`held_out_metrics`, the registry's evaluation hook): the current
policy plays `held_out_trials` trials on each of `held_out_tasks` tasks
drawn once per run from the stream of `held_out_seed` (not the run's seed, so
a sweep's trials are ranked on the same tasks), on an EnvRunner of its own in
the driver (one task fixed on each of its sub-envs; nothing of it counts as
training). It reports the mean trial return and, for k = 0 ..
episodes_per_trial - 1, the mean return of a trial's episode after k
episodes of the same task (held_out_return_k{k}) and, with two or more
episodes a trial, the shared meta-test's references and measures
(rlfrontier.meta_test: the oracle's and the task-blind policy's episode
returns on the same tasks, held_out_adaptation_gain and
held_out_gap_closed). On a bandit (rlfrontier/Bandit-v0) it also reports
the mean pseudo-regret of a trial against UCB1's, Thompson sampling's and a
uniformly random learner's on the same tasks and pulls (rlfrontier.bandits),
and the ratios; issue 10 accepts rl2 at
regret_ratio_vs_thompson <= 1.2. The same tasks are played again greedily
(the most likely action at each step; `held_out_greedy`), reported under
keys with "greedy" in them.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rlfrontier import bandits, envs, meta_tasks, meta_test, seeding
from rlfrontier.envs.bandit import BanditEnv
from rlfrontier.envs.tasks import Task
from rlfrontier.envs.trials import TRIAL_EPISODE, TRIAL_TASK, TrialEnvCreator, check_trial_env
from rlfrontier.validation import BadInput, check_choice, check_range

# The evaluation hook's keys (under the result's "metrics"): the held-out trials' numbers with the HELD_OUT
# prefix, and with HELD_OUT + GREEDY those of the same tasks played greedily (held_out_greedy); the ratios to the
# baselines with GREEDY for the greedy ones.
HELD_OUT = "held_out_"
GREEDY = "greedy_"
TRIAL_RETURN_MEAN = "trial_return_mean"
# The mean return of a trial's episode k + 1, after k episodes of the task (k = 0 .. episodes_per_trial - 1):
# with HELD_OUT, rlfrontier.meta_test's held_out_return_k{k}.
RETURN_K = "return_k{k}"
ADAPTATION_GAIN = "adaptation_gain"  # the last episode's return minus the first's (meta_test's, with HELD_OUT)
REGRET_MEAN = "regret_mean"  # an env reporting info["regret"] per step (Bandit-v0)
HELD_OUT_TRIAL_RETURN_MEAN = HELD_OUT + TRIAL_RETURN_MEAN
HELD_OUT_ADAPTATION_GAIN = HELD_OUT + ADAPTATION_GAIN
HELD_OUT_REGRET_MEAN = HELD_OUT + REGRET_MEAN
THOMPSON_REGRET_MEAN = "thompson_regret_mean"
UCB1_REGRET_MEAN = "ucb1_regret_mean"
RANDOM_REGRET_MEAN = "random_regret_mean"
REGRET_RATIO_VS_THOMPSON = "regret_ratio_vs_thompson"
REGRET_RATIO_VS_UCB1 = "regret_ratio_vs_ucb1"
# The info key of a step's pseudo-regret (rlfrontier.envs.bandit).
REGRET = "regret"
# Random streams (rlfrontier.seeding): the held-out tasks (the string maml uses, so one held_out_seed draws the
# same tasks for both), the held-out EnvRunner's envs and actions, the baselines' pulls.
HELD_OUT_TASKS = "held_out_tasks"
HELD_OUT_SAMPLING = "rl2_held_out_sampling"
BASELINES = "rl2_bandit_baselines"
# Runs of each bandit baseline per held-out task: its mean regret's standard error stays ~0.1 / sqrt(tasks).
BASELINE_RUNS = 100
MAX_HELD_OUT_TASKS = 1000  # one sub-env each on the held-out EnvRunner


# The EnvRunners' side -----------------------------------------------------------------------------------
class RL2EnvRunner(SingleAgentEnvRunner):
    """RLlib's SingleAgentEnvRunner whose sub-envs are RL² trials (TrialEnv) of the config's env.

    RLlib's own `make_env` builds the vector env from a copy of the config
    whose env is a TrialEnvCreator of the run's (a callable env is RLlib's
    documented alternative to a name); everything else is RLlib's.
    """

    def make_env(self) -> None:
        plain = self.config
        self.config = trial_config(plain)
        try:
            super().make_env()
        finally:
            self.config = plain


def trial_config(config: "RL2Config") -> "RL2Config":
    """A copy of `config` whose env makes trials of config.env (`config.episodes_per_trial` episodes)."""
    if isinstance(config.env, TrialEnvCreator):
        return config
    wrapped = config.copy(copy_frozen=False)
    wrapped.environment(env=TrialEnvCreator(config.env, episodes_per_trial=config.episodes_per_trial))
    return wrapped


# Trials to numbers -------------------------------------------------------------------------------------
def trial_columns(episode) -> tuple[Task, np.ndarray, np.ndarray, np.ndarray | None]:
    """(the trial's task, rewards [T], inner episode of each step [T], pseudo-regrets [T] or None) of a trial."""
    infos = episode.get_infos()
    steps = infos[1:]  # infos[0] is the reset's
    rewards = np.asarray(episode.get_rewards(), np.float64)
    inner = np.asarray([info[TRIAL_EPISODE] for info in steps], np.int64)
    regrets = (np.asarray([info[REGRET] for info in steps], np.float64)
               if steps and all(REGRET in info for info in steps) else None)
    return infos[0][TRIAL_TASK], rewards, inner, regrets


def task_key(task: Task) -> str:
    return json.dumps(task, sort_keys=True)


def trial_metrics(episodes: Sequence[Any], episodes_per_trial: int, *, prefix: str = HELD_OUT) -> dict[str, float]:
    """TRIAL_RETURN_MEAN, the per-episode returns (RETURN_K), the adaptation gain (two or more episodes a trial)
    and, when every step reports one, REGRET_MEAN, each the mean over `episodes` (trials), their keys prefixed."""
    returns, per_episode, regrets = [], [], []
    for episode in episodes:
        _, rewards, inner, regret = trial_columns(episode)
        returns.append(rewards.sum())
        per_episode.append(np.bincount(inner, weights=rewards, minlength=episodes_per_trial)[:episodes_per_trial])
        regrets.append(None if regret is None else regret.sum())
    out = {prefix + TRIAL_RETURN_MEAN: float(np.mean(returns))}
    by_k = np.mean(per_episode, axis=0)
    for k in range(episodes_per_trial):
        out[prefix + RETURN_K.format(k=k)] = float(by_k[k])
    if episodes_per_trial > 1:
        out[prefix + ADAPTATION_GAIN] = float(by_k[-1] - by_k[0])
    if regrets and all(r is not None for r in regrets):
        out[prefix + REGRET_MEAN] = float(np.mean(regrets))
    return out


def bandit_baselines(tasks: Sequence[Task], *, pulls: int, rng: np.random.Generator,
                     runs: int = BASELINE_RUNS) -> dict[str, float]:
    """Thompson sampling's, UCB1's (expected, `runs` runs a task) and uniform random's (exact) mean pseudo-regret
    over `pulls` pulls of each of `tasks` (rlfrontier.bandits)."""
    return {THOMPSON_REGRET_MEAN: bandits.expected_regret(bandits.ThompsonSampling, tasks, pulls, rng, runs),
            UCB1_REGRET_MEAN: bandits.expected_regret(bandits.UCB1, tasks, pulls, rng, runs),
            RANDOM_REGRET_MEAN: bandits.random_regret(tasks, pulls)}


def regret_ratios(metrics: Mapping[str, float], *, greedy: bool = False) -> dict[str, float]:
    """rl2's held-out regret (its greedy one with `greedy`) over Thompson's and UCB1's (nan where the baseline's
    is 0); keys REGRET_RATIO_VS_THOMPSON and REGRET_RATIO_VS_UCB1, prefixed GREEDY with `greedy`."""
    prefix = GREEDY if greedy else ""
    regret = metrics[HELD_OUT + prefix + REGRET_MEAN]
    out = {}
    for key, baseline in ((REGRET_RATIO_VS_THOMPSON, THOMPSON_REGRET_MEAN), (REGRET_RATIO_VS_UCB1, UCB1_REGRET_MEAN)):
        out[prefix + key] = regret / metrics[baseline] if metrics[baseline] > 0 else math.nan
    return out


def first_trials_per_task(episodes: Sequence[Any], keys: Sequence[str]) -> dict[str, Any]:
    """{task key: the first trial in `episodes` of each task in `keys`} (the one its sub-env started at reset)."""
    wanted, out = set(keys), {}
    for episode in episodes:
        key = task_key(trial_columns(episode)[0])
        if key in wanted and key not in out:
            out[key] = episode
    return out


# Config -----------------------------------------------------------------------------------------------
class RL2Config(PPOConfig):
    """RL²'s fields (set through `training()`) on RLlib's PPOConfig, whose fields all apply.

    Fields:
        episodes_per_trial: episodes of one task in a trial (one RLlib episode); 1 for Bandit-v0, whose
            episode is already a trial of `pulls` pulls (the paper's bandit setting).
        held_out_seed: seeds the held-out tasks (an integer >= 0), on its own: runs with different `seed`s
            are scored on the same tasks.
        held_out_tasks: how many held-out tasks (1 .. 1000; one sub-env each on the held-out EnvRunner).
        held_out_trials: trials played on each held-out task per evaluation.
        held_out_explore: the held-out trials sample the policy's actions (True, as it was trained) or take
            the most likely one (False).
        held_out_greedy: with held_out_explore, also play the held-out trials greedily (most likely
            actions) and report them under the keys with GREEDY in them.
    Defaults (RLlib's PPO where not named; chosen on Bandit-v0, K = 5, 10 pulls): RLlib's default PPO module
    with its LSTM (DefaultModelConfig(use_lstm=True): a 64-unit tokenizer, 64 cells, shared by the policy and
    value heads, max_seq_len 20, so a 10-pull trial is one sequence), lr 0.003, gamma 0.99, lambda 0.3,
    2,000 env steps an iteration in minibatches of 250 for 10 epochs, entropy_coeff
    0.01, vf_loss_coeff 0.5, 16 sub-envs on the driver's EnvRunner. With lr 0.001 and 5 epochs of 500 the
    held-out regret first measured below 1.2x Thompson's at 72,000 env steps, with these at 16,000 (seed 0 each).
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or RL2)
        self.episodes_per_trial = 1
        self.held_out_seed = 0
        self.held_out_tasks = 100
        self.held_out_trials = 10
        self.held_out_explore = True
        self.held_out_greedy = True
        # RLlib fields with defaults that suit this algorithm.
        self.env_runner_cls = RL2EnvRunner
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 16
        self.lr = 3e-3
        self.gamma = 0.99
        self.lambda_ = 0.3
        self.train_batch_size_per_learner = 2000
        self.minibatch_size = 250
        self.num_epochs = 10
        self.entropy_coeff = 0.01
        self.vf_loss_coeff = 0.5
        self.evaluation_config = {"explore": False}
        self.rl_module(model_config=DefaultModelConfig(
            use_lstm=True, lstm_cell_size=64, fcnet_hiddens=[64], max_seq_len=20, vf_share_layers=True))

    def training(self, *, episodes_per_trial: int = NotProvided, held_out_seed: int = NotProvided,
                 held_out_tasks: int = NotProvided, held_out_trials: int = NotProvided,
                 held_out_explore: bool = NotProvided, held_out_greedy: bool = NotProvided,
                 **kwargs) -> "RL2Config":
        super().training(**kwargs)
        for name, value in (("episodes_per_trial", episodes_per_trial), ("held_out_seed", held_out_seed),
                            ("held_out_tasks", held_out_tasks), ("held_out_trials", held_out_trials),
                            ("held_out_explore", held_out_explore), ("held_out_greedy", held_out_greedy)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        check_range("episodes_per_trial", self.episodes_per_trial, 1, None, integer=True)
        check_range("held_out_seed", self.held_out_seed, 0, None, integer=True)
        check_range("held_out_tasks", self.held_out_tasks, 1, MAX_HELD_OUT_TASKS, integer=True)
        check_range("held_out_trials", self.held_out_trials, 1, None, integer=True)
        check_choice("held_out_explore", self.held_out_explore, (True, False))
        check_choice("held_out_greedy", self.held_out_greedy, (True, False))
        if not self.model_config.get("use_lstm"):
            raise BadInput(f"model_config.use_lstm={self.model_config.get('use_lstm')!r}: rl2's memory is the "
                           "policy's LSTM (use_lstm must be true)")
        check_range("model_config.max_seq_len", self.model_config.get("max_seq_len"), 1, None, integer=True)
        if not (isinstance(self.env_runner_cls, type) and issubclass(self.env_runner_cls, RL2EnvRunner)):
            raise BadInput(f"env_runner_cls={self.env_runner_cls!r} must be RL2EnvRunner or a subclass "
                           "(its envs run trials)")
        if isinstance(self.env, str):
            check_trial_env_id(self.env, self.env_config)
        super().validate()


def make_task_env(env_id: Any, env_config: Mapping[str, Any] | None) -> gym.Env:
    """The driver's copy of the run's env, to draw held-out tasks from; BadInput unless it can run trials."""
    envs.register_envs()
    env = gym.make(env_id, **dict(env_config or {}))
    try:
        check_trial_env(env, env_id=env_id)
    except BadInput:
        env.close()
        raise
    return env


def check_trial_env_id(env_id: str, env_config: Mapping[str, Any] | None) -> None:
    """BadInput unless `env_id` with `env_config` is a task distribution that rl2 can run trials of."""
    make_task_env(env_id, env_config).close()


def held_out_tasks(task_env: gym.Env, config: RL2Config) -> list[Task]:
    """The run's held-out tasks: config.held_out_tasks of them from the stream of config.held_out_seed."""
    return task_env.unwrapped.sample_tasks(config.held_out_tasks, seeding.rng(config.held_out_seed, HELD_OUT_TASKS))


# Algorithm ---------------------------------------------------------------------------------------------
class RL2(PPO):
    """RLlib's PPO on trials (the EnvRunners' envs are RL2EnvRunner's), with the held-out meta-test."""

    @classmethod
    def get_default_config(cls) -> RL2Config:
        return RL2Config()

    def setup(self, config) -> None:
        super().setup(config)
        task_env = make_task_env(self.config.env, self.config.env_config)
        try:
            self._held_out_tasks = held_out_tasks(task_env, self.config)
            base = task_env.unwrapped
            self._bandit_pulls = base.pulls * self.config.episodes_per_trial if isinstance(base, BanditEnv) else None
        finally:
            task_env.close()
        self._held_out_runner: RL2EnvRunner | None = None
        self._baselines: dict[str, float] | None = None
        self._references: dict[str, float] | None = None

    def reference_metrics(self) -> dict[str, float]:
        """The oracle's and the task-blind policy's mean episode returns on the held-out tasks
        (rlfrontier.meta_test), `held_out_trials` episodes a task, rolled out once per run on the driver."""
        if self._references is None:
            task_env = make_task_env(self.config.env, self.config.env_config)
            try:
                self._references = meta_test.reference_metrics(task_env, self._held_out_tasks,
                                                               episodes=self.config.held_out_trials,
                                                               seed=self.config.held_out_seed)
            finally:
                task_env.close()
        return self._references

    def cleanup(self) -> None:
        if getattr(self, "_held_out_runner", None) is not None:
            self._held_out_runner.stop()
        super().cleanup()

    def held_out_env_runner(self) -> RL2EnvRunner:
        """The driver's EnvRunner for the meta-test: one held-out task fixed on each of its sub-envs."""
        if self._held_out_runner is None:
            cfg = self.config.copy(copy_frozen=False)
            cfg.env_runners(num_env_runners=0, num_envs_per_env_runner=len(self._held_out_tasks),
                            num_gpus_per_env_runner=0)
            cfg.debugging(seed=seeding.derive_seed(self.config.held_out_seed, HELD_OUT_SAMPLING))
            runner = cfg.env_runner_cls(config=cfg, worker_index=0, num_workers=0)
            meta_tasks.set_env_tasks(runner.env, self._held_out_tasks)
            self._held_out_runner = runner
        return self._held_out_runner

    def play_held_out_trials(self, *, explore: bool | None = None) -> list:
        """`held_out_trials` trials of each held-out task with the current policy, task by task in order; it
        samples its actions with `explore` (None: the config's held_out_explore)."""
        cfg = self.config
        runner = self.held_out_env_runner()
        runner.module.set_state(self.get_module(DEFAULT_MODULE_ID).get_state())
        mode = cfg.held_out_explore if explore is None else explore
        keys = [task_key(t) for t in self._held_out_tasks]
        played: dict[str, list] = {k: [] for k in keys}
        # Each round resets every sub-env and keeps the trial each started then: with trials of one length
        # (every current task env) a round gives one trial per task.
        for round_ in range(4 * cfg.held_out_trials):
            short = [k for k in keys if len(played[k]) < cfg.held_out_trials]
            if not short:
                break
            # A seed of its own per round (the same at every evaluation): RLlib would reseed every round
            # alike and replay the same reward draws, so greedy trials of a task would be copies.
            meta_tasks.set_reset_seed(runner, seeding.derive_seed(cfg.held_out_seed, HELD_OUT_SAMPLING, round_ + 1))
            episodes = runner.sample(num_episodes=len(keys), explore=mode, force_reset=True)
            for key, episode in first_trials_per_task(episodes, short).items():
                played[key].append(episode)
        runner.get_metrics()  # not training: drained and dropped
        short = {i: len(played[k]) for i, k in enumerate(keys) if len(played[k]) < cfg.held_out_trials}
        if short:
            raise RuntimeError(f"held-out tasks short of their {cfg.held_out_trials} trials: {short}")
        return [episode for k in keys for episode in played[k][:cfg.held_out_trials]]

    def held_out_metrics(self) -> dict[str, float]:
        """The meta-test of the module docstring (the registry's evaluation hook)."""
        cfg = self.config
        metrics = trial_metrics(self.play_held_out_trials(), cfg.episodes_per_trial)
        greedy = cfg.held_out_greedy and cfg.held_out_explore
        if greedy:
            metrics.update(trial_metrics(self.play_held_out_trials(explore=False), cfg.episodes_per_trial,
                                         prefix=HELD_OUT + GREEDY))
        if cfg.episodes_per_trial > 1:
            # The shared meta-test's form: k episodes of context, the references, the share of the gap closed.
            by_k = {k: metrics[HELD_OUT + RETURN_K.format(k=k)] for k in range(cfg.episodes_per_trial)}
            metrics.update(meta_test.adaptation_metrics(by_k, self.reference_metrics()))
        if self._bandit_pulls is not None and HELD_OUT_REGRET_MEAN in metrics:
            if self._baselines is None:
                self._baselines = bandit_baselines(self._held_out_tasks, pulls=self._bandit_pulls,
                                                   rng=seeding.rng(cfg.held_out_seed, BASELINES))
            metrics.update(self._baselines)
            metrics.update(regret_ratios(metrics))
            if greedy:
                metrics.update(regret_ratios(metrics, greedy=True))
        # The progress line shows the first three.
        first = [k for k in (REGRET_RATIO_VS_THOMPSON, GREEDY + REGRET_RATIO_VS_THOMPSON, HELD_OUT_REGRET_MEAN)
                 if k in metrics]
        return {**{k: metrics[k] for k in first}, **metrics}
