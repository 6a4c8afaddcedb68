"""Guided cost learning's equations by hand, its trajectory pool on real episode chunks, its config; no Ray."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rlfrontier.algorithms.gcl import GCLConfig, losses
from rlfrontier.algorithms.gcl.gcl import Trajectory, TrajectoryPool, paired_trajectories
from rlfrontier.algorithms.gcl.torch import cost
from rlfrontier import modules
from rlfrontier.validation import BadInput
from tests.unit.test_adversarial_losses import _chunks

OBS_SPACE = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
ACTIONS = gym.spaces.Discrete(3)


# The equations ---------------------------------------------------------------------------------
def test_trajectory_returns_sum_the_real_steps_only():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    torch.testing.assert_close(losses.trajectory_returns(rewards, mask), torch.tensor([6.0, 9.0]))


def test_log_partition_makes_the_mixture_self_consistent():
    """Z = (1/M) sum_j exp(R_j) / mu_j with mu_j = Z-model / 2 + q_j / 2, mu's Z the same Z: a fixed point."""
    x = torch.tensor([3.0, -1.0, 0.5, 7.0, -4.0, 2.0], dtype=torch.float64)  # R - log q
    log_z = losses.log_partition(x).double()
    assert torch.sigmoid(x - log_z).mean().item() == pytest.approx(0.5, abs=1e-6)
    # The importance-sampled estimate with that Z inside the mixture density gives back Z.
    returns, log_q = x + 1.5, torch.full_like(x, 1.5)
    z = log_z.exp()
    mu = 0.5 * torch.exp(returns) / z + 0.5 * torch.exp(log_q)
    assert (torch.exp(returns) / mu).mean().item() == pytest.approx(z.item(), rel=1e-5)


def _mixture_weights_by_hand(returns: np.ndarray, log_q: np.ndarray) -> tuple[np.ndarray, float]:
    """The self-normalised weights exp(R) / mu, mu = exp(R) / (2Z) + q / 2, with Z from the fixed-point
    iteration Z <- mean exp(R) / mu(Z): the module docstring's estimator, computed the long way."""
    z = 1.0
    for _ in range(5000):
        mu = 0.5 * np.exp(returns) / z + 0.5 * np.exp(log_q)
        z = float(np.mean(np.exp(returns) / mu))
    w = np.exp(returns) / (0.5 * np.exp(returns) / z + 0.5 * np.exp(log_q))
    return w / w.sum(), z


def test_the_surrogate_has_gcls_gradient_with_the_mixture_weights():
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0, 2.0, size=8)  # 4 demonstrations, then 4 samples
    log_q = rng.normal(-3.0, 1.0, size=8)
    weights, z = _mixture_weights_by_hand(returns, log_q)
    r = torch.tensor(returns, dtype=torch.float64, requires_grad=True)
    surrogate, nll, w = losses.ioc_loss(returns_demo=r[:4], log_q_demo=torch.tensor(log_q[:4]),
                                        returns_sample=r[4:], log_q_sample=torch.tensor(log_q[4:]))
    np.testing.assert_allclose(w.numpy(), weights, rtol=1e-4)
    assert nll.item() == pytest.approx(-returns[:4].mean() + math.log(z), rel=1e-5)
    surrogate.backward()
    # dL/dR_j = -1/N [j a demonstration] + w_j (Finn et al. 2016, the IOC gradient).
    expected = weights - np.r_[np.full(4, 0.25), np.zeros(4)]
    np.testing.assert_allclose(r.grad.numpy(), expected, rtol=1e-4, atol=1e-7)


