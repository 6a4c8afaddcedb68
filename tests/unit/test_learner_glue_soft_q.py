"""The soft Q learner's loss glue on real CartPole batches, through the real learner and module.

Each test builds SoftQTorchLearner in this process (no Ray) from SoftQConfig
and CartPole's spaces, feeds it one-step replay batches (n_step=1) sampled
from the env, and compares what the learner computes - TD errors handed back
as priorities, losses, gradients, target weights - with a hand computation
from the module's own networks. Where a property needs a network in a given
state (target != online, twin heads that disagree, a Q with a known entropy
curve), the test sets the weights so that the property holds by construction.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_batches import (
    MID,
    build_learner,
    env_transitions,
    loss_and_priorities,
    module_of,
    params,
    peek,
    same,
    single_torch_thread,
    snapshot,
    update,
)
from rlfrontier import offpolicy, replay
from rlfrontier.algorithms.soft_q.soft_q import SoftQConfig
from rlfrontier.algorithms.soft_q.soft_q_learner import ALPHA, ENTROPY, QF_LOSS

GAMMA = 0.99
BATCH = 64


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def env():
    return gym.make("CartPole-v1")


def make_learner(env, *, seed: int = 0, **training):
    """A SoftQ learner for CartPole: fixed alpha 0.3, squared error, priorities logged, no target sync."""
    settings = dict(alpha=0.3, huber_delta=None, prioritized_replay=True, target_update_interval=10_000, twin_q=False,
                    lr=1e-3, gamma=GAMMA)
    settings.update(training)
    config = SoftQConfig().training(**settings).rl_module(model_config={"hidden_sizes": [32]})
    torch.manual_seed(seed)
    return build_learner(config, env)


def cartpole_batch(env, seed: int = 0) -> dict[str, np.ndarray]:
    batch = env_transitions(env, BATCH, gamma=GAMMA, seed=seed)
    # 64 random CartPole steps end several episodes: terminal rows are in every batch.
    assert (batch[replay.DISCOUNTS] == 0).any() and (batch[replay.DISCOUNTS] > 0).any()
    return batch


def obs_actions(batch):
    return torch.as_tensor(batch[replay.OBS]), torch.as_tensor(batch[replay.ACTIONS]).unsqueeze(-1)


def q_taken(net, batch) -> torch.Tensor:
    obs, actions = obs_actions(batch)
    with torch.no_grad():
        return net(obs).gather(-1, actions).squeeze(-1)


def hand_soft_target(next_q: torch.Tensor, batch, alpha: float) -> torch.Tensor:
    """R + DISCOUNTS * alpha * logsumexp(Q(s') / alpha), written out here."""
    value = alpha * torch.logsumexp(next_q / alpha, dim=-1)
    return torch.as_tensor(batch[replay.REWARDS]) + torch.as_tensor(batch[replay.DISCOUNTS]) * value


def next_q(net, batch) -> torch.Tensor:
    with torch.no_grad():
        return net(torch.as_tensor(batch[replay.NEXT_OBS]))


def perturb(net: torch.nn.Module, scale: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def close(a, b, tol: float = 1e-5) -> bool:
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32),
                          atol=tol, rtol=tol)


# 1. Which network gives the target ---------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_target_uses_target_network_value_times_discount_plus_reward(env, seed):
    learner = make_learner(env, seed=seed)
    module = module_of(learner)
    perturb(module.target_qf, 0.3, seed)  # target != online, so the two are told apart
    batch = cartpole_batch(env, seed)
    alpha = 0.3

    loss, indexes, td, results = loss_and_priorities(learner, batch)
    target_from_learner = torch.as_tensor(td) + q_taken(module.qf, batch)
    expected = hand_soft_target(next_q(module.target_qf, batch), batch, alpha)
    assert close(target_from_learner, expected)
    # The online net would give another target: the check above can tell them apart.
    assert not close(expected, hand_soft_target(next_q(module.qf, batch), batch, alpha), tol=1e-2)
    terminal = batch[replay.DISCOUNTS] == 0
    assert close(target_from_learner[terminal], batch[replay.REWARDS][terminal])
    # Squared error (huber_delta=None) weighted by the importance weights.
    weights = torch.as_tensor(batch[replay.WEIGHTS])
    expected_loss = (weights * 0.5 * torch.as_tensor(td) ** 2).mean()
    assert close(loss.detach(), expected_loss)
    assert peek(results, QF_LOSS) == pytest.approx(expected_loss.item(), rel=1e-5)
    np.testing.assert_array_equal(indexes, batch[replay.INDEXES])

    # Online weights moved: Q(s, a) changes, the targets do not.
    perturb(module.qf, 0.3, seed + 100)
    loss_online, _, td_online, _ = loss_and_priorities(learner, batch)
    assert close(torch.as_tensor(td_online) + q_taken(module.qf, batch), expected)
    assert not close(td_online, td, tol=1e-2)
    assert loss_online.item() != pytest.approx(loss.item(), rel=1e-3)

    # Target weights moved: +1 on every target Q raises V(s') by exactly 1, so
    # every target rises by its DISCOUNTS and the loss changes.
    with torch.no_grad():
        module.target_qf[-1].bias.add_(1.0)
    loss_target, _, td_target, _ = loss_and_priorities(learner, batch)
    assert close(torch.as_tensor(td_target) - torch.as_tensor(td_online), batch[replay.DISCOUNTS])
    assert loss_target.item() != pytest.approx(loss_online.item(), rel=1e-3)


# 3. TD errors handed back as priorities ------------------------------------------------
def test_update_hands_back_signed_td_errors_matched_with_buffer_indexes(env):
    learner = make_learner(env)
    module = module_of(learner)
    perturb(module.target_qf, 0.3, 7)
    batch = cartpole_batch(env)
    # Shift Q by the median TD error: half the errors positive, half negative.
    td_before = hand_soft_target(next_q(module.target_qf, batch), batch, 0.3) - q_taken(module.qf, batch)
    with torch.no_grad():
        module.qf[-1].bias.add_(td_before.median())
    online, target = snapshot(module.qf), snapshot(module.target_qf)

    results = update(learner, batch)
    indexes, td = offpolicy.pop_priority_inputs([results])
    expected = hand_soft_target(next_q(target, batch), batch, 0.3) - q_taken(online, batch)
    np.testing.assert_array_equal(indexes, batch[replay.INDEXES])
    assert close(td, expected)
    assert (expected > 0).any() and (expected < 0).any()  # signed, not absolute
    assert offpolicy.TD_ERROR not in results[MID]  # popped before the results are reported
    assert not same(params(online), params(module.qf))  # and the update did happen


def test_minibatched_update_hands_back_every_row_with_its_own_index(env):
    learner = make_learner(env)
    module = module_of(learner)
    batch = cartpole_batch(env, seed=3)
    online, target = snapshot(module.qf), snapshot(module.target_qf)

    # What replay_training_step does: one learner call, one minibatch per SGD update.
    results = update(learner, batch, minibatch_size=BATCH // 2, num_epochs=1, shuffle_batch_per_epoch=False)
    indexes, td = offpolicy.pop_priority_inputs([results])
    np.testing.assert_array_equal(indexes, batch[replay.INDEXES])
    # The first minibatch saw the weights from before the call.
    first = slice(0, BATCH // 2)
    expected = hand_soft_target(next_q(target, batch), batch, 0.3) - q_taken(online, batch)
    assert close(td[first], expected[first])
    # The second saw the weights after one SGD step: the errors differ from the pre-update ones.
    assert not close(td[BATCH // 2:], expected[BATCH // 2:], tol=1e-6)


# 2. How the twins combine ------------------------------------------------------------
def make_disagreeing_twin_targets(module, offset: float = 2.0) -> None:
    """target_twin = target + [offset, -offset]: the element-wise minimum takes action 0
    from the first head and action 1 from the twin, in every state."""
    with torch.no_grad():
        module.target_qf_twin.load_state_dict(module.target_qf.state_dict())
        module.target_qf_twin[-1].bias.add_(torch.tensor([offset, -offset]))


def test_twin_target_is_elementwise_min_of_target_heads_and_both_heads_get_a_loss(env):
    learner = make_learner(env, twin_q=True)
    module = module_of(learner)
    perturb(module.target_qf, 0.3, 11)
    make_disagreeing_twin_targets(module)
    # Both online heads far below any target: |td| = td, so the priority
    # (|td_1| + |td_2|) / 2 gives the target back exactly.
    with torch.no_grad():
        module.qf[-1].bias.sub_(50.0)
        module.qf_twin[-1].bias.sub_(60.0)
    batch = cartpole_batch(env, seed=4)
    alpha = 0.3
    q1, q2 = q_taken(module.qf, batch), q_taken(module.qf_twin, batch)

    loss, _, priority, _ = loss_and_priorities(learner, batch)
    target_from_learner = torch.as_tensor(priority) + 0.5 * (q1 + q2)
    nq1, nq2 = next_q(module.target_qf, batch), next_q(module.target_qf_twin, batch)
    expected = hand_soft_target(torch.minimum(nq1, nq2), batch, alpha)
    assert (expected > q1).all() and (expected > q2).all()
    assert close(target_from_learner, expected, tol=1e-4)
    # Other ways to combine the heads give other targets (on the non-terminal rows).
    alive = batch[replay.DISCOUNTS] > 0
    for other in (
        hand_soft_target(nq1, batch, alpha),
        hand_soft_target(nq2, batch, alpha),
        torch.minimum(hand_soft_target(nq1, batch, alpha), hand_soft_target(nq2, batch, alpha)),
    ):
        assert (other - expected)[alive].abs().min() > 0.05

    # Both heads are regressed on that target: total = L(head 1) + L(head 2).
    weights = torch.as_tensor(batch[replay.WEIGHTS])
    expected_loss = (weights * 0.5 * (expected - q1) ** 2).mean() + (weights * 0.5 * (expected - q2) ** 2).mean()
    assert close(loss.detach(), expected_loss, tol=1e-4)
    loss.backward()
    for net in (module.qf, module.qf_twin):
        for p in net.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
    for net in (module.target_qf, module.target_qf_twin):
        assert all(p.grad is None for p in net.parameters())


def test_twin_priorities_are_mean_absolute_td_errors(env):
    """Priority = (|td_1| + |td_2|) / 2. With heads erring in opposite directions the
    mean of the signed errors would nearly cancel and starve the transition."""
    learner = make_learner(env, twin_q=True)
    module = module_of(learner)
    make_disagreeing_twin_targets(module)
    with torch.no_grad():
        module.qf_twin.load_state_dict(module.qf.state_dict())
        module.qf[-1].bias.sub_(20.0)  # head 1 under the target
        module.qf_twin[-1].bias.add_(20.0)  # head 2 over it
    batch = cartpole_batch(env, seed=5)
    online, twin = snapshot(module.qf), snapshot(module.qf_twin)
    target = hand_soft_target(torch.minimum(next_q(module.target_qf, batch), next_q(module.target_qf_twin, batch)),
                              batch, 0.3)
    td1, td2 = target - q_taken(online, batch), target - q_taken(twin, batch)
    assert (td1 > 0).all() and (td2 < 0).all()

    results = update(learner, batch)
    indexes, priority = offpolicy.pop_priority_inputs([results])
    np.testing.assert_array_equal(indexes, batch[replay.INDEXES])
    assert close(priority, 0.5 * (td1.abs() + td2.abs()), tol=1e-4)
    assert np.abs(priority - 0.5 * (td1 + td2).numpy()).min() > 10.0  # not the signed mean


# 4. Where the alpha loss's gradient goes -----------------------------------------------
def test_alpha_loss_gradient_reaches_only_log_alpha_and_q_loss_gives_it_none(env):
    ratio = 0.5
    learner = make_learner(env, twin_q=True, learn_alpha=True, alpha=5.0, target_entropy_ratio=ratio)
    module = module_of(learner)
    batch = cartpole_batch(env, seed=6)
    q_params = [*module.qf.parameters(), *module.qf_twin.parameters()]
    assert all(p.requires_grad for p in q_params)
    assert module.log_alpha.requires_grad

    config = learner.config.get_config_for_module(MID)
    q_only_config = config.copy(copy_frozen=False)
    q_only_config.learn_alpha = False
    total, _, _, _ = loss_and_priorities(learner, batch, config)
    q_only, _, _, _ = loss_and_priorities(learner, batch, q_only_config)
    alpha_loss = total - q_only

    grads_alpha = torch.autograd.grad(alpha_loss, [*q_params, module.log_alpha], allow_unused=True,
                                      retain_graph=True)
    assert all(g is None or not g.any() for g in grads_alpha[:-1])
    # d/dlog_alpha [log_alpha * (H - H_target)] = H - H_target, H of softmax(Q_1 / alpha).
    with torch.no_grad():
        log_pi = torch.log_softmax(module.qf(torch.as_tensor(batch[replay.OBS])) / 5.0, dim=-1)
        entropy = -(log_pi.exp() * log_pi).sum(-1).mean()
    expected = entropy - ratio * math.log(2)
    assert abs(expected) > 0.1  # alpha=5 makes the policy near-uniform, far above the target
    assert grads_alpha[-1].item() == pytest.approx(expected.item(), rel=1e-4)

    grads_q = torch.autograd.grad(q_only, [*q_params, module.log_alpha], allow_unused=True)
    assert grads_q[-1] is None or grads_q[-1].item() == 0.0
    assert all(g is not None and g.any() for g in grads_q[:-1])

    # Each optimizer holds its own parameters: the Q loss cannot move alpha through Adam either.
    optimizers = dict(learner.get_optimizers_for_module(MID))
    alpha_opt = next(o for name, o in optimizers.items() if name.endswith("alpha"))
    qf_opt = next(o for name, o in optimizers.items() if name.endswith("qf"))
    assert [p for g in alpha_opt.param_groups for p in g["params"]] == [module.log_alpha]
    qf_opt_params = [p for g in qf_opt.param_groups for p in g["params"]]
    assert all(p is not module.log_alpha for p in qf_opt_params)
    assert {id(p) for p in qf_opt_params} == {id(p) for p in q_params}


# 5. A learnt alpha reaches the target entropy --------------------------------------------
def entropy_two_actions(alpha: float, gap: float) -> float:
    log_p = torch.nn.functional.logsigmoid(torch.tensor([gap / alpha, -gap / alpha], dtype=torch.float64))
    return -(log_p.exp() * log_p).sum().item()


def alpha_for_entropy(target: float, gap: float) -> float:
    """Bisection on log alpha: the entropy rises monotonically with alpha."""
    lo, hi = math.log(1e-3), math.log(1e3)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if entropy_two_actions(math.exp(mid), gap) < target else (lo, mid)
    return math.exp(0.5 * (lo + hi))


@pytest.mark.parametrize("initial_alpha", [0.02, 20.0], ids=["entropy_below_target", "entropy_above_target"])
def test_learnt_alpha_drives_policy_entropy_to_target(env, initial_alpha):
    ratio, gap = 0.5, 1.0
    target_entropy = ratio * math.log(2)
    # A fixed Q: Q(s, .) = [0, gap] in every state, and a zero Q learning rate
    # (an RLlib schedule) keeps it there; only log alpha learns.
    learner = make_learner(env, learn_alpha=True, alpha=initial_alpha, alpha_lr=0.05, target_entropy_ratio=ratio,
                           lr=[[0, 0.0], [1, 0.0]])
    module = module_of(learner)
    with torch.no_grad():
        module.qf[-1].weight.zero_()
        module.qf[-1].bias.copy_(torch.tensor([0.0, gap]))
    q_before = params(module.qf)
    batch = cartpole_batch(env, seed=8)
    alpha_star = alpha_for_entropy(target_entropy, gap)
    start_entropy = entropy_two_actions(initial_alpha, gap)
    below = start_entropy < target_entropy
    assert abs(start_entropy - target_entropy) > 0.3

    alphas, entropies = [], []
    for _ in range(200):
        results = update(learner, batch)
        alphas.append(peek(results, ALPHA))  # the alpha this update started from
        entropies.append(peek(results, ENTROPY))
    alphas.append(module.alpha.item())

    assert same(q_before, params(module.qf))  # the problem stayed fixed
    # Alpha moves the entropy towards the target: up from below, down from above.
    early = np.asarray(alphas[:21])
    assert (np.diff(early) > 0).all() if below else (np.diff(early) < 0).all()
    # And settles there.
    assert np.mean(entropies[-50:]) == pytest.approx(target_entropy, abs=0.005)
    assert np.max(np.abs(np.asarray(entropies[-20:]) - target_entropy)) < 0.01
    assert alphas[-1] == pytest.approx(alpha_star, rel=0.02)


# 6. Target sync ----------------------------------------------------------------------
def target_pairs(module):
    return [(module.qf, module.target_qf), (module.qf_twin, module.target_qf_twin)]


def test_hard_target_sync_every_interval_gradient_updates(env):
    interval = 3
    learner = make_learner(env, twin_q=True, tau=1.0, target_update_interval=interval, lr=1e-2)
    module = module_of(learner)
    batch = cartpole_batch(env, seed=9)
    for online, target in target_pairs(module):
        assert same(params(online), params(target))  # built as copies

    # One learner call of three minibatches is three gradient updates: sync at the third.
    update(learner, batch, minibatch_size=BATCH // 3 + 1, num_epochs=1)
    assert learner.get_state()[offpolicy.NUM_UPDATES_STATE] == 3
    for online, target in target_pairs(module):
        assert same(params(online), params(target))

    for k in range(4, 10):
        before = [params(target) for _, target in target_pairs(module)]
        update(learner, batch)
        for (online, target), old in zip(target_pairs(module), before):
            if k % interval == 0:
                assert same(params(online), params(target)), k
            else:
                assert same(params(target), old), k
                assert not same(params(online), params(target)), k


def test_polyak_target_update_with_tau_below_one(env):
    tau, interval = 0.25, 2
    learner = make_learner(env, twin_q=True, tau=tau, target_update_interval=interval, lr=1e-2)
    module = module_of(learner)
    batch = cartpole_batch(env, seed=10)
    for k in range(1, 7):
        before = [params(target) for _, target in target_pairs(module)]
        update(learner, batch)
        for (online, target), old in zip(target_pairs(module), before):
            new, main = params(target), params(online)
            if k % interval == 0:
                for t, o, m in zip(new, old, main):
                    torch.testing.assert_close(t, tau * m + (1 - tau) * o, atol=1e-6, rtol=1e-6)
                assert not same(new, main)  # an average, not a copy
                assert not same(new, old)
            else:
                assert same(new, old), k


# Fused gradient clipping (offpolicy.TargetSyncLearner) -------------------------------
@pytest.mark.parametrize("scale", [1e-3, 1e3])  # below and above grad_clip
def test_fused_global_norm_clipping_matches_rllibs(env, scale):
    from ray.rllib.core.learner.learner import Learner

    learner = make_learner(env, grad_clip=10.0, grad_clip_by="global_norm")
    gen = torch.Generator().manual_seed(1)
    grads = {pid: scale * torch.randn(p.shape, generator=gen) for pid, p in learner._params.items()}
    config = learner.config.get_config_for_module(MID)
    ours = learner.postprocess_gradients_for_module(
        module_id=MID, config=config, module_gradients_dict={k: g.clone() for k, g in grads.items()})
    theirs = Learner.postprocess_gradients_for_module(
        learner, module_id=MID, config=config, module_gradients_dict={k: g.clone() for k, g in grads.items()})
    assert ours.keys() == theirs.keys() and len(ours) == len(grads)
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-7)
    total = torch.linalg.vector_norm(torch.cat([g.flatten() for g in ours.values()]))
    assert total <= 10.0 + 1e-4 and (scale > 1 or torch.isclose(total, torch.linalg.vector_norm(
        torch.cat([g.flatten() for g in grads.values()]))))


def test_fused_clipping_leaves_a_nan_gradient_to_rllibs_path(env):
    learner = make_learner(env, grad_clip=10.0, grad_clip_by="global_norm")
    grads = {pid: torch.ones(p.shape) for pid, p in learner._params.items()}
    first = next(iter(grads))
    grads[first][...] = float("nan")
    out = learner.postprocess_gradients_for_module(
        module_id=MID, config=learner.config.get_config_for_module(MID), module_gradients_dict=grads)
    # RLlib's clip_gradients counts a nan norm as 0 (nan_to_num) and leaves the finite gradients unscaled.
    assert torch.isnan(out[first]).all()
    assert all(torch.equal(g, torch.ones_like(g)) for k, g in out.items() if k is not first)


def test_a_nan_gradient_after_finite_steps_is_still_caught_at_apply(env):
    """postprocess_gradients' finite norms let apply_gradients skip its own check, for that step only."""
    learner = make_learner(env, grad_clip=10.0, grad_clip_by="global_norm")
    finite = {pid: torch.ones(p.shape) for pid, p in learner._params.items()}
    learner.apply_gradients(learner.postprocess_gradients({k: g.clone() for k, g in finite.items()}))
    assert all(torch.isfinite(p).all() for p in learner._params.values())
    # A step whose postprocessing was never run, then one with a nan: both checked at apply.
    for grads in (finite, {**finite, next(iter(finite)): torch.full_like(next(iter(finite.values())), float("nan"))}):
        learner._finite_modules = frozenset()
        bad = {k: g.clone() for k, g in grads.items()}
        learner.apply_gradients(learner.postprocess_gradients(bad))
        assert all(torch.isfinite(p).all() for p in learner._params.values())  # RLlib's nan_to_num ran
    # A stale "finite" mark from a step that never reached apply does not cover the next, nan, step.
    learner.postprocess_gradients({k: g.clone() for k, g in finite.items()})
    nan_grads = {k: torch.full_like(g, float("nan")) for k, g in finite.items()}
    learner.apply_gradients(learner.postprocess_gradients(nan_grads))
    assert all(torch.isfinite(p).all() for p in learner._params.values())
