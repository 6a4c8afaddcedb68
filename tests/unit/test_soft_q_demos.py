"""soft_q with demonstrations (DQfD): the supervised losses by hand, the demonstrations partition of replay, the loss glue.

The losses are checked against numbers written out here; the partition
(rlfrontier.replay.DemoReplayBuffer) on small buffers whose rows say where
they came from (demonstration observations are negative, the agent's
positive); the learner glue through the real SoftQTorchLearner built in this
process (no Ray), on CartPole batches with an IS_DEMO column.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_batches import build_learner, env_transitions, loss_and_priorities, module_of, peek, single_torch_thread
from rlfrontier import offpolicy
from rlfrontier.algorithms.soft_q import losses
from rlfrontier.algorithms.soft_q.soft_q import SoftQConfig
from rlfrontier.algorithms.soft_q.soft_q_learner import DEMO_FRACTION_SAMPLED, DEMO_LOSS, QF_LOSS
from rlfrontier.replay import (
    ACTIONS,
    DISCOUNTS,
    EPISODE_IDS,
    INDEXES,
    INTERMEDIATE_DISCOUNTS,
    IS_DEMO,
    NEXT_OBS,
    OBS,
    REWARDS,
    STEPS,
    TERMINATEDS,
    TRUNCATEDS,
    WEIGHTS,
    DemoReplayBuffer,
    TransitionReplayBuffer,
)

GAMMA = 0.9


# Losses, by hand ------------------------------------------------------------------------


def test_large_margin_loss_by_hand():
    q = torch.tensor([[1.0, 2.0], [3.0, 0.5]])
    a_e = torch.tensor([0, 0])
    # Row 0: max(1 + 0, 2 + 0.8) - 1 = 1.8. Row 1: the expert's 3 beats 0.5 + 0.8: max is 3, loss 0.
    got = losses.large_margin_loss(q=q, expert_actions=a_e, margin=0.8)
    torch.testing.assert_close(got, torch.tensor([1.8, 0.0]))
    # Three actions, the expert's in the middle: max(0 + 0.8, 1 + 0, 0.5 + 0.8) - 1 = 0.3.
    got = losses.large_margin_loss(q=torch.tensor([[0.0, 1.0, 0.5]]), expert_actions=torch.tensor([1]), margin=0.8)
    torch.testing.assert_close(got, torch.tensor([0.3]))
    # Margin 0: zero exactly when the expert's action is a greedy one.
    got = losses.large_margin_loss(q=torch.tensor([[2.0, 2.0], [1.0, 2.0]]), expert_actions=torch.tensor([0, 0]),
                                   margin=0.0)
    torch.testing.assert_close(got, torch.tensor([0.0, 1.0]))


def test_large_margin_gradient_lowers_the_offending_action_and_raises_the_experts():
    q = torch.tensor([[1.0, 2.0, -5.0]], requires_grad=True)
    losses.large_margin_loss(q=q, expert_actions=torch.tensor([0]), margin=0.8).sum().backward()
    torch.testing.assert_close(q.grad, torch.tensor([[-1.0, 1.0, 0.0]]))


def test_expert_nll_loss_by_hand():
    # pi = softmax([1, 2] / 0.5) = softmax([2, 4]); -log pi(0) = log(1 + e^2) = 2.126928.
    q = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    got = losses.expert_nll_loss(q=q, expert_actions=torch.tensor([0, 1]), alpha=0.5)
    torch.testing.assert_close(got, torch.tensor([math.log1p(math.e**2), math.log1p(math.e**-2)]))
    # Equal Q-values: the uniform policy, log 2 whatever the temperature.
    got = losses.expert_nll_loss(q=torch.zeros(1, 2), expert_actions=torch.tensor([1]), alpha=torch.tensor(3.0))
    torch.testing.assert_close(got, torch.tensor([math.log(2.0)]))


def test_expert_nll_loss_is_the_boltzmann_policys_log_likelihood():
    q = torch.tensor([[0.3, -1.2, 2.0]])
    log_pi = losses.boltzmann_log_probs(q=q, alpha=0.7)
    got = losses.expert_nll_loss(q=q, expert_actions=torch.tensor([2]), alpha=0.7)
    torch.testing.assert_close(got, -log_pi[:, 2])


def test_demo_supervised_loss_counts_demo_rows_only_over_the_whole_minibatch():
    per_row = torch.tensor([1.0, 2.0, 3.0, 4.0])
    got = losses.demo_supervised_loss(per_row=per_row, is_demo=torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert got.item() == pytest.approx((1.0 + 3.0) / 4)
    assert losses.demo_supervised_loss(per_row=per_row, is_demo=torch.zeros(4)).item() == 0.0


# The demonstrations partition -----------------------------------------------------------


def rows(num: int, *, sign: float, episode_length: int, start: int = 0, truncate_last: bool = True
         ) -> dict[str, np.ndarray]:
    """`num` one-step rows; observation of row i is sign * (start + i + 1); episodes of `episode_length` steps,
    each ending truncated (demonstrations at CartPole's time limit) when `truncate_last`."""
    index = start + np.arange(num)
    step = index % episode_length
    last = step == episode_length - 1
    obs = (sign * (index + 1)).astype(np.float32)[:, None]
    return {
        OBS: obs,
        ACTIONS: (index % 2).astype(np.int64),
        REWARDS: np.ones(num, np.float32),
        NEXT_OBS: (obs + sign).astype(np.float32),
        TERMINATEDS: np.zeros(num, bool),
        EPISODE_IDS: index // episode_length,
        STEPS: step.astype(np.int64),
        TRUNCATEDS: last & truncate_last,
    }


def demo_buffer(*, capacity: int = 100, num_demos: int = 30, prioritized: bool = False, n_step: int = 1,
                demo_fraction: float = 0.25, bonus: float = 1.0, minibatch: int = 8, seed: int = 0,
                demo_episode_length: int = 10) -> DemoReplayBuffer:
    agent = TransitionReplayBuffer(capacity=capacity, n_step=n_step, gamma=GAMMA, prioritized=prioritized,
                                   alpha=0.6, seed=seed)
    return DemoReplayBuffer(agent=agent, demo_columns=rows(num_demos, sign=-1.0, episode_length=demo_episode_length),
                            demo_fraction=demo_fraction, priority_bonus=bonus, minibatch_size=minibatch)


def add_agent(buffer: DemoReplayBuffer, num: int, *, start: int = 0, episode_length: int = 7) -> None:
    agent_rows = rows(num, sign=1.0, episode_length=episode_length, start=start, truncate_last=False)
    agent_rows[EPISODE_IDS] = np.array([f"agent-{e}" for e in agent_rows[EPISODE_IDS]], dtype=object)
    buffer.add(agent_rows)


@pytest.mark.parametrize("prioritized", [False, True])
def test_demonstrations_are_never_evicted_when_the_agent_ring_overflows(prioritized):
    buffer = demo_buffer(capacity=50, num_demos=30, prioritized=prioritized)
    for chunk in range(20):  # 1,000 agent rows through a ring of 50
        add_agent(buffer, 50, start=50 * chunk)
    assert len(buffer.agent) == 50 and buffer.num_demos == 30 and len(buffer) == 80
    # The agent ring holds only its newest 50; every demonstration is still stored and sampled.
    assert sorted(buffer.agent.column(OBS)[:, 0]) == list(range(951, 1001))
    np.testing.assert_array_equal(np.sort(buffer.demos.column(OBS)[:, 0]), -np.arange(30, 0, -1))
    batch = buffer.sample(4000, beta=0.4)
    demo_obs = batch[OBS][batch[IS_DEMO] == 1.0, 0]
    assert set(demo_obs.tolist()) == set((-np.arange(1, 31)).tolist())  # all 30 seen: P(miss one) < 30 e^-27
    assert (batch[OBS][batch[IS_DEMO] == 0.0, 0] > 950).all()


def test_rows_say_which_partition_they_came_from_and_their_indexes_too():
    buffer = demo_buffer(capacity=100, num_demos=30)
    add_agent(buffer, 60)
    batch = buffer.sample(800)
    demo = batch[IS_DEMO] == 1.0
    assert batch[IS_DEMO].dtype == np.float32
    assert (batch[OBS][demo] < 0).all() and (batch[OBS][~demo] > 0).all()
    assert (batch[INDEXES][demo] >= 100).all() and (batch[INDEXES][~demo] < 100).all()
    # A demonstration's index is its slot plus the agent's capacity: row -k sits in slot k - 1.
    np.testing.assert_array_equal(batch[INDEXES][demo] - 100, -batch[OBS][demo, 0].astype(np.int64) - 1)


def test_each_uniform_minibatch_holds_exactly_the_demo_fraction_when_it_is_whole():
    buffer = demo_buffer(capacity=1000, num_demos=200, demo_fraction=0.25, minibatch=64)
    add_agent(buffer, 1000)
    batch = buffer.sample(64 * 50)
    per_minibatch = batch[IS_DEMO].reshape(50, 64).sum(axis=1)
    assert (per_minibatch == 16).all()


def test_uniform_minibatch_demo_share_is_rounded_at_random_around_the_fraction():
    """0.3 * 64 = 19.2 demonstration rows a minibatch: 19 or 20, 20 with probability 0.2.

    Over M = 2,000 minibatches the number with 20 is Binomial(M, 0.2): sd
    sqrt(M * 0.16) = 17.9, so a 6 sd bound (|count - 400| < 108) fails
    falsely with probability ~2e-9.
    """
    buffer = demo_buffer(capacity=1000, num_demos=200, demo_fraction=0.3, minibatch=64, seed=3)
    add_agent(buffer, 1000)
    m = 2000
    per_minibatch = buffer.sample(64 * m)[IS_DEMO].reshape(m, 64).sum(axis=1)
    assert set(per_minibatch.tolist()) <= {19.0, 20.0}
    assert abs(int((per_minibatch == 20).sum()) - 0.2 * m) < 6 * math.sqrt(m * 0.2 * 0.8)


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_demo_fraction_zero_and_one_take_one_partition(fraction):
    buffer = demo_buffer(demo_fraction=fraction)
    add_agent(buffer, 50)
    assert (buffer.sample(256)[IS_DEMO] == fraction).all()


def test_an_empty_agent_buffer_gives_demonstrations_only():
    for prioritized in (False, True):
        batch = demo_buffer(prioritized=prioritized).sample(64)
        assert (batch[IS_DEMO] == 1.0).all() and (batch[OBS] < 0).all()


def test_prioritized_share_follows_the_bonus_priority_mass():
    """New agent rows enter at priority 1, demonstrations at 1 + bonus: with alpha 0.6, 100 agent rows and 30
    demonstrations at bonus 1, demonstrations hold 30 * 2^0.6 / (100 + 30 * 2^0.6) = 0.3126 of the mass.
    Stratified draws over the mass put the count of demonstration rows within one of B times that share."""
    buffer = demo_buffer(capacity=100, num_demos=30, prioritized=True, bonus=1.0)
    add_agent(buffer, 100)
    share = 30 * 2**0.6 / (100 + 30 * 2**0.6)
    num = 5000
    batch = buffer.sample(num, beta=0.4)
    assert abs(batch[IS_DEMO].sum() - num * share) <= 1
    # Importance weights (N P(i))^-beta over both partitions, normalised by the largest: agent rows (the
    # lower priority) weigh 1, demonstrations (2^0.6 / 1)^-0.4.
    np.testing.assert_allclose(batch[WEIGHTS][batch[IS_DEMO] == 0.0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(batch[WEIGHTS][batch[IS_DEMO] == 1.0], 2 ** (-0.6 * 0.4), rtol=1e-6)
    # Without the bonus the share is the partitions' sizes.
    plain = demo_buffer(capacity=100, num_demos=30, prioritized=True, bonus=0.0)
    add_agent(plain, 100)
    assert abs(plain.sample(num)[IS_DEMO].sum() - num * 30 / 130) <= 1


def test_updated_demo_priorities_get_the_bonus_and_agent_ones_do_not():
    buffer = demo_buffer(capacity=100, num_demos=30, prioritized=True, bonus=0.5)
    add_agent(buffer, 100)
    eps = buffer.agent.epsilon
    buffer.update_priorities(np.array([3, 100 + 7]), np.array([-2.0, -2.0]))
    agent_tree, demo_tree = buffer.agent._tree, buffer.demos._tree
    assert agent_tree.tree[agent_tree.size + 3] == pytest.approx((2.0 + eps) ** 0.6)
    assert demo_tree.tree[demo_tree.size + 7] == pytest.approx((2.0 + eps + 0.5) ** 0.6)
    # Others untouched: new agent rows at 1, demonstrations at (1 + bonus)^alpha.
    assert agent_tree.tree[agent_tree.size + 4] == pytest.approx(1.0)
    assert demo_tree.tree[demo_tree.size + 8] == pytest.approx(1.5**0.6)


def test_uniform_buffer_ignores_priority_updates():
    updated, untouched = demo_buffer(seed=3), demo_buffer(seed=3)
    for buffer in (updated, untouched):
        add_agent(buffer, 10)
    updated.update_priorities(np.array([1, 105]), np.array([50.0, 50.0]))
    # The same draws as a twin buffer that was never updated: priorities play no part.
    a, b = updated.sample(32), untouched.sample(32)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_n_step_windows_do_not_cross_from_a_demo_episode_into_agent_data_or_the_next_demo_episode():
    """Demonstration episodes of 10 steps, the last one truncated; agent rows arrive right after in
    insertion order. A window from a demonstration's last step is one step long (truncated: it still
    bootstraps, from its own next observation); one from its second-to-last step is two."""
    n = 4
    buffer = demo_buffer(capacity=100, num_demos=30, n_step=n, demo_episode_length=10)
    add_agent(buffer, 40)
    slots = np.arange(30)
    folded = buffer.demos.fold(slots)
    steps = slots % 10
    length = np.minimum(n, 10 - steps)  # steps left in the demonstration episode
    np.testing.assert_allclose(folded[DISCOUNTS], GAMMA**length, rtol=1e-6)
    np.testing.assert_allclose(folded[REWARDS], [(1 - GAMMA**k) / (1 - GAMMA) for k in length], rtol=1e-6)
    # s_{t+k} is the demonstration's own: -(slot + 1) - k, never an agent (positive) observation.
    np.testing.assert_allclose(folded[NEXT_OBS][:, 0], -(slots + 1) - length)
    inside = (folded[INTERMEDIATE_DISCOUNTS] > 0).sum(axis=1)
    np.testing.assert_array_equal(inside, length - 1)
    # The same through the mixed sampler: every demonstration row's next observation is negative.
    batch = buffer.sample(2000)
    assert (batch[NEXT_OBS][batch[IS_DEMO] == 1.0] < 0).all()
    assert (batch[NEXT_OBS][batch[IS_DEMO] == 0.0] > 0).all()


def test_reward_range_covers_both_partitions():
    buffer = demo_buffer()
    agent_rows = rows(5, sign=1.0, episode_length=5)
    agent_rows[REWARDS] = np.full(5, -3.0, np.float32)
    buffer.add(agent_rows)
    assert buffer.reward_range == (-3.0, 1.0)


def test_sample_demos_gives_demonstrations_only_with_offset_indexes():
    buffer = demo_buffer(capacity=100, num_demos=30)
    add_agent(buffer, 100)
    batch = buffer.sample_demos(500)
    assert (batch[IS_DEMO] == 1.0).all() and (batch[OBS] < 0).all() and (batch[INDEXES] >= 100).all()


def test_demo_rows_from_a_recorded_folder_link_within_episodes(tmp_path):
    from rlfrontier import demos

    demos.record(env_id="CartPole-v1", scripted="cartpole", episodes=2, out=tmp_path / "d", seed=0)
    columns = offpolicy.demo_rows(str(tmp_path / "d"))
    assert len(columns[OBS]) == 1000 and columns[TRUNCATEDS].sum() == 2 and not columns[TERMINATEDS].any()
    agent = TransitionReplayBuffer(capacity=10, n_step=3, gamma=GAMMA, seed=0)
    buffer = DemoReplayBuffer(agent=agent, demo_columns=columns, demo_fraction=0.25, priority_bonus=1.0,
                              minibatch_size=8)
    folded = buffer.demos.fold(np.array([498, 499, 500]))
    # Step 498 of episode 0 sees two steps; its last step one; episode 1's first step a full window.
    np.testing.assert_allclose(folded[DISCOUNTS], [GAMMA**2, GAMMA, GAMMA**3], rtol=1e-6)


# Config ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("demo_loss", "hinge"), ("demo_margin", -0.1), ("demo_loss_coeff", -1.0), ("demo_fraction", 1.5),
    ("demo_priority_bonus", -0.5), ("demo_pretrain_updates", -1), ("demo_pretrain_updates", 2.5),
])
def test_config_refuses_bad_demo_fields_naming_them(field, value):
    config = SoftQConfig().environment("CartPole-v1").training(**{field: value})
    with pytest.raises(Exception, match=field):
        config.validate()


def test_config_refuses_demos_with_an_exploration_bonus():
    config = SoftQConfig().environment("CartPole-v1").training(demos="/tmp/x", bonus={"type": "count"})
    with pytest.raises(ValueError, match="demos"):
        config.validate()


def test_demo_defaults_are_dqfds():
    config = SoftQConfig()
    assert (config.demos, config.demo_loss, config.demo_margin, config.demo_loss_coeff) == (None, "margin", 0.8, 1.0)
    assert config.demo_priority_bonus == 1.0 and 0 < config.demo_fraction < 1 and config.demo_pretrain_updates > 0


# Learner glue ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


def make_learner(**training):
    settings = dict(alpha=0.3, huber_delta=None, prioritized_replay=False, target_update_interval=10_000,
                    twin_q=False, lr=1e-3, gamma=0.99)
    settings.update(training)
    config = SoftQConfig().training(**settings).rl_module(model_config={"hidden_sizes": [32]})
    torch.manual_seed(0)
    return build_learner(config, gym.make("CartPole-v1"))


def demo_batch(seed: int = 0) -> dict[str, np.ndarray]:
    batch = env_transitions(gym.make("CartPole-v1"), 64, gamma=0.99, seed=seed)
    batch.pop(WEIGHTS)
    batch[IS_DEMO] = (np.arange(64) % 4 == 0).astype(np.float32)  # 16 demonstration rows
    return batch


@pytest.mark.parametrize("kind", ["margin", "nll"])
@pytest.mark.parametrize("twin_q", [False, True])
def test_loss_is_td_plus_coeff_times_the_supervised_term_on_demo_rows(kind, twin_q):
    learner = make_learner(demo_loss=kind, demo_margin=0.8, demo_loss_coeff=2.5, twin_q=twin_q)
    module = module_of(learner)
    batch = demo_batch()
    without = {k: v for k, v in batch.items() if k != IS_DEMO}
    td_only, _, _, plain = loss_and_priorities(learner, without)
    assert DEMO_LOSS not in plain["default_policy"] and DEMO_FRACTION_SAMPLED not in plain["default_policy"]

    loss, _, _, results = loss_and_priorities(learner, batch)
    obs, actions = torch.as_tensor(batch[OBS]), torch.as_tensor(batch[ACTIONS])
    mask = torch.as_tensor(batch[IS_DEMO]).bool()
    heads = [module.qf] + ([module.qf_twin] if twin_q else [])
    expected_terms = []
    with torch.no_grad():
        for net in heads:
            q = net(obs)
            if kind == "margin":
                margins = torch.full_like(q, 0.8)
                margins[torch.arange(64), actions] = 0.0
                per_row = (q + margins).max(dim=1).values - q[torch.arange(64), actions]
            else:
                per_row = -torch.log_softmax(q / 0.3, dim=1)[torch.arange(64), actions]
            expected_terms.append(per_row[mask].sum() / 64)
    assert loss.item() == pytest.approx(td_only.item() + 2.5 * sum(t.item() for t in expected_terms), rel=1e-5)
    assert peek(results, DEMO_LOSS) == pytest.approx(expected_terms[0].item(), rel=1e-5)
    assert peek(results, DEMO_FRACTION_SAMPLED) == pytest.approx(0.25)
    assert peek(results, QF_LOSS) == pytest.approx(peek(plain, QF_LOSS), rel=1e-6)  # the TD loss covers every row


def test_coeff_zero_leaves_the_td_loss_and_no_demo_row_leaves_it_too():
    learner = make_learner(demo_loss_coeff=0.0)
    batch = demo_batch(1)
    td_only = loss_and_priorities(learner, {k: v for k, v in batch.items() if k != IS_DEMO})[0]
    assert loss_and_priorities(learner, batch)[0].item() == pytest.approx(td_only.item(), rel=1e-6)
    learner = make_learner()
    batch[IS_DEMO] = np.zeros(64, np.float32)
    loss, _, _, results = loss_and_priorities(learner, batch)
    assert loss.item() == pytest.approx(td_only.item(), rel=1e-6)
    assert peek(results, DEMO_LOSS) == 0.0 and peek(results, DEMO_FRACTION_SAMPLED) == 0.0


def test_nll_term_does_not_move_a_learnt_temperature():
    learner = make_learner(demo_loss="nll", learn_alpha=True, demo_loss_coeff=100.0)
    module = module_of(learner)
    batch = demo_batch(2)
    batch[IS_DEMO] = np.ones(64, np.float32)
    loss, *_ = loss_and_priorities(learner, batch)
    with_demo = torch.autograd.grad(loss, module.log_alpha)[0]
    learner_plain = make_learner(demo_loss="nll", learn_alpha=True, demo_loss_coeff=0.0)
    loss_plain, *_ = loss_and_priorities(learner_plain, batch)
    without = torch.autograd.grad(loss_plain, module_of(learner_plain).log_alpha)[0]
    assert with_demo.item() == pytest.approx(without.item(), rel=1e-6)
