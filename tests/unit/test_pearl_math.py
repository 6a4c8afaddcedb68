"""PEARL's equations and learner glue in this process (no Ray): the posterior, the KL, the tanh-Gaussian
log-density, which parameters each loss term trains, the critic target, Polyak averaging, a falling loss."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.connectors.module_to_env.get_actions import GetActions
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from learner_batches import single_torch_thread
from rlfrontier.algorithms.pearl import losses
from rlfrontier.algorithms.pearl.pearl import PEARLConfig
from rlfrontier.algorithms.pearl.torch.pearl_learner import PEARLTorchLearner
from rlfrontier.algorithms.pearl.torch.pearl_module import PEARLTorchRLModule

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT_SPACE = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
MODEL_CONFIG = {"hidden_sizes": [16], "encoder_hidden_sizes": [16], "latent_dim": 4}
T, C, B = 3, 4, 5  # tasks, context transitions per task, RL rows per task
HYPER = {"reward_scale": 5.0, "kl_lambda": 0.1, "gamma": 0.99}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


def make_module(*, inference_only: bool = False) -> PEARLTorchRLModule:
    torch.manual_seed(0)
    module = PEARLTorchRLModule(observation_space=OBS_SPACE, action_space=ACT_SPACE, model_config=MODEL_CONFIG,
                                inference_only=inference_only)
    if not inference_only:
        module.make_target_networks()
    return module


def meta_batch(context_dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One update's columns, task-major (losses.pearl_loss_terms' keywords)."""
    rng = np.random.default_rng(seed)
    return {
        "context": rng.normal(size=(T, C, context_dim)).astype(np.float32),
        "obs": rng.uniform(-1, 1, (T, B, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (T, B, 2)).astype(np.float32),
        "rewards": rng.normal(size=(T, B)).astype(np.float32),
        "next_obs": rng.uniform(-1, 1, (T, B, 3)).astype(np.float32),
        "terminateds": rng.random((T, B)) < 0.2,
    }


def as_tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in batch.items()}


# The posterior and the KL ----------------------------------------------------------------------------------
def test_product_of_two_unit_gaussians_by_hand():
    mu, var = losses.product_of_gaussians(torch.tensor([[[1.0], [3.0]]]), torch.ones(1, 2, 1))
    assert mu.tolist() == [[2.0]] and var.tolist() == [[0.5]]


def test_product_is_invariant_to_the_order_of_factors():
    gen = torch.Generator().manual_seed(0)
    mu, var = torch.randn(2, 5, 3, generator=gen), torch.rand(2, 5, 3, generator=gen) + 0.1
    order = torch.randperm(5, generator=gen)
    for a, b in zip(losses.product_of_gaussians(mu, var), losses.product_of_gaussians(mu[:, order], var[:, order])):
        torch.testing.assert_close(a, b)


def test_product_of_one_factor_is_that_factor():
    mu, var = torch.tensor([[[0.3, -2.0]]]), torch.tensor([[[0.7, 4.0]]])
    post_mu, post_var = losses.product_of_gaussians(mu, var)
    torch.testing.assert_close(post_mu, mu[:, 0])
    torch.testing.assert_close(post_var, var[:, 0])


def test_product_of_no_factors_is_the_prior():
    mu, var = losses.product_of_gaussians(torch.zeros(2, 0, 3), torch.ones(2, 0, 3))
    assert mu.tolist() == [[0.0] * 3] * 2 and var.tolist() == [[1.0] * 3] * 2


def test_kl_is_zero_at_the_prior_positive_elsewhere_and_torchs():
    assert losses.kl_to_standard_normal(torch.zeros(2, 3), torch.ones(2, 3)).tolist() == [0.0, 0.0]
    gen = torch.Generator().manual_seed(0)
    mu, var = torch.randn(4, 3, generator=gen), torch.rand(4, 3, generator=gen) + 0.05
    kl = losses.kl_to_standard_normal(mu, var)
    assert (kl > 0).all()
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mu, var.sqrt()),
                                                 torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl, expected)


# The module ------------------------------------------------------------------------------------------------
def test_policy_log_prob_is_the_tanh_gaussians():
    module = make_module()
    gen = torch.Generator().manual_seed(1)
    obs, z = torch.rand(64, 3, generator=gen) * 2 - 1, torch.randn(64, 4, generator=gen)
    action, log_prob, mean, log_std, pre_tanh = module.policy_sample(obs, z)
    torch.testing.assert_close(action, torch.tanh(pre_tanh))
    squashed = torch.distributions.TransformedDistribution(
        torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1),
        [torch.distributions.TanhTransform()])
    torch.testing.assert_close(log_prob, squashed.log_prob(action), atol=1e-4, rtol=1e-4)
    deterministic, *_ = module.policy_sample(obs, z, deterministic=True)
    torch.testing.assert_close(deterministic, torch.tanh(mean))


