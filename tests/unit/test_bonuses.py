"""Exploration bonuses: counts and bonuses by hand, SimHash's locality, state, the replay seam, configuration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rlfrontier import bonuses, rewards
from rlfrontier.replay import NEXT_OBS, OBS, REWARDS, TransitionReplayBuffer, transitions_from_episodes
from rlfrontier.spec import RunSpec, parse
from rlfrontier.validation import BadInput
from tests.unit.test_replay import make_episode

GAMMA = 0.9
DISCRETE_BOX = gym.spaces.Box(0, 10, (1,), np.int64)


def _count(**settings) -> bonuses.CountBonus:
    return bonuses.build({"type": "count", **settings}, observation_space=DISCRETE_BOX, seed=0)


def _columns(next_obs) -> dict[str, np.ndarray]:
    next_obs = np.asarray(next_obs, dtype=np.int64).reshape(-1, 1)
    return {OBS: next_obs - 1, NEXT_OBS: next_obs, REWARDS: np.zeros(len(next_obs), np.float32)}


def test_counts_and_bonuses_match_hand_computed_values():
    bonus = _count(beta=0.5)
    assert bonus.hash == bonuses.EXACT  # integer observations: exact counts
    stored = bonus.observe(_columns([1, 2, 2, 3, 3, 3]))
    np.testing.assert_array_equal(bonus.visits(np.array([[1], [2], [3], [4]])), [1, 2, 3, 0])
    # Each stored transition's bonus: beta / sqrt(n(s')), read at replay time.
    np.testing.assert_allclose(bonus.intrinsic(stored), 0.5 / np.sqrt([1, 2, 2, 3, 3, 3]), rtol=1e-6)
    bonus.observe(_columns([1, 1, 1]))  # the cell of s' = 1 is now visited 4 times
    np.testing.assert_allclose(bonus.intrinsic(stored)[0], 0.5 / 2, rtol=1e-6)
    # Transitions the bonus never stored a cell for are hashed on the spot; an unseen cell counts as 1.
    np.testing.assert_allclose(bonus.intrinsic(_columns([3, 9])), [0.5 / np.sqrt(3), 0.5], rtol=1e-6)
    assert bonus.metrics() == {bonuses.CELLS: 3.0}


def test_auto_hash_is_exact_for_discrete_grid_for_small_bounded_boxes_and_simhash_for_the_rest():
    auto = {"type": "count"}
    assert bonuses.build(auto, observation_space=gym.spaces.Discrete(4)).hash == bonuses.EXACT
    assert bonuses.build(auto, observation_space=DISCRETE_BOX).hash == bonuses.EXACT
    assert bonuses.build(auto, observation_space=gym.spaces.Box(-1, 1, (4,), np.float32)).hash == bonuses.GRID
    assert bonuses.build(auto, observation_space=gym.spaces.Box(-1, 1, (5,), np.float32)).hash == bonuses.SIMHASH
    unbounded = gym.spaces.Box(np.array([-1, -np.inf], np.float32), np.array([1, np.inf], np.float32))
    assert bonuses.build(auto, observation_space=unbounded).hash == bonuses.SIMHASH
    with pytest.raises(ValueError, match="hash='grid' needs observations in a Box with finite bounds"):
        bonuses.build({**auto, "hash": "grid"}, observation_space=unbounded)
    assert bonuses.build({**auto, "hash": "exact"}, observation_space=gym.spaces.Box(-1, 1, (4,))).hash == "exact"


def test_simhash_maps_nearby_observations_to_one_cell_more_often_than_far_ones():
    bonus = bonuses.build({"type": "count", "hash": "simhash", "bits": 16}, seed=3)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2000, 8)).astype(np.float32)
    near = base + 0.01 * rng.standard_normal(base.shape).astype(np.float32)
    far = rng.standard_normal(base.shape).astype(np.float32)
    codes = bonus.codes(base)
    same_near = np.mean(np.all(codes == bonus.codes(near), axis=1))
    same_far = np.mean(np.all(codes == bonus.codes(far), axis=1))
    # Each bit flips with probability angle / pi: ~0.3% per bit for this noise, ~50% for an
    # independent point, so ~95% of near pairs share all 16 bits and ~0.002% of far pairs.
    assert same_near > 0.85
    assert same_far < 0.01


def test_simhash_projection_follows_the_seed():
    obs = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    a, b, c = (bonuses.build({"type": "count", "hash": "simhash"}, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.codes(obs), b.codes(obs))
    assert not np.array_equal(a.codes(obs), c.codes(obs))


def test_state_round_trips_and_refuses_another_hash():
    bonus = bonuses.build({"type": "count", "hash": "simhash", "bits": 8}, seed=0)
    obs = np.random.default_rng(2).standard_normal((300, 3)).astype(np.float32)
    bonus.observe({NEXT_OBS: obs})
    restored = bonuses.build({"type": "count", "hash": "simhash", "bits": 8}, seed=99)  # another seed: state wins
    restored.set_state(bonus.get_state())
    np.testing.assert_array_equal(restored.visits(obs), bonus.visits(obs))
    assert restored.metrics() == bonus.metrics()
    with pytest.raises(ValueError, match="saved with hash='simhash', bits=8"):
        bonuses.build({"type": "count", "hash": "simhash", "bits": 16}).set_state(bonus.get_state())


def test_the_hook_adds_the_bonus_after_the_transform_and_the_fold_sums_each_steps_bonus():
    # One episode, observations 0..5 (s' of step t is t + 1), rewards 1..5, terminated, n = 3.
    episode = make_episode([1.0, 2.0, 3.0, 4.0, 5.0], terminated=True)
    hook = rewards.ReplayRewardHook(rewards.build({"type": "affine", "scale": 2}),
                                    bonuses.build({"type": "count", "beta": 1.0, "hash": "exact"}))
    columns = transitions_from_episodes([episode])
    columns.update(hook.on_add(columns))
    hook.bonus.observe({NEXT_OBS: np.full((2, 1), 3.0, np.float32)})  # s' = 3 seen twice more
    buffer = TransitionReplayBuffer(capacity=100, n_step=3, gamma=GAMMA, seed=0)
    buffer.add(columns)
    folded = buffer.fold(np.arange(5), reward_hook=hook)
    visits = np.array([1, 1, 3, 1, 1])  # of s' = 1..5
    r = 2 * np.arange(1.0, 6.0) + 1.0 / np.sqrt(visits)
    expected = [r[t] + GAMMA * r[t + 1] + GAMMA**2 * r[t + 2] for t in range(3)] + [r[3] + GAMMA * r[4], r[4]]
    np.testing.assert_allclose(folded[REWARDS], expected, rtol=1e-6)
    inside = [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 4]  # steps inside the windows
    assert hook.intrinsic_mean == pytest.approx(np.mean(1.0 / np.sqrt(visits[inside])))
    assert hook.transformed_mean - 2 * hook.extrinsic_mean == pytest.approx(hook.intrinsic_mean)
    metrics = MetricsLogger()
    hook.log(metrics)
    assert metrics.peek((bonuses.RESULTS, bonuses.INTRINSIC_MEAN)) == pytest.approx(hook.intrinsic_mean)
    assert metrics.peek((bonuses.RESULTS, bonuses.CELLS)) == 5


def test_no_bonus_and_no_transform_is_no_hook():
    class Config:
        seed = 0
        bonus = None
        reward_transform = None

    assert rewards.replay_hook(Config()) is None
    Config.bonus = {"type": "count"}
    hook = rewards.replay_hook(Config(), observation_space=gym.spaces.Discrete(3))
    assert hook.transform is None and hook.bonus.hash == bonuses.EXACT


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "rnd2"}, "bonus type 'rnd2' is unknown: choose one of count"),
        ({"beta": 1}, "bonus type None is unknown"),
        ("count", "bonus must be a mapping with a 'type', got 'count'"),
        ({"type": "count", "betta": 1}, "bonus count has no setting 'betta': it takes beta, hash, bits, bins"),
        ({"type": "count", "beta": 0}, "bonus count beta=0 must be a positive number"),
        ({"type": "count", "bits": 2000}, "bonus count bits=2000 must be an integer in [1, 1024]"),
        ({"type": "count", "hash": "md5"}, "bonus count hash='md5' is unknown"),
        ({"type": "count", "seed": 3}, "bonus count has no setting 'seed'"),
    ],
)
def test_a_bad_bonus_names_the_bad_part(spec, message):
    with pytest.raises(ValueError) as caught:
        bonuses.build(spec)
    assert str(caught.value).startswith(message)


def test_configs_carry_the_field_and_validate_it():
    from rlfrontier.algorithms.boot_dqn import BootDQNConfig
    from rlfrontier.algorithms.soft_q import SoftQConfig

    for config_class in (SoftQConfig, BootDQNConfig):
        config = config_class().environment("CartPole-v1").training(bonus={"type": "count", "beta": 0.2})
        assert config.bonus == {"type": "count", "beta": 0.2}
        config.validate()
        config.training(bonus={"type": "count", "beta": -1})
        with pytest.raises(ValueError, match="beta=-1"):
            config.validate()


def test_a_tune_files_bonus_section_is_the_config_field():
    spec = parse(RunSpec, {"algo": "soft_q", "env": "CartPole-v1", "stop": {"iterations": 1}, "bonus": {"type": "count", "hash": "exact"},
                           "search_space": {"bonus.beta": {"loguniform": [0.01, 1.0]}}, "num_samples": 2})
    assert spec.config == {"bonus": {"type": "count", "hash": "exact"}}
    with pytest.raises(BadInput, match="bonus"):
        parse(RunSpec, {"algo": "soft_q", "env": "CartPole-v1", "stop": {"iterations": 1}, "bonus": {"type": "count"},
                        "config": {"bonus.beta": 0.3}})


def test_a_searched_bonus_field_may_not_also_be_fixed():
    with pytest.raises(BadInput, match="bonus.beta"):
        parse(RunSpec, {"algo": "soft_q", "env": "CartPole-v1", "stop": {"iterations": 1}, "bonus": {"type": "count", "beta": 0.1},
                        "search_space": {"bonus.beta": {"loguniform": [0.01, 1.0]}}})


def test_restored_counts_rebind_the_cells_stored_in_replay():
    # A running Algorithm restored from another run's state (a PBT exploit) keeps its buffer:
    # the cell ids stored there must point into the restored table.
    obs = np.array([[5], [6], [7], [7]], dtype=np.int64)
    live = _count(beta=1.0)
    columns = {OBS: obs - 1, NEXT_OBS: obs, REWARDS: np.zeros(4, np.float32)}
    columns.update(live.observe(columns))
    buffer = TransitionReplayBuffer(capacity=10, n_step=1, gamma=GAMMA, seed=0)
    buffer.add(columns)
    other = _count(beta=1.0)
    other.observe(_columns([7, 9, 9, 9, 6]))  # another table: 7 -> id 0, 9 -> 1, 6 -> 2
    live.set_state(other.get_state())
    live.rebind(buffer)
    hook = rewards.ReplayRewardHook(None, live)
    replayed = buffer.fold(np.arange(4), reward_hook=hook)[REWARDS]
    np.testing.assert_allclose(replayed, 1.0 / np.sqrt([1, 1, 1, 1]), rtol=1e-6)  # 5: unseen (read as 1); 6, 7: once
    np.testing.assert_array_equal(live.visits(np.array([[5], [6], [7], [9]])), [0, 1, 1, 3])


def test_grid_cells_are_equal_bins_between_the_bounds():
    space = gym.spaces.Box(np.array([-1.2, -0.07], np.float32), np.array([0.6, 0.07], np.float32))
    bonus = bonuses.build({"type": "count", "hash": "grid", "bins": 4}, observation_space=space)
    # Bins of width 0.45 in position and 0.035 in velocity; the bounds themselves fall in the end bins.
    obs = np.array([[-1.2, -0.07], [-0.76, -0.036], [-0.74, -0.034], [0.6, 0.07], [0.59, 0.069], [9.0, 0.0]])
    cells = bonus.cells(obs, add=True)
    assert cells[0] == cells[1]  # same bins (0, 0)
    assert cells[2] != cells[1]  # (1, 1)
    assert cells[3] == cells[4]  # (3, 3)
    assert cells[5] not in cells[:5]  # clipped into the last position bin, middle velocity: (3, 2)
    assert bonus.metrics() == {bonuses.CELLS: 4.0}
    # The state keeps the grid; another number of bins cannot take it.
    restored = bonuses.build({"type": "count", "hash": "grid", "bins": 4}, observation_space=space)
    restored.set_state(bonus.get_state())
    np.testing.assert_array_equal(restored.visits(obs), bonus.visits(obs))
    with pytest.raises(ValueError, match="saved with hash='grid', bins=4; this run has hash='grid', bins=8"):
        bonuses.build({"type": "count", "hash": "grid", "bins": 8}, observation_space=space).set_state(
            bonus.get_state())


def test_a_grid_state_is_refused_by_a_grid_over_other_bounds_and_nan_has_its_own_bin():
    space = gym.spaces.Box(np.array([-1.2, -0.07], np.float32), np.array([0.6, 0.07], np.float32))
    bonus = bonuses.build({"type": "count", "hash": "grid", "bins": 4}, observation_space=space)
    cells = bonus.cells(np.array([[np.nan, 0.0], [-1.2, 0.0], [np.nan, 0.0]]), add=True)
    assert cells[0] == cells[2] != cells[1]
    other = bonuses.build({"type": "count", "hash": "grid", "bins": 4},
                          observation_space=gym.spaces.Box(-10, 10, (2,), np.float32))
    with pytest.raises(ValueError, match="saved with a grid over"):
        other.set_state(bonus.get_state())
