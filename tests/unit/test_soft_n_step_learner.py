"""The soft Q learner feeds the intermediate states of n-step windows and twin priorities to losses.py."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from rlfrontier import offpolicy, replay
from rlfrontier.algorithms.soft_q import SoftQConfig, losses
from rlfrontier.algorithms.soft_q.torch.soft_q_torch_rl_module import Q_VALUES, Q_VALUES_TWIN

BATCH = 8
ALPHA = 0.5


@pytest.fixture(scope="module")
def learner():
    config = (
        SoftQConfig()
        .environment("CartPole-v1")
        .training(twin_q=True, prioritized_replay=True, n_step=3, huber_delta=None, alpha=ALPHA)
    )
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    # Target heads that differ from the online ones, so that a mix-up shows.
    with torch.no_grad():
        for _, target in module.get_target_network_pairs():
            for p in target.parameters():
                p.add_(0.3 * torch.randn_like(p))
    return learner


def three_step_batch(seed: int, *, intermediate_discounts) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        replay.OBS: torch.randn(BATCH, 4, generator=gen),
        replay.ACTIONS: torch.randint(0, 2, (BATCH,), generator=gen),
        replay.REWARDS: torch.randn(BATCH, generator=gen),
        replay.NEXT_OBS: torch.randn(BATCH, 4, generator=gen),
        replay.DISCOUNTS: torch.full((BATCH,), 0.99**3),
        replay.INTERMEDIATE_OBS: torch.randn(BATCH, 2, 4, generator=gen),
        replay.INTERMEDIATE_DISCOUNTS: torch.as_tensor(intermediate_discounts, dtype=torch.float32).expand(BATCH, 2),
        replay.WEIGHTS: torch.ones(BATCH),
        replay.INDEXES: torch.arange(BATCH),
    }


def loss_and_priorities(learner, batch):
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    learner.metrics.reset()
    with torch.no_grad():
        fwd_out = module.forward_train(batch)
        loss = learner.compute_loss_for_module(
            module_id=DEFAULT_MODULE_ID, config=learner.config, batch=batch, fwd_out=fwd_out
        )
    td_errors = np.concatenate(
        [np.asarray(x) for x in learner.metrics.peek((DEFAULT_MODULE_ID, offpolicy.TD_ERROR))]
    )
    return loss, fwd_out, td_errors


def expected_target(module, batch) -> torch.Tensor:
    """Soft 3-step target computed here from the target network, one state at a time."""
    target_q = lambda obs: module.forward_target({Columns.OBS: obs})[Q_VALUES]  # noqa: E731
    intermediate = torch.stack([target_q(batch[replay.INTERMEDIATE_OBS][:, j]) for j in range(2)], dim=1)
    return losses.soft_n_step_target(
        rewards=batch[replay.REWARDS],
        discounts=batch[replay.DISCOUNTS],
        next_q_target=target_q(batch[replay.NEXT_OBS]),
        alpha=ALPHA,
        intermediate_q_target=intermediate,
        intermediate_discounts=batch[replay.INTERMEDIATE_DISCOUNTS],
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learner_loss_uses_the_target_networks_entropy_at_intermediate_states(learner, seed):
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    batch = three_step_batch(seed, intermediate_discounts=[0.99, 0.99**2])
    loss, fwd_out, td_errors = loss_and_priorities(learner, batch)
    with torch.no_grad():
        target = expected_target(module, batch)
        actions = batch[replay.ACTIONS].unsqueeze(-1)
        q1 = fwd_out[Q_VALUES].gather(-1, actions).squeeze(-1)
        q2 = fwd_out[Q_VALUES_TWIN].gather(-1, actions).squeeze(-1)
    # Squared-error TD loss of both heads (huber_delta=None), fixed alpha: no alpha loss.
    expected_loss = 0.5 * ((target - q1) ** 2).mean() + 0.5 * ((target - q2) ** 2).mean()
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    # Twin priorities: mean absolute TD error of the two heads.
    np.testing.assert_allclose(
        td_errors, (0.5 * ((target - q1).abs() + (target - q2).abs())).numpy(), rtol=1e-5, atol=1e-6
    )


def test_learner_loss_changes_with_the_intermediate_discounts(learner):
    # Same batch with intermediate steps outside the window (discounts 0): no entropy terms,
    # a different (smaller, entropy >= 0) target, so a different loss.
    inside, _, td_inside = loss_and_priorities(learner, three_step_batch(7, intermediate_discounts=[0.99, 0.98]))
    outside, _, td_outside = loss_and_priorities(learner, three_step_batch(7, intermediate_discounts=[0.0, 0.0]))
    assert not torch.isclose(inside, outside)
    assert not np.allclose(td_inside, td_outside)
