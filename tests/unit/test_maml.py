"""maml's pieces without Ray: the inner step (later steps importance-weighted), the meta-gradient against finite
differences, first against second order, the policy's log-density, the per-task baseline, the task layout, the
episode-count check, the weight restore after post-adaptation sampling, the held-out tasks and the config's checks."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_batches import build_learner, single_torch_thread
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rlfrontier.algorithms.maml import MAMLConfig, baseline, losses
from rlfrontier.algorithms.maml.maml import (
    EPISODE_ENV_INDEX,
    EPISODE_TASK,
    PRE_ADAPTATION,
    TASK_INDEX,
    assign_tasks,
    check_episodes_per_task,
    check_recorded_tasks,
    held_out_tasks,
    make_task_env,
    record_task,
    sample_post_adaptation,
)
from rlfrontier.algorithms.maml.torch.gaussian_policy import GaussianMLP, GaussianPolicyModule
from rlfrontier.envs.point_nav import PointNavEnv


def rows(gen: torch.Generator, n: int, *, obs_dim: int = 2, act_dim: int = 2, dtype=torch.float32) -> dict:
    return {losses.OBS: torch.randn(n, obs_dim, generator=gen, dtype=dtype),
            losses.ACTIONS: torch.randn(n, act_dim, generator=gen, dtype=dtype),
            losses.ADVANTAGES: torch.randn(n, generator=gen, dtype=dtype)}


def policy_module() -> GaussianPolicyModule:
    env = PointNavEnv()
    torch.manual_seed(0)
    return RLModuleSpec(module_class=GaussianPolicyModule, observation_space=env.observation_space,
                        action_space=env.action_space, model_config={"hidden_sizes": [16, 16]}).build()


# The inner step ---------------------------------------------------------------------------------
def test_the_inner_step_changes_every_weight_and_lowers_the_inner_loss():
    module = policy_module()
    pre = rows(torch.Generator().manual_seed(1), 64)
    theta = {k: v.detach().clone() for k, v in module.policy_params().items()}

    def inner_loss(p):
        return losses.reinforce_loss(logp=module.log_prob(pre[losses.OBS], pre[losses.ACTIONS], p),
                                     advantages=pre[losses.ADVANTAGES])

    adapted, before = losses.inner_update(module.policy_params(), loss_fn=lambda p, step: inner_loss(p), lr=0.01,
                                          steps=1, first_order=True)
    assert adapted.keys() == theta.keys()
    for name, value in adapted.items():
        assert not torch.equal(value, theta[name]), name
        assert torch.equal(module.policy_params()[name], theta[name]), f"{name}: the module's own weights moved"
    assert inner_loss(adapted) < before[0]
    # Two steps go on from the first.
    twice, losses_seen = losses.inner_update(module.policy_params(), loss_fn=lambda p, step: inner_loss(p), lr=0.01,
                                             steps=2, first_order=True)
    assert losses_seen[1] == pytest.approx(float(inner_loss(adapted).detach()), rel=1e-6) and inner_loss(twice) < losses_seen[1]


def test_a_parameter_the_inner_loss_does_not_reach_keeps_its_value():
    # RLlib's TorchDifferentiableLearner calls torch.isfinite on such a None gradient; here it is skipped.
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    unused = torch.tensor([3.0], requires_grad=True)
    adapted, _ = losses.inner_update({"w": w, "unused": unused}, loss_fn=lambda p, step: (p["w"] ** 2).sum(),
                                     lr=0.25, steps=1, first_order=False)
    assert torch.equal(adapted["unused"], unused)
    assert torch.allclose(adapted["w"], torch.tensor([0.5, 1.0]))


def test_the_learner_adapts_each_task_into_a_module_state_and_leaves_its_own_weights():
    config = MAMLConfig().environment("rlfrontier/PointNav-v0").training(inner_lr=0.05).rl_module(
        model_config={"hidden_sizes": [8]})
    with single_torch_thread():
        learner = build_learner(config, PointNavEnv())
        module = learner.module[DEFAULT_MODULE_ID].unwrapped()
        before = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
        gen = torch.Generator().manual_seed(2)
        parts = []
        for task in range(3):
            r = rows(gen, 20)
            parts.append({Columns.OBS: r[losses.OBS].numpy(), Columns.ACTIONS: r[losses.ACTIONS].numpy(),
                          Columns.ADVANTAGES: r[losses.ADVANTAGES].numpy(),
                          Columns.ACTION_LOGP: np.zeros(20, np.float32),
                          TASK_INDEX: np.full(20, task), PRE_ADAPTATION: np.ones(20, np.float32)})
        batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        states = learner.adapted_weights(batch)
    assert len(states) == 3 and all(s.keys() == before.keys() for s in states)
    for key in before:
        assert all(not np.array_equal(s[key], before[key]) for s in states), key
        assert not np.array_equal(states[0][key], states[1][key]), f"{key}: two tasks adapted alike"
        np.testing.assert_array_equal(module.state_dict()[key].numpy(), before[key])


# Inner steps after the first: importance-weighted on theta's rows ---------------------------------------
SIGMA = 0.7


def linear_gaussian_log_prob(obs, actions, p):
    """log N(a; x.w + b, SIGMA^2) of one action dimension, [N]."""
    mean = obs @ p["w"] + p["b"]
    return torch.distributions.Normal(mean, SIGMA).log_prob(actions[:, 0])


def test_at_theta_the_importance_weighted_surrogate_has_the_reinforce_gradient():
    # Why the first inner step may stay plain REINFORCE: with logp_old = log pi_theta every weight is 1, so the
    # importance-weighted surrogate's gradient at theta equals REINFORCE's (its value and Hessian differ).
    gen = torch.Generator().manual_seed(5)
    pre = rows(gen, 6, act_dim=1, dtype=torch.float64)
    theta = {"w": torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True),
             "b": torch.randn((), generator=gen, dtype=torch.float64, requires_grad=True)}
    logp = linear_gaussian_log_prob(pre[losses.OBS], pre[losses.ACTIONS], theta)
    reinforce = torch.autograd.grad(losses.reinforce_loss(logp=logp, advantages=pre[losses.ADVANTAGES]),
                                    list(theta.values()), retain_graph=True)
    weighted = torch.autograd.grad(losses.importance_weighted_pg_loss(logp=logp, logp_old=logp.detach(),
                                                                      advantages=pre[losses.ADVANTAGES]),
                                   list(theta.values()))
    for a, b in zip(reinforce, weighted):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("first_order", [True, False])
def test_the_second_inner_step_is_importance_weighted_by_hand(first_order):
    # pi(a|s) = N(x.w + b, SIGMA^2): grad_(w, b) log pi = (a - mu) / SIGMA^2 * (x, 1).
    rng = np.random.default_rng(6)
    x, a, adv = rng.normal(size=(5, 2)), rng.normal(size=5), rng.normal(size=5)
    w0, b0, lr = np.array([0.4, -0.3]), 0.2, 0.5
    features = np.concatenate([x, np.ones((5, 1))], axis=1)

    def log_pi(theta):
        mu = features @ theta
        return -(a - mu) ** 2 / (2 * SIGMA ** 2) - math.log(SIGMA) - 0.5 * math.log(2 * math.pi)

    def score(theta):  # [5, 3]
        return ((a - features @ theta) / SIGMA ** 2)[:, None] * features

    theta0 = np.array([*w0, b0])
    logp_old = log_pi(theta0)  # recorded by the EnvRunner that sampled with theta0
    g0 = -(adv[:, None] * score(theta0)).mean(0)  # step 1: REINFORCE
    theta1 = theta0 - lr * g0
    ratio = np.exp(log_pi(theta1) - logp_old)
    g1 = -((ratio * adv)[:, None] * score(theta1)).mean(0)  # step 2: importance-weighted
    theta2 = theta1 - lr * g1
    unweighted = theta1 + lr * (adv[:, None] * score(theta1)).mean(0)
    assert np.abs(theta2 - unweighted).max() > 1e-2, "the weights must matter on this batch"

    pre = {losses.OBS: torch.tensor(x), losses.ACTIONS: torch.tensor(a[:, None]), losses.ADVANTAGES: torch.tensor(adv),
           losses.LOGP_OLD: torch.tensor(logp_old)}
    params = {"w": torch.tensor(w0, requires_grad=True), "b": torch.tensor(b0, dtype=torch.float64, requires_grad=True)}
    step_loss = functools.partial(losses.inner_loss, log_prob=linear_gaussian_log_prob, rows=pre)
    adapted, seen = losses.inner_update(params, loss_fn=step_loss, lr=lr, steps=2, first_order=first_order)
    np.testing.assert_allclose([*adapted["w"].detach().numpy(), float(adapted["b"].detach())], theta2, rtol=1e-12)
    assert float(seen[1]) == pytest.approx(-(ratio * adv).mean(), rel=1e-12)
    # The second step's gradient itself, at theta1.
    at_theta1 = {"w": torch.tensor(theta1[:2], requires_grad=True), "b": torch.tensor(theta1[2], dtype=torch.float64, requires_grad=True)}
    grads = torch.autograd.grad(step_loss(at_theta1, 1), list(at_theta1.values()))
    np.testing.assert_allclose(np.concatenate([g.reshape(-1).numpy() for g in grads]), g1, rtol=1e-12)


def test_the_learner_takes_the_importance_weighted_second_step():
    config = MAMLConfig().environment("rlfrontier/PointNav-v0").training(inner_lr=0.05, inner_steps=2).rl_module(
        model_config={"hidden_sizes": [8]})
    with single_torch_thread():
        learner = build_learner(config, PointNavEnv())
        module = learner.module[DEFAULT_MODULE_ID].unwrapped()
        r = rows(torch.Generator().manual_seed(7), 20)
        with torch.no_grad():
            logp = module.log_prob(r[losses.OBS], r[losses.ACTIONS])
        batch = {Columns.OBS: r[losses.OBS].numpy(), Columns.ACTIONS: r[losses.ACTIONS].numpy(),
                 Columns.ADVANTAGES: r[losses.ADVANTAGES].numpy(), Columns.ACTION_LOGP: logp.numpy(),
                 TASK_INDEX: np.zeros(20, np.int64), PRE_ADAPTATION: np.ones(20, np.float32)}
        state, = learner.adapted_weights(batch)
        pre = {**r, losses.LOGP_OLD: logp}
        weighted, _ = losses.inner_update(
            module.policy_params(), loss_fn=functools.partial(losses.inner_loss, log_prob=module.log_prob, rows=pre),
            lr=0.05, steps=2, first_order=True)
        plain, _ = losses.inner_update(
            module.policy_params(), loss_fn=lambda p, step: losses.reinforce_loss(
                logp=module.log_prob(r[losses.OBS], r[losses.ACTIONS], p), advantages=r[losses.ADVANTAGES]),
            lr=0.05, steps=2, first_order=True)
    expected, unweighted = module.state_with(weighted), module.state_with(plain)
    for key in expected:
        np.testing.assert_allclose(state[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=key)
    assert any(not np.allclose(expected[k], unweighted[k], rtol=1e-6, atol=1e-7) for k in expected)


# The meta-gradient ------------------------------------------------------------------------------
def tiny_problem(*, num_tasks: int, seed: int = 0, inner_steps: int = 1):
    """A float64 Gaussian policy with 14 parameters (mean 2 -> 3 -> 1 with ReLU, one log_std) and `num_tasks` tasks
    whose post-adaptation rows' logp_old lies within +-0.05 of theta'(theta0)'s, theta' after `inner_steps` steps
    (ratios well inside the clip)."""
    torch.manual_seed(seed)
    net = GaussianMLP(obs_dim=2, act_dim=1, hidden_sizes=[3], initial_log_std=-0.3).double()
    params = {k: v.detach().clone().requires_grad_(True) for k, v in net.named_parameters()}

    def log_prob(obs, actions, p):
        mean, log_std = torch.func.functional_call(net, p, (obs,)).chunk(2, dim=-1)
        return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)

    gen = torch.Generator().manual_seed(seed + 1)
    tasks = []
    for _ in range(num_tasks):
        pre, post = rows(gen, 8, act_dim=1, dtype=torch.float64), rows(gen, 8, act_dim=1, dtype=torch.float64)
        with torch.no_grad():  # the pre-adaptation rows were sampled with theta0
            pre[losses.LOGP_OLD] = log_prob(pre[losses.OBS], pre[losses.ACTIONS], params)
        adapted, _ = losses.inner_update(params, loss_fn=functools.partial(losses.inner_loss, log_prob=log_prob, rows=pre),
                                         lr=INNER_LR, steps=inner_steps, first_order=True)
        with torch.no_grad():
            logp = log_prob(post[losses.OBS], post[losses.ACTIONS], adapted)
        post[losses.LOGP_OLD] = logp + 0.05 * (2 * torch.rand(8, generator=gen, dtype=torch.float64) - 1)
        tasks.append((pre, post))
    return params, log_prob, tasks


INNER_LR = 0.3


def meta_value_and_grad(params, log_prob, tasks, *, first_order: bool, inner_steps: int = 1):
    meta = losses.maml_loss(params, log_prob=log_prob, tasks=tasks, inner_lr=INNER_LR, inner_steps=inner_steps,
                            first_order=first_order, clip_param=0.2)
    grads = torch.autograd.grad(meta.loss, list(params.values()))
    return meta, torch.cat([g.reshape(-1) for g in grads])


def finn_inner_loss(params, step, *, log_prob, rows):
    """Finn et al.'s inner loss: plain REINFORCE at step 0, i.e. the step's weights pi / pi_old held at their value
    at theta0, 1. The finite differences below differentiate this function: the weights are constants of the
    estimator (their derivative is not part of Finn et al.'s meta-gradient), so moving theta must not move them."""
    if step == 0:
        logp = log_prob(rows[losses.OBS], rows[losses.ACTIONS], params)
        return losses.reinforce_loss(logp=logp, advantages=rows[losses.ADVANTAGES])
    return INNER_LOSS(params, step, log_prob=log_prob, rows=rows)


INNER_LOSS = losses.inner_loss


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_the_second_order_meta_gradient_matches_central_finite_differences(inner_steps, monkeypatch):
    params, log_prob, tasks = tiny_problem(num_tasks=2, inner_steps=inner_steps)
    meta, analytic = meta_value_and_grad(params, log_prob, tasks, first_order=False, inner_steps=inner_steps)
    assert meta.clip_fraction == 0.0, "the finite differences need every ratio inside the clip (a smooth loss)"
    flat = torch.cat([p.detach().reshape(-1) for p in params.values()])
    shapes = [(k, p.shape, p.numel()) for k, p in params.items()]
    assert flat.numel() == 14

    def objective(vector: torch.Tensor) -> float:
        point, start = {}, 0
        for name, shape, size in shapes:
            point[name] = vector[start:start + size].reshape(shape).clone().requires_grad_(True)
            start += size
        with monkeypatch.context() as patch:
            patch.setattr(losses, "inner_loss", finn_inner_loss)
            return float(losses.maml_loss(point, log_prob=log_prob, tasks=tasks, inner_lr=INNER_LR,
                                          inner_steps=inner_steps, first_order=False, clip_param=0.2).loss.detach())

    h = 1e-5
    numeric = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        numeric[i] = (objective(flat + step) - objective(flat - step)) / (2 * h)
    # Central differences in float64: truncation h^2 |J'''| / 6 ~ 1e-10 and rounding eps |J| / h ~ 1e-11 for a J of
    # order 1, so ~1e-9 absolute against gradient entries of order 1e-3 to 1: 1e-6 relative leaves a wide margin
    # and still fails a gradient that missed the second-order term (off by ~1e-2 relative, the next test).
    np.testing.assert_allclose(analytic.numpy(), numeric.numpy(), rtol=1e-6, atol=1e-8)


def test_the_first_inner_step_away_from_the_sampling_theta_is_importance_weighted():
    # A later outer epoch recomputes theta' at an updated theta from rows the first theta sampled.
    params, log_prob, tasks = tiny_problem(num_tasks=1, seed=5)
    pre = tasks[0][0]
    moved = {k: (v + 0.2 * torch.randn_like(v)).detach().requires_grad_(True) for k, v in params.items()}

    def grad_of(loss):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(moved.values()))])

    step0 = grad_of(losses.inner_loss(moved, 0, log_prob=log_prob, rows=pre))
    weighted = grad_of(losses.importance_weighted_pg_loss(
        logp=log_prob(pre[losses.OBS], pre[losses.ACTIONS], moved), logp_old=pre[losses.LOGP_OLD],
        advantages=pre[losses.ADVANTAGES]))
    plain = grad_of(losses.reinforce_loss(logp=log_prob(pre[losses.OBS], pre[losses.ACTIONS], moved),
                                          advantages=pre[losses.ADVANTAGES]))
    torch.testing.assert_close(step0, weighted, rtol=1e-10, atol=1e-12)
    assert (step0 - plain).norm() > 0.05 * plain.norm(), "the weights must change the step away from theta0"


