"""Random network distillation: the module's gradients and loss, the normalisers, the bonus by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlfrontier import bonuses, rnd
from rlfrontier.replay import EPISODE_IDS, INDEXES, NEXT_OBS, REWARDS, TERMINATEDS, TRUNCATEDS

OBS_SPACE = gym.spaces.Box(-10, 10, (6,), np.float32)


def module(**model_config) -> rnd.RNDModule:
    torch.manual_seed(0)
    return rnd.RNDModule(observation_space=OBS_SPACE, action_space=None, model_config=model_config)


def test_the_target_gets_no_gradient_and_the_predictor_loss_falls_on_a_fixed_batch():
    m = module(hidden_sizes=[32, 32])
    batch = {NEXT_OBS: torch.as_tensor(np.random.default_rng(0).normal(size=(64, 6)), dtype=torch.float32)}
    target_before = [p.detach().clone() for p in m.target.parameters()]
    optimizer = torch.optim.Adam(m.predictor.parameters(), lr=1e-3)
    losses = []
    for _ in range(300):
        loss = m._forward_train(batch)[rnd.RND_ERROR].mean()
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in m.target.parameters())
        assert all(p.grad is not None for p in m.predictor.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.equal(a, b) for a, b in zip(target_before, m.target.parameters()))
    # 300 Adam steps on one batch of 64: the predictor (one layer deeper than the
    # target) fits it; on seed 0 the loss fell ~100-fold, a factor 10 is asked.
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_observations_are_normalised_by_the_buffers_and_clipped():
    m = module(obs_clip=2.0)
    m.set_obs_stats(np.full(6, 1.0), np.full(6, 4.0))
    x = torch.tensor([[1.0, 3.0, -1.0, 100.0, -100.0, 2.0]])
    np.testing.assert_allclose(m.normalise(x).numpy(), [[0.0, 1.0, -1.0, 2.0, -2.0, 0.5]], atol=1e-4)
    # The buffers are the module's state: they travel with its weights and checkpoints.
    state = m.get_state()
    assert np.allclose(state["obs_mean"], 1.0) and np.allclose(state["obs_var"], 4.0)


def test_running_mean_std_matches_numpy_over_chunks():
    rng = np.random.default_rng(1)
    data = rng.normal(3.0, 2.0, size=(1000, 4))
    stats = bonuses.RunningMeanStd((4,))
    for chunk in np.array_split(data, [1, 10, 500, 777]):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.var, data.var(axis=0), rtol=1e-10)
    assert stats.count == 1000


def test_running_mean_std_with_a_max_count_forgets_the_old_statistics():
    rng = np.random.default_rng(3)
    early, late = rng.normal(0.0, 100.0, size=(500, 1)), rng.normal(0.0, 0.01, size=(100_000, 1))
    capped, lifetime = bonuses.RunningMeanStd((1,)), bonuses.RunningMeanStd((1,))
    for chunk in [early, *np.array_split(late, 100)]:
        capped.update(chunk, max_count=1000)
        lifetime.update(chunk)
    # The lifetime variance keeps the early transient (~100^2 * 500 / 100,500); the capped one
    # weighs the old statistics as at most 1000 rows, so after 100 chunks of 1000 it is the late one's.
    assert lifetime.var[0] > 10.0
    np.testing.assert_allclose(capped.var, late.var(axis=0), rtol=0.05)
    # Below the cap it is the exact running variance.
    exact = bonuses.RunningMeanStd((1,))
    for chunk in np.array_split(early, 5):
        exact.update(chunk, max_count=1000)
    np.testing.assert_allclose(exact.var, early.var(axis=0), rtol=1e-10)


def _bonus(**settings) -> bonuses.RNDBonus:
    bonus = bonuses.build({"type": "rnd", **settings}, observation_space=OBS_SPACE)
    bonus._module = module(**bonus.model_config)  # what attach() copies from the learners
    bonus.obs_stats = bonuses.RunningMeanStd((6,))
    return bonus


def test_the_bonus_is_the_error_over_the_std_of_the_forward_filtered_intrinsic_return():
    bonus = _bonus(beta=0.5, gamma=0.9)
    rng = np.random.default_rng(2)
    next_obs = rng.normal(size=(5, 6)).astype(np.float32)
    # Two episodes: "a" (3 steps, ends) and "b" (2 steps, goes on): the filter runs on, non-episodic.
    columns = {NEXT_OBS: next_obs, REWARDS: np.zeros(5, np.float32),
               EPISODE_IDS: np.array(["a", "a", "a", "b", "b"], dtype=object),
               TERMINATEDS: np.array([0, 0, 1, 0, 0], bool), TRUNCATEDS: np.zeros(5, bool)}
    bonus.observe(columns)
    # The observation statistics came first, so the errors use them.
    np.testing.assert_allclose(bonus.obs_stats.mean, next_obs.mean(axis=0), rtol=1e-5)
    e = bonus._errors(next_obs)
    returns = [e[0]]
    for error in e[1:]:
        returns.append(0.9 * returns[-1] + error)
    np.testing.assert_allclose(bonus.return_stats.var, np.var(returns), rtol=1e-5)
    assert bonus._running_return == pytest.approx(returns[-1])
    window = {NEXT_OBS: next_obs.reshape(5, 1, 6), REWARDS: np.zeros((5, 1), np.float32)}
    np.testing.assert_allclose(bonus.intrinsic(window)[:, 0], 0.5 * e / np.std(returns), rtol=1e-4)
    # Windows that share slots (n-step overlap) get each slot's one error.
    shared = {NEXT_OBS: next_obs[[0, 1, 1, 2]].reshape(2, 2, 6), REWARDS: np.zeros((2, 2), np.float32),
              INDEXES: np.array([[0, 1], [1, 2]])}
    np.testing.assert_allclose(bonus.intrinsic(shared), 0.5 * e[[0, 1, 1, 2]].reshape(2, 2) / np.std(returns),
                               rtol=1e-4)
    state = bonus.get_state()
    other = _bonus()
    other.set_state(state)
    np.testing.assert_allclose(other.obs_stats.mean, bonus.obs_stats.mean)
    assert other.return_stats.var == pytest.approx(bonus.return_stats.var)
    assert other._running_return == pytest.approx(bonus._running_return)


def test_n_step_batches_carry_the_first_steps_own_next_observation_for_the_predictor():
    from rlfrontier.replay import STEP_NEXT_OBS, TransitionReplayBuffer, transitions_from_episodes
    from tests.unit.test_replay import make_episode

    buffer = TransitionReplayBuffer(capacity=50, n_step=3, gamma=0.9, seed=0)
    buffer.add(transitions_from_episodes([make_episode([0.0] * 6, terminated=True)]))
    assert STEP_NEXT_OBS not in buffer.fold(np.arange(6))
    buffer.keep_step_next_obs = True
    batch = buffer.fold(np.arange(6))
    # Observation at step i is i: the window from step t bootstraps from min(t + 3, 6), the predictor trains on t + 1.
    np.testing.assert_array_equal(batch[NEXT_OBS][:, 0], [3, 4, 5, 6, 6, 6])
    np.testing.assert_array_equal(batch[STEP_NEXT_OBS][:, 0], [1, 2, 3, 4, 5, 6])
    m = module()
    assert torch.equal(m._forward({NEXT_OBS: torch.as_tensor(batch[NEXT_OBS]),
                                   STEP_NEXT_OBS: torch.as_tensor(batch[STEP_NEXT_OBS])})[rnd.RND_ERROR],
                       m.errors(torch.as_tensor(batch[STEP_NEXT_OBS])))


@pytest.mark.parametrize("settings, message", [
    ({"gamma": 1.0}, "bonus rnd gamma=1.0 must be a number in [0, 1)"),
    ({"hidden_sizes": [0]}, "bonus rnd hidden_sizes=[0] must be a list of positive integers"),
    ({"embedding_dim": 0}, "bonus rnd embedding_dim=0 must be a positive integer"),
    ({"lr": -1}, "bonus rnd lr=-1 must be a positive number"),
    ({"return_window": 0}, "bonus rnd return_window=0 must be a positive integer or None"),
    ({"bits": 8}, "bonus rnd has no setting 'bits'"),
])
def test_a_bad_rnd_setting_names_itself(settings, message):
    with pytest.raises(ValueError) as caught:
        bonuses.build({"type": "rnd", **settings})
    assert str(caught.value).startswith(message)


def test_the_config_adds_the_predictor_as_a_learner_only_module():
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rlfrontier.algorithms.soft_q import SoftQConfig
    from rlfrontier.modules import learner_only_module_ids

    config = SoftQConfig().environment("CartPole-v1").training(bonus={"type": "rnd", "embedding_dim": 8})
    spaces = {DEFAULT_MODULE_ID: (gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))}
    learner_spec = config.get_multi_rl_module_spec(spaces=spaces, inference_only=False)
    assert set(learner_spec.rl_module_specs) == {DEFAULT_MODULE_ID, rnd.MODULE_ID}
    assert learner_spec.rl_module_specs[rnd.MODULE_ID].learner_only
    assert learner_spec.rl_module_specs[rnd.MODULE_ID].model_config["embedding_dim"] == 8
    assert set(config.get_multi_rl_module_spec(spaces=spaces, inference_only=True).rl_module_specs) \
        == {DEFAULT_MODULE_ID}
    assert learner_only_module_ids(config) == {rnd.MODULE_ID}
