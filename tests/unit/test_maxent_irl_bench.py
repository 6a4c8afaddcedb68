"""benchmarks/maxent_irl.py without Ray or training: the .npz round trip with the imitation side script, the
skip without its venv, the measures every contender is judged by, and the report; and, where the imitation venv
exists, the side script itself on a 3-state MDP."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import maxent_irl as bench  # noqa: E402
from harness import runner  # noqa: E402

from rlfrontier import tabular  # noqa: E402


def side_module():
    """benchmarks/imitation_side/mce_irl.py as a module (its file helpers need only numpy)."""
    spec = importlib.util.spec_from_file_location("imitation_side_mce_irl", bench.SIDE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def three_state_mdp(horizon: int = 4) -> tabular.TabularMDP:
    """States 0, 1, 2 on a ring; action 0 stays, action 1 moves on; reward 1 in state 2 only."""
    transitions = np.zeros((3, 2, 3))
    for s in range(3):
        transitions[s, 0, s] = 1.0
        transitions[s, 1, (s + 1) % 3] = 1.0
    return tabular.TabularMDP(transitions=transitions, features=np.eye(3), reward=np.array([0.0, 0.0, 1.0]),
                              initial=np.full(3, 1 / 3), horizon=horizon)


def grid() -> tabular.TabularMDP:
    return bench.world_mdp(bench.WORLDS["gridworld_exact"])


def expert_states(mdp: tabular.TabularMDP, episodes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Episodes of the optimal policy: states [N, T + 1] and actions [N, T]."""
    rng = np.random.default_rng(seed)
    policy = tabular.optimal_policy(mdp)
    states, actions = [], []
    for _ in range(episodes):
        s = int(rng.choice(mdp.num_states, p=mdp.initial))
        seq, acts = [s], []
        for t in range(mdp.horizon):
            a = int(policy[t, s])
            s = int(rng.choice(mdp.num_states, p=mdp.transitions[s, a]))
            seq.append(s)
            acts.append(a)
        states.append(seq)
        actions.append(acts)
    return np.array(states), np.array(actions)


# The .npz round trip -------------------------------------------------------------------------------------------


def test_side_input_round_trips_with_demonstrations(tmp_path):
    mdp = three_state_mdp()
    states, actions = expert_states(mdp, 5)
    path = tmp_path / "in.npz"
    bench.write_side_input(path, mdp, config={"reward_model": "mlp", "lr": 0.02, "max_iter": 7},
                           demo_states=states, demo_actions=actions)
    got = side_module().read_input(path)
    np.testing.assert_array_equal(got["transitions"], mdp.transitions)
    np.testing.assert_array_equal(got["features"], mdp.features)
    np.testing.assert_array_equal(got["initial"], mdp.initial)
    np.testing.assert_array_equal(got["demo_states"], states)
    np.testing.assert_array_equal(got["demo_actions"], actions)
    assert got["occupancy"] is None
    assert got["horizon"] == mdp.horizon and got["discount"] == bench.GAMMA
    assert got["config"]["reward_model"] == "mlp" and got["config"]["lr"] == 0.02 and got["config"]["max_iter"] == 7
    assert got["config"]["hidden_sizes"] == [32, 32]  # the side's default where the driver gives none


def test_side_input_round_trips_with_an_occupancy_and_refuses_both_or_neither(tmp_path):
    mdp = three_state_mdp()
    occupancy = bench.exact_expert_occupancy_imitation(mdp)
    path = tmp_path / "in.npz"
    bench.write_side_input(path, mdp, config={}, occupancy=occupancy)
    got = side_module().read_input(path)
    np.testing.assert_allclose(got["occupancy"], occupancy)
    assert got["demo_states"] is None
    with pytest.raises(ValueError, match="one of them"):
        bench.write_side_input(path, mdp, config={})
    with pytest.raises(ValueError, match="one of them"):
        bench.write_side_input(path, mdp, config={}, occupancy=occupancy, demo_states=np.zeros((1, 5), int))


