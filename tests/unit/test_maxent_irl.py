"""maxent_irl's loss, module and config, without Ray."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlfrontier import envs, tabular
from rlfrontier.algorithms.maxent_irl import MaxEntIRLConfig, losses
from rlfrontier.algorithms.maxent_irl.maxent_irl import expert_visitation, world_of
from rlfrontier.algorithms.maxent_irl.torch.maxent_irl_torch_rl_module import MaxEntIRLTorchRLModule
from rlfrontier.validation import BadInput

GRID = "rlfrontier/GridWorld-v0"


def test_loss_gradient_is_minus_the_occupancy_gap_over_the_scale():
    reward = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    gap = torch.tensor([0.3, -0.2, -0.1])
    losses.maxent_loss(reward, gap, scale=4.0).backward()
    torch.testing.assert_close(reward.grad, -gap / 4.0)


def test_loss_for_a_linear_reward_has_the_feature_count_gradient():
    features = torch.tensor([[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]])
    w = torch.tensor([0.1, -0.3], requires_grad=True)
    gap = torch.tensor([0.4, -0.1, -0.3])
    losses.maxent_loss(features @ w, gap, scale=2.0).backward()
    torch.testing.assert_close(w.grad, -(features.T @ gap) / 2.0)


def _config(**training) -> MaxEntIRLConfig:
    envs.register_envs()
    return MaxEntIRLConfig().environment(GRID, env_config={"size": 4, "block": 2}).training(**training)


def _module(config: MaxEntIRLConfig) -> MaxEntIRLTorchRLModule:
    return config.get_rl_module_spec(
        env=gym.make(GRID, **config.env_config), inference_only=True
    ).build()


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_module_explores_with_the_soft_table_and_acts_greedily_with_the_optimal_actions(model):
    config = _config(reward_model=model)
    module = _module(config)
    mdp = world_of(config)
    assert module.state_reward(torch.as_tensor(mdp.features)).shape == (mdp.num_states,)
    logits = torch.randn(mdp.num_states, mdp.num_actions)
    greedy = torch.randint(0, mdp.num_actions, (mdp.num_states,))
    module.set_policy_logits(logits, greedy_actions=greedy)
    rows = [3, 0, 7]
    obs = torch.eye(mdp.num_states)[rows]
    explore = module.forward_exploration({"obs": obs})["action_dist_inputs"]
    torch.testing.assert_close(explore, logits[rows])
    inference = module.forward_inference({"obs": obs})["action_dist_inputs"]
    torch.testing.assert_close(inference.argmax(-1), greedy[rows])
    # The tables travel in the state (checkpoints, weight syncs).
    assert {"policy_logits", "greedy_actions"} <= set(module.get_state())


def test_expert_visitation_from_demonstrations_counts_the_states_acted_from(tmp_path):
    """2,000 recorded episodes of the optimal policy against its exact visitation: a count off by one
    step (the final next_obs counted, or the first obs not) moves every state's frequency by far more
    than the bound. Bound: 5 standard errors of a per-state mean of T Bernoulli counts, each
    frequency's std <= sqrt(T * d_max / n); false failure below 16 * 6e-7 (Gaussian tail, 16 states)."""
    from rlfrontier import demos

    config = _config()
    mdp = world_of(config)
    n = 2000
    demos.record(out=tmp_path / "d", env_id=GRID, env_config=config.env_config, episodes=n, scripted="optimal")
    empirical = expert_visitation(_config(demos=str(tmp_path / "d")), mdp)
    exact = expert_visitation(config, mdp)
    assert empirical.sum() == pytest.approx(mdp.horizon)
    bound = 5 * np.sqrt(mdp.horizon * exact.max() / n)
    np.testing.assert_array_less(np.abs(empirical - exact), bound)


def test_demonstrations_of_another_world_or_a_stationary_run_are_refused(tmp_path):
    from rlfrontier import demos

    demos.record(out=tmp_path / "d", env_id=GRID, env_config={"size": 6, "block": 2}, episodes=2, scripted="optimal")
    config = _config(demos=str(tmp_path / "d"))  # a 4 x 4 world
    with pytest.raises(BadInput, match="recorded with env_config"):
        expert_visitation(config, world_of(config))
    with pytest.raises(BadInput, match="stationary=True with --demos"):
        _config(demos=str(tmp_path / "d"), stationary=True, gamma=0.9).validate()


def test_linear_reward_starts_at_zero_so_the_first_policy_is_uniform():
    config = _config()
    module = _module(config)
    mdp = world_of(config)
    assert torch.count_nonzero(module.state_reward(torch.as_tensor(mdp.features))) == 0


def test_expert_visitation_without_demos_is_the_optimal_policys_exact_one():
    config = _config()
    mdp = world_of(config)
    mu = expert_visitation(config, mdp)
    assert mu.sum() == pytest.approx(mdp.horizon)
    policy = tabular.one_hot_policy(tabular.optimal_policy(mdp), mdp.num_actions)
    assert mu @ mdp.reward == pytest.approx(tabular.policy_value(mdp, policy))


@pytest.mark.parametrize(
    "training, named",
    [
        ({"reward_model": "cnn"}, "reward_model='cnn'"),
        ({"reward_l2": -1.0}, "reward_l2=-1.0"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"gamma": 0.0}, "gamma=0.0"),
        ({"stationary": True, "gamma": 1.0}, "gamma=1.0"),
        ({"hidden_sizes": []}, "hidden_sizes=[]"),
        ({"expert": "human"}, "expert='human'"),
    ],
)
def test_bad_settings_are_bad_input_naming_the_value(training, named):
    with pytest.raises(BadInput, match=named.replace("[", r"\[").replace("]", r"\]")):
        _config(**training).validate()


def test_two_learners_are_refused():
    config = _config().learners(num_learners=2)
    with pytest.raises(BadInput, match="num_learners=2"):
        config.validate()


def test_stationary_expert_visitation_sums_to_the_discounted_total():
    config = _config(stationary=True, gamma=0.9)
    mdp = world_of(config)
    assert expert_visitation(config, mdp).sum() == pytest.approx(1 / (1 - 0.9))


def test_world_is_built_once_per_env_config():
    a, b = world_of(_config()), world_of(_config())
    assert a is b
    other = MaxEntIRLConfig().environment(GRID, env_config={"size": 6, "block": 2})
    assert world_of(other).num_states == 36
    np.testing.assert_allclose(a.transitions.sum(-1), 1.0)