def test_the_gradient_is_the_logistic_discriminators_at_that_log_z():
    """GCL as a GAN (Finn, Christiano, Abbeel & Levine 2016): D = sigmoid(R - log q - log Z), expert = 1."""
    rng = np.random.default_rng(1)
    returns, log_q = rng.normal(size=10), rng.normal(-2.0, 1.0, size=10)
    r = torch.tensor(returns, requires_grad=True)
    surrogate, _, _ = losses.ioc_loss(returns_demo=r[:5], log_q_demo=torch.tensor(log_q[:5]),
                                      returns_sample=r[5:], log_q_sample=torch.tensor(log_q[5:]))
    (grad,) = torch.autograd.grad(surrogate, r)
    log_z = losses.log_partition(torch.tensor(returns - log_q)).double()
    r2 = torch.tensor(returns, requires_grad=True)
    logits = r2 - torch.tensor(log_q) - log_z
    bce = -(torch.nn.functional.logsigmoid(logits[:5]).mean() + torch.nn.functional.logsigmoid(-logits[5:]).mean())
    (bce_grad,) = torch.autograd.grad(bce, r2)
    torch.testing.assert_close(grad, bce_grad, rtol=1e-5, atol=1e-8)


def test_no_trajectory_outweighs_two_z_and_a_policy_far_from_the_demonstrations_does_not_hand_them_all_weight():
    # Demonstrations the current policy would almost never take (log q -200) against on-policy samples.
    returns = torch.tensor([1.0, 1.2, 0.8, 0.0, 0.1, -0.1], dtype=torch.float64)
    log_q = torch.tensor([-200.0, -210.0, -190.0, -5.0, -6.0, -4.0], dtype=torch.float64)
    _, _, w = losses.ioc_loss(returns_demo=returns[:3], log_q_demo=log_q[:3], returns_sample=returns[3:],
                              log_q_sample=log_q[3:])
    assert w.max().item() <= 1.0 / 3.0 + 1e-9  # D_j / N with N = 3: at most 1/N each
    assert losses.effective_sample_fraction(w).item() > 0.4
    # The plain exp(R) / q weights would put ~all of it on one demonstration.
    naive = torch.softmax(returns - log_q, dim=0)
    assert naive.max().item() > 0.99


def test_log_partition_keeps_float64_and_refuses_a_non_finite_input():
    x = torch.tensor([1e4, 1e4 + 1.0, -3.0, 2.0], dtype=torch.float64)
    log_z = losses.log_partition(x)
    assert log_z.dtype == torch.float64
    assert torch.sigmoid(x - log_z).mean().item() == pytest.approx(0.5, abs=1e-9)
    assert losses.log_partition(torch.full((4,), 2.5)).item() == pytest.approx(2.5)  # all equal: log Z = x
    with pytest.raises(ValueError, match="not finite"):
        losses.log_partition(torch.tensor([0.0, float("nan")]))


def test_effective_sample_fraction_of_uniform_and_degenerate_weights():
    assert losses.effective_sample_fraction(torch.full((8,), 1 / 8)).item() == pytest.approx(1.0)
    assert losses.effective_sample_fraction(torch.tensor([1.0, 0.0, 0.0, 0.0])).item() == pytest.approx(0.25)


# The reward module ---------------------------------------------------------------------------------
def _module(**settings) -> cost.GCLReward:
    return cost.GCLReward(observation_space=OBS_SPACE, action_space=ACTIONS, model_config=settings)


def _rows(rng: np.random.Generator, b: int = 3, t: int = 5) -> dict[str, torch.Tensor]:
    mask = np.ones((b, t), np.float32)
    mask[0, 3:] = 0.0
    return {
        cost.SAMPLE_OBS: torch.tensor(rng.random((b, t, 4), dtype=np.float32)),
        cost.SAMPLE_ACTIONS: torch.tensor(rng.integers(3, size=(b, t))), cost.SAMPLE_MASK: torch.tensor(mask),
        cost.SAMPLE_LOG_Q: torch.tensor(rng.normal(-5.0, 1.0, size=b).astype(np.float32)),
        cost.DEMO_OBS: torch.tensor(rng.random((b, t, 4), dtype=np.float32)),
        cost.DEMO_ACTIONS: torch.tensor(rng.integers(3, size=(b, t))),
        cost.DEMO_MASK: torch.tensor(np.ones((b, t), np.float32)),
        cost.DEMO_LOG_Q: torch.tensor(rng.normal(-5.0, 1.0, size=b).astype(np.float32)),
    }