def test_first_order_drops_exactly_the_hessian_term_of_the_inner_step():
    params, log_prob, tasks = tiny_problem(num_tasks=1, seed=3)
    (pre, post), = tasks
    _, second = meta_value_and_grad(params, log_prob, tasks, first_order=False)
    _, first = meta_value_and_grad(params, log_prob, tasks, first_order=True)
    assert torch.linalg.vector_norm(second - first) > 1e-2 * torch.linalg.vector_norm(second)

    # By hand: theta' = theta - a g_in(theta); first order is grad L_out(theta'), second order
    # (I - a H_in(theta)) grad L_out(theta'), H_in the inner loss's Hessian.
    names = list(params)
    sizes = [params[k].numel() for k in names]
    flat = torch.cat([params[k].detach().reshape(-1) for k in names])

    def unflat(vector):
        return dict(zip(names, (v.reshape(params[k].shape) for k, v in zip(names, vector.split(sizes)))))

    def inner(vector):  # one inner step: plain REINFORCE
        return losses.reinforce_loss(logp=log_prob(pre[losses.OBS], pre[losses.ACTIONS], unflat(vector)),
                                     advantages=pre[losses.ADVANTAGES])

    def outer(vector):
        return losses.ppo_clip_loss(logp=log_prob(post[losses.OBS], post[losses.ACTIONS], unflat(vector)),
                                    logp_old=post[losses.LOGP_OLD], advantages=post[losses.ADVANTAGES],
                                    clip_param=0.2)

    adapted = flat - INNER_LR * torch.autograd.functional.jacobian(inner, flat)
    g_out = torch.autograd.functional.jacobian(outer, adapted)
    hessian = torch.autograd.functional.hessian(inner, flat)
    assert torch.linalg.matrix_norm(hessian) > 1e-3
    torch.testing.assert_close(first, g_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(second, g_out - INNER_LR * hessian @ g_out, rtol=1e-10, atol=1e-12)


# Losses, policy, baseline -----------------------------------------------------------------------------
def test_ppo_clip_loss_by_hand():
    logp_old = torch.zeros(3)
    logp = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    advantages = torch.tensor([1.0, -2.0, 3.0])
    # min(r A, clip(r) A): 1.2 * 1, min(0.5 * -2, 0.8 * -2) = -1.6, 1.1 * 3.
    expected = -(1.2 - 1.6 + 3.3) / 3
    assert float(losses.ppo_clip_loss(logp=logp, logp_old=logp_old, advantages=advantages, clip_param=0.2)) == \
        pytest.approx(expected, rel=1e-6)


def test_the_learners_log_density_is_the_one_the_env_runners_record():
    module = policy_module()
    gen = torch.Generator().manual_seed(4)
    obs, actions = torch.randn(10, 2, generator=gen), torch.randn(10, 2, generator=gen)
    inputs = module.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    expected = TorchDiagGaussian.from_logits(inputs).logp(actions)
    torch.testing.assert_close(module.log_prob(obs, actions), expected)
    # With explicit parameters equal to its own, the same; with other ones, not.
    torch.testing.assert_close(module.log_prob(obs, actions, module.policy_params()), expected)
    shifted = {k: v + 0.1 for k, v in module.policy_params().items()}
    assert not torch.allclose(module.log_prob(obs, actions, shifted), expected)
    state = module.state_with(shifted)
    other = policy_module()
    other.set_state(state)
    torch.testing.assert_close(other.log_prob(obs, actions), module.log_prob(obs, actions, shifted))


def test_discounted_returns_by_hand():
    np.testing.assert_allclose(baseline.discounted_returns(np.array([1.0, 0.0, 2.0]), gamma=0.5),
                               [1.0 + 0.25 * 2.0, 1.0, 2.0])


def test_the_baseline_fits_returns_linear_in_its_features_and_advantages_are_standardised():
    rng = np.random.default_rng(0)
    episodes = [(rng.normal(size=(30, 2)), rng.normal(size=30)) for _ in range(4)]
    advantages = baseline.task_advantages(episodes, gamma=0.9)
    flat = np.concatenate(advantages)
    assert [len(a) for a in advantages] == [30] * 4 and flat.dtype == np.float32
    assert abs(flat.mean()) < 1e-5 and flat.std() == pytest.approx(1.0, rel=1e-4)
    # Returns that are a linear function of the features leave (almost) nothing to the advantages.
    features = baseline.baseline_features(episodes[0][0])
    weights = rng.normal(size=features.shape[1])
    np.testing.assert_allclose(baseline.fit_linear_baseline(features, features @ weights, ridge=1e-12), weights,
                               rtol=1e-6, atol=1e-8)


def test_tasks_are_shared_out_in_contiguous_near_even_blocks():
    assert assign_tasks(4, [2, 1]) == {1: [0, 1], 2: [2, 3]}
    assert assign_tasks(5, [0]) == {0: [0, 1, 2, 3, 4]}
    assert sorted(i for ids in assign_tasks(7, [1, 2, 3]).values() for i in ids) == list(range(7))
    assert assign_tasks(1, [1, 2]) in ({1: [0]}, {2: [0]})


# Sampling: episode counts, the meta-weights' restore ------------------------------------------------------
def test_an_episode_under_another_task_than_planned_is_an_error_on_the_driver():
    a, b = {"goal": [0.1, 0.2]}, {"goal": [-0.3, 0.4]}
    check_recorded_tasks([(1, 0, a), (2, 1, b)], {0: a, 1: b})
    with pytest.raises(RuntimeError, match=r"^EnvRunner 2: an episode of task 1 ran under .*0\.1.*not its planned task .*-0\.3"):
        check_recorded_tasks([(1, 0, a), (2, 1, dict(a))], {0: a, 1: b})
    with pytest.raises(RuntimeError, match="ran under None"):  # an episode that recorded no task
        check_recorded_tasks([(1, 0, None)], {0: a})


def test_a_task_short_of_its_episodes_is_an_error_naming_it():
    check_episodes_per_task({0: ["e", "e"], 1: ["e", "e", "e"]}, [0, 1], 2, phase="pre")  # more is fine
    check_episodes_per_task({0: ["e", "e"]}, [0], 2, phase="pre")  # tasks of runners that did not answer: unchecked
    with pytest.raises(RuntimeError, match=r"^held_out_pre sampling: 2 task\(s\) got fewer than the 2 episodes "
                                           r"asked for \(task 1: 1, task 2: 0\)"):
        check_episodes_per_task({0: ["e", "e"], 1: ["e"]}, [0, 1, 2], 2, phase="held_out_pre")


class ViewStateModule:
    """A module whose get_state returns views of its weights and whose set_state writes into them in place
    (as torch's load_state_dict does); `used` records the weights each sample call acted with."""

    def __init__(self, weights: np.ndarray):
        self.weights = weights.copy()

    def get_state(self):
        return {"w": self.weights}

    def set_state(self, state):
        self.weights[...] = state["w"]


def test_post_adaptation_sampling_restores_the_meta_weights_even_from_a_state_of_views():
    env = gym.vector.SyncVectorEnv([PointNavEnv, PointNavEnv])
    meta = np.array([1.0, 2.0])
    used = []

    def sample(*, num_episodes, explore, force_reset):
        used.append(runner.module.weights.copy())
        tasks = [dict(t) for t in env.get_attr("task")]
        return [SimpleNamespace(custom_data={EPISODE_ENV_INDEX: i % 2, EPISODE_TASK: tasks[i % 2]})
                for i in range(num_episodes)]

    runner = SimpleNamespace(worker_index=1, env=env, num_envs=2, module=ViewStateModule(meta), sample=sample,
                             get_metrics=lambda: {})
    tasks = PointNavEnv().sample_tasks(2, np.random.default_rng(0))
    jobs = {1: [(0, tasks[0], {"w": np.array([5.0, 6.0])}), (1, tasks[1], {"w": np.array([7.0, 8.0])})]}
    index, tagged, _ = sample_post_adaptation(jobs, 2, runner)
    env.close()
    assert index == 1 and [t for t, _ in tagged] == [0, 0, 1, 1]
    np.testing.assert_array_equal(used, [[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_array_equal(runner.module.weights, meta)


# Held-out tasks ---------------------------------------------------------------------------------------------
def test_held_out_tasks_follow_held_out_seed_not_the_runs_seed():
    env = make_task_env("rlfrontier/PointNav-v0", {})
    try:
        config = MAMLConfig().environment("rlfrontier/PointNav-v0").training(meta_batch_size=5)
        first = held_out_tasks(env, config.copy().debugging(seed=1))
        assert len(first) == 5
        assert held_out_tasks(env, config.copy().debugging(seed=2)) == first
        assert held_out_tasks(env, config.copy().debugging(seed=None)) == first
        other = held_out_tasks(env, config.copy().debugging(seed=1).training(held_out_seed=1))
        assert len(other) == 5 and other != first
    finally:
        env.close()


# Config ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("meta_batch_size", 0), ("meta_batch_size", 2.5), ("inner_steps", 0), ("inner_lr", 0.0), ("inner_lr", -1.0),
    ("first_order", 1), ("pre_adaptation_episodes", 0), ("post_adaptation_episodes", -3), ("clip_param", 0.0),
    ("clip_param", 1.0), ("num_epochs", 0), ("held_out_seed", -1), ("held_out_seed", 1.5), ("held_out_seed", None),
])
def test_a_bad_value_is_a_value_error_naming_its_field(field, value):
    config = MAMLConfig().environment("rlfrontier/PointNav-v0")
    setattr(config, field, value)
    with pytest.raises(ValueError, match=f"^{field}="):
        config.validate()


def test_more_than_one_learner_and_a_lost_task_recorder_are_refused():
    with pytest.raises(ValueError, match="^num_learners=2"):
        MAMLConfig().environment("rlfrontier/PointNav-v0").learners(num_learners=2).validate()
    config = MAMLConfig().environment("rlfrontier/PointNav-v0").callbacks(on_episode_start=lambda **kw: None)
    with pytest.raises(ValueError, match="^callbacks_on_episode_start"):
        config.validate()
    MAMLConfig().environment("rlfrontier/PointNav-v0").callbacks(
        on_episode_start=[record_task, lambda **kw: None]).validate()
