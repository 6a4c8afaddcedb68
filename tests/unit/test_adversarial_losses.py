"""GAIL's and AIRL's equations by hand, their discriminators on toy batches, and the config; no Ray."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rlfrontier.algorithms.adversarial import AIRLConfig, GAILConfig, losses
from rlfrontier.algorithms.adversarial.adversarial import paired_rows
from rlfrontier.algorithms.adversarial.torch import discriminator as disc
from rlfrontier.validation import BadInput

OBS_SPACE = gym.spaces.Box(-5.0, 5.0, (3,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


# The equations ---------------------------------------------------------------------------------
def test_gail_reward_is_minus_log_one_minus_d_and_finite_where_the_naive_form_is_not():
    logits = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
    d = 1.0 / (1.0 + torch.exp(-logits))
    torch.testing.assert_close(losses.gail_reward(logits_expert_is_high=logits), -torch.log(1.0 - d))
    big = losses.gail_reward(logits_expert_is_high=torch.tensor([40.0, 200.0]))  # float32 sigmoid rounds to 1
    assert torch.isfinite(big).all() and big.tolist() == pytest.approx([40.0, 200.0])
    assert (losses.gail_reward(logits_expert_is_high=torch.linspace(-50, 50, 11)) > 0).all()


def test_airl_logit_is_f_minus_log_pi_and_gives_d_of_the_paper():
    f = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    pi = torch.tensor([0.5, 0.9, 0.05], dtype=torch.float64)
    logits = losses.airl_logits(f=f, log_pi=torch.log(pi))
    torch.testing.assert_close(logits, torch.tensor([0.3 - math.log(0.5), -1.2 - math.log(0.9), 2.0 - math.log(0.05)],
                                                    dtype=torch.float64))
    # D = exp(f) / (exp(f) + pi) is sigmoid(f - log pi); the policy's reward log D - log(1 - D) is the logit.
    d = torch.exp(f) / (torch.exp(f) + pi)
    torch.testing.assert_close(torch.sigmoid(logits), d)
    torch.testing.assert_close(losses.airl_reward(f=f, log_pi=torch.log(pi)), torch.log(d) - torch.log(1 - d))
    # entropy_weight scales the -log pi term only: 0 is f alone, 0.5 half of the entropy bonus.
    torch.testing.assert_close(losses.airl_reward(f=f, log_pi=torch.log(pi), entropy_weight=0.0), f)
    torch.testing.assert_close(losses.airl_reward(f=f, log_pi=torch.log(pi), entropy_weight=0.5),
                               f - 0.5 * torch.log(pi))


def test_airl_f_adds_the_discounted_potential_difference_and_drops_it_after_a_terminal_step():
    g = torch.tensor([1.0, 2.0])
    h = torch.tensor([0.5, -1.0])
    next_h = torch.tensor([3.0, 7.0])
    terminateds = torch.tensor([False, True])
    f = losses.airl_f(g=g, h=h, next_h=next_h, terminateds=terminateds, gamma=0.9)
    torch.testing.assert_close(f, torch.tensor([1.0 + 0.9 * 3.0 - 0.5, 2.0 + 0.0 + 1.0]))


def test_shaping_sums_to_zero_around_a_closed_loop_with_gamma_one():
    h = torch.randn(5, generator=torch.Generator().manual_seed(0))  # h(s0) ... h(s4), then back to s0
    next_h = torch.roll(h, -1)
    terms = losses.shaping(h=h, next_h=next_h, terminateds=torch.zeros(5), gamma=1.0)
    assert terms.abs().max() > 0.1
    assert float(terms.sum()) == pytest.approx(0.0, abs=1e-6)
    # With gamma < 1 the loop does not cancel: shaping is policy-invariant, not zero.
    assert abs(float(losses.shaping(h=h, next_h=next_h, terminateds=torch.zeros(5), gamma=0.5).sum())) > 1e-3


def test_discriminator_loss_is_the_binary_cross_entropy_with_expert_labels_one():
    expert = torch.tensor([2.0, -1.0])
    policy = torch.tensor([0.5, -3.0, 1.0])
    by_hand = 0.5 * (-(math.log(torch.sigmoid(torch.tensor(2.0))) + math.log(torch.sigmoid(torch.tensor(-1.0)))) / 2
                     - (math.log(1 - torch.sigmoid(torch.tensor(0.5))) + math.log(1 - torch.sigmoid(torch.tensor(-3.0)))
                        + math.log(1 - torch.sigmoid(torch.tensor(1.0)))) / 3)
    assert float(losses.discriminator_loss(logits_expert=expert, logits_policy=policy)) == pytest.approx(by_hand, rel=1e-5)
    assert float(losses.accuracy(logits_expert_is_high=expert, expert=True)) == 0.5
    assert float(losses.accuracy(logits_expert_is_high=policy, expert=False)) == pytest.approx(1 / 3)


# The discriminators on toy batches --------------------------------------------------------------
def _module(cls, **model_config) -> disc.Discriminator:
    torch.manual_seed(0)
    return cls(observation_space=OBS_SPACE, action_space=ACTIONS, model_config=model_config)


def _separable_batch(n: int = 64) -> dict[str, torch.Tensor]:
    """Expert rows near (+1, +1, +1) taking action 1, policy rows near -1 taking action 0; pi(a|s) = 0.5."""
    gen = torch.Generator().manual_seed(1)

    def obs(sign):
        return sign + 0.1 * torch.randn(n, 3, generator=gen)

    log_half = torch.full((n,), math.log(0.5))
    return {
        Columns.OBS: obs(-1.0), Columns.ACTIONS: torch.zeros(n, dtype=torch.long), Columns.NEXT_OBS: obs(-1.0),
        Columns.TERMINATEDS: torch.zeros(n, dtype=torch.bool), Columns.ACTION_LOGP: log_half,
        disc.EXPERT_OBS: obs(1.0), disc.EXPERT_ACTIONS: torch.ones(n, dtype=torch.long),
        disc.EXPERT_NEXT_OBS: obs(1.0), disc.EXPERT_TERMINATEDS: torch.zeros(n, dtype=torch.bool),
        disc.EXPERT_ACTION_LOGP: log_half,
    }


class _Learner:
    def __init__(self):
        self.metrics = MetricsLogger()


def _train(module: disc.Discriminator, batch, steps: int) -> list[float]:
    """Adam steps on the module's loss (losses.discriminator_loss of its training pass; its metrics left out)."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    history = []
    for _ in range(steps):
        out = module.forward_train(batch)
        loss = losses.discriminator_loss(logits_expert=out[disc.LOGITS_EXPERT], logits_policy=out[disc.LOGITS_POLICY])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    return history


