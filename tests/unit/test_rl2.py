"""rl2's pieces without Ray: the trial wrapper (observation layout, one task a trial, a new one each trial, fixed
tasks), the recurrent state through RLlib's real EnvRunner and learner connectors (reset between trials, carried
between the episodes of a trial), the held-out numbers, and the config's checks."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from rlfrontier import bandits, envs, meta_tasks
from rlfrontier.algorithms.rl2 import RL2Config, RL2EnvRunner
from rlfrontier.algorithms.rl2.rl2 import (
    HELD_OUT_ADAPTATION_GAIN,
    HELD_OUT_REGRET_MEAN,
    HELD_OUT_TRIAL_RETURN_MEAN,
    RANDOM_REGRET_MEAN,
    REGRET_RATIO_VS_THOMPSON,
    REGRET_RATIO_VS_UCB1,
    THOMPSON_REGRET_MEAN,
    UCB1_REGRET_MEAN,
    bandit_baselines,
    check_trial_env_id,
    first_trials_per_task,
    regret_ratios,
    task_key,
    trial_metrics,
)
from rlfrontier.envs.bandit import BanditEnv
from rlfrontier.envs.point_nav import PointNavEnv
from rlfrontier.envs.trials import TRIAL_EPISODE, TRIAL_TASK, TrialEnv, make_trial_env
from rlfrontier.validation import BadInput

BANDIT = "rlfrontier/Bandit-v0"


def bandit_trials(*, arms: int = 5, pulls: int = 3, episodes_per_trial: int = 2) -> TrialEnv:
    return TrialEnv(BanditEnv(arms=arms, pulls=pulls), episodes_per_trial=episodes_per_trial)


# The trial wrapper ------------------------------------------------------------------------------------------
def test_the_observation_is_obs_then_one_hot_previous_action_reward_and_done_and_zero_at_the_trial_start():
    env = bandit_trials(arms=4, pulls=2, episodes_per_trial=2)
    layout = env.layout
    assert env.observation_space.shape == (1 + 4 + 1 + 1,)
    assert [layout[k] for k in ("obs", "prev_action", "prev_reward", "done")] == [
        slice(0, 1), slice(1, 5), slice(5, 6), slice(6, 7)]
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(7, np.float32))
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    env.unwrapped.set_task({"means": [0.0, 1.0, 0.0, 0.0]})  # arm 1 always pays, the others never
    rows = []
    for arm in (1, 3, 2, 1):
        obs, reward, terminated, truncated, info = env.step(arm)
        rows.append((obs, reward, terminated, truncated, info[TRIAL_EPISODE]))
        assert env.observation_space.contains(obs)
    # Pull 1 (arm 1, paid 1), pull 2 ends the first episode (arm 3, paid 0): done 1, the inner obs the next reset's.
    np.testing.assert_array_equal(rows[0][0], [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(rows[1][0], [0, 0, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(rows[2][0], [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(rows[3][0], [0, 0, 1, 0, 0, 1, 1])
    assert [r[1] for r in rows] == [1.0, 0.0, 0.0, 1.0]
    # The trial ends once, at its last step, as a termination (no bootstrap past a trial).
    assert [(r[2], r[3]) for r in rows] == [(False, False)] * 3 + [(True, False)]
    assert [r[4] for r in rows] == [0, 0, 1, 1]
    with pytest.raises(RuntimeError, match="trial is over"):
        env.step(0)


def test_a_box_action_goes_in_as_its_vector_after_the_position():
    env = TrialEnv(PointNavEnv(horizon=2), episodes_per_trial=1)
    assert env.observation_space.shape == (2 + 2 + 1 + 1,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(6, np.float32))
    env.unwrapped.set_task({"goal": [0.3, 0.0]})
    obs, reward, terminated, truncated, _ = env.step(np.array([0.05, -0.02], np.float32))
    np.testing.assert_allclose(obs, [0.05, -0.02, 0.05, -0.02, reward, 0.0], atol=1e-7)
    assert reward == pytest.approx(-np.hypot(0.25, 0.02), abs=1e-6)
    assert not terminated
    _, _, terminated, truncated, _ = env.step(np.array([0.0, 0.0], np.float32))
    assert terminated and not truncated


def test_the_task_stays_fixed_within_a_trial_and_is_drawn_anew_for_each_trial():
    env = bandit_trials(pulls=3, episodes_per_trial=3)
    seen = []
    for trial in range(4):
        obs, info = env.reset(seed=7 if trial == 0 else None)
        tasks = [info[TRIAL_TASK]]
        terminated = False
        while not terminated:
            _, _, terminated, _, _ = env.step(env.action_space.sample())
            tasks.append(env.unwrapped.get_task())
        assert len(tasks) == 1 + 3 * 3
        assert all(t == tasks[0] for t in tasks), f"trial {trial}: the task changed between its episodes"
        seen.append(json.dumps(tasks[0]))
    assert len(set(seen)) == 4, "each trial draws its own task"
    # Drawn from the env's own stream: the same reset seed draws the same tasks.
    again = bandit_trials(pulls=3, episodes_per_trial=3)
    assert json.dumps(again.reset(seed=7)[1][TRIAL_TASK]) == seen[0]


def test_a_trial_starts_under_its_own_task():
    """The reset info of a trial's first episode is its task's (PointNav: the distance to the trial's goal)."""
    env = TrialEnv(PointNavEnv(horizon=3), episodes_per_trial=2)
    for trial in range(3):
        _, info = env.reset(seed=11 if trial == 0 else None)
        assert info["distance"] == pytest.approx(float(np.linalg.norm(info[TRIAL_TASK]["goal"])))


def test_a_fixed_task_holds_for_every_trial_until_cleared():
    env = bandit_trials()
    task = {"means": [0.1, 0.2, 0.3, 0.4, 0.5]}
    env.task = task  # as rlfrontier.meta_tasks sets it, through set_attr("task")
    assert env.fixed_task == task and env.task == task
    for seed in (0, 1, None):
        assert env.reset(seed=seed)[1][TRIAL_TASK] == task
    env.fixed_task = None
    assert env.reset()[1][TRIAL_TASK] != task
    with pytest.raises(BadInput, match=r"task\['means'\]\[0\]=1.5"):
        env.task = {"means": [1.5, 0.0, 0.0, 0.0, 0.0]}


def test_tasks_reach_trial_envs_behind_the_vector_env_as_meta_tasks_sets_them():
    vector = gym.vector.SyncVectorEnv([lambda: gym.wrappers.PassiveEnvChecker(bandit_trials())] * 2)
    tasks = [{"means": [0.9, 0.0, 0.0, 0.0, 0.0]}, {"means": [0.0, 0.0, 0.0, 0.0, 0.9]}]
    meta_tasks.set_env_tasks(vector, tasks)
    _, infos = vector.reset(seed=3)
    assert list(infos[TRIAL_TASK]["means"]) == [t["means"] for t in tasks]
    assert meta_tasks.get_env_tasks(vector) == tasks


def test_an_env_that_is_no_task_distribution_or_draws_its_own_tasks_is_refused():
    with pytest.raises(BadInput, match="rl2 needs a task distribution .*CartPole-v1"):
        check_trial_env_id("CartPole-v1", {})
    with pytest.raises(BadInput, match="resample_on_reset=True on rlfrontier/Bandit-v0"):
        check_trial_env_id(BANDIT, {"resample_on_reset": True})
    with pytest.raises(BadInput, match="episodes_per_trial=0"):
        TrialEnv(BanditEnv(), episodes_per_trial=0)
    assert isinstance(make_trial_env(BANDIT, {"arms": 3}, episodes_per_trial=2), TrialEnv)


# The reward's bounds are the env's, unknown: (-inf, inf).
@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version", "ignore:.*observation space m")
def test_gymnasium_env_checker_passes_on_trials():
    from gymnasium.utils.env_checker import check_env

    check_env(bandit_trials(), skip_render_check=True)
    check_env(TrialEnv(PointNavEnv(horizon=3), episodes_per_trial=2), skip_render_check=True)


# The recurrent state through RLlib's real pipelines -------------------------------------------------------------
PULLS, EPISODES_PER_TRIAL, TRIALS = 3, 2, 3
TRIAL_LENGTH = PULLS * EPISODES_PER_TRIAL


def small_config(**training) -> RL2Config:
    envs.register_with_ray(BANDIT)
    config = (RL2Config().environment(BANDIT, env_config={"pulls": PULLS})
              .training(episodes_per_trial=EPISODES_PER_TRIAL, **training)
              .env_runners(num_env_runners=0, num_envs_per_env_runner=1).debugging(seed=0))
    config.rl_module(model_config={**config.model_config, "lstm_cell_size": 8, "fcnet_hiddens": [8],
                                   "max_seq_len": 4})
    return config


@pytest.fixture(scope="module")
def recorded_trials():
    """(the module's calls [(obs, state_in, state_out)], the episodes, the runner's module) of TRIALS trials played
    by a real RL2EnvRunner built in this process (as `evaluate` builds one; Ray must not start)."""
    import ray

    ray_was_up = ray.is_initialized()
    original_init = ray.init

    def no_ray(*args, **kwargs):
        raise AssertionError("this unit test must not start Ray")

    ray.init = no_ray
    try:
        runner = RL2EnvRunner(config=small_config(), worker_index=0, num_workers=0)
    finally:
        ray.init = original_init
    calls = []
    forward = runner.module.forward_exploration

    def recording(batch, **kwargs):
        out = forward(batch, **kwargs)
        calls.append((batch[Columns.OBS].detach().clone(),
                      {k: v.detach().clone() for k, v in batch[Columns.STATE_IN].items()},
                      {k: v.detach().clone() for k, v in out[Columns.STATE_OUT].items()}))
        return out

    runner.module.forward_exploration = recording
    try:
        episodes = runner.sample(num_episodes=TRIALS, explore=True)
    finally:
        runner.stop()
    assert ray.is_initialized() == ray_was_up
    return calls, episodes, runner.module


def test_the_env_runner_resets_the_state_between_trials_and_keeps_it_between_their_episodes(recorded_trials):
    calls, episodes, module = recorded_trials
    assert [len(e) for e in episodes] == [TRIAL_LENGTH] * TRIALS
    # The EnvRunner calls the module once per action and once more on each trial's terminal observation
    # (gymnasium's next-step autoreset; that action is dropped): TRIAL_LENGTH + 1 calls a trial.
    per_trial = TRIAL_LENGTH + 1
    assert len(calls) >= TRIALS * per_trial - 1  # the last trial's terminal observation ends the sampling
    initial = {k: torch.as_tensor(v) for k, v in module.get_initial_state().items()}
    done = TrialEnv(BanditEnv(pulls=PULLS)).layout["done"]
    for t, (obs, state_in, _) in enumerate(calls[:TRIALS * per_trial - 1]):
        step = t % per_trial
        flat = obs.reshape(-1)
        if step == 0:  # a trial's first step (its observation all zeros): the module's initial state
            assert not flat.any(), t
            for key, value in state_in.items():
                torch.testing.assert_close(value[0], initial[key], msg=f"call {t}: {key} not reset")
            continue
        previous_out = calls[t - 1][2]
        for key, value in state_in.items():
            torch.testing.assert_close(value, previous_out[key], msg=f"call {t}: {key} not carried")
            assert value.abs().sum() > 0
        # The first step of the trial's second episode (and the terminal observation): the done flag is up, and
        # the state is still carried.
        assert float(flat[done.start]) == (1.0 if step in (PULLS, TRIAL_LENGTH) else 0.0), t


def test_the_learner_connector_starts_each_trial_from_the_initial_state_and_later_sequences_from_the_stored_one(
        recorded_trials):
    calls, episodes, _ = recorded_trials
    config = small_config()
    # build_learner already calls learner.build() (a second call would add PPO's pieces twice).
    learner = config.build_learner(env=make_trial_env(BANDIT, {"pulls": PULLS},
                                                      episodes_per_trial=EPISODES_PER_TRIAL))
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=copy.deepcopy(episodes),
                                       shared_data={}, metrics=learner.metrics)[DEFAULT_MODULE_ID]
    # A trial of 6 steps (+1 bootstrap step RLlib adds) in sequences of max_seq_len 4: [4, 3] per trial.
    np.testing.assert_array_equal(np.asarray(batch[Columns.SEQ_LENS]), [4, 3] * TRIALS)
    np.testing.assert_array_equal(np.asarray(batch[Columns.LOSS_MASK]).sum(axis=1), [4, 2] * TRIALS)
    state_in = {k: np.asarray(v) for k, v in batch[Columns.STATE_IN].items()}
    for trial in range(TRIALS):
        first, second = 2 * trial, 2 * trial + 1
        for key, value in state_in.items():
            np.testing.assert_array_equal(value[first], np.zeros_like(value[first]), err_msg=f"trial {trial} {key}")
            # The second sequence starts at the trial's step 4: the EnvRunner's state after step 3.
            np.testing.assert_allclose(value[second], calls[trial * (TRIAL_LENGTH + 1) + 3][2][key][0].numpy(),
                                       rtol=1e-6, atol=1e-7, err_msg=f"trial {trial} {key}")