def test_side_input_refuses_episodes_of_another_length_and_unknown_settings(tmp_path):
    mdp = three_state_mdp()
    side = side_module()
    path = tmp_path / "in.npz"
    bench.write_side_input(path, mdp, config={}, demo_states=np.zeros((2, mdp.horizon), dtype=int))
    with pytest.raises(ValueError, match="horizon"):
        side.read_input(path)
    bench.write_side_input(path, mdp, config={"learning_rate": 1.0}, demo_states=np.zeros((2, mdp.horizon + 1), int))
    with pytest.raises(ValueError, match="learning_rate"):
        side.read_input(path)


def test_side_output_round_trips(tmp_path):
    path = tmp_path / "out.npz"
    info = {"iterations": 40, "train_s": 0.5, "import_s": 1.0, "setup_s": 0.1, "demo_occupancy_sum": 5.0,
            "versions": {"imitation": "1.0.1"}}
    snaps = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.5, 3.0])]
    side_module().write_output(path, reward=snaps[-1], snapshot_iters=[20, 40], snapshot_rewards=snaps,
                               snapshot_wall_s=[0.2, 0.5], info=info)
    got = bench.read_side_output(path)
    np.testing.assert_array_equal(got["reward"], snaps[-1])
    np.testing.assert_array_equal(got["snapshot_rewards"], np.stack(snaps))
    assert got["snapshot_iters"] == [20, 40] and got["snapshot_wall_s"] == [0.2, 0.5]
    assert got["info"] == info


# The skip without the venv ---------------------------------------------------------------------------------------


def test_imitation_contenders_are_skipped_without_the_venv_naming_make_imitation_env(tmp_path):
    missing = tmp_path / "no-venv"
    why = bench.imitation_missing(missing)
    assert why is not None and "make imitation-env" in why and str(missing) in why
    args = runner.parser(bench.BENCHMARK).parse_args(["--imitation-venv", str(missing), "--no-mlflow",
                                                      "--worlds", "gridworld_50"])
    plan = bench.plan(args)
    results: dict = {"skipped": {}}
    available = runner.available_contenders(plan, results)
    assert [c.name for c in available] == ["ours_linear", "ours_mlp"]
    assert set(results["skipped"]) == {"imitation_linear", "imitation_mlp"}
    assert all("make imitation-env" in why for why in results["skipped"].values())


# Measures -----------------------------------------------------------------------------------------------------


def test_the_true_reward_has_no_value_difference_and_full_correlation():
    mdp = grid()
    m = bench.reward_measures(mdp, mdp.reward)
    assert m["evd"] == pytest.approx(0.0, abs=1e-12) and m["evd_pct"] == pytest.approx(0.0, abs=1e-10)
    assert m["correlation"] == pytest.approx(1.0)
    assert m["optimal_value"] > 0
    # A positive affine transform changes neither policy nor correlation.
    same = bench.reward_measures(mdp, 3.0 * mdp.reward - 1.0)
    assert same["evd"] == pytest.approx(0.0, abs=1e-12) and same["correlation"] == pytest.approx(1.0)


def test_a_reversed_reward_loses_value_and_a_constant_one_has_no_correlation():
    mdp = grid()
    reversed_ = bench.reward_measures(mdp, -mdp.reward)
    assert reversed_["evd_pct"] > 50 and reversed_["correlation"] == pytest.approx(-1.0)
    evd, best = tabular.expected_value_difference(mdp, -mdp.reward)
    assert reversed_["evd"] == pytest.approx(evd) and reversed_["evd_pct"] == pytest.approx(100 * evd / best)
    constant = bench.reward_measures(mdp, np.zeros(mdp.num_states))
    assert constant["correlation"] is None  # Pearson is undefined; JSON gets null, not NaN
    with pytest.raises(ValueError, match="shape"):
        bench.reward_measures(mdp, np.zeros(3))


def test_imitations_exact_occupancy_adds_the_final_state_to_ours():
    """imitation counts t = 0 .. T (T + 1 states), ours t = 0 .. T - 1: the difference is d_T, a distribution."""
    mdp = grid()
    policy = tabular.one_hot_policy(tabular.optimal_policy(mdp), mdp.num_actions)
    marginals = bench.state_marginals(mdp, policy)
    assert marginals.shape == (mdp.horizon + 1, mdp.num_states)
    np.testing.assert_allclose(marginals.sum(axis=1), 1.0)
    ours = tabular.visitation(mdp.transitions, policy, mdp.initial, horizon=mdp.horizon)
    theirs = bench.exact_expert_occupancy_imitation(mdp)
    np.testing.assert_allclose(theirs, ours + marginals[-1])
    assert theirs.sum() == pytest.approx(mdp.horizon + 1)


