"""Registry entries: what an algorithm needs, its policy module, primary metric and evaluation hook."""

from __future__ import annotations

import gymnasium as gym
import pytest
from ray.rllib.core import DEFAULT_MODULE_ID

from rlfrontier import registry
from rlfrontier.validation import BadInput


def spec(**kwargs) -> registry.AlgoSpec:
    return registry.AlgoSpec("toy", "a toy", "rlfrontier", ("Discrete",), lambda: None, **kwargs)


class Tabular(gym.Env):
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def transition_tensor(self): ...
    def state_features(self): ...
    def true_reward(self): ...
    initial_distribution = (1.0, 0.0, 0.0)
    horizon = 5


class Tasks(gym.Env):
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def sample_tasks(self, n, rng): ...
    def set_task(self, task): ...


def test_every_entry_acts_through_the_default_module_and_optimises_its_own_measure_or_the_return():
    for entry in registry.ALGORITHMS.values():
        assert entry.policy_module_id == DEFAULT_MODULE_ID
        if entry.evaluation_hook is None:
            assert (entry.primary_metric, entry.mode) == (registry.EVAL_RETURN_MEAN, "max")
        else:  # a measure the hook reports, under the result's "metrics"
            assert entry.primary_metric.startswith(registry.EVALUATION_METRICS + "/")


def test_maxent_irl_needs_a_tabular_world_takes_demonstrations_and_minimises_the_value_difference():
    entry = registry.get_algorithm("maxent_irl")
    assert entry.needs == (registry.TABULAR_MDP,) and registry.takes_demos(entry)
    assert (entry.primary_metric, entry.mode) == ("metrics/expected_value_difference", "min")
    assert not registry.takes_demos(registry.get_algorithm("boot_dqn"))


def test_needs_are_checked_against_the_env_and_the_run():
    registry.check_needs(spec(needs=(registry.TABULAR_MDP,)), gym.wrappers.TimeLimit(Tabular(), 5), env_id="t")
    registry.check_needs(spec(needs=(registry.TASK_DISTRIBUTION,)), Tasks(), env_id="k")
    registry.check_needs(spec(needs=(registry.DEMONSTRATIONS,)), Tasks(), env_id="k", demos="demos/")
    with pytest.raises(BadInput, match=r"^toy needs a tabular MDP with known dynamics .*; k lacks transition_tensor, state_features, true_reward, initial_distribution, horizon$"):
        registry.check_needs(spec(needs=(registry.TABULAR_MDP,)), Tasks(), env_id="k")

    class NoHorizon(gym.Env):  # the messages need where episodes start and how long they run
        transition_tensor = state_features = true_reward = Tabular.true_reward
        initial_distribution = Tabular.initial_distribution

    with pytest.raises(BadInput, match=r"; n lacks horizon$"):
        registry.check_needs(spec(needs=(registry.TABULAR_MDP,)), NoHorizon(), env_id="n")
    with pytest.raises(BadInput, match=r"^toy needs a task distribution .*; t lacks sample_tasks, set_task$"):
        registry.check_needs(spec(needs=(registry.TASK_DISTRIBUTION,)), Tabular(), env_id="t")
    with pytest.raises(BadInput, match=r"^toy needs demonstrations \(--demos DIR\)$"):
        registry.check_needs(spec(needs=(registry.DEMONSTRATIONS,)), Tabular(), env_id="t")


def test_a_bad_entry_is_refused_when_declared():
    with pytest.raises(ValueError, match="unknown needs"):
        spec(needs=("a GPU",))
    with pytest.raises(ValueError, match="mode must be"):
        spec(mode="maximise")


def test_the_evaluation_hook_reports_numbers_only():
    assert registry.evaluation_metrics(spec(), object()) == {}
    good = spec(evaluation_hook=lambda algo: {"reward_correlation": 0.9, "gain": 2})
    assert registry.evaluation_metrics(good, object()) == {"reward_correlation": 0.9, "gain": 2.0}
    bad = spec(evaluation_hook=lambda algo: {"reward_correlation": "high"})
    with pytest.raises(ValueError, match="toy evaluation hook returned reward_correlation='high', not a number"):
        registry.evaluation_metrics(bad, object())