# Held-out numbers ------------------------------------------------------------------------------------------
class FakeTrial:
    def __init__(self, task, rewards, inner, regrets=None):
        self.task, self.rewards, self.inner, self.regrets = task, rewards, inner, regrets

    def get_infos(self):
        steps = [{TRIAL_EPISODE: k, **({} if self.regrets is None else {"regret": r})}
                 for k, r in zip(self.inner, self.regrets or [0.0] * len(self.inner))]
        return [{TRIAL_TASK: self.task, TRIAL_EPISODE: 0}, *steps]

    def get_rewards(self):
        return list(self.rewards)


def test_trial_metrics_by_hand():
    a, b = {"means": [0.2, 0.8]}, {"means": [0.5, 0.4]}
    trials = [FakeTrial(a, [1, 0, 1, 1], [0, 0, 1, 1], [0.6, 0.0, 0.6, 0.0]),
              FakeTrial(b, [0, 0, 0, 1], [0, 0, 1, 1], [0.0, 0.1, 0.1, 0.0])]
    out = trial_metrics(trials, 2)
    assert out[HELD_OUT_TRIAL_RETURN_MEAN] == pytest.approx(2.0)
    assert out["held_out_return_k0"] == pytest.approx(0.5)
    assert out["held_out_return_k1"] == pytest.approx(1.5)
    assert out[HELD_OUT_ADAPTATION_GAIN] == pytest.approx(1.0)
    assert out[HELD_OUT_REGRET_MEAN] == pytest.approx((1.2 + 0.2) / 2)
    # Without regret in the infos (PointNav) no regret; with one episode a trial no gain.
    plain = trial_metrics([FakeTrial(a, [1.0, 2.0], [0, 0])], 1)
    assert set(plain) == {HELD_OUT_TRIAL_RETURN_MEAN, "held_out_return_k0"}
    assert set(trial_metrics([FakeTrial(a, [1.0, 2.0], [0, 0])], 1, prefix="held_out_greedy_")) == {
        "held_out_greedy_trial_return_mean", "held_out_greedy_return_k0"}
    assert first_trials_per_task(trials + [FakeTrial(a, [0], [0])], [task_key(a)]) == {task_key(a): trials[0]}