@pytest.mark.parametrize("state_only", [True, False])
def test_returns_are_the_masked_sums_of_the_step_rewards(state_only):
    module = _module(**{cost.STATE_ONLY: state_only})
    rows = _rows(np.random.default_rng(2))
    out = module._forward_train(rows)
    steps = module.step_reward(rows[cost.SAMPLE_OBS], rows[cost.SAMPLE_ACTIONS])
    assert steps.shape == (3, 5)
    torch.testing.assert_close(out[cost.RETURNS_SAMPLE], (steps * rows[cost.SAMPLE_MASK]).sum(-1))
    if not state_only:  # the action enters: another action, another reward
        other = module.step_reward(rows[cost.SAMPLE_OBS], (rows[cost.SAMPLE_ACTIONS] + 1) % 3)
        assert not torch.allclose(steps, other)
    # One observation at a time gives the same rewards as the batch.
    one = module.step_reward(rows[cost.SAMPLE_OBS][1, 2], rows[cost.SAMPLE_ACTIONS][1, 2])
    torch.testing.assert_close(one, steps[1, 2])


def test_the_loss_adds_the_l2_prior_and_logs_the_weights():
    module = _module(**{cost.L2: 0.3})
    rows = _rows(np.random.default_rng(3))
    learner = type("L", (), {"metrics": MetricsLogger()})()
    total = module.compute_self_supervised_loss(learner=learner, module_id=cost.MODULE_ID, config=None, batch=rows,
                                                fwd_out=module._forward_train(rows))
    out = module._forward_train(rows)
    surrogate, nll, w = losses.ioc_loss(returns_demo=out[cost.RETURNS_DEMO], log_q_demo=rows[cost.DEMO_LOG_Q],
                                        returns_sample=out[cost.RETURNS_SAMPLE], log_q_sample=rows[cost.SAMPLE_LOG_Q])
    prior = 0.3 * sum(p.pow(2).sum() for p in module.net.parameters())
    torch.testing.assert_close(total, surrogate + prior)
    logged = {k: float(v) for k, v in learner.metrics.reduce()[cost.MODULE_ID].items()}
    assert logged[cost.IOC_LOSS] == pytest.approx(nll.item(), rel=1e-5)
    assert logged[cost.DEMO_WEIGHT] == pytest.approx(w[:3].sum().item(), rel=1e-5)
    assert 0.0 < logged[cost.WEIGHT_ESS] <= 1.0


def test_a_step_on_the_loss_raises_the_demonstrations_reward_against_the_samples():
    torch.manual_seed(0)
    module = _module(**{cost.L2: 0.0})
    rng = np.random.default_rng(4)
    rows = _rows(rng, b=8)
    rows[cost.DEMO_OBS][..., 0] = 1.0  # the demonstrations live where feature 0 is high,
    rows[cost.SAMPLE_OBS][..., 0] = 0.0  # the samples where it is low
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    learner = type("L", (), {"metrics": MetricsLogger()})()

    def gap():
        with torch.no_grad():
            out = module._forward_train(rows)
        return (out[cost.RETURNS_DEMO].mean() - out[cost.RETURNS_SAMPLE].mean()).item()

    before = gap()
    for _ in range(20):
        loss = module.compute_self_supervised_loss(learner=learner, module_id=cost.MODULE_ID, config=None,
                                                   batch=rows, fwd_out=module._forward_train(rows))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert gap() > before + 1.0


