"""SoftQTorchRLModule: shapes, Boltzmann inputs Q / alpha, twin Q, target nets, inference-only."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch
from ray.rllib.core.columns import Columns

from rlfrontier.algorithms.soft_q.torch.soft_q_torch_rl_module import (
    LOG_ALPHA,
    Q_VALUES,
    Q_VALUES_TWIN,
    SoftQTorchRLModule,
)

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,))
ACT_SPACE = gym.spaces.Discrete(3)
MODEL_CONFIG = {"hidden_sizes": [8], "twin_q": True, "initial_alpha": 0.5}


def make_module(*, inference_only: bool = False, **model_config) -> SoftQTorchRLModule:
    torch.manual_seed(0)
    return SoftQTorchRLModule(
        observation_space=OBS_SPACE,
        action_space=ACT_SPACE,
        model_config={**MODEL_CONFIG, **model_config},
        inference_only=inference_only,
    )


def obs_batch(batch_size: int = 5) -> dict:
    gen = torch.Generator().manual_seed(1)
    return {Columns.OBS: torch.rand(batch_size, 4, generator=gen) * 2 - 1}


def set_constant_head(net: torch.nn.Sequential, bias) -> None:
    """Makes a Q head output `bias` for every observation (zero last-layer weights)."""
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.copy_(torch.tensor(bias))


def test_forward_train_shapes():
    module = make_module()
    out = module.forward_train(obs_batch(5))
    assert out[Q_VALUES].shape == (5, 3)
    assert out[Q_VALUES_TWIN].shape == (5, 3)
    assert out[LOG_ALPHA].shape == ()
    assert out[LOG_ALPHA].item() == pytest.approx(math.log(0.5))
    # Two independently initialised heads.
    assert not torch.allclose(out[Q_VALUES], out[Q_VALUES_TWIN])


def test_forward_train_puts_every_submodule_back_in_train_mode():
    module = make_module()
    module.forward_train(obs_batch(2))
    assert all(m.training for m in module.modules())
    module.eval()  # as RLlib's forward_inference does, or a user
    module.forward_train(obs_batch(2))
    assert all(m.training for m in module.modules())


def test_without_twin_q_there_is_no_twin_head():
    module = make_module(twin_q=False)
    out = module.forward_train(obs_batch(2))
    assert Q_VALUES_TWIN not in out
    assert not hasattr(module, "qf_twin")


def test_hidden_sizes_build_the_mlp():
    module = make_module(hidden_sizes=[8, 6])
    linears = [m for m in module.qf if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(4, 8), (8, 6), (6, 3)]


def test_image_like_observations_are_flattened():
    module = SoftQTorchRLModule(
        observation_space=gym.spaces.Box(0.0, 1.0, (2, 3, 2)),
        action_space=gym.spaces.Discrete(4),
        model_config={"hidden_sizes": [8]},
    )
    out = module.forward_train({Columns.OBS: torch.rand(7, 2, 3, 2)})
    assert out[Q_VALUES].shape == (7, 4)
    assert module.qf[0].in_features == 12


@pytest.mark.parametrize("forward", ["forward_exploration", "forward_inference"])
def test_action_dist_inputs_are_q_over_alpha(forward):
    module = make_module()
    batch = obs_batch(6)
    q = module.forward_train(batch)[Q_VALUES]
    inputs = getattr(module, forward)(batch)[Columns.ACTION_DIST_INPUTS]
    # alpha = 0.5: inputs = 2 * Q.
    torch.testing.assert_close(inputs, q / 0.5)
    torch.testing.assert_close(inputs, 2.0 * q)


def test_action_dist_inputs_hand_computed_with_constant_head():
    # Q = [1, -2, 0.5] everywhere, alpha = 0.5: inputs [2, -4, 1]; softmax gives the Boltzmann policy.
    module = make_module()
    set_constant_head(module.qf, [1.0, -2.0, 0.5])
    inputs = module.forward_exploration(obs_batch(3))[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(inputs, torch.tensor([[2.0, -4.0, 1.0]] * 3))


def test_compute_q_values_matches_forward_train():
    module = make_module()
    batch = obs_batch(4)
    torch.testing.assert_close(module.compute_q_values(batch)[Q_VALUES], module.forward_train(batch)[Q_VALUES])


def test_fixed_alpha_is_a_buffer_and_learnt_alpha_a_parameter():
    fixed = make_module()
    assert "log_alpha" in dict(fixed.named_buffers())
    assert "log_alpha" not in dict(fixed.named_parameters())
    learnt = make_module(learn_alpha=True)
    assert "log_alpha" in dict(learnt.named_parameters())
    assert learnt.alpha.item() == pytest.approx(0.5)


def test_restoring_state_keeps_a_fixed_alpha_and_carries_a_learnt_one():
    # PBT exploits by restoring another trial's checkpoint under a mutated
    # config: a fixed alpha must be this config's, a learnt one the checkpoint's.
    donor = make_module(initial_alpha=0.05)
    donor.make_target_networks()
    fixed = make_module(initial_alpha=0.2)
    fixed.make_target_networks()
    fixed.set_state(donor.get_state())
    assert fixed.alpha.item() == pytest.approx(0.2)
    torch.testing.assert_close(fixed.qf[0].weight, donor.qf[0].weight)

    learnt_donor = make_module(initial_alpha=0.05, learn_alpha=True)
    learnt = make_module(initial_alpha=0.2, learn_alpha=True)
    learnt.set_state(learnt_donor.get_state())
    assert learnt.alpha.item() == pytest.approx(0.05)


def test_acting_sends_no_gradient_into_log_alpha():
    # forward_exploration runs under no_grad; _forward is the graph it wraps.
    module = make_module(learn_alpha=True)
    inputs = module._forward(obs_batch(3))[Columns.ACTION_DIST_INPUTS]
    inputs.sum().backward()
    assert module.log_alpha.grad is None
    assert module.qf[0].weight.grad is not None


def test_target_networks_start_as_copies_and_are_frozen():
    module = make_module()
    module.make_target_networks()
    batch = obs_batch(5)
    torch.testing.assert_close(module.target_qf(batch[Columns.OBS]), module.qf(batch[Columns.OBS]))
    torch.testing.assert_close(
        module.target_qf_twin(batch[Columns.OBS]), module.qf_twin(batch[Columns.OBS])
    )
    assert all(not p.requires_grad for p in module.target_qf.parameters())
    assert all(not p.requires_grad for p in module.target_qf_twin.parameters())
    assert module.target_qf is not module.qf
    pairs = module.get_target_network_pairs()
    assert pairs == [(module.qf, module.target_qf), (module.qf_twin, module.target_qf_twin)]


def test_forward_target_is_the_min_of_both_target_heads():
    module = make_module()
    module.make_target_networks()
    batch = obs_batch(5)
    q1 = module.target_qf(batch[Columns.OBS])
    q2 = module.target_qf_twin(batch[Columns.OBS])
    torch.testing.assert_close(module.forward_target(batch)[Q_VALUES], torch.minimum(q1, q2))


def test_forward_target_min_hand_computed():
    # Target heads [0, 1, 2] and [2, 1, 0] -> element-wise min [0, 1, 0]; the online heads
    # ([9, 9, 9]) do not enter the target.
    module = make_module()
    module.make_target_networks()
    set_constant_head(module.target_qf, [0.0, 1.0, 2.0])
    set_constant_head(module.target_qf_twin, [2.0, 1.0, 0.0])
    set_constant_head(module.qf, [9.0, 9.0, 9.0])
    out = module.forward_target(obs_batch(2))[Q_VALUES]
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 0.0]] * 2))


def test_forward_target_without_twin_is_the_single_target_head():
    module = make_module(twin_q=False)
    module.make_target_networks()
    set_constant_head(module.target_qf, [3.0, -1.0, 2.0])
    out = module.forward_target(obs_batch(2))[Q_VALUES]
    torch.testing.assert_close(out, torch.tensor([[3.0, -1.0, 2.0]] * 2))
    assert module.get_target_network_pairs() == [(module.qf, module.target_qf)]


def test_inference_only_module_has_no_twin_head():
    module = make_module(inference_only=True)
    assert not hasattr(module, "qf_twin")
    inputs = module.forward_exploration(obs_batch(3))[Columns.ACTION_DIST_INPUTS]
    assert inputs.shape == (3, 3)


def test_non_inference_attributes():
    assert make_module().get_non_inference_attributes() == ["qf_twin", "target_qf", "target_qf_twin"]
    assert make_module(twin_q=False).get_non_inference_attributes() == ["target_qf"]


def test_inference_only_state_moves_to_an_env_runner_module():
    # The learner's module (twin heads + targets) syncs to an EnvRunner's inference-only one.
    learner_module = make_module(learn_alpha=True)
    learner_module.make_target_networks()
    with torch.no_grad():
        learner_module.log_alpha.fill_(math.log(0.25))
    state = learner_module.get_state(inference_only=True)
    assert not any(k.startswith(("qf_twin", "target_qf")) for k in state)
    assert "log_alpha" in state
    runner_module = SoftQTorchRLModule(
        observation_space=OBS_SPACE,
        action_space=ACT_SPACE,
        model_config={**MODEL_CONFIG, "hidden_sizes": [8], "learn_alpha": True},
        inference_only=True,
    )
    runner_module.set_state(state)
    batch = obs_batch(4)
    torch.testing.assert_close(
        runner_module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
        learner_module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
    )
    assert runner_module.alpha.item() == pytest.approx(0.25)


@pytest.mark.parametrize(
    "action_space",
    [gym.spaces.Box(-1.0, 1.0, (2,)), gym.spaces.MultiDiscrete([2, 3])],
)
def test_non_discrete_action_space_raises(action_space):
    with pytest.raises(ValueError, match="Discrete action space"):
        SoftQTorchRLModule(observation_space=OBS_SPACE, action_space=action_space, model_config={})