def test_bandit_baselines_are_rlfrontier_bandits_on_the_same_tasks_and_the_ratios_divide_by_them():
    tasks = BanditEnv(arms=5).sample_tasks(20, np.random.default_rng(0))
    out = bandit_baselines(tasks, pulls=10, rng=np.random.default_rng(1), runs=50)
    rng = np.random.default_rng(1)
    assert out[THOMPSON_REGRET_MEAN] == bandits.expected_regret(bandits.ThompsonSampling, tasks, 10, rng, 50)
    assert out[UCB1_REGRET_MEAN] == bandits.expected_regret(bandits.UCB1, tasks, 10, rng, 50)
    assert out[RANDOM_REGRET_MEAN] == bandits.random_regret(tasks, 10)
    assert out[THOMPSON_REGRET_MEAN] < out[RANDOM_REGRET_MEAN]
    ratios = regret_ratios({**out, HELD_OUT_REGRET_MEAN: 1.5})
    assert ratios == {REGRET_RATIO_VS_THOMPSON: pytest.approx(1.5 / out[THOMPSON_REGRET_MEAN]),
                      REGRET_RATIO_VS_UCB1: pytest.approx(1.5 / out[UCB1_REGRET_MEAN])}
    greedy = regret_ratios({**out, HELD_OUT_REGRET_MEAN: 1.5, "held_out_greedy_regret_mean": 1.2}, greedy=True)
    assert greedy == {"greedy_" + REGRET_RATIO_VS_THOMPSON: pytest.approx(1.2 / out[THOMPSON_REGRET_MEAN]),
                      "greedy_" + REGRET_RATIO_VS_UCB1: pytest.approx(1.2 / out[UCB1_REGRET_MEAN])}


