"""Learner-only modules beside the policy module, through the real learners (no Ray).

Each test builds a soft_q or boot_dqn learner in this process with a
NextObsPredictor attached by `rlfrontier.modules.add_learner_only_modules`
and checks what the brief of issue "Solid ground" part 5 asks: every module
gets its own optimizer, the learner-only module learns from the policy's own
minibatch tensors, target sync touches only modules with targets, and a
module that brings no loss or optimizer is refused instead of silently
trained by the policy's.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule

from learner_batches import MID, build_learner, env_transitions, module_of, params, same, single_torch_thread, update
from rlfrontier import modules, offpolicy, replay
from rlfrontier.algorithms.boot_dqn.boot_dqn import BOOTSTRAP_MASK, BootDQNConfig
from rlfrontier.algorithms.soft_q.soft_q import SoftQConfig
from rlfrontier.envs import register_envs
from rlfrontier.validation import BadInput

PREDICTOR = "next_obs"
PREDICTOR_LR = 3e-3
GAMMA = 0.99


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def cartpole():
    return gym.make("CartPole-v1")


@pytest.fixture(scope="module")
def deep_sea():
    register_envs()
    return gym.make("rlfrontier/DeepSea-v0", size=5)


def with_predictor(config, module_class=modules.NextObsPredictor):
    config = modules.add_learner_only_modules(
        config, {PREDICTOR: RLModuleSpec(module_class=module_class, model_config={"hidden_sizes": [16]})}
    )
    # Its own learning rate: RLlib's per-module config overrides.
    return config.multi_agent(
        algorithm_config_overrides_per_module={PREDICTOR: type(config).overrides(lr=PREDICTOR_LR)}
    )


def soft_q_learner(env, *, predictor: bool = True, **training):
    settings = dict(alpha=0.3, twin_q=False, target_update_interval=10_000, lr=1e-3, gamma=GAMMA)
    settings.update(training)
    config = SoftQConfig().training(**settings).rl_module(model_config={"hidden_sizes": [32]})
    torch.manual_seed(0)
    return build_learner(with_predictor(config) if predictor else config, env)


def boot_dqn_learner(env):
    config = BootDQNConfig().training(num_heads=4, hidden_sizes=[16], lr=1e-2, gamma=GAMMA)
    torch.manual_seed(0)
    return build_learner(with_predictor(config), env)


def cartpole_batch(env, seed: int = 0) -> dict[str, np.ndarray]:
    return env_transitions(env, 64, gamma=GAMMA, seed=seed)


def deep_sea_batch(env) -> dict[str, np.ndarray]:
    batch = env_transitions(env, 40, gamma=GAMMA, seed=0)
    batch[BOOTSTRAP_MASK] = np.ones((40, 4), dtype=np.float32)
    return batch


def predictor_of(learner) -> modules.NextObsPredictor:
    return learner.module[PREDICTOR].unwrapped()


def optimizer_params(learner, module_id) -> dict[str, set[int]]:
    return {name: {id(p) for group in opt.param_groups for p in group["params"]}
            for name, opt in learner.get_optimizers_for_module(module_id)}


# (c) Every module gets an optimizer ---------------------------------------------------
@pytest.mark.parametrize("algo", ["soft_q", "boot_dqn"])
def test_every_module_gets_its_own_optimizer_over_its_own_parameters(algo, cartpole, deep_sea):
    learner = soft_q_learner(cartpole) if algo == "soft_q" else boot_dqn_learner(deep_sea)
    assert set(learner.module.keys()) == {MID, PREDICTOR}
    predictor = optimizer_params(learner, PREDICTOR)
    assert predictor == {"next_obs": {id(p) for p in predictor_of(learner).parameters()}}
    # The policy keeps the optimizer its learner configures (its Q-net, not the predictor's).
    policy = optimizer_params(learner, MID)
    assert set(policy) == {"qf"}
    assert policy["qf"] == {id(p) for p in module_of(learner).qf.parameters()}
    # The predictor's own learning rate (RLlib's per-module override), the policy's own.
    [(_, opt)] = learner.get_optimizers_for_module(PREDICTOR)
    assert opt.param_groups[0]["lr"] == pytest.approx(PREDICTOR_LR)
    assert learner.get_optimizers_for_module(MID)[0][1].param_groups[0]["lr"] == pytest.approx(
        1e-3 if algo == "soft_q" else 1e-2)


def test_the_default_path_has_one_module_and_shares_nothing(cartpole):
    learner = soft_q_learner(cartpole, predictor=False)
    assert list(learner.module.keys()) == [MID]
    assert learner._learner_only_ids == ()
    assert modules.learner_only_module_ids(learner.config) == frozenset()


# The learner-only module learns from the policy's minibatch -----------------------------
class RecordingPredictor(modules.NextObsPredictor):
    """Keeps the batch its loss saw."""

    def compute_self_supervised_loss(self, *, batch, **kwargs):
        self.seen = batch
        return super().compute_self_supervised_loss(batch=batch, **kwargs)


def test_learner_only_module_trains_on_the_policys_minibatch_tensors(cartpole):
    config = SoftQConfig().training(alpha=0.3, twin_q=False, lr=1e-3).rl_module(model_config={"hidden_sizes": [32]})
    torch.manual_seed(0)
    learner = build_learner(with_predictor(config, RecordingPredictor), cartpole)
    seen_by_policy = {}
    policy_loss = learner.compute_loss_for_module

    def recording_policy_loss(*, batch, **kwargs):
        seen_by_policy.update(batch)
        return policy_loss(batch=batch, **kwargs)

    learner.compute_loss_for_module = recording_policy_loss
    batch = cartpole_batch(cartpole)
    policy_before, predictor_before = params(module_of(learner).qf), params(predictor_of(learner))

    results = update(learner, batch)

    seen = predictor_of(learner).seen
    for column in (replay.OBS, replay.ACTIONS, replay.NEXT_OBS):
        assert seen[column] is seen_by_policy[column]  # the same tensor: no copy per module
        np.testing.assert_array_equal(seen[column].numpy(), batch[column])
    # Both modules stepped, each on its own loss.
    assert not same(policy_before, params(module_of(learner).qf))
    assert not same(predictor_before, params(predictor_of(learner)))
    assert np.isfinite(results[PREDICTOR][modules.NEXT_OBS_LOSS].peek())
    # RLlib counts the steps the MultiAgentBatch carried: the policy's rows, once.
    assert results["__all_modules__"]["num_env_steps_trained"].peek() == len(batch[replay.OBS])


def test_share_policy_batch_keeps_a_modules_own_rows():
    policy, own = {"obs": torch.zeros(2)}, {"obs": torch.ones(3)}
    shared = modules.share_policy_batch({MID: policy, "disc": own}, ["disc", "rnd"])
    assert shared[MID] is policy and shared["rnd"] is policy and shared["disc"] is own


def test_boot_dqn_learner_trains_both_modules(deep_sea):
    learner = boot_dqn_learner(deep_sea)
    policy_before, predictor_before = params(module_of(learner).qf), params(predictor_of(learner))
    update(learner, deep_sea_batch(deep_sea))
    assert not same(policy_before, params(module_of(learner).qf))
    assert not same(predictor_before, params(predictor_of(learner)))


# (b) Target sync touches only modules with targets ------------------------------------
def test_target_sync_moves_the_policy_target_by_polyak_and_leaves_the_predictor(cartpole):
    tau = 0.25
    learner = soft_q_learner(cartpole, tau=tau, target_update_interval=1)
    module = module_of(learner)
    target_before = params(module.target_qf)
    results = update(learner, cartpole_batch(cartpole))
    # target <- tau * online (after the step) + (1 - tau) * target.
    for online, old, new in zip(params(module.qf), target_before, params(module.target_qf), strict=True):
        torch.testing.assert_close(new, tau * online + (1 - tau) * old)
    assert not same(target_before, params(module.target_qf))
    assert results[MID][offpolicy.NUM_TARGET_UPDATES].peek() == 1
    # The predictor has no target network and no target count.
    assert not any(name.startswith("target") for name, _ in predictor_of(learner).named_children())
    assert offpolicy.NUM_TARGET_UPDATES not in results[PREDICTOR]
    assert offpolicy.NUM_UPDATES not in results[PREDICTOR]


# Modules that bring no loss or optimizer are refused ----------------------------------
class BarePredictor(TorchRLModule):
    def setup(self):
        self.net = torch.nn.Linear(4, 4)

    def _forward_train(self, batch, **kwargs):
        return {}


def test_add_refuses_a_module_without_its_own_loss_and_optimizer():
    with pytest.raises(BadInput, match="SelfSupervisedLossAPI and OwnOptimizersAPI"):
        modules.add_learner_only_modules(SoftQConfig(), {"bare": RLModuleSpec(module_class=BarePredictor)})
    with pytest.raises(BadInput, match="already taken"):
        modules.add_learner_only_modules(SoftQConfig(), {MID: RLModuleSpec(module_class=modules.NextObsPredictor)})


def test_learner_refuses_a_module_it_cannot_train(cartpole):
    # Attached by hand, past the helper's check: the learner names it instead of
    # handing it the policy's optimizer (RLlib's TorchLearner would).
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec

    spec = MultiRLModuleSpec(rl_module_specs={
        MID: RLModuleSpec(), "bare": RLModuleSpec(module_class=BarePredictor, learner_only=True),
    })
    config = SoftQConfig().rl_module(rl_module_spec=spec)
    with pytest.raises(TypeError, match="'bare' .* gets no optimizer"):
        build_learner(config, cartpole)


# Config side ---------------------------------------------------------------------------
def test_add_keeps_the_users_policy_spec_and_env_runners_build_the_policy_only(cartpole):
    config = SoftQConfig().environment("CartPole-v1").rl_module(
        rl_module_spec=RLModuleSpec(model_config={"hidden_sizes": [24]})
    )
    config = with_predictor(config)
    assert modules.learner_only_module_ids(config) == {PREDICTOR}
    # What an EnvRunner (and `evaluate`) builds: the policy module, with the user's spec.
    runner_spec = config.get_rl_module_spec(env=cartpole, inference_only=True)
    assert runner_spec.model_config["hidden_sizes"] == [24]
    assert runner_spec.module_class.__name__ == "SoftQTorchRLModule"
    learner = build_learner(config, cartpole)
    assert module_of(learner).qf[0].out_features == 24
    assert predictor_of(learner).net[0].out_features == 16