def test_imitation_config_matches_our_step_size_and_prior():
    args = runner.parser(bench.BENCHMARK).parse_args([])
    world = bench.WORLDS["objectworld_64"]
    cfg = bench.imitation_config("imitation_mlp", world, args, seed=5, horizon=32, budget=300)
    assert cfg["reward_model"] == "mlp" and cfg["lr"] == world.lr and cfg["max_iter"] == 300
    assert cfg["weight_decay"] == pytest.approx(2 * 0.03 * 32) and cfg["hidden_sizes"] == [32, 32]
    assert set(cfg) <= set(side_module().CONFIG_DEFAULTS)
    args = runner.parser(bench.BENCHMARK).parse_args(["--imitation-prior", "none"])
    assert bench.imitation_config("imitation_linear", world, args, seed=5, horizon=32, budget=300)["weight_decay"] == 0


def test_the_report_has_a_table_per_world_and_the_deep_against_linear_count():
    def run(contender, seed, evd_pct, corr):
        return {"contender": contender, "group": {"world": "objectworld_64"}, "seed": seed, "error": None,
                "env_steps": 300, "train_wall_s": 3.0, "setup_s": 1.0,
                "extra": {"evd": evd_pct / 10, "evd_pct": evd_pct, "correlation": corr, "updates": 300,
                          "demo_set": 5 + seed},
                "points": [{"env_steps": 300, "wall_s": 3.0, "eval_return": None, "evd_pct": evd_pct}]}

    results = {
        "benchmark": "maxent_irl", "machine": {}, "runs": [
            run("ours_linear", 0, 6.0, 0.2), run("ours_mlp", 0, 2.0, 0.5),
            run("ours_linear", 1, 5.0, 0.2), run("ours_mlp", 1, 7.0, 0.3),
            run("imitation_linear", 0, 6.5, 0.2)],
        "settings": {"updates": 300, "reward_l2": 0.03, "imitation_prior": "matched", "hidden_sizes": [32, 32],
                     "gamma": 1.0, "demo_sets": [5, 6], "contenders": list(bench.CONTENDERS),
                     "worlds": {"objectworld_64": {"env": "rlfrontier/ObjectWorld-v0", "label": "ObjectWorld",
                                                   "lr": 0.01, "episodes": 64, "env_config": {}}}},
        "skipped": {"imitation_mlp": "no venv: make imitation-env"},
    }
    text = bench.render(results)
    assert "## ObjectWorld" in text
    assert "| maxent_irl, linear reward (ours) | 2 | 5.50 (5.00–6.00) |" in text
    assert "ours: MLP below linear on 1 of 2 seeds" in text
    assert "s0 (set 5): 6.50% / 0.200" in text
    assert "imitation_mlp skipped: no venv: make imitation-env" in text
    json.dumps(results)  # what the harness writes


# The side script itself, in the imitation venv ------------------------------------------------------------------


@pytest.mark.skipif(not bench.venv_python(bench.DEFAULT_IMITATION_VENV).is_file(),
                    reason="no imitation venv (make imitation-env)")
def test_the_side_script_learns_a_reward_correlated_with_the_true_one_on_three_states(tmp_path):
    mdp = three_state_mdp()
    states, actions = expert_states(mdp, 30)
    config = {"reward_model": "linear", "lr": 0.1, "max_iter": 60, "snapshot_every": 20, "weight_decay": 0.1}
    bench.write_side_input(tmp_path / "in.npz", mdp, config=config, demo_states=states, demo_actions=actions)
    out, _ = bench.run_side(bench.DEFAULT_IMITATION_VENV, tmp_path / "in.npz", tmp_path / "out.npz", timeout=120)
    assert out["info"]["iterations"] <= 60 and out["snapshot_iters"][-1] == out["info"]["iterations"]
    assert out["info"]["demo_occupancy_sum"] == pytest.approx(mdp.horizon + 1)  # imitation's T + 1 states
    assert tabular.pearson(out["reward"], mdp.reward) > 0.5
    assert bench.reward_measures(mdp, out["reward"])["evd"] == pytest.approx(0.0, abs=1e-9)
