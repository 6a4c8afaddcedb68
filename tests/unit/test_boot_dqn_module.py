"""BootDQNTorchRLModule: ensemble shapes, fixed priors, per-episode heads, voting, epsilon."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rlfrontier.algorithms.boot_dqn.connectors import BOOTSTRAP_HEAD, BootstrapHeadPicker
from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_rl_module import (
    HEAD_ROWS,
    Q_VALUES,
    BootDQNTorchRLModule,
    EnsembleLinear,
    epsilon_at,
    one_hot_rows,
    select_head_rows,
)

OBS_SPACE = gym.spaces.Box(0.0, 1.0, (6,))
ACT_SPACE = gym.spaces.Discrete(3)


def make_module(**model_config) -> BootDQNTorchRLModule:
    torch.manual_seed(0)
    return BootDQNTorchRLModule(
        observation_space=OBS_SPACE,
        action_space=ACT_SPACE,
        model_config={"num_heads": 4, "hidden_sizes": [8], "prior_scale": 3.0, **model_config},
    )


def obs(batch_size: int = 5) -> torch.Tensor:
    return torch.rand(batch_size, 6, generator=torch.Generator().manual_seed(1))


def test_ensemble_linear_equals_k_separate_linear_layers():
    layer = EnsembleLinear(3, 5, 2)
    x = torch.randn(7, 5)
    out = layer(x)
    assert out.shape == (3, 7, 2)
    for k in range(3):
        torch.testing.assert_close(out[k], x @ layer.weight[k] + layer.bias[k])
    # Per-head inputs go through the batched matmul.
    xs = torch.randn(3, 7, 5)
    torch.testing.assert_close(layer(xs)[1], xs[1] @ layer.weight[1] + layer.bias[1])


def test_one_hot_rows_are_gathered_with_the_matmuls_values_and_gradients():
    layer = EnsembleLinear(3, 6, 4)
    # DeepSea-like rows: one-hot cells, a repeated cell, and an all-zero terminal observation.
    x = torch.zeros(5, 6)
    x[0, 2] = x[1, 5] = x[3, 2] = x[4, 0] = 1.0
    rows = one_hot_rows(x)
    assert rows.index.tolist() == [2, 5, 0, 2, 0] and rows.present.view(-1).tolist() == [1, 1, 0, 1, 1]
    gathered = layer(rows)
    (gathered * torch.arange(60.0).view(3, 5, 4)).sum().backward()
    grads = (layer.weight.grad.clone(), layer.bias.grad.clone())
    layer.zero_grad()
    dense = torch.baddbmm(layer.bias, x.unsqueeze(0).expand(3, -1, -1), layer.weight)
    (dense * torch.arange(60.0).view(3, 5, 4)).sum().backward()
    assert torch.equal(gathered, dense)  # bit for bit: the matmul adds only exact zeros
    torch.testing.assert_close(grads, (layer.weight.grad, layer.bias.grad), rtol=0, atol=1e-6)
    assert torch.equal(gathered[:, 2], layer.bias[:, 0].detach())  # all-zero row: the bias alone


@pytest.mark.parametrize("rows", [
    [[0.0, 1.0, 1.0]],       # two ones
    [[0.0, 0.5, 0.0]],       # not a one
    [[0.0, -1.0, 0.0]],
    [[float("nan"), 0.0, 0.0]],
    [[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]],  # one dense row is enough
])
def test_rows_that_are_not_one_hot_take_the_matmul(rows):
    assert one_hot_rows(torch.tensor(rows)) is None


def test_module_q_values_on_one_hot_observations_equal_the_dense_layers():
    module = make_module()
    x = torch.eye(6)[[1, 4, 4]]
    assert one_hot_rows(x).present is None  # no all-zero row
    q = module.q_all(x)
    first = module.qf.layers[0]
    h = torch.relu(x @ first.weight + first.bias)
    for i, layer in enumerate(module.qf.layers[1:]):
        h = torch.baddbmm(layer.bias, h, layer.weight)
        h = torch.relu(h) if i < len(module.qf.layers) - 2 else h
    torch.testing.assert_close(q, h + module.prior_q(x))


def test_q_values_are_trained_net_plus_scaled_fixed_prior():
    module = make_module()
    batch = {Columns.OBS: obs()}
    q = module.forward_train(batch)[Q_VALUES]
    assert q.shape == (4, 5, 3)
    x = obs()
    torch.testing.assert_close(q, module.qf(x) + 3.0 * module.prior(x))
    assert not any(p.requires_grad for p in module.prior.parameters())
    # The heads differ (independent initialisations and priors).
    assert not torch.allclose(q[0], q[1])


def test_zero_bias_init_zeroes_every_bias_of_heads_and_priors_and_keeps_the_weights():
    uniform, zero = make_module(zero_bias_init=False), make_module(zero_bias_init=True)
    for net in (zero.qf, zero.prior):
        for layer in net.layers:
            assert torch.count_nonzero(layer.bias) == 0
    assert all(torch.count_nonzero(layer.bias) > 0 for layer in uniform.prior.layers)
    for net in ("qf", "prior"):  # the same seed draws the same weights
        for a, b in zip(getattr(uniform, net).layers, getattr(zero, net).layers):
            assert torch.equal(a.weight, b.weight)
    # An all-zero input (DeepSea's terminal observation) then has Q = 0 in every head.
    assert torch.count_nonzero(zero.q_all(torch.zeros(2, 6))) == 0


def test_prior_fan_in_scales_the_priors_first_layer_and_nothing_else():
    # OBS_SPACE is 6 wide: drawn for fan_in 24, the prior's first weights are sqrt(6 / 24) = 1/2 of torch's
    # (the same draws, scaled), its other layers and the trained heads the same.
    default, narrow = make_module(), make_module(prior_fan_in=24)
    torch.testing.assert_close(narrow.prior.layers[0].weight, 0.5 * default.prior.layers[0].weight)
    for a, b in zip(default.prior.layers[1:], narrow.prior.layers[1:]):
        assert torch.equal(a.weight, b.weight)
    for a, b in zip(default.qf.parameters(), narrow.qf.parameters()):
        assert torch.equal(a, b)
    # With zero biases the network is positively homogeneous: the prior's outputs scale alike, so on
    # DeepSea prior_fan_in=100 is prior_scale * N / 10 of the default at every N.
    x = obs()
    torch.testing.assert_close(narrow.prior_q(x), 0.5 * default.prior_q(x))


def test_prior_gets_no_gradient_and_is_in_the_state():
    module = make_module()
    module.forward_train({Columns.OBS: obs()})[Q_VALUES].sum().backward()
    assert all(p.grad is None for p in module.prior.parameters())
    assert all(p.grad is not None for p in module.qf.parameters())
    assert any(k.startswith("prior.") for k in module.get_state())


def test_exploration_acts_greedily_with_each_rows_head():
    module = make_module()
    x = obs(6)
    heads = torch.tensor([0, 1, 2, 3, 0, 1])
    actions = module.forward_exploration({Columns.OBS: x, BOOTSTRAP_HEAD: heads}, t=0)[Columns.ACTIONS]
    q = module.q_all(x)
    expected = torch.stack([q[h, i].argmax() for i, h in enumerate(heads.tolist())])
    torch.testing.assert_close(actions, expected)


def test_inference_votes_and_one_head_is_greedy():
    module = make_module(num_heads=1)
    x = obs(8)
    actions = module.forward_inference({Columns.OBS: x})[Columns.ACTIONS]
    torch.testing.assert_close(actions, module.q_all(x)[0].argmax(dim=-1))


def test_epsilon_schedule_is_piecewise_linear_in_env_steps():
    assert epsilon_at(0.1, 5) == 0.1
    schedule = [[0, 1.0], [1000, 0.1]]
    assert epsilon_at(schedule, 0) == 1.0
    assert epsilon_at(schedule, 500) == pytest.approx(0.55)
    assert epsilon_at(schedule, 10_000) == pytest.approx(0.1)
    assert epsilon_at(schedule, None) == pytest.approx(0.1)


def test_epsilon_one_acts_uniformly_at_random():
    module = make_module(epsilon=1.0)
    torch.manual_seed(3)
    x = torch.rand(3000, 6)
    actions = module.forward_exploration({Columns.OBS: x, BOOTSTRAP_HEAD: torch.zeros(3000, dtype=torch.long)},
                                         t=0)[Columns.ACTIONS]
    counts = np.bincount(actions.numpy(), minlength=3) / 3000
    assert np.all(np.abs(counts - 1 / 3) < 0.05), counts


def test_target_network_is_a_frozen_copy_with_the_same_prior():
    module = make_module()
    module.make_target_networks()
    x = {Columns.OBS: obs()}
    torch.testing.assert_close(module.forward_target(x)[Q_VALUES], module.forward_train(x)[Q_VALUES])
    assert module.get_non_inference_attributes() == ["target_qf"]


def test_inference_only_module_takes_the_learner_state():
    learner_module = make_module()
    learner_module.make_target_networks()
    runner = BootDQNTorchRLModule(observation_space=OBS_SPACE, action_space=ACT_SPACE, inference_only=True,
                                  model_config={"num_heads": 4, "hidden_sizes": [8], "prior_scale": 3.0})
    runner.set_state(learner_module.get_state(inference_only=True))
    x = obs()
    torch.testing.assert_close(runner.q_all(x), learner_module.q_all(x))


def _episodes(n: int) -> list:
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    return [SingleAgentEpisode(observations=[OBS_SPACE.sample()], observation_space=OBS_SPACE,
                               action_space=ACT_SPACE) for _ in range(n)]


def _heads_in(batch: dict, episodes: list) -> list[int]:
    column = batch[BOOTSTRAP_HEAD]
    return [column[(e.id_,)][0] for e in episodes]


def test_head_picker_draws_once_per_episode_and_keeps_it_across_chunks():
    picker = BootstrapHeadPicker(num_heads=5, seed=0)
    episodes = _episodes(200)
    first = _heads_in(picker(rl_module=None, batch={}, episodes=episodes), episodes)
    assert first == [e.custom_data[BOOTSTRAP_HEAD] for e in episodes]
    assert set(first) == set(range(5))  # 200 draws cover all 5 heads
    # The next step of the same episodes, and their successor chunks after a
    # sample() boundary (RLlib's cut()), act with the same heads.
    assert _heads_in(picker(rl_module=None, batch={}, episodes=episodes), episodes) == first
    successors = [e.cut() for e in episodes]
    assert _heads_in(picker(rl_module=None, batch={}, episodes=successors), successors) == first


def test_online_and_target_q_match_the_separate_passes():
    module = make_module()
    module.make_target_networks()
    with torch.no_grad():
        for p in module.target_qf.parameters():
            p.add_(0.1)  # make the target differ from the online net
    x = obs()
    online, target = module.online_and_target_q(x)
    torch.testing.assert_close(online, module.compute_q_values({Columns.OBS: x})[Q_VALUES])
    torch.testing.assert_close(target, module.forward_target({Columns.OBS: x})[Q_VALUES])
    assert not online.requires_grad and not target.requires_grad


@pytest.mark.parametrize("one_hot", [True, False])
def test_each_heads_own_rows_give_that_heads_outputs_on_those_rows(one_hot):
    module = make_module(hidden_sizes=[8, 8])
    module.make_target_networks()
    x = torch.zeros(7, 6)
    if one_hot:  # one-hot rows and an all-zero row (DeepSea's terminal observation)
        x[torch.arange(6), torch.tensor([3, 0, 5, 3, 1, 2])] = 1.0
    else:
        x = torch.randn(7, 6, generator=torch.Generator().manual_seed(2))
    rows = torch.tensor([[6, 0, 2], [1, 1, 5], [4, 3, 0], [2, 6, 6]])  # [K=4, M=3], repeats allowed
    full = module._forward_train({Columns.OBS: x})[Q_VALUES]  # [K, B, A]
    own = module._forward_train({Columns.OBS: x, HEAD_ROWS: rows})[Q_VALUES]  # [K, M, A]
    assert own.shape == (4, 3, 3)
    torch.testing.assert_close(own, select_head_rows(full, rows), rtol=1e-6, atol=1e-6)
    online, target = module.online_and_target_q(x, rows=rows)
    full_online, full_target = module.online_and_target_q(x)
    torch.testing.assert_close(online, select_head_rows(full_online, rows), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(target, select_head_rows(full_target, rows), rtol=1e-6, atol=1e-6)