def _rewards(module: disc.Discriminator, batch, prefix: str = "") -> torch.Tensor:
    keys = ((Columns.OBS, Columns.ACTIONS, Columns.NEXT_OBS, Columns.TERMINATEDS, Columns.ACTION_LOGP) if not prefix
            else (disc.EXPERT_OBS, disc.EXPERT_ACTIONS, disc.EXPERT_NEXT_OBS, disc.EXPERT_TERMINATEDS,
                  disc.EXPERT_ACTION_LOGP))
    with torch.no_grad():
        return module.policy_reward(**dict(zip(("obs", "actions", "next_obs", "terminateds", "log_pi"),
                                               (batch[k] for k in keys))))


@pytest.mark.parametrize("cls", [disc.GAILDiscriminator, disc.AIRLDiscriminator], ids=["gail", "airl"])
def test_the_discriminator_loss_falls_on_a_fixed_batch(cls):
    history = _train(_module(cls), _separable_batch(), steps=10)
    assert history[-1] < history[0] - 0.05 and history[0] == pytest.approx(math.log(2), abs=0.2)


@pytest.mark.parametrize("cls", [disc.GAILDiscriminator, disc.AIRLDiscriminator], ids=["gail", "airl"])
def test_after_training_expert_like_transitions_get_more_reward(cls):
    module, batch = _module(cls), _separable_batch()
    before_expert, before_policy = _rewards(module, batch, "expert"), _rewards(module, batch)
    _train(module, batch, steps=100)
    expert, policy = _rewards(module, batch, "expert"), _rewards(module, batch)
    assert expert.min() > policy.max()
    assert expert.mean() - policy.mean() > (before_expert.mean() - before_policy.mean()).abs() + 1.0
    learner = _Learner()
    out = module.forward_train(batch)
    loss = module.compute_self_supervised_loss(learner=learner, module_id=disc.MODULE_ID, config=None, batch=batch,
                                               fwd_out=out)
    torch.testing.assert_close(loss, losses.discriminator_loss(logits_expert=out[disc.LOGITS_EXPERT],
                                                               logits_policy=out[disc.LOGITS_POLICY]))
    assert learner.metrics.peek((disc.MODULE_ID, disc.DISC_LOSS)) == pytest.approx(float(loss.detach()))
    assert learner.metrics.peek((disc.MODULE_ID, disc.DISC_ACCURACY_EXPERT)) == 1.0
    assert learner.metrics.peek((disc.MODULE_ID, disc.DISC_ACCURACY_POLICY)) == 1.0


