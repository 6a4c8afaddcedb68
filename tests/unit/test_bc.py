"""Behavioural cloning: the loss by hand, the config's checks, and the learner on the modules it trains (no Ray)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical, TorchDiagGaussian
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from learner_batches import MID, build_learner, single_torch_thread
from rlfrontier import demos
from rlfrontier.algorithms.bc import BCConfig, losses
from rlfrontier.algorithms.bc.bc import ACTION_ACCURACY, BC_LOSS
from rlfrontier.algorithms.soft_q import SoftQConfig
from rlfrontier.algorithms.soft_q.torch.soft_q_torch_rl_module import SoftQTorchRLModule
from rlfrontier.validation import BadInput


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


# The loss by hand ---------------------------------------------------------------------


def test_the_loss_of_a_categorical_is_the_mean_negative_log_softmax_of_the_demonstrated_actions():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    actions = torch.tensor([1, 2])
    # -log softmax: row 1, action 1: log(e + e^2 + 1) - 2; row 2: log 3.
    by_hand = ((math.log(math.e + math.e**2 + 1) - 2.0) + math.log(3.0)) / 2
    loss = losses.negative_log_likelihood(action_dist=TorchCategorical.from_logits(logits), actions=actions)
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_the_loss_of_a_diagonal_gaussian_sums_the_dimensions_and_averages_the_rows():
    # RLlib's layout: the means, then the log standard deviations.
    inputs = torch.tensor([[0.0, 1.0, 0.0, math.log(2.0)], [0.5, -1.0, math.log(0.5), 0.0]])
    actions = torch.tensor([[1.0, 1.0], [0.5, 0.0]])

    def log_normal(x, mean, std):
        return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)

    by_hand = -((log_normal(1.0, 0.0, 1.0) + log_normal(1.0, 1.0, 2.0))
                + (log_normal(0.5, 0.5, 0.5) + log_normal(0.0, -1.0, 1.0))) / 2
    loss = losses.negative_log_likelihood(action_dist=TorchDiagGaussian.from_logits(inputs), actions=actions)
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_the_accuracy_counts_the_demonstrated_actions_that_are_the_most_likely():
    logits = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [5.0, 4.0]])
    accuracy = losses.action_accuracy(action_dist=TorchCategorical.from_logits(logits),
                                      actions=torch.tensor([1, 0, 0, 1]))
    assert accuracy.item() == 0.5


# The config ------------------------------------------------------------------------------


def config(env: str = "CartPole-v1", **training) -> BCConfig:
    return BCConfig().environment(env).training(**{"demos": "unused", **training})


def test_module_of_defaults_to_soft_q_for_discrete_and_ppo_for_box_actions():
    assert config().module_algorithm == "soft_q"
    assert config("Pendulum-v1").module_algorithm == "ppo"
    assert config(module_of="ppo").module_algorithm == "ppo"


def test_the_module_is_the_one_its_algorithm_builds_for_the_env():
    spec = config().get_default_rl_module_spec()
    assert spec.module_class is SoftQTorchRLModule
    assert spec.model_config == SoftQConfig().model_config  # twin Q and alpha as soft_q builds them
    spec = config().rl_module(model_config={"hidden_sizes": [32]}).get_default_rl_module_spec()
    assert spec.model_config["hidden_sizes"] == [32] and spec.model_config["twin_q"] is True


@pytest.mark.parametrize(
    "env, training, named",
    [
        ("CartPole-v1", {"module_of": "nope"}, "module_of='nope' is not an algorithm"),
        ("CartPole-v1", {"module_of": "dqn"}, "module_of='dqn' is not an algorithm bc can train"),
        ("Pendulum-v1", {"module_of": "soft_q"}, "module_of='soft_q': soft_q takes Discrete action spaces; Pendulum-v1"),
        ("CartPole-v1", {"updates_per_iteration": 0}, "updates_per_iteration=0"),
        ("CartPole-v1", {"demos": None}, "bc needs demonstrations"),
    ],
)
def test_a_bad_setting_is_bad_input_naming_it(env, training, named):
    with pytest.raises(BadInput, match=named.replace("(", r"\(")):
        config(env, **training).validate()


@pytest.mark.parametrize("env, env_config, needle", [
    ("Acrobot-v1", {}, "recorded on CartPole-v1, not Acrobot-v1"),
    ("CartPole-v1", {"max_episode_steps": 50}, "recorded with env_config {}, not {'max_episode_steps': 50}"),
], ids=["env", "env_config"])
def test_build_algo_refuses_demonstrations_of_another_env_before_the_learner(env, env_config, needle, tmp_path,
                                                                             monkeypatch):
    """The command line checks --demos against the run's env (rlfrontier.configure); a config built in Python
    gets the same check at setup, before a Learner or an EnvRunner is built."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.env.env_runner_group import EnvRunnerGroup

    def built(*args, **kwargs):
        raise AssertionError("a LearnerGroup or EnvRunnerGroup was built before the demonstrations were checked")

    monkeypatch.setattr(AlgorithmConfig, "build_learner_group", built)
    monkeypatch.setattr(EnvRunnerGroup, "__init__", built)
    demos.record(out=tmp_path / "d", env_id="CartPole-v1", episodes=1, scripted="cartpole")
    with pytest.raises(BadInput) as err:
        BCConfig().environment(env, env_config=env_config).training(demos=str(tmp_path / "d")).build_algo()
    assert str(err.value) == f"--demos {tmp_path / 'd'}: {needle}"