# Config -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("episodes_per_trial", 0), ("episodes_per_trial", 1.5), ("held_out_seed", -1), ("held_out_tasks", 0),
    ("held_out_tasks", 1001), ("held_out_trials", 0), ("held_out_explore", "yes"),
    ("held_out_greedy", 1),
])
def test_a_bad_value_is_bad_input_naming_its_field(field, value):
    config = RL2Config().environment(BANDIT)
    setattr(config, field, value)
    with pytest.raises(BadInput, match=f"^{field}="):
        config.validate()


def test_a_module_without_memory_and_an_env_runner_without_trials_are_refused():
    config = RL2Config().environment(BANDIT)
    config.rl_module(model_config={**config.model_config, "use_lstm": False})
    with pytest.raises(BadInput, match="use_lstm=False"):
        config.validate()
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    config = RL2Config().environment(BANDIT).env_runners(env_runner_cls=SingleAgentEnvRunner)
    with pytest.raises(BadInput, match="env_runner_cls=.*SingleAgentEnvRunner"):
        config.validate()
    with pytest.raises(BadInput, match="CartPole-v1"):
        RL2Config().environment("CartPole-v1").validate()


def test_the_defaults_validate():
    config = RL2Config().environment(BANDIT)
    config.validate()  # raises BadInput on any bad field
    # What the defaults are documented to be: trials on RL2EnvRunner, one bandit episode a trial, an LSTM
    # whose sequences hold a whole 10-pull trial.
    assert config.env_runner_cls is RL2EnvRunner and config.episodes_per_trial == 1
    assert config.model_config["use_lstm"] and config.model_config["max_seq_len"] >= 10