def test_gail_takes_discrete_actions_one_hot_and_box_actions_flat():
    module = _module(disc.GAILDiscriminator)
    assert module.net[0].in_features == 3 + 2
    torch.testing.assert_close(module.flat_actions(torch.tensor([1, 0])), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    box = disc.GAILDiscriminator(observation_space=OBS_SPACE, action_space=gym.spaces.Box(-1, 1, (2,)),
                                 model_config={})
    assert box.net[0].in_features == 3 + 2
    torch.testing.assert_close(box.flat_actions(torch.tensor([[0.5, -0.5]])), torch.tensor([[0.5, -0.5]]))


def test_airl_g_is_state_only_by_default_and_uses_the_config_gamma():
    module = _module(disc.AIRLDiscriminator, gamma=0.9, hidden_sizes=[8])
    assert module.state_only and module.gamma == 0.9 and module.g[0].in_features == 3
    obs = torch.randn(4, 3)
    torch.testing.assert_close(module.reward_g(obs=obs, actions=torch.zeros(4)),
                               module.reward_g(obs=obs, actions=torch.ones(4)))
    next_obs, done = torch.randn(4, 3), torch.tensor([False, False, True, False])
    f = module.f(obs=obs, actions=torch.zeros(4), next_obs=next_obs, terminateds=done)
    expected = module.reward_g(obs=obs) + 0.9 * (~done).float() * module.potential(next_obs) - module.potential(obs)
    torch.testing.assert_close(f, expected)
    with_actions = _module(disc.AIRLDiscriminator, state_only=False)
    assert with_actions.g[0].in_features == 3 + 2
    with pytest.raises(ValueError, match="log-probabilities"):
        module.policy_reward(obs=obs, actions=torch.zeros(4), next_obs=next_obs, terminateds=done)
    log_pi = torch.tensor([-1.0, 0.5, -2.0, 0.0])
    torch.testing.assert_close(module.policy_reward(obs=obs, actions=torch.zeros(4), next_obs=next_obs,
                                                    terminateds=done, log_pi=log_pi), f - log_pi)
    f_only = _module(disc.AIRLDiscriminator, gamma=0.9, hidden_sizes=[8], entropy_weight=0.0)
    f_only.load_state_dict(module.state_dict())
    torch.testing.assert_close(f_only.policy_reward(obs=obs, actions=torch.zeros(4), next_obs=next_obs,
                                                    terminateds=done, log_pi=log_pi), f)


# Pairing and config -----------------------------------------------------------------------------
def test_paired_rows_go_through_the_policy_steps_before_repeating_and_draw_expert_steps():
    policy = {Columns.OBS: np.arange(10.0)[:, None], Columns.ACTIONS: np.arange(10)}
    expert = {disc.EXPERT_OBS: 100.0 + np.arange(7.0)[:, None], disc.EXPERT_ACTIONS: 100 + np.arange(7)}
    rows = paired_rows(policy, expert, size=25, rng=np.random.default_rng(0))
    assert all(len(v) == 25 for v in rows.values())
    assert sorted(rows[Columns.ACTIONS][:10]) == list(range(10)) == sorted(rows[Columns.ACTIONS][10:20])
    np.testing.assert_array_equal(rows[Columns.OBS][:, 0], rows[Columns.ACTIONS])  # rows stay whole
    np.testing.assert_array_equal(rows[disc.EXPERT_OBS][:, 0], rows[disc.EXPERT_ACTIONS])
    assert set(rows[disc.EXPERT_ACTIONS]) <= set(range(100, 107))


def _config(cls=GAILConfig, **training):
    return cls().environment("CartPole-v1").training(**{"demos": "/demos", **training})


def test_defaults_validate_and_the_discriminator_is_learner_only():
    for cls in (GAILConfig, AIRLConfig):
        config = _config(cls)
        config.validate()
        spaces = {DEFAULT_MODULE_ID: (OBS_SPACE, ACTIONS)}
        assert disc.MODULE_ID not in config.get_multi_rl_module_spec(spaces=spaces, inference_only=True).rl_module_specs
        spec = config.get_multi_rl_module_spec(spaces=spaces).rl_module_specs[disc.MODULE_ID]
        assert spec.learner_only and spec.module_class is cls.discriminator_class
        assert spec.model_config[disc.GAMMA] == config.gamma and spec.model_config[disc.LR] == config.disc_lr
    assert _config(AIRLConfig, state_only=False).discriminator_model_config()[disc.STATE_ONLY] is False
    # The default goes by the action space (disc.entropy_weight); a set weight passes through.
    assert _config(AIRLConfig).discriminator_model_config()[disc.ENTROPY_WEIGHT] is None
    assert _config(AIRLConfig, entropy_weight=0).discriminator_model_config()[disc.ENTROPY_WEIGHT] == 0.0


def test_airls_default_entropy_weight_is_the_papers_on_discrete_actions_and_f_alone_on_box():
    box = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    assert disc.entropy_weight(None, ACTIONS) == 1.0 and disc.entropy_weight(None, box) == 0.0
    assert disc.entropy_weight(0.5, ACTIONS) == 0.5 and disc.entropy_weight(1, box) == 1.0
    assert _module(disc.AIRLDiscriminator).entropy_weight == 1.0  # DEFAULTS: None, Discrete(2)
    on_box = disc.AIRLDiscriminator(observation_space=OBS_SPACE, action_space=box, model_config={})
    assert on_box.entropy_weight == 0.0
    with_weight = disc.AIRLDiscriminator(observation_space=OBS_SPACE, action_space=box,
                                         model_config={disc.ENTROPY_WEIGHT: 1.0})
    assert with_weight.entropy_weight == 1.0


@pytest.mark.parametrize("field, value, needle", [
    ("disc_updates", 0, "disc_updates=0 is out of range"),
    ("disc_updates", 2.5, "disc_updates=2.5 must be an integer"),
    ("disc_minibatch_size", 0, "disc_minibatch_size=0"),
    ("disc_lr", 0.0, "disc_lr=0.0 is out of range"),
    ("disc_hidden_sizes", [], "disc_hidden_sizes=[]"),
    ("disc_hidden_sizes", [32, 0], "disc_hidden_sizes=[32, 0]"),
])
def test_bad_values_name_the_field(field, value, needle):
    with pytest.raises(BadInput, match=needle.replace("[", r"\[").replace("]", r"\]")):
        _config(**{field: value}).validate()


def test_airl_state_only_must_be_a_boolean_and_demos_are_needed():
    with pytest.raises(BadInput, match="state_only='yes'"):
        _config(AIRLConfig, state_only="yes").validate()
    with pytest.raises(BadInput, match="entropy_weight=-1"):
        _config(AIRLConfig, entropy_weight=-1.0).validate()
    with pytest.raises(BadInput, match=r"gail needs demonstrations \(--demos DIR\)"):
        GAILConfig().environment("CartPole-v1").validate()


def test_the_discriminator_is_learner_only_for_every_piece_that_asks():
    from rlfrontier.modules import learner_only_module_ids

    for config_class in (GAILConfig, AIRLConfig):
        assert disc.MODULE_ID in learner_only_module_ids(config_class())


# AIRL's learned reward as a reward transform ----------------------------------------------------
def _checkpoint(tmp_path, module) -> str:
    from rlfrontier.algorithms.adversarial.learned_reward import MODULE_PATH

    module.save_to_path(tmp_path / MODULE_PATH / disc.MODULE_ID)
    return str(tmp_path)


def test_the_airl_transform_rewrites_rewards_with_g_or_f_of_a_saved_discriminator(tmp_path):
    from rlfrontier import replay
    from rlfrontier.algorithms.adversarial.learned_reward import AIRLLearnedReward

    module = _module(disc.AIRLDiscriminator, gamma=0.9)
    _train(module, _separable_batch(), steps=20)
    module.eval()
    checkpoint = _checkpoint(tmp_path, module)
    gen = np.random.default_rng(0)
    window = {  # a replay window's columns, leading shape [B=2, n=3]
        replay.OBS: gen.normal(size=(2, 3, 3)).astype(np.float32), replay.ACTIONS: gen.integers(2, size=(2, 3)),
        replay.REWARDS: np.ones((2, 3), np.float32), replay.NEXT_OBS: gen.normal(size=(2, 3, 3)).astype(np.float32),
        replay.TERMINATEDS: np.array([[False, False, True], [False, False, False]]),
    }
    flat = {k: torch.as_tensor(v.reshape(6, *v.shape[2:])) for k, v in window.items()}
    with torch.no_grad():
        g = module.reward_g(obs=flat[replay.OBS]).numpy().reshape(2, 3)
        f = module.f(obs=flat[replay.OBS], actions=flat[replay.ACTIONS], next_obs=flat[replay.NEXT_OBS],
                     terminateds=flat[replay.TERMINATEDS]).numpy().reshape(2, 3)
    np.testing.assert_allclose(AIRLLearnedReward(checkpoint=checkpoint)(window), g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(AIRLLearnedReward(checkpoint=checkpoint, part="f")(window), f, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="part='h'"):
        AIRLLearnedReward(checkpoint=checkpoint, part="h")
    bound = float(np.median(np.abs(g)))  # some rewards inside, some outside
    clamped = AIRLLearnedReward(checkpoint=checkpoint, clip=bound)(window)
    np.testing.assert_allclose(clamped, np.clip(g, -bound, bound), rtol=1e-5, atol=1e-6)
    assert (np.abs(g) > bound).any() and (np.abs(g) < bound).any()
    np.testing.assert_allclose(AIRLLearnedReward(checkpoint=checkpoint, part="f", clip=bound)(window),
                               np.clip(f, -bound, bound), rtol=1e-5, atol=1e-6)


def test_the_gail_transform_rewrites_rewards_with_minus_log_one_minus_d_of_a_saved_discriminator(tmp_path):
    from rlfrontier import replay
    from rlfrontier.algorithms.adversarial.learned_reward import GAILLearnedReward

    module = _module(disc.GAILDiscriminator)
    _train(module, _separable_batch(), steps=20)
    module.eval()
    checkpoint = _checkpoint(tmp_path, module)
    gen = np.random.default_rng(1)
    window = {  # leading shape [B=2, n=3]; read-only, as replay hands them over
        replay.OBS: gen.normal(size=(2, 3, 3)).astype(np.float32), replay.ACTIONS: gen.integers(2, size=(2, 3)),
        replay.REWARDS: np.ones((2, 3), np.float32), replay.NEXT_OBS: gen.normal(size=(2, 3, 3)).astype(np.float32),
        replay.TERMINATEDS: np.zeros((2, 3), bool),
    }
    for value in window.values():
        value.flags.writeable = False
    with torch.no_grad():
        logits = module.logits_expert_is_high(obs=torch.tensor(window[replay.OBS].reshape(6, 3)),
                                              actions=torch.tensor(window[replay.ACTIONS].reshape(6)),
                                              next_obs=None, terminateds=None).double().numpy()
    d = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(GAILLearnedReward(checkpoint=checkpoint)(window), (-np.log(1.0 - d)).reshape(2, 3),
                               rtol=1e-5, atol=1e-6)
    reward = (-np.log(1.0 - d)).reshape(2, 3)
    bound = float(np.median(reward))
    np.testing.assert_allclose(GAILLearnedReward(checkpoint=checkpoint, clip=bound)(window),
                               np.minimum(reward, bound), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("clip", [0, -1.0, float("nan"), "10", True])
def test_a_learned_reward_refuses_a_clip_that_is_not_a_positive_number(tmp_path, clip):
    from rlfrontier import rewards

    checkpoint = _checkpoint(tmp_path, _module(disc.AIRLDiscriminator))
    with pytest.raises(ValueError, match=f"reward_transform airl clip={clip!r}"):
        rewards.build({"type": "airl", "checkpoint": checkpoint, "clip": clip})


def test_each_learned_reward_refuses_the_other_kind_and_a_folder_without_one(tmp_path):
    from rlfrontier.algorithms.adversarial.learned_reward import AIRLLearnedReward, GAILLearnedReward

    with pytest.raises(ValueError, match="holds no discriminator"):
        AIRLLearnedReward(checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="GAILDiscriminator, not airl's discriminator"):
        AIRLLearnedReward(checkpoint=_checkpoint(tmp_path / "g", _module(disc.GAILDiscriminator)))
    with pytest.raises(ValueError, match="AIRLDiscriminator, not gail's discriminator"):
        GAILLearnedReward(checkpoint=_checkpoint(tmp_path / "a", _module(disc.AIRLDiscriminator)))


def test_running_norm_keeps_the_mean_and_variance_of_all_batches():
    norm = disc.RunningNorm(2)
    data = torch.randn(300, 2, generator=torch.Generator().manual_seed(3)) * torch.tensor([0.01, 5.0]) + 2.0
    for chunk in data.split(70):
        norm.update(chunk)
    torch.testing.assert_close(norm.mean, data.mean(dim=0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norm.var, data.var(dim=0, unbiased=False), rtol=1e-4, atol=1e-8)
    standardised = norm(data)
    torch.testing.assert_close(standardised.std(dim=0, unbiased=False), torch.ones(2), rtol=1e-3, atol=1e-3)


# The driver's glue on real episode chunks --------------------------------------------------------
def _chunks(*, numpy: bool):
    """Three SingleAgentEpisode chunks as an EnvRunner returns them: an episode cut after 4 steps (its
    continuation has a lookback of 2 and terminates after 3 more), and one truncated after 2 steps.
    Observation i of a chunk is [i, i, i] offset per episode; log pi of step t is -(t + 1) / 10."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    def run(episode, offset, steps, first, **end):
        for t in range(first, first + steps):
            last = t == first + steps - 1
            episode.add_env_step(observation=np.full(3, offset + t + 1, np.float32), action=t % 2, reward=1.0,
                                 terminated=last and end.get("terminated", False),
                                 truncated=last and end.get("truncated", False),
                                 extra_model_outputs={Columns.ACTION_LOGP: np.float32(-(offset + t + 1) / 10)})

    a = SingleAgentEpisode()
    a.add_env_reset(observation=np.zeros(3, np.float32))
    run(a, 0, 4, 0)
    a_rest = a.cut(len_lookback_buffer=2)
    run(a_rest, 0, 3, 4, terminated=True)
    b = SingleAgentEpisode()
    b.add_env_reset(observation=np.full(3, 100.0, np.float32))
    run(b, 100, 2, 0, truncated=True)
    chunks = [a, a_rest, SingleAgentEpisode(), b]  # an empty chunk, as a runner may return, is skipped
    return [c.to_numpy() if numpy and len(c) else c for c in chunks]


@pytest.mark.parametrize("normalize", [True, False])
def test_policy_box_actions_reach_the_discriminator_as_the_env_received_them_in_the_modules_units(normalize):
    """A Gaussian sample beyond the bounds reaches the env clipped; the discriminator sees the clipped action
    in the demonstrations' units, not the raw sample (which only a policy can produce). log pi stays the
    raw sample's."""
    import gymnasium as gym
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from rlfrontier.algorithms.adversarial.adversarial import policy_transitions

    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    raw = [-6.2, -0.5, 0.25, 1.7, 4.0]  # the module's samples: [-1, 1] units with normalize_actions, else torques
    episode = SingleAgentEpisode()
    episode.add_env_reset(observation=np.zeros(3, np.float32))
    for t, a in enumerate(raw):
        episode.add_env_step(observation=np.full(3, t + 1.0, np.float32), action=np.array([a], np.float32),
                             reward=0.0, truncated=t == len(raw) - 1,
                             extra_model_outputs={Columns.ACTION_LOGP: np.float32(-a * a)})
    columns = policy_transitions([episode], space, normalize_actions=normalize)
    want = np.clip(raw, -1, 1) if normalize else np.clip(raw, -2, 2)
    np.testing.assert_allclose(columns[Columns.ACTIONS][:, 0], want, atol=1e-6)
    np.testing.assert_allclose(columns[Columns.ACTION_LOGP], -np.square(raw), rtol=1e-6)
    np.testing.assert_array_equal(policy_transitions([episode])[Columns.ACTIONS][:, 0], np.float32(raw))


@pytest.mark.parametrize("numpy", [False, True], ids=["lists", "numpy"])
def test_policy_transitions_and_the_reward_column_follow_each_chunk_step_by_step(numpy):
    from rlfrontier.algorithms.adversarial.adversarial import (
        IMITATION_REWARD, ImitationRewardConnector, policy_transitions)
    from rlfrontier.ppo_bonus import set_step_column

    chunks = _chunks(numpy=numpy)
    assert chunks[1].actions.lookback == 2
    columns = policy_transitions(chunks)
    # 4 + 3 + 2 steps in sampling order; the lookback steps of the continuation are not repeated.
    np.testing.assert_array_equal(columns[Columns.OBS][:, 0], [0, 1, 2, 3, 4, 5, 6, 100, 101])
    np.testing.assert_array_equal(columns[Columns.NEXT_OBS][:, 0], [1, 2, 3, 4, 5, 6, 7, 101, 102])
    np.testing.assert_array_equal(columns[Columns.ACTIONS], [0, 1, 0, 1, 0, 1, 0, 0, 1])
    np.testing.assert_allclose(columns[Columns.ACTION_LOGP], -np.array([1, 2, 3, 4, 5, 6, 7, 101, 102]) / 10)
    # Only a termination ends the shaping term: not the cut (step 3), not the truncation (the last step).
    np.testing.assert_array_equal(columns[Columns.TERMINATEDS], [0, 0, 0, 0, 0, 0, 1, 0, 0])
    # The Algorithm's loop hands each chunk its own steps' rewards; the connector makes them the rewards.
    rewards = np.arange(9, dtype=np.float32) * 0.5 - 1.0
    start = 0
    for episode in (e for e in chunks if len(e)):
        set_step_column(episode, IMITATION_REWARD, rewards[start:start + len(episode)])
        start += len(episode)
    ImitationRewardConnector()(rl_module=None, batch={}, episodes=chunks)
    np.testing.assert_array_equal(np.concatenate([np.asarray(e.get_rewards()) for e in chunks if len(e)]), rewards)
    with pytest.raises(ValueError, match="has no 'imitation_reward' column"):
        ImitationRewardConnector()(rl_module=None, batch={}, episodes=_chunks(numpy=numpy))


# The Python API checks the demonstrations as the command line does ----------------------------------
@pytest.fixture
def no_learner(monkeypatch):
    """Fails a test that gets as far as building a LearnerGroup or an EnvRunnerGroup."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.env.env_runner_group import EnvRunnerGroup

    def built(*args, **kwargs):
        raise AssertionError("a LearnerGroup or EnvRunnerGroup was built before the demonstrations were checked")

    monkeypatch.setattr(AlgorithmConfig, "build_learner_group", built)
    monkeypatch.setattr(EnvRunnerGroup, "__init__", built)


@pytest.mark.parametrize("config_class", [GAILConfig, AIRLConfig], ids=["gail", "airl"])
@pytest.mark.parametrize("env, env_config, needle", [
    ("Acrobot-v1", {}, "recorded on CartPole-v1, not Acrobot-v1"),
    ("CartPole-v1", {"max_episode_steps": 50}, "recorded with env_config {}, not {'max_episode_steps': 50}"),
], ids=["env", "env_config"])
def test_build_algo_refuses_demonstrations_of_another_env_before_any_learner(config_class, env, env_config, needle,
                                                                              tmp_path, no_learner):
    from rlfrontier import demos

    demos.record(out=tmp_path / "d", env_id="CartPole-v1", episodes=1, scripted="cartpole")
    config = (config_class().environment(env, env_config=env_config).env_runners(num_env_runners=0)
              .training(demos=str(tmp_path / "d")))
    with pytest.raises(BadInput) as err:
        config.build_algo()
    assert str(err.value) == f"--demos {tmp_path / 'd'}: {needle}"


# Learned rewards on Box actions: the run must see the actions and the discount as the discriminator did ----
BOX = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def _box_checkpoint(tmp_path, cls, **model_config) -> str:
    torch.manual_seed(0)
    module = cls(observation_space=OBS_SPACE, action_space=BOX, model_config=model_config)
    module.eval()
    return _checkpoint(tmp_path, module)


def _ppo(reward_transform, **settings):
    from rlfrontier.rewards import PPOWithRewardTransform

    config = PPOWithRewardTransform().environment("Pendulum-v1").training(reward_transform=reward_transform)
    if "normalize_actions" in settings:
        config.environment(normalize_actions=settings.pop("normalize_actions"))
    return config.training(**settings)


def _box_window(actions) -> dict[str, np.ndarray]:
    from rlfrontier import replay

    n = len(actions)
    obs = np.linspace(-1, 1, 3 * n, dtype=np.float32).reshape(n, 3)
    return {replay.OBS: obs, replay.ACTIONS: np.asarray(actions, np.float32).reshape(n, 1),
            replay.REWARDS: np.zeros(n, np.float32), replay.NEXT_OBS: obs[::-1].copy(),
            replay.TERMINATEDS: np.zeros(n, bool)}


@pytest.mark.parametrize("kind, extra", [("gail", {}), ("airl", {"state_only": False})])
def test_a_learned_reward_refuses_a_run_with_other_action_units_in_one_line(kind, extra, tmp_path):
    cls = disc.GAILDiscriminator if kind == "gail" else disc.AIRLDiscriminator
    checkpoint = _box_checkpoint(tmp_path, cls, normalize_actions=True, **extra)
    spec = {"type": kind, "checkpoint": checkpoint}
    _ppo(spec).validate()  # RLlib's default: normalize_actions=True, as the discriminator learnt
    with pytest.raises(BadInput) as err:
        _ppo(spec, normalize_actions=False).validate()
    assert str(err.value) == (f"reward_transform {kind} checkpoint={checkpoint!r}: its discriminator learnt from "
                              "actions under normalize_actions=True, this run has normalize_actions=False: set "
                              "normalize_actions=True")


def test_a_state_only_airl_reward_reads_no_action_and_takes_any_units(tmp_path):
    checkpoint = _box_checkpoint(tmp_path, disc.AIRLDiscriminator, normalize_actions=True)
    _ppo({"type": "airl", "checkpoint": checkpoint, "part": "f"}, normalize_actions=False).validate()


@pytest.mark.parametrize("normalize", [True, False])
def test_a_learned_reward_sees_a_box_action_as_the_env_received_it(normalize, tmp_path):
    """As the adversarial run's own reward: a sample beyond the bounds counts as the bound it reached the env at."""
    from rlfrontier import rewards

    checkpoint = _box_checkpoint(tmp_path, disc.GAILDiscriminator, normalize_actions=normalize)
    transform = rewards.build({"type": "gail", "checkpoint": checkpoint}, run=_ppo(None, normalize_actions=normalize))
    bound = 1.0 if normalize else 2.0
    raw = [-7.0, -0.5 * bound, 0.25 * bound, 3.0 * bound]
    window = _box_window(raw)
    received = _box_window(np.clip(raw, -bound, bound))
    with torch.no_grad():
        want, unclipped = (transform.module.policy_reward(obs=torch.as_tensor(w["obs"]),
                                                          actions=torch.as_tensor(w["actions"]), next_obs=None,
                                                          terminateds=None).numpy() for w in (received, window))
    np.testing.assert_allclose(transform(window), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(unclipped[[0, 3]], want[[0, 3]])  # the clipping matters to this discriminator


def test_an_older_checkpoint_gives_the_units_by_its_config_or_is_refused(tmp_path):
    import pickle

    from ray.rllib.utils.checkpoints import Checkpointable

    from rlfrontier.algorithms.adversarial.learned_reward import GAILLearnedReward

    checkpoint = _box_checkpoint(tmp_path, disc.GAILDiscriminator)  # no normalize_actions in its model_config
    with pytest.raises(BadInput, match="its discriminator does not say whether it learnt Box actions in "
                                       r"\[-1, 1\] or in the env's units"):
        _ppo({"type": "gail", "checkpoint": checkpoint}).validate()
    # An Algorithm checkpoint holds its config: (config state,) are its constructor's arguments.
    state = {"class": object, "ctor_args_and_kwargs": (({"normalize_actions": False, "gamma": 0.9},), {})}
    (tmp_path / Checkpointable.CLASS_AND_CTOR_ARGS_FILE_NAME).write_bytes(pickle.dumps(state))
    assert GAILLearnedReward(checkpoint=checkpoint).normalize_actions is False
    _ppo({"type": "gail", "checkpoint": checkpoint}, normalize_actions=False).validate()
    with pytest.raises(BadInput, match="normalize_actions=False, this run has normalize_actions=True"):
        _ppo({"type": "gail", "checkpoint": checkpoint}).validate()
    # Discrete actions have no units: nothing to refuse.
    discrete = _checkpoint(tmp_path / "discrete", _module(disc.GAILDiscriminator))
    _ppo({"type": "gail", "checkpoint": discrete}, normalize_actions=False).validate()


def test_the_adversarial_config_records_its_action_units_for_the_discriminator():
    assert _config().discriminator_model_config()[disc.NORMALIZE_ACTIONS] is True
    config = _config(AIRLConfig).environment(normalize_actions=False)
    assert config.discriminator_model_config()[disc.NORMALIZE_ACTIONS] is False


def test_airls_shaped_reward_refuses_a_run_with_another_gamma_in_one_line(tmp_path):
    checkpoint = _checkpoint(tmp_path, _module(disc.AIRLDiscriminator, gamma=0.99))
    shaped = {"type": "airl", "checkpoint": checkpoint, "part": "f"}
    _ppo(shaped, gamma=0.99).validate()
    _ppo({**shaped, "part": "g"}, gamma=0.9).validate()  # g has no shaping: any discount
    with pytest.raises(BadInput) as err:
        _ppo(shaped, gamma=0.9).validate()
    assert str(err.value) == (f"reward_transform airl checkpoint={checkpoint!r}: part 'f' holds the shaping "
                              "gamma h(s') - h(s) of the airl run's gamma=0.99, this run has gamma=0.9: set "
                              "gamma=0.99, or take part 'g' (no shaping)")