# The learner -----------------------------------------------------------------------------


def demo_batch(env: gym.Env, size: int, *, seed: int) -> MultiAgentBatch:
    """States of random play, labelled by the scripted CartPole controller."""
    obs, actions = [], []
    o, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    while len(obs) < size:
        obs.append(o)
        actions.append(demos.cartpole_action(o))
        o, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            o, _ = env.reset()
    columns = {Columns.OBS: np.asarray(obs, dtype=np.float32), Columns.ACTIONS: np.asarray(actions)}
    return MultiAgentBatch({MID: SampleBatch(columns)}, env_steps=size)


def state(learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learner.module[MID].unwrapped().state_dict().items()}


def test_cloning_a_soft_q_module_fits_the_expert_and_fine_tuning_starts_with_targets_equal_to_it():
    env = gym.make("CartPole-v1")
    learner = build_learner(config(updates_per_iteration=1, lr=3e-3), env)
    batch = demo_batch(env, 512, seed=0)
    first = learner.update(batch=batch, num_epochs=1)[MID]
    for _ in range(60):
        last = learner.update(batch=batch, num_epochs=1)[MID]
    assert last[BC_LOSS].peek() < 0.5 * first[BC_LOSS].peek()
    assert last[ACTION_ACCURACY].peek() > 0.9
    cloned = state(learner)
    # The twin head is not what acts: no gradient reaches it, and it keeps its initialisation.
    assert {k for k in cloned if k.startswith("target_qf.")} and {k for k in cloned if k.startswith("qf_twin.")}

    # soft_q's learner makes fresh target networks; restoring the clone's module state (what
    # --restore of a bc checkpoint does) must leave them equal to the restored networks.
    soft_q = build_learner(SoftQConfig().environment("CartPole-v1"), env)
    module = soft_q.module[MID].unwrapped()
    module.set_state({k: v.numpy() for k, v in cloned.items()})
    for online, target in module.get_target_network_pairs():
        for a, b in zip(online.parameters(), target.parameters()):
            assert torch.equal(a, b)
    restored = state(soft_q)
    assert all(torch.equal(restored[k], cloned[k]) for k in cloned)


def test_cloning_a_ppo_module_for_box_actions_trains_the_policy_and_leaves_the_value_function():
    env = gym.make("Pendulum-v1")
    learner = build_learner(config("Pendulum-v1", updates_per_iteration=1), env)
    env.observation_space.seed(0)
    obs = np.stack([env.observation_space.sample() for _ in range(256)]).astype(np.float32)
    actions = np.clip(-obs[:, 2:3], -2, 2).astype(np.float32)  # any smooth function of the state
    batch = MultiAgentBatch({MID: SampleBatch({Columns.OBS: obs, Columns.ACTIONS: actions})}, env_steps=256)
    before = state(learner)
    first = learner.update(batch=batch, num_epochs=1)[MID][BC_LOSS].peek()
    for _ in range(30):
        last = learner.update(batch=batch, num_epochs=1)[MID]
    assert last[BC_LOSS].peek() < first and ACTION_ACCURACY not in last
    after = state(learner)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("pi.") for k in changed)
    assert not any(k.startswith("vf.") for k in changed), changed
