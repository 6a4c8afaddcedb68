"""PPO's exploration bonuses (rlfrontier.ppo_bonus): hand-computed returns and what reaches the learner.

Learners are built in this process (no Ray) for CartPole's spaces and fed
handmade episodes; the value heads are replaced by fixed numbers where a
test checks GAE by hand.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

from rlfrontier import bonuses, ppo_bonus, registry, rnd
from rlfrontier.rewards import REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN
from tests.unit.learner_batches import single_torch_thread

BETA = 0.5


def episode(next_obs: list[list[float]], rewards: list[float], *, terminated: bool, intrinsic=None):
    """A numpy'd CartPole-shaped chunk: observations [s_0, *next_obs], actions 0, 1, 0, ...

    `intrinsic`: the INTRINSIC column, as PPOWithBonus writes it (None: none).
    """
    n = len(rewards)
    extra = {Columns.ACTION_LOGP: [np.float32(np.log(0.5))] * n,
             Columns.ACTION_DIST_INPUTS: [np.zeros(2, np.float32)] * n}
    e = SingleAgentEpisode(
        observations=[np.zeros(4, np.float32), *map(lambda o: np.asarray(o, np.float32), next_obs)],
        actions=[i % 2 for i in range(n)], rewards=list(rewards), extra_model_outputs=extra,
        terminated=terminated, len_lookback_buffer=0,
        observation_space=gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), action_space=gym.spaces.Discrete(2),
    )
    e = e.to_numpy()
    if intrinsic is not None:
        ppo_bonus.set_step_column(e, ppo_bonus.INTRINSIC, np.asarray(intrinsic, np.float32))
    return e


def learner_for(bonus: dict, **training):
    config = (registry.get_algorithm("ppo").make_config().environment("CartPole-v1")
              .training(bonus=bonus, **training))
    config.validate()
    return config.build_learner(env=gym.make("CartPole-v1"))


def run_connector(learner, episodes):
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes, shared_data={},
                                       metrics=learner.metrics)
    return {k: v.cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in batch[DEFAULT_MODULE_ID].items()}


# Equations --------------------------------------------------------------------------------------
def two_chunks():
    """values, rewards, terminateds, truncateds of [a0, a1, a_boot] (terminated) and [b0, b_boot] (cut)."""
    return (np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32), np.array([0.5, 0.25, 0.25, 1.0, 1.0], np.float32),
            np.array([0, 1, 0, 0, 0], np.float32), np.array([0, 0, 0, 1, 0], np.float32))


def test_the_intrinsic_return_is_not_cut_at_an_episode_end():
    # Two chunks, each with RLlib's extra bootstrap step: [a0, a1, a_boot] terminated, [b0, b_boot] cut mid-episode.
    values, rewards, terminateds, truncateds = two_chunks()
    gamma, lam = 0.5, 0.8
    intrinsic = ppo_bonus.non_episodic_value_targets(values=values, rewards=rewards, terminateds=terminateds,
                                                     truncateds=truncateds, gamma=gamma, lambda_=lam)
    episodic = compute_value_targets(values=values, rewards=rewards, terminateds=terminateds,
                                     truncateds=truncateds, gamma=gamma, lambda_=lam)
    # The terminal step bootstraps from V(s_T) = 3 instead of 0 ...
    assert intrinsic[1] == pytest.approx(0.25 + gamma * 3.0)
    assert episodic[1] == pytest.approx(0.25)
    # ... and the step before it sees that through GAE: delta_0 = 0.5 + 0.5 * 2 - 1, A_1 = -0.25.
    assert intrinsic[0] - values[0] == pytest.approx(0.5 + gamma * lam * -0.25)
    # Nothing flows from the next chunk back across the boundary; a chunk cut mid-episode is as before.
    assert intrinsic[3] == pytest.approx(1.0 + gamma * 5.0) == pytest.approx(episodic[3])


def test_a_terminal_step_bootstraps_the_intrinsic_return_from_the_restart_state():
    # As above; V(s_0') = 7 stands in for the untrained value of the terminal observation (3).
    values, rewards, terminateds, truncateds = two_chunks()
    gamma, lam = 0.5, 0.8
    targets = ppo_bonus.non_episodic_value_targets(values=values, rewards=rewards, terminateds=terminateds,
                                                   truncateds=truncateds, gamma=gamma, lambda_=lam,
                                                   restart_value=7.0)
    assert targets[1] == pytest.approx(0.25 + gamma * 7.0)
    a1 = 0.25 + gamma * 7.0 - 2.0
    assert targets[0] == pytest.approx(0.5 + gamma * 2.0 - 1.0 + gamma * lam * a1 + 1.0)
    # A chunk cut mid-episode still bootstraps from its own next observation.
    assert targets[3] == pytest.approx(1.0 + gamma * 5.0)
    assert values[2] == 3.0  # the caller's values are not changed


def test_combined_advantages_weight_both_streams():
    out = ppo_bonus.combined_advantages(ext=np.array([1.0, -2.0]), intrinsic=np.array([0.5, 4.0]),
                                        ext_coeff=2.0, int_coeff=1.0)
    np.testing.assert_allclose(out, [2.5, 0.0])


# Two heads: the learner's batch ----------------------------------------------------------------
@pytest.fixture(scope="module")
def rnd_learner():
    with single_torch_thread():
        yield learner_for({"type": "rnd", "gamma": 0.5, "hidden_sizes": [8], "embedding_dim": 4},
                          gamma=0.9, lambda_=0.8)


def test_two_head_gae_matches_a_hand_computation(rnd_learner, monkeypatch):
    module = rnd_learner.module[DEFAULT_MODULE_ID].unwrapped()
    assert isinstance(module, ppo_bonus.IntrinsicValuePPOModule)
    # Rows: a0, a1, a_boot (terminated episode), b0, b_boot (a chunk cut mid-episode).
    v_ext = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    v_int = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    monkeypatch.setattr(module, "compute_both_values", lambda batch: (v_ext, v_int))
    starts = []

    def restart_values(batch):  # V_int of the batch's initial observations: 6 each
        starts.append(batch[Columns.OBS][:, 0].tolist())
        return torch.full((len(batch[Columns.OBS]),), 6.0)

    monkeypatch.setattr(module, "compute_intrinsic_values", restart_values)
    episodes = [
        episode([[1, 0, 0, 0], [2, 0, 0, 0]], [1.0, 2.0], terminated=True, intrinsic=[0.5, 0.25]),
        episode([[3, 0, 0, 0]], [3.0], terminated=False, intrinsic=[1.0]),
    ]
    batch = run_connector(rnd_learner, episodes)
    mask = batch[Columns.LOSS_MASK].astype(bool)
    np.testing.assert_array_equal(mask, [True, True, False, True, False])
    # By hand, gamma 0.9 (extrinsic, episodic), 0.5 (intrinsic, non-episodic), lambda 0.8:
    # extrinsic: A_a1 = 2 - 0.2 = 1.8; A_a0 = 1 + 0.9 * 0.2 - 0.1 + 0.9 * 0.8 * 1.8 = 2.376; A_b0 = 3 + 0.9 * 0.5 - 0.4 = 3.05
    # intrinsic: the terminal a1 bootstraps from V_int of the initial states (6), not of its terminal one (3):
    #            A_a1 = 0.25 + 0.5 * 6 - 2 = 1.25; A_a0 = 0.5 + 0.5 * 2 - 1 + 0.5 * 0.8 * 1.25 = 1.0;
    #            A_b0 = 1 + 0.5 * 5 - 4 = -0.5 (cut mid-episode: its own next observation)
    a_ext, a_int = np.array([2.376, 1.8, 3.05]), np.array([1.0, 1.25, -0.5])
    assert starts == [[0.0, 0.0]]  # both chunks start their episodes, at s_0 = 0
    np.testing.assert_allclose(batch[Postprocessing.VALUE_TARGETS][mask], a_ext + [0.1, 0.2, 0.4], rtol=1e-5)
    np.testing.assert_allclose(batch[ppo_bonus.INTRINSIC_VALUE_TARGETS][mask], a_int + [1.0, 2.0, 4.0], rtol=1e-5)
    combined = 2.0 * a_ext + 1.0 * a_int  # the default ext_coeff, int_coeff: the paper's 2 and 1
    np.testing.assert_allclose(batch[Postprocessing.ADVANTAGES][mask], (combined - combined.mean()) / combined.std(),
                               rtol=1e-4)
    # The rewards stay extrinsic; RND's predictor gets the same rows, with the next observations.
    np.testing.assert_allclose(batch[Columns.REWARDS][mask], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(batch[Columns.NEXT_OBS][mask][:, 0], [1.0, 2.0, 3.0])


def test_an_update_trains_both_value_heads_and_the_predictor(rnd_learner):
    policy = rnd_learner.module[DEFAULT_MODULE_ID].unwrapped()
    predictor = rnd_learner.module[rnd.MODULE_ID].unwrapped()
    assert isinstance(predictor, ppo_bonus.PPORNDModule)
    before = {name: [p.detach().clone() for p in net.parameters()]
              for name, net in (("vf", policy.vf), ("vf_intrinsic", policy.vf_intrinsic),
                                ("predictor", predictor.predictor), ("target", predictor.target))}
    rng = np.random.default_rng(0)
    episodes = [episode(rng.normal(size=(6, 4)).tolist(), [1.0] * 6, terminated=True,
                        intrinsic=rng.uniform(0, 1, 6)) for _ in range(3)]
    with single_torch_thread():
        results = rnd_learner.update(episodes=episodes, num_epochs=1, minibatch_size=None,
                                     timesteps={"num_env_steps_sampled_lifetime": 18})
    changed = {name: any(not torch.equal(a, b) for a, b in zip(params, net.parameters()))
               for name, params, net in (
                   ("vf", before["vf"], policy.vf), ("vf_intrinsic", before["vf_intrinsic"], policy.vf_intrinsic),
                   ("predictor", before["predictor"], predictor.predictor),
                   ("target", before["target"], predictor.target))}
    assert changed == {"vf": True, "vf_intrinsic": True, "predictor": True, "target": False}
    policy_results = results[DEFAULT_MODULE_ID]
    assert np.isfinite(float(policy_results[ppo_bonus.VF_LOSS_INTRINSIC].peek()))
    assert np.isfinite(float(results[rnd.MODULE_ID][rnd.PREDICTOR_LOSS].peek()))


def test_the_intrinsic_head_stays_off_the_env_runners():
    config = registry.get_algorithm("ppo").make_config().environment("CartPole-v1").training(bonus={"type": "rnd"})
    spec = config.get_multi_rl_module_spec(env=gym.make("CartPole-v1"), inference_only=True)
    assert set(spec.rl_module_specs) == {DEFAULT_MODULE_ID}  # no RND predictor there
    acting = spec.rl_module_specs[DEFAULT_MODULE_ID].build()
    assert isinstance(acting, ppo_bonus.IntrinsicValuePPOModule) and not hasattr(acting, "vf_intrinsic")


# One stream: the count bonus --------------------------------------------------------------------
def test_count_bonuses_reach_the_learner_batch():
    a, b = [1, 0, 0, 0], [0, 1, 0, 0]
    chunk = episode([a, b, a], [1.0, 1.0, 1.0], terminated=True)
    counter = ppo_bonus.EpisodeBonus(bonuses.CountBonus(beta=BETA, hash="exact"))
    intrinsic = counter.annotate([chunk])
    # The batch's own visits are counted first: a's cell has n = 2 for both of its steps.
    np.testing.assert_allclose(intrinsic, [BETA / np.sqrt(2), BETA, BETA / np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(chunk.get_extra_model_outputs(ppo_bonus.INTRINSIC), intrinsic)

    with single_torch_thread():
        learner = learner_for({"type": "count", "beta": BETA, "hash": "exact"})
        learner.metrics = MetricsLogger()
        batch = run_connector(learner, [chunk])
    mask = batch[Columns.LOSS_MASK].astype(bool)
    np.testing.assert_allclose(batch[Columns.REWARDS][mask], 1.0 + intrinsic, rtol=1e-6)
    assert Postprocessing.ADVANTAGES in batch and ppo_bonus.INTRINSIC_VALUE_TARGETS not in batch
    logged = learner.metrics.reduce()[DEFAULT_MODULE_ID]
    assert logged[REWARD_TRANSFORMED_MEAN] - logged[REWARD_EXTRINSIC_MEAN] == pytest.approx(intrinsic.mean(), abs=1e-6)
    # The counts are the Algorithm's one table; a second batch counts on.
    counter.annotate([episode([a], [0.0], terminated=True)])
    assert counter.bonus.visits(np.array([a], np.float32)).tolist() == [3]


# Settings -----------------------------------------------------------------------------------------
def test_ppo_takes_both_bonuses_and_rnd_settings_of_its_own():
    assert registry.get_algorithm("ppo").bonuses == ("count", "rnd")
    config = registry.get_algorithm("ppo").make_config().environment("CartPole-v1")
    config.training(bonus={"type": "rnd", "ext_coeff": 1.0, "int_coeff": 0.5, "gamma": 0.95}).validate()
    with pytest.raises(ValueError, match="no setting 'betta': it takes beta, gamma, .*ext_coeff, int_coeff"):
        config.training(bonus={"type": "rnd", "betta": 1.0}).validate()
    with pytest.raises(ValueError, match="int_coeff=-1"):
        config.training(bonus={"type": "rnd", "int_coeff": -1}).validate()
    # soft_q's rnd keeps its own settings.
    with pytest.raises(ValueError, match="no setting 'ext_coeff'"):
        bonuses.build({"type": "rnd", "ext_coeff": 2.0})
