"""One-step rows from RLlib episode chunks, n-step folding at sampling, the sum tree and the buffer."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rlfrontier.replay import (
    ACTIONS,
    DISCOUNTS,
    EPISODE_IDS,
    INDEXES,
    INTERMEDIATE_DISCOUNTS,
    INTERMEDIATE_OBS,
    NEXT_OBS,
    OBS,
    REWARDS,
    STEPS,
    TERMINATEDS,
    TRUNCATEDS,
    WEIGHTS,
    WINDOW_MASK,
    TransitionReplayBuffer,
    _SumTree,
    transitions_from_episodes,
)

GAMMA = 0.9


def make_episode(
    rewards, *, terminated=False, truncated=False, obs_offset=0.0, obs_shape=(1,)
) -> SingleAgentEpisode:
    """An episode chunk whose observation at step i is filled with obs_offset + i."""
    t_len = len(rewards)
    observations = [
        np.full(obs_shape, obs_offset + i, dtype=np.float32) for i in range(t_len + 1)
    ]
    episode = SingleAgentEpisode(
        observations=observations,
        actions=[i % 2 for i in range(t_len)],
        rewards=list(rewards),
        terminated=terminated,
        truncated=truncated,
        len_lookback_buffer=0,
    )
    episode.to_numpy()
    return episode


def fold_all(episodes, *, gamma: float, n_step: int, capacity: int = 10_000, reward_hook=None):
    """Adds the chunks' one-step transitions to a buffer and folds a window at every stored slot, in order."""
    buffer = TransitionReplayBuffer(capacity=capacity, n_step=n_step, gamma=gamma, seed=0)
    rows = transitions_from_episodes(episodes)
    if rows is None:
        return None
    buffer.add(rows)
    return buffer.fold(np.arange(len(buffer)), reward_hook=reward_hook)


def obs_index(column: np.ndarray, offset: float = 0.0) -> list[int]:
    """Which step's observation each row holds (they are filled with offset + step)."""
    return [int(round(v)) for v in column.reshape(len(column), -1)[:, 0] - offset]


def test_episode_helper_builds_a_chunk_without_lookback():
    episode = make_episode([1.0, 2.0, 3.0, 4.0], terminated=True)
    assert len(episode) == 4
    assert len(episode.get_observations()) == 5
    assert episode.is_terminated


# ----------------------------------------------------------------------------
# transitions_from_episodes: one-step rows tagged for linking
# ----------------------------------------------------------------------------


def test_rows_are_one_step_transitions_with_episode_tags():
    episode = make_episode([1, 2, 3], terminated=True)
    rows = transitions_from_episodes([episode])
    np.testing.assert_allclose(rows[REWARDS], [1, 2, 3])
    assert obs_index(rows[OBS]) == [0, 1, 2]
    assert obs_index(rows[NEXT_OBS]) == [1, 2, 3]
    np.testing.assert_array_equal(rows[TERMINATEDS], [False, False, True])
    np.testing.assert_array_equal(rows[TRUNCATEDS], [False, False, False])
    np.testing.assert_array_equal(rows[STEPS], [0, 1, 2])
    assert list(rows[EPISODE_IDS]) == [episode.id_] * 3
    assert DISCOUNTS not in rows


def test_rows_of_a_truncated_chunk_mark_only_its_last_step():
    rows = transitions_from_episodes([make_episode([1, 2], truncated=True)])
    np.testing.assert_array_equal(rows[TRUNCATEDS], [False, True])
    np.testing.assert_array_equal(rows[TERMINATEDS], [False, False])


def test_no_steps_gives_none():
    empty = SingleAgentEpisode(observations=[np.zeros(1, np.float32)], len_lookback_buffer=0)
    assert transitions_from_episodes([]) is None
    assert transitions_from_episodes([empty]) is None


# ----------------------------------------------------------------------------
# Folding n steps at sampling time (TransitionReplayBuffer.fold)
# ----------------------------------------------------------------------------