def test_envrunner_module_acts_with_its_latents_and_keeps_them_across_weight_syncs():
    learner_module, runner_module = make_module(), make_module(inference_only=True)
    assert {name for name, _ in runner_module.named_children()} == {"encoder", "pi"}
    runner_module.set_latent(np.arange(4, dtype=np.float32))
    runner_module.set_state(learner_module.get_state(inference_only=True))
    assert runner_module.latent.tolist() == [[0.0, 1.0, 2.0, 3.0]]
    obs = torch.rand(6, 3)
    latents = torch.randn(6, 4)  # one per sub-env
    for z, rows in ((runner_module.latent, runner_module.latent.expand(6, -1)), (latents, latents)):
        runner_module.set_latent(z)
        out = runner_module.forward_inference({Columns.OBS: obs})
        torch.testing.assert_close(out[Columns.ACTIONS], torch.tanh(runner_module.pi(torch.cat([obs, rows], -1))[:, :2]))
    explored = runner_module.forward_exploration({Columns.OBS: obs}, t=0)
    assert explored[Columns.ACTIONS].abs().max() <= 1.0 and explored[Columns.ACTION_LOGP].shape == (6,)
    # RLlib's GetActions passes actions the module returned through, without an action distribution.
    passed = GetActions()(rl_module=runner_module, batch=dict(explored), episodes=[SingleAgentEpisode()],
                          explore=True)
    assert passed[Columns.ACTIONS] is explored[Columns.ACTIONS]
    with pytest.raises(ValueError, match="6 latents set"):
        runner_module.forward_inference({Columns.OBS: obs[:4]})
    with pytest.raises(ValueError, match="shape"):
        runner_module.set_latent(np.zeros(5))


def test_only_flat_box_spaces():
    with pytest.raises(ValueError, match="Discrete"):
        PEARLTorchRLModule(observation_space=OBS_SPACE, action_space=gym.spaces.Discrete(2), model_config={})


# The losses --------------------------------------------------------------------------------------------------
GROUPS = ("encoder", "pi", "qf", "vf")  # qf: Q1 and Q2


def grouped_grad_norms(module, loss: torch.Tensor) -> dict[str, float]:
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], retain_graph=True, allow_unused=True)
    norms = dict.fromkeys(GROUPS, 0.0)
    for (name, _), grad in zip(named, grads):
        if grad is not None:
            norms[name.split(".")[0].rstrip("12")] += grad.norm().item()
    return norms


def test_each_term_trains_only_its_parameters():
    module = make_module()
    terms = losses.pearl_loss_terms(module=module, **as_tensors(meta_batch(module.context_dim)), **HYPER)
    expected = {"qf_loss": {"encoder", "qf"}, "kl_loss": {"encoder"}, "vf_loss": {"vf"}, "policy_loss": {"pi"}}
    for term, groups in expected.items():
        norms = grouped_grad_norms(module, getattr(terms, term))
        assert {g for g, norm in norms.items() if norm > 0} == groups, (term, norms)
    terms.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters() if p.requires_grad)
    assert all(p.grad is None and not p.requires_grad for p in module.target_vf.parameters())


def test_critic_target_by_hand():
    y = losses.critic_target(rewards=torch.tensor([1.0, 2.0]), terminateds=torch.tensor([0.0, 1.0]),
                             next_value=torch.tensor([10.0, 10.0]), reward_scale=5.0, gamma=0.9)
    assert y.tolist() == [14.0, 10.0]  # 5 * 1 + 0.9 * 10; 5 * 2 at a terminal step


def test_qf_loss_regresses_on_reward_scale_and_terminated():
    module = make_module()
    with torch.no_grad():  # Q1 = 1, Q2 = -1 and target V = 2 everywhere
        for net, value in ((module.qf1, 1.0), (module.qf2, -1.0), (module.target_vf, 2.0)):
            net[-1].weight.zero_()
            net[-1].bias.fill_(value)
    batch = as_tensors(meta_batch(module.context_dim))
    y = 5.0 * batch["rewards"] + (1.0 - batch["terminateds"].float()) * 0.9 * 2.0
    terms = losses.pearl_loss_terms(module=module, **batch, reward_scale=5.0, kl_lambda=0.1, gamma=0.9)
    torch.testing.assert_close(terms.qf_loss, ((1.0 - y) ** 2).mean() + ((-1.0 - y) ** 2).mean())


def test_qf_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    module = make_module()
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    batch = as_tensors(meta_batch(module.context_dim))
    history = []
    for _ in range(200):
        total, metrics = losses.pearl_losses(module=module, **batch, **HYPER)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(metrics[losses.QF_LOSS].item())
    assert np.mean(history[-10:]) < 0.3 * np.mean(history[:10])


# The learner -------------------------------------------------------------------------------------------------
@pytest.fixture
def learner() -> PEARLTorchLearner:
    torch.manual_seed(0)
    config = PEARLConfig().environment(observation_space=OBS_SPACE, action_space=ACT_SPACE).rl_module(
        model_config=MODEL_CONFIG)
    return config.build_learner()


def test_learner_update_trains_everything_but_the_target_and_then_polyaks_it(learner):
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    tau = learner.config.tau
    assert tau == PEARLConfig().tau == 0.005
    in_optimizer = {id(p) for p in learner._params.values()}
    assert not any(id(p) in in_optimizer for p in module.target_vf.parameters())
    before = {k: v.clone() for k, v in module.state_dict().items()}
    cols = meta_batch(module.context_dim)
    cols = {losses.CONTEXT: cols["context"], Columns.OBS: cols["obs"], Columns.ACTIONS: cols["actions"],
            Columns.REWARDS: cols["rewards"], Columns.NEXT_OBS: cols["next_obs"],
            Columns.TERMINATEDS: cols["terminateds"]}
    results = learner.update(batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(cols)}, env_steps=T * B),
                             timesteps={})
    after = module.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    for key in before:  # the update ends with one Polyak step of the already-updated V
        if key.startswith("target_vf."):
            main = after["vf." + key.removeprefix("target_vf.")]
            torch.testing.assert_close(after[key], tau * main + (1 - tau) * before[key])
    assert {losses.QF_LOSS, losses.KL_DIVERGENCE, losses.Z_VAR_MEAN} <= set(results[DEFAULT_MODULE_ID])