# The driver's trajectory pool ------------------------------------------------------------------
@pytest.mark.parametrize("numpy", [False, True], ids=["lists", "numpy"])
def test_the_pool_joins_chunks_into_whole_episodes_with_their_sampling_log_density(numpy):
    chunks = _chunks(numpy=numpy)  # an episode in two chunks (7 steps, terminated), one of 2 steps (truncated)
    pool = TrajectoryPool(capacity=10)
    assert pool.add(chunks[:1]) == 0 and len(pool) == 0  # cut, not done: held
    assert pool.add(chunks[1:]) == 2 and len(pool) == 2
    first, second = pool.trajectories
    np.testing.assert_array_equal(first.obs[:, 0], [0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(first.actions, [0, 1, 0, 1, 0, 1, 0])
    assert first.log_q == pytest.approx(-sum(range(1, 8)) / 10, rel=1e-6)
    np.testing.assert_array_equal(second.obs[:, 0], [100, 101])
    assert second.log_q == pytest.approx(-(101 + 102) / 10, rel=1e-6)


def test_the_pool_drops_an_episode_whose_start_or_middle_it_never_saw_and_keeps_the_newest():
    chunks = _chunks(numpy=True)
    pool = TrajectoryPool(capacity=10)
    assert pool.add([chunks[1]]) == 0 and len(pool) == 0  # the continuation alone: not a whole episode
    pool = TrajectoryPool(capacity=1)
    assert pool.add(chunks) == 2 and len(pool) == 1
    assert len(pool.trajectories[0]) == 2  # the newest


def test_paired_rows_pad_each_side_and_repeat_no_trajectory_within_a_pool():
    samples = [Trajectory(np.full((n, 4), n, np.float32), np.arange(n) % 3, -float(n)) for n in (2, 5, 3, 4)]
    demos = [Trajectory(np.full((6, 4), 10 + i, np.float32), np.zeros(6, np.int64)) for i in range(3)]
    rows = paired_trajectories(samples, demos, size=4, rng=np.random.default_rng(0))
    assert rows[cost.SAMPLE_OBS].shape == (4, 6, 4) and rows[cost.DEMO_OBS].shape == (4, 6, 4)
    lengths = rows[cost.SAMPLE_MASK].sum(axis=1)
    assert sorted(lengths) == [2, 3, 4, 5]  # each sample once
    for i, n in enumerate(lengths.astype(int)):
        assert rows[cost.SAMPLE_LOG_Q][i] == -n
        assert (rows[cost.SAMPLE_OBS][i, :n] == n).all() and (rows[cost.SAMPLE_OBS][i, n:] == 0).all()
    assert rows[cost.DEMO_MASK].sum() == 4 * 6
    assert len(set(rows[cost.DEMO_OBS][:3, 0, 0])) == 3  # the first pool-size rows: each demonstration once


# Config ------------------------------------------------------------------------------------------
def test_config_defaults_and_its_refusals(tmp_path):
    config = GCLConfig()
    assert config.demos_in_replay is False and config.cost_l2 == 0.5 and config.cost_hidden_sizes == [32, 32]
    # The reward is learner-only for every piece that asks (weight syncs to EnvRunners leave it out).
    assert cost.MODULE_ID in modules.learner_only_module_ids(config)
    with pytest.raises(BadInput, match="gcl needs demonstrations"):
        GCLConfig().environment("CartPole-v1").validate()
    base = GCLConfig().environment("CartPole-v1").training(demos=str(tmp_path))
    for change, match in (
        ({"reward_transform": {"type": "affine", "scale": 2.0}}, "reward_transform"),
        ({"bonus": {"type": "count"}}, "bonus"),
        ({"cost_update_interval": 0}, "cost_update_interval"),
        ({"cost_normalize_obs": 1}, "cost_normalize_obs"),
        ({"cost_batch_size": 1.5}, "cost_batch_size"),
        ({"cost_lr": 0.0}, "cost_lr"),
        ({"cost_hidden_sizes": [32, 0]}, "cost_hidden_sizes"),
        ({"cost_state_only": "yes"}, "cost_state_only"),
        ({"cost_l2": -1.0}, "cost_l2"),
        ({"sample_trajectories": 0}, "sample_trajectories"),
    ):
        config = base.copy(copy_frozen=False).training(**change)
        with pytest.raises((BadInput, ValueError), match=match):
            config.validate()