def test_one_step_terminated():
    # r = [1, 2, 3, 4]: R = r, next obs = t + 1, discounts 0.9 except the last (terminal) step.
    cols = fold_all([make_episode([1, 2, 3, 4], terminated=True)], gamma=GAMMA, n_step=1)
    np.testing.assert_allclose(cols[REWARDS], [1, 2, 3, 4])
    assert obs_index(cols[OBS]) == [0, 1, 2, 3]
    assert obs_index(cols[NEXT_OBS]) == [1, 2, 3, 4]
    np.testing.assert_allclose(cols[DISCOUNTS], [0.9, 0.9, 0.9, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(cols[ACTIONS], [0, 1, 0, 1])


def test_one_step_unfinished_chunk_bootstraps_every_step():
    cols = fold_all([make_episode([1, 2, 3, 4])], gamma=GAMMA, n_step=1)
    np.testing.assert_allclose(cols[DISCOUNTS], [0.9] * 4, rtol=1e-6)


def test_three_step_terminated():
    # gamma 0.9, r = [1, 2, 3, 4], terminal after r3:
    # t0: 1 + 0.9*2 + 0.81*3 = 5.23, next obs 3, discount 0.9^3 = 0.729
    # t1: 2 + 0.9*3 + 0.81*4 = 7.94, next obs 4 (terminal), discount 0
    # t2: 3 + 0.9*4 = 6.6,           next obs 4, discount 0
    # t3: 4,                         next obs 4, discount 0
    cols = fold_all([make_episode([1, 2, 3, 4], terminated=True)], gamma=GAMMA, n_step=3)
    np.testing.assert_allclose(cols[REWARDS], [5.23, 7.94, 6.6, 4.0], rtol=1e-6)
    assert obs_index(cols[OBS]) == [0, 1, 2, 3]
    assert obs_index(cols[NEXT_OBS]) == [3, 4, 4, 4]
    np.testing.assert_allclose(cols[DISCOUNTS], [0.729, 0.0, 0.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize("truncated", [False, True])
def test_three_step_unfinished_or_truncated_chunk_shortens_k_at_the_end(truncated):
    # Same rewards, no termination: the window is cut at the chunk end and bootstraps
    # with gamma^k, k = [3, 3, 2, 1] -> [0.729, 0.729, 0.81, 0.9].
    cols = fold_all([make_episode([1, 2, 3, 4], truncated=truncated)], gamma=GAMMA, n_step=3)
    np.testing.assert_allclose(cols[REWARDS], [5.23, 7.94, 6.6, 4.0], rtol=1e-6)
    assert obs_index(cols[NEXT_OBS]) == [3, 4, 4, 4]
    np.testing.assert_allclose(cols[DISCOUNTS], [0.729, 0.729, 0.81, 0.9], rtol=1e-6)


def test_n_step_longer_than_the_chunk():
    # n = 10 on a 3-step chunk: every window ends at the chunk end.
    # r = [1, 1, 1]: R = [1 + 0.9 + 0.81, 1 + 0.9, 1] = [2.71, 1.9, 1]; k = [3, 2, 1].
    cols = fold_all([make_episode([1, 1, 1])], gamma=GAMMA, n_step=10)
    np.testing.assert_allclose(cols[REWARDS], [2.71, 1.9, 1.0], rtol=1e-6)
    assert obs_index(cols[NEXT_OBS]) == [3, 3, 3]
    np.testing.assert_allclose(cols[DISCOUNTS], [0.729, 0.81, 0.9], rtol=1e-6)


def test_negative_and_zero_rewards_two_step():
    # n = 2, r = [-1, 0, 2]: R = [-1 + 0, 0 + 0.9*2, 2] = [-1, 1.8, 2]; terminal: [0.81, 0, 0].
    cols = fold_all([make_episode([-1, 0, 2], terminated=True)], gamma=GAMMA, n_step=2)
    np.testing.assert_allclose(cols[REWARDS], [-1.0, 1.8, 2.0], rtol=1e-6)
    np.testing.assert_allclose(cols[DISCOUNTS], [0.81, 0.0, 0.0], rtol=1e-6)


def test_several_chunks_are_concatenated_and_empty_ones_skipped():
    first = make_episode([1, 2], terminated=True, obs_offset=0.0)
    empty = SingleAgentEpisode(observations=[np.zeros(1, np.float32)], len_lookback_buffer=0)
    second = make_episode([3, 4, 5], obs_offset=100.0)
    cols = fold_all([first, empty, second], gamma=GAMMA, n_step=2)
    # first: R = [1 + 1.8, 2] = [2.8, 2], discounts [0, 0] (terminal within both windows).
    # second: R = [3 + 3.6, 4 + 4.5, 5] = [6.6, 8.5, 5], discounts [0.81, 0.81, 0.9].
    np.testing.assert_allclose(cols[REWARDS], [2.8, 2.0, 6.6, 8.5, 5.0], rtol=1e-6)
    np.testing.assert_allclose(cols[DISCOUNTS], [0.0, 0.0, 0.81, 0.81, 0.9], rtol=1e-6)
    np.testing.assert_allclose(cols[OBS][:, 0], [0, 1, 100, 101, 102])
    np.testing.assert_allclose(cols[NEXT_OBS][:, 0], [2, 2, 102, 103, 103])
    assert all(len(v) == 5 for v in cols.values())


def test_multidimensional_observations_keep_their_shape():
    cols = fold_all([make_episode([1, 2, 3], obs_shape=(2, 3))], gamma=GAMMA, n_step=2)
    assert cols[OBS].shape == (3, 2, 3)
    assert cols[NEXT_OBS].shape == (3, 2, 3)
    assert cols[INTERMEDIATE_OBS].shape == (3, 1, 2, 3)
    assert cols[INTERMEDIATE_DISCOUNTS].dtype == np.float32
    assert cols[REWARDS].dtype == np.float32
    assert cols[DISCOUNTS].dtype == np.float32


def cut_episode_pair():
    """How EnvRunners produce chunks: step an episode, cut() it (the successor keeps a
    lookback buffer of the old chunk's data and the episode id), step on.

    Observation i + 1 follows reward i; r = [0, 1, ..., 7], terminal after r7;
    the first chunk holds steps 0..4, the second steps 5..7.
    """
    episode = SingleAgentEpisode(len_lookback_buffer=0)
    episode.add_env_reset(np.zeros(1, np.float32))
    for i in range(5):
        episode.add_env_step(np.full(1, i + 1, np.float32), i % 2, float(i))
    successor = episode.cut(len_lookback_buffer=2)
    for i in range(5, 8):
        successor.add_env_step(np.full(1, i + 1, np.float32), i % 2, float(i), terminated=(i == 7))
    episode.to_numpy()
    successor.to_numpy()
    return episode, successor


# Three-step windows over r = [0, ..., 7], gamma 0.9, terminal after r7, linked across the cut:
#   R_t = r_t + 0.9 r_{t+1} + 0.81 r_{t+2} = [2.52, 5.23, 7.94, 10.65, 13.36, 16.07, 12.3, 7];
#   next obs [3, 4, 5, 6, 7, 8, 8, 8]; discounts 0.729 up to t = 4, then 0 (the terminal is inside).
LINKED_REWARDS = [2.52, 5.23, 7.94, 10.65, 13.36, 16.07, 12.3, 7]
LINKED_NEXT_OBS = [3, 4, 5, 6, 7, 8, 8, 8]
LINKED_DISCOUNTS = [0.729] * 5 + [0.0] * 3


def test_a_cut_chunk_ignores_its_lookback_buffer_and_links_to_its_predecessor():
    episode, successor = cut_episode_pair()
    rows = transitions_from_episodes([episode, successor])
    np.testing.assert_array_equal(rows[STEPS], np.arange(8))  # no lookback rows
    cols = fold_all([episode, successor], gamma=GAMMA, n_step=3)
    np.testing.assert_allclose(cols[REWARDS], LINKED_REWARDS, rtol=1e-6)
    np.testing.assert_allclose(cols[DISCOUNTS], LINKED_DISCOUNTS, rtol=1e-6)
    np.testing.assert_allclose(cols[OBS][:, 0], np.arange(8))
    np.testing.assert_allclose(cols[NEXT_OBS][:, 0], LINKED_NEXT_OBS)


def test_chunks_of_one_episode_are_linked_across_add_calls():
    episode, successor = cut_episode_pair()
    buffer = TransitionReplayBuffer(capacity=100, n_step=3, gamma=GAMMA)
    buffer.add(transitions_from_episodes([episode]))
    # Before the next chunk arrives, windows stop at the newest stored step and
    # bootstrap from its next observation: R_3 = 3 + 3.6, R_4 = 4, gamma^k = [0.81, 0.9].
    early = buffer.fold(np.arange(5))
    np.testing.assert_allclose(early[REWARDS], [2.52, 5.23, 7.94, 6.6, 4.0], rtol=1e-6)
    np.testing.assert_allclose(early[DISCOUNTS], [0.729, 0.729, 0.729, 0.81, 0.9], rtol=1e-6)
    buffer.add(transitions_from_episodes([successor]))
    cols = buffer.fold(np.arange(8))
    np.testing.assert_allclose(cols[REWARDS], LINKED_REWARDS, rtol=1e-6)
    np.testing.assert_allclose(cols[NEXT_OBS][:, 0], LINKED_NEXT_OBS)
    np.testing.assert_allclose(cols[DISCOUNTS], LINKED_DISCOUNTS, rtol=1e-6)


def test_interleaved_chunks_of_vector_envs_link_within_their_own_episode():
    # Two envs' episodes cut into chunks that arrive interleaved (A1 B1 | A2 B2), as a vector
    # env's sample() returns them. Observations: A holds 0.., B holds 100..; r = obs value.
    def stepped(offset, steps, chunk_at):
        episode = SingleAgentEpisode(len_lookback_buffer=0)
        episode.add_env_reset(np.full(1, offset, np.float32))
        for i in range(chunk_at):
            episode.add_env_step(np.full(1, offset + i + 1, np.float32), 0, float(offset + i))
        successor = episode.cut(len_lookback_buffer=1)
        for i in range(chunk_at, steps):
            successor.add_env_step(np.full(1, offset + i + 1, np.float32), 0, float(offset + i), truncated=(i == steps - 1))
        episode.to_numpy()
        successor.to_numpy()
        return episode, successor

    a1, a2 = stepped(0, 4, 2)
    b1, b2 = stepped(100, 5, 3)
    buffer = TransitionReplayBuffer(capacity=100, n_step=2, gamma=0.5)
    buffer.add(transitions_from_episodes([a1, b1]))
    buffer.add(transitions_from_episodes([a2, b2]))
    cols = buffer.fold(np.arange(len(buffer)))
    # Slot order: a(0, 1), b(100, 101, 102), a(2, 3), b(103, 104). Two steps, gamma 0.5:
    # R = r_t + 0.5 r_{t+1}, next obs s_{t+2}, discount 0.25; the truncated last steps
    # bootstrap after one step (0.5).
    starts = [0, 1, 100, 101, 102, 2, 3, 103, 104]
    np.testing.assert_allclose(cols[OBS][:, 0], starts)
    expected_r = [0 + 0.5, 1 + 1.0, 100 + 50.5, 101 + 51, 102 + 51.5, 2 + 1.5, 3, 103 + 52, 104]
    np.testing.assert_allclose(cols[REWARDS], expected_r, rtol=1e-6)
    np.testing.assert_allclose(cols[NEXT_OBS][:, 0], [2, 3, 102, 103, 104, 4, 4, 105, 105])
    np.testing.assert_allclose(cols[DISCOUNTS], [0.25] * 5 + [0.25, 0.5, 0.25, 0.5])


def test_a_link_to_an_overwritten_slot_is_stale():
    # Episode A's first chunk (2 steps) is pushed out of a 4-slot ring by 4 steps of another
    # episode before A's second chunk arrives. The slot that held A's newest step now holds the
    # other episode's last (truncated) step, which must keep its own one-step window rather
    # than be linked into A's continuation.
    a = make_episode([1, 2])
    other = make_episode([10, 20, 30, 40], obs_offset=100.0, truncated=True)
    a_next = a.cut(len_lookback_buffer=0)
    a_next.add_env_step(np.full(1, 3, np.float32), 0, 5.0, terminated=True)
    a_next.to_numpy()
    buffer = TransitionReplayBuffer(capacity=4, n_step=3, gamma=GAMMA)
    buffer.add(transitions_from_episodes([a]))
    buffer.add(transitions_from_episodes([other]))
    buffer.add(transitions_from_episodes([a_next]))
    stored = dict(zip(obs_index(buffer._storage[OBS]), range(4)))
    assert sorted(stored) == [2, 101, 102, 103]
    cols = buffer.fold(np.array([stored[101], stored[102], stored[103], stored[2]]))
    # other: R = [20 + 27 + 32.4, 30 + 36, 40], truncated at its end: discounts [0.729, 0.81, 0.9].
    # A's step 2 is its terminal step: R = 5, discount 0.
    np.testing.assert_allclose(cols[REWARDS], [79.4, 66.0, 40.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(cols[DISCOUNTS], [0.729, 0.81, 0.9, 0.0], rtol=1e-6)
    np.testing.assert_allclose(cols[NEXT_OBS][:, 0], [104, 104, 104, 3])


def test_intermediate_columns_hold_the_states_inside_the_window():
    # n = 3, gamma 0.9, r = [1, 2, 3, 4] terminated: the windows of t = 0..3 contain
    # intermediate states [1, 2], [2, 3], [3, -], [-, -] with discounts gamma^j or 0.
    cols = fold_all([make_episode([1, 2, 3, 4], terminated=True)], gamma=GAMMA, n_step=3)
    assert cols[INTERMEDIATE_OBS].shape == (4, 2, 1)
    np.testing.assert_allclose(
        cols[INTERMEDIATE_DISCOUNTS], [[0.9, 0.81], [0.9, 0.81], [0.9, 0.0], [0.0, 0.0]], rtol=1e-6
    )
    inside = cols[INTERMEDIATE_DISCOUNTS] > 0
    np.testing.assert_allclose(cols[INTERMEDIATE_OBS][..., 0][inside], [1, 2, 2, 3, 3])


def test_one_step_sampling_has_no_intermediate_columns():
    cols = fold_all([make_episode([1, 2, 3])], gamma=GAMMA, n_step=1)
    assert INTERMEDIATE_OBS not in cols
    assert INTERMEDIATE_DISCOUNTS not in cols


def test_reward_hook_rewrites_the_one_step_rewards_before_folding():
    # Hook: r -> r + 10 for every step in the window. r = [1, 2, 3, 4] terminated, n = 3,
    # gamma 0.9: R' = R + 10 * sum_{j<k} 0.9^j with k = [3, 3, 2, 1]:
    # [5.23 + 27.1, 7.94 + 27.1, 6.6 + 19, 4 + 10].
    seen = {}

    def plus_ten(window):
        seen.update(window)
        return window[REWARDS] + 10.0

    cols = fold_all([make_episode([1, 2, 3, 4], terminated=True)], gamma=GAMMA, n_step=3, reward_hook=plus_ten)
    np.testing.assert_allclose(cols[REWARDS], [32.33, 35.04, 25.6, 14.0], rtol=1e-6)
    # The hook saw the window's one-step columns, [B, n, ...], and which steps are inside.
    assert seen[OBS].shape == (4, 3, 1)
    np.testing.assert_array_equal(seen[REWARDS][0], [1, 2, 3])
    np.testing.assert_array_equal(seen[WINDOW_MASK][2], [True, True, False])
    np.testing.assert_array_equal(seen[ACTIONS][1], [1, 0, 1])


def test_reward_hook_values_outside_the_window_are_ignored():
    cols = fold_all(
        [make_episode([1, 2, 3, 4], terminated=True)], gamma=GAMMA, n_step=3,
        reward_hook=lambda w: np.where(w[WINDOW_MASK], w[REWARDS], np.nan),
    )
    np.testing.assert_allclose(cols[REWARDS], [5.23, 7.94, 6.6, 4.0], rtol=1e-6)


def test_extra_columns_come_from_the_first_step_of_the_window():
    rows = transitions_from_episodes([make_episode([1, 2, 3, 4])])
    rows["mask"] = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
    buffer = TransitionReplayBuffer(capacity=10, n_step=3, gamma=GAMMA)
    buffer.add(rows)
    cols = buffer.fold(np.array([2, 0, 1]))
    np.testing.assert_array_equal(cols["mask"], [[1, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(cols[INDEXES], [2, 0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_step", [1, 2, 5])
@pytest.mark.parametrize("terminated", [False, True])
def test_n_step_fold_matches_a_direct_loop(seed, n_step, terminated):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=int(rng.integers(1, 40))).astype(np.float32)
    cols = fold_all([make_episode(rewards, terminated=terminated)], gamma=0.97, n_step=n_step)
    t_len = len(rewards)
    for t in range(t_len):
        end = min(t + n_step, t_len)
        expected_r = sum(0.97 ** (i - t) * float(rewards[i]) for i in range(t, end))
        expected_d = 0.0 if (terminated and end == t_len) else 0.97 ** (end - t)
        assert cols[REWARDS][t] == pytest.approx(expected_r, rel=1e-5, abs=1e-5)
        assert cols[DISCOUNTS][t] == pytest.approx(expected_d, rel=1e-6)
        assert cols[NEXT_OBS][t, 0] == end


def test_gamma_zero_gives_the_immediate_reward():
    cols = fold_all([make_episode([1, 2, 3, 4])], gamma=0.0, n_step=1)
    np.testing.assert_allclose(cols[REWARDS], [1, 2, 3, 4])


def test_long_chunk_keeps_n_step_returns_exact():
    # r = 1 everywhere, n = 3, gamma 0.9: R = 1 + 0.9 + 0.81 = 2.71 except the last two steps.
    cols = fold_all([make_episode([1.0] * 500)], gamma=GAMMA, n_step=3)
    np.testing.assert_allclose(cols[REWARDS][:-2], 2.71, rtol=1e-5)
    np.testing.assert_allclose(cols[REWARDS][-2:], [1.9, 1.0], rtol=1e-5)


# ----------------------------------------------------------------------------
# _SumTree
# ----------------------------------------------------------------------------


def _assert_tree_consistent(tree: _SumTree) -> None:
    for node in range(1, tree.size):
        assert tree.tree[node] == pytest.approx(tree.tree[2 * node] + tree.tree[2 * node + 1])


@pytest.mark.parametrize("capacity", [1, 3, 8, 13])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sum_tree_find_matches_cumulative_sum_search(capacity, seed):
    rng = np.random.default_rng(seed)
    priorities = rng.uniform(0.01, 5.0, size=capacity)
    tree = _SumTree(capacity)
    tree.set(np.arange(capacity), priorities)
    _assert_tree_consistent(tree)
    assert tree.total == pytest.approx(priorities.sum())
    prefixes = rng.uniform(0.0, priorities.sum(), size=2000)
    expected = np.searchsorted(np.cumsum(priorities), prefixes, side="right")
    np.testing.assert_array_equal(tree.find(prefixes), expected)


def test_sum_tree_find_at_exact_boundaries_and_skips_zero_leaves():
    # Integer priorities [1, 0, 2, 3, 0] (exact in float64); cumulative [1, 1, 3, 6, 6].
    # Leaf i covers [sum(p[:i]), sum(p[:i+1])): 0 -> leaf 0, 1 and 2 -> leaf 2 (leaf 1 is
    # empty), 3, 4, 5 -> leaf 3; leaf 4 (zero) is never found.
    tree = _SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 2.0, 3.0, 0.0]))
    found = tree.find(np.array([0.0, 0.5, 1.0, 2.999, 3.0, 5.999]))
    np.testing.assert_array_equal(found, [0, 0, 2, 2, 3, 3])


def test_sum_tree_set_with_duplicate_indexes_keeps_tree_consistent():
    tree = _SumTree(6)
    tree.set(np.arange(6), np.ones(6))
    # Leaf 2 appears twice, leaves 4 and 5 share a parent.
    tree.set(np.array([2, 2, 4, 5]), np.array([7.0, 9.0, 0.5, 0.25]))
    _assert_tree_consistent(tree)
    leaf2 = tree.tree[tree.size + 2]
    assert leaf2 in (7.0, 9.0)
    assert tree.total == pytest.approx(1 + 1 + leaf2 + 1 + 0.5 + 0.25)


def test_sum_tree_partial_updates_refresh_every_ancestor():
    rng = np.random.default_rng(5)
    tree = _SumTree(10)
    values = rng.uniform(0, 1, size=10)
    tree.set(np.arange(10), values)
    for _ in range(20):
        idx = rng.integers(0, 10, size=int(rng.integers(1, 4)))
        new = rng.uniform(0, 1, size=len(idx))
        tree.set(idx, new)
        for i, v in zip(idx, new):  # last write wins, as in numpy assignment
            values[i] = v
        _assert_tree_consistent(tree)
        assert tree.total == pytest.approx(values.sum())


# ----------------------------------------------------------------------------
# TransitionReplayBuffer
# ----------------------------------------------------------------------------


def columns(start: int, n: int) -> dict[str, np.ndarray]:
    """n transitions whose every column holds its id start..start+n-1."""
    ids = np.arange(start, start + n)
    return {
        OBS: np.stack([ids, ids], axis=1).astype(np.float32),
        ACTIONS: ids.astype(np.int64),
        REWARDS: ids.astype(np.float32),
        NEXT_OBS: np.stack([ids, ids], axis=1).astype(np.float32) + 0.5,
        TERMINATEDS: ids % 2 == 1,
    }


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_below_one_raises(capacity):
    with pytest.raises(ValueError, match="capacity"):
        TransitionReplayBuffer(capacity=capacity)


@pytest.mark.parametrize("prioritized", [False, True])
def test_empty_buffer_sample_raises(prioritized):
    buffer = TransitionReplayBuffer(capacity=4, prioritized=prioritized)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2)


@pytest.mark.parametrize("prioritized", [False, True])
def test_ring_overwrite_keeps_the_newest(prioritized):
    buffer = TransitionReplayBuffer(capacity=5, prioritized=prioritized, seed=0)
    buffer.add(columns(0, 3))
    assert len(buffer) == 3
    buffer.add(columns(3, 4))  # ids 0..6 into 5 slots: 0 and 1 overwritten
    assert len(buffer) == 5
    stored = sorted(buffer._storage[ACTIONS].tolist())
    assert stored == [2, 3, 4, 5, 6]
    sampled = buffer.sample(500)
    assert set(sampled[ACTIONS].tolist()) == {2, 3, 4, 5, 6}
    # Rows stay aligned across columns.
    np.testing.assert_array_equal(sampled[REWARDS], sampled[ACTIONS].astype(np.float32))
    np.testing.assert_array_equal(sampled[OBS][:, 1], sampled[ACTIONS].astype(np.float32))
    np.testing.assert_array_equal(sampled[NEXT_OBS][:, 0], sampled[ACTIONS] + 0.5)
    np.testing.assert_array_equal(buffer._storage[ACTIONS][sampled[INDEXES]], sampled[ACTIONS])


def test_adding_more_than_capacity_at_once_keeps_the_newest():
    buffer = TransitionReplayBuffer(capacity=4, seed=0)
    buffer.add(columns(0, 10))
    assert len(buffer) == 4
    assert sorted(buffer._storage[ACTIONS].tolist()) == [6, 7, 8, 9]
    buffer.add(columns(10, 1))
    assert sorted(buffer._storage[ACTIONS].tolist()) == [7, 8, 9, 10]


def test_adding_an_empty_batch_changes_nothing():
    buffer = TransitionReplayBuffer(capacity=4, seed=0)
    buffer.add(columns(0, 0))
    assert len(buffer) == 0
    buffer.add(columns(0, 2))
    buffer.add(columns(2, 0))
    assert len(buffer) == 2


def test_uniform_sampling_only_returns_filled_indexes():
    buffer = TransitionReplayBuffer(capacity=100, seed=1)
    buffer.add(columns(0, 3))
    batch = buffer.sample(3000)
    assert set(batch[INDEXES].tolist()) == {0, 1, 2}
    assert WEIGHTS not in batch
    # Roughly uniform: each of 3 indexes ~1000 times (binomial sd ~26).
    counts = np.bincount(batch[INDEXES], minlength=3)
    assert np.all(np.abs(counts - 1000) < 150)


def test_same_seed_same_samples():
    a = TransitionReplayBuffer(capacity=50, seed=7)
    b = TransitionReplayBuffer(capacity=50, seed=7)
    for buffer in (a, b):
        buffer.add(columns(0, 30))
    np.testing.assert_array_equal(a.sample(64)[INDEXES], b.sample(64)[INDEXES])


def _prioritized_pair(*, alpha: float, priorities, beta_seed: int = 0) -> TransitionReplayBuffer:
    buffer = TransitionReplayBuffer(capacity=len(priorities), prioritized=True, alpha=alpha, epsilon=1e-12, seed=beta_seed)
    buffer.add(columns(0, len(priorities)))
    buffer.update_priorities(np.arange(len(priorities)), np.asarray(priorities, dtype=np.float64))
    return buffer


def test_new_transitions_get_equal_max_priority():
    buffer = TransitionReplayBuffer(capacity=8, prioritized=True, seed=0)
    buffer.add(columns(0, 4))
    counts = np.bincount(buffer.sample(4000)[INDEXES], minlength=8)
    assert counts[4:].sum() == 0
    assert np.all(np.abs(counts[:4] - 1000) <= 2)  # stratified: near exact


def test_prioritized_sampling_frequency_follows_priority():
    # Priorities [1, 3], alpha = 1: P(1) = 3 / 4.
    buffer = _prioritized_pair(alpha=1.0, priorities=[1.0, 3.0])
    draws = np.concatenate([buffer.sample(1000)[INDEXES] for _ in range(20)])
    assert abs(np.mean(draws == 1) - 0.75) < 0.02


def test_prioritized_sampling_frequency_follows_priority_to_the_alpha():
    # Priorities [1, 4], alpha = 0.5: p^alpha = [1, 2], P(1) = 2 / 3.
    buffer = _prioritized_pair(alpha=0.5, priorities=[1.0, 4.0])
    draws = np.concatenate([buffer.sample(1000)[INDEXES] for _ in range(20)])
    assert abs(np.mean(draws == 1) - 2 / 3) < 0.02


def test_importance_weights_hand_computed():
    # Priorities [1, 3], alpha = 1, N = 2: P = [1/4, 3/4]; (N P)^-beta = [0.5^-b, 1.5^-b];
    # normalised by the max over the buffer (0.5^-b): [1, 3^-b]. beta = 0.4: 3^-0.4 = 0.6444.
    buffer = _prioritized_pair(alpha=1.0, priorities=[1.0, 3.0])
    batch = buffer.sample(400, beta=0.4)
    expected = np.where(batch[INDEXES] == 0, 1.0, 3.0 ** -0.4)
    np.testing.assert_allclose(batch[WEIGHTS], expected, rtol=1e-5)
    assert batch[WEIGHTS].max() == pytest.approx(1.0)
    assert batch[WEIGHTS].dtype == np.float32


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
def test_importance_weights_formula_for_random_priorities(seed, beta):
    rng = np.random.default_rng(seed)
    priorities = rng.uniform(0.1, 10.0, size=7)
    alpha = 0.6
    buffer = _prioritized_pair(alpha=alpha, priorities=priorities, beta_seed=seed)
    batch = buffer.sample(2000, beta=beta)
    probs = priorities**alpha / np.sum(priorities**alpha)
    raw = (len(priorities) * probs) ** (-beta)
    expected = raw[batch[INDEXES]] / raw.max()
    np.testing.assert_allclose(batch[WEIGHTS], expected, rtol=1e-5)
    assert batch[WEIGHTS].max() <= 1.0 + 1e-6
    if beta == 0.0:
        np.testing.assert_array_equal(batch[WEIGHTS], 1.0)


def test_importance_weights_ignore_unfilled_slots():
    # Capacity 10, 2 filled: N = 2 and the max weight is over the filled leaves only.
    buffer = TransitionReplayBuffer(capacity=10, prioritized=True, alpha=1.0, epsilon=1e-12, seed=0)
    buffer.add(columns(0, 2))
    buffer.update_priorities(np.array([0, 1]), np.array([1.0, 3.0]))
    batch = buffer.sample(400, beta=0.4)
    assert set(batch[INDEXES].tolist()) == {0, 1}
    expected = np.where(batch[INDEXES] == 0, 1.0, 3.0 ** -0.4)
    np.testing.assert_allclose(batch[WEIGHTS], expected, rtol=1e-5)


def test_update_priorities_changes_sampling():
    buffer = TransitionReplayBuffer(capacity=4, prioritized=True, alpha=1.0, epsilon=1e-12, seed=3)
    buffer.add(columns(0, 4))
    before = np.bincount(buffer.sample(4000)[INDEXES], minlength=4) / 4000
    np.testing.assert_allclose(before, 0.25, atol=0.01)
    # |td| = [0, 0, 9, 1] (sign ignored): P = [~0, ~0, 0.9, 0.1].
    buffer.update_priorities(np.array([0, 1, 2, 3]), np.array([0.0, 0.0, -9.0, 1.0]))
    after = np.bincount(buffer.sample(4000)[INDEXES], minlength=4) / 4000
    np.testing.assert_allclose(after, [0.0, 0.0, 0.9, 0.1], atol=0.01)


def test_new_transitions_enter_at_the_max_priority_seen():
    # After a priority of 8, a newly added transition gets priority 8 too (alpha = 1).
    buffer = TransitionReplayBuffer(capacity=3, prioritized=True, alpha=1.0, epsilon=1e-12, seed=0)
    buffer.add(columns(0, 2))
    buffer.update_priorities(np.array([0, 1]), np.array([8.0, 0.0]))
    buffer.add(columns(2, 1))
    leaves = buffer._tree.tree[buffer._tree.size : buffer._tree.size + 3]
    np.testing.assert_allclose(leaves, [8.0, 1e-12, 8.0])


def test_uniform_buffer_ignores_priority_updates():
    buffer = TransitionReplayBuffer(capacity=4, seed=0)
    buffer.add(columns(0, 4))
    buffer.update_priorities(np.array([0]), np.array([100.0]))
    counts = np.bincount(buffer.sample(4000)[INDEXES], minlength=4)
    assert np.all(np.abs(counts - 1000) < 150)


def test_importance_weights_are_normalised_over_the_buffer_not_the_batch():
    # Priorities [1, 1000], alpha = 1: a one-item batch is almost always index 1, whose
    # weight is (P(1) / P(0))^-beta = 1000^-0.4 = 0.0631, not 1 (a per-batch max would give 1).
    buffer = _prioritized_pair(alpha=1.0, priorities=[1.0, 1000.0])
    for _ in range(20):
        batch = buffer.sample(1, beta=0.4)
        expected = 1.0 if batch[INDEXES][0] == 0 else 1000.0 ** -0.4
        assert batch[WEIGHTS][0] == pytest.approx(expected, rel=1e-5)


def test_polyak_update_matches_rllibs_and_copies_at_tau_one():
    import copy

    import torch
    from ray.rllib.utils.torch_utils import update_target_network

    from rlfrontier.offpolicy import polyak_update

    torch.manual_seed(0)
    main = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 2))
    main(torch.randn(8, 3))  # moves the batch-norm running statistics (float buffers) and the batch count
    target = copy.deepcopy(main)
    for p in target.parameters():
        p.data.normal_()
    target[1].running_mean.normal_()
    reference = copy.deepcopy(target)
    polyak_update(main_net=main, target_net=target, tau=0.3)
    update_target_network(main_net=main, target_net=reference, tau=0.3)
    for (name, a), b in zip(target.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-6, atol=1e-6, msg=name)
    polyak_update(main_net=main, target_net=target, tau=1.0)
    for a, b in zip(target.state_dict().values(), main.state_dict().values()):
        assert torch.equal(a, b)
