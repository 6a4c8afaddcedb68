"""benchmarks/pearl.py without training: the bar, the flags, the command it runs, reading a run's meta-tests back
(MLflow's metric history, Tune's result.json, the JSON line) into points, and the report.

The benchmark's claim rests on these: the command is the README's, the metric names are the ones PEARL's
meta-test logs, and the bar is the README's restatement of issue 10's (at k = 2, at least 0.7 of what ideal
posterior sampling reaches there, and above k = 0).
"""

from __future__ import annotations

import ast
import json
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402
import pearl  # noqa: E402
from harness import cli  # noqa: E402

from rlfrontier import meta_test  # noqa: E402

README_COMMAND = ("rlfrontier train pearl --env rlfrontier/SparsePointNav-v0 --seed 0 --stop-iters 100 "
                  "--eval-interval 5 --set critic_reward=dense_reward context_batch_size=512 meta_batch_size=8 "
                  "num_train_steps_per_iteration=1000 context_episodes=4 lr=0.001 held_out_tasks=100")
IDEAL = [0.130, 0.257, 0.376, 0.490, 0.595]  # README: ideal posterior sampling at k = 0..4
KEYS = pearl.keys(4)

# The metric names ---------------------------------------------------------------------------------------------------


def test_the_keys_are_the_names_pearls_meta_test_logs():
    """algorithms/pearl/pearl.py's constants, read from its source (importing it would import Ray)."""
    tree = ast.parse((ROOT / "algorithms" / "pearl" / "pearl.py").read_text())
    names = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.BinOp) and isinstance(node.value.left, ast.Name)
                and node.value.left.id == "HELD_OUT" and isinstance(node.value.right, ast.Constant)):
            names[node.targets[0].id] = meta_test.HELD_OUT + node.value.right.value
    for name in ("GOAL_REACHED_K", "POSTERIOR_SAMPLING_REACHED_K", "REVEALED_GOAL_REACHED", "REVEALED_RETURN_MEAN"):
        assert getattr(pearl, name) == names[name], name
    assert KEYS["reached_k2"] == "metrics/held_out_goal_reached_k2"
    assert KEYS["ideal_k4"] == "metrics/held_out_posterior_sampling_reached_k4"
    assert KEYS["return_k0"] == "metrics/held_out_return_k0"
    assert (KEYS["revealed_reached"], KEYS["revealed_return"], KEYS["task_blind"], KEYS["oracle"]) == (
        "metrics/held_out_revealed_goal_reached", "metrics/held_out_revealed_return_mean",
        "metrics/held_out_task_blind_return_mean", "metrics/held_out_oracle_return_mean")
    assert len(KEYS) == 3 * 5 + 4


def test_held_out_tasks_and_context_episodes_are_pearl_config_fields():
    source = (ROOT / "algorithms" / "pearl" / "pearl.py").read_text()
    for name in pearl.config(context_episodes=4, held_out=100, smoke=True):
        assert f"self.{name} = " in source, name


# The bar ------------------------------------------------------------------------------------------------------------


def test_the_bar_is_70_percent_of_the_ideal_at_k2_and_rising():
    # 0.7 x 0.376 = 0.2632: README's iteration 75 checkpoint (0.09, 0.22, 0.35, ...) held, iteration 100's did not.
    assert pearl.bar([0.09, 0.22, 0.35, 0.37, 0.38], IDEAL)
    assert not pearl.bar([0.07, 0.14, 0.25, 0.25, 0.30], IDEAL)
    assert pearl.short_of([0.07, 0.14, 0.25, 0.25, 0.30], IDEAL) == "no (below 0.7 x ideal)"
    assert pearl.bar([0.0, 0.1, 0.27], IDEAL[:3]) and not pearl.bar([0.0, 0.1, 0.26], IDEAL[:3])
    # Exactly at 0.7 x ideal counts (shares are counts over goals; no ulp decides it).
    assert pearl.bar([0.0, 0.0, 0.21], [0.1, 0.2, 0.3]) and pearl.bar([0.0, 0.0, 0.28], [0.1, 0.2, 0.4])
    assert not pearl.bar([0.5, 0.5, 0.35], IDEAL, min_share=0.95) and pearl.bar([0.0, 0.5, 0.36], IDEAL, 0.95)
    assert pearl.short_of([0.09, 0.22, 0.35], IDEAL) == "yes"


def test_the_bar_needs_the_curve_to_rise_from_k0_to_k2():
    assert not pearl.bar([0.30, 0.30, 0.30], IDEAL)  # above 0.7 x ideal but flat
    assert not pearl.bar([0.40, 0.35, 0.30], IDEAL)
    assert pearl.short_of([0.30, 0.30, 0.30], IDEAL) == "no (k = 2 not above k = 0)"
    assert pearl.short_of([0.30, 0.30, 0.20], IDEAL) == "no (below 0.7 x ideal, k = 2 not above k = 0)"
    assert pearl.bar([0.29, 0.30, 0.30], IDEAL)


def test_a_missing_figure_is_not_the_bar():
    assert not pearl.bar([0.0, 0.3], IDEAL)  # no k = 2
    assert not pearl.bar([0.0, 0.3, 0.35], IDEAL[:2])  # no ideal at k = 2
    assert not pearl.bar([None, 0.3, 0.35], IDEAL)
    assert not pearl.bar([0.0, 0.3, None], IDEAL)
    assert not pearl.bar([0.0, 0.3, 0.35], [0.1, 0.2, None])
    assert pearl.short_of([0.0, 0.3, None], IDEAL) == "no (missing)"
    assert not pearl.holds(0.7, {}) and not pearl.holds(0.7, {"reached": [0.0, 0.3, 0.35]})


# Rows into points ---------------------------------------------------------------------------------------------------


def row_at(iteration: int, reached: list[float], **changes) -> dict:
    row = {"env_steps": iteration * 10_000, "iteration": iteration, "wall_s": 50.0 * iteration,
           **{KEYS[f"reached_k{k}"]: v for k, v in enumerate(reached)},
           **{KEYS[f"ideal_k{k}"]: v for k, v in enumerate(IDEAL)},
           **{KEYS[f"return_k{k}"]: 10 * v for k, v in enumerate(reached)},
           KEYS["revealed_reached"]: 0.92, KEYS["revealed_return"]: 12.12, KEYS["task_blind"]: 2.62,
           KEYS["oracle"]: 13.60}
    return {**row, **changes}


def test_a_point_holds_the_shares_the_ideals_and_the_returns():
    p = pearl.meta_point(row_at(75, [0.09, 0.22, 0.35, 0.37, 0.38]), 4)
    assert p == {"env_steps": 750_000, "wall_s": 3750.0, "iteration": 75, "eval_return": 0.35,
                 "reached": [0.09, 0.22, 0.35, 0.37, 0.38], "ideal": IDEAL,
                 "share_of_ideal": pytest.approx(0.35 / 0.376), "returns": pytest.approx([0.9, 2.2, 3.5, 3.7, 3.8]),
                 "revealed_reached": 0.92, "revealed_return": 12.12, "task_blind": 2.62, "oracle": 13.60}
    assert pearl.holds(0.7, p) and not pearl.holds(0.95, p)
    # A point is made of the first context_episodes + 1 k only.
    assert pearl.meta_point(row_at(5, [0.1, 0.2, 0.3, 0.4, 0.5]), 2)["reached"] == [0.1, 0.2, 0.3]


def test_a_row_without_a_share_an_ideal_or_a_wall_clock_is_no_point():
    reached = [0.09, 0.22, 0.35, 0.37, 0.38]
    assert pearl.meta_point(row_at(5, reached, **{KEYS["reached_k3"]: None}), 4) is None
    assert pearl.meta_point(row_at(5, reached, **{KEYS["ideal_k0"]: None}), 4) is None
    assert pearl.meta_point(row_at(5, reached, wall_s=None), 4) is None
    assert pearl.meta_point(row_at(5, reached[:3]), 4) is None  # the run measured k = 0..2 only
    # The references and the revealed episode are reported where missing, not required.
    p = pearl.meta_point(row_at(5, reached, **{KEYS["revealed_reached"]: None, KEYS["oracle"]: None}), 4)
    assert p["revealed_reached"] is None and p["oracle"] is None and p["eval_return"] == 0.35
    assert pearl.meta_point(row_at(5, reached, **{KEYS["ideal_k2"]: 0.0}), 4)["share_of_ideal"] is None


STEPS = 10_000  # env steps an iteration


def shares_at(iteration: int) -> list[float]:
    """A distinct meta-test per evaluated iteration: k = 2's share climbs by 0.01 an iteration."""
    return [0.05, 0.10, 0.01 * iteration, 0.02 * iteration, 0.02 * iteration]


def hand_made_history(iterations: int, interval: int) -> dict[str, dict[int, float]]:
    """What MLflow holds for a run: every iteration's result at step = env steps, the hook's metrics repeated
    after each meta-test until the next one (none before the first)."""
    history: dict[str, dict[int, float]] = {cli.ITERATIONS: {}, cli.WALL_S: {}, **{k: {} for k in KEYS.values()}}
    latest: dict[str, float] = {}
    for i in range(1, iterations + 1):
        step = i * STEPS
        history[cli.ITERATIONS][step] = float(i)
        history[cli.WALL_S][step] = 45.0 * i
        if i % interval == 0 or i == iterations:
            latest = {k: v for k, v in row_at(i, shares_at(i)).items() if k.startswith(pearl.HOOK)}
        for key, value in latest.items():
            history[key][step] = value
    return history


def test_the_iterations_that_ran_a_meta_test_become_points():
    rows = cli.evaluation_rows(hand_made_history(12, 5), list(KEYS.values()), eval_interval=5)
    points = [pearl.meta_point(r, 4) for r in rows]
    assert [(p["iteration"], p["env_steps"], p["wall_s"], p["eval_return"]) for p in points] == [
        (5, 50_000, 225.0, 0.05), (10, 100_000, 450.0, 0.10), (12, 120_000, 540.0, 0.12)]
    assert [pearl.holds(0.7, p) for p in points] == [False, False, False]
    rows = cli.evaluation_rows(hand_made_history(30, 10), list(KEYS.values()), eval_interval=10)
    assert [(r["iteration"], pearl.holds(0.7, pearl.meta_point(r, 4))) for r in rows] == [
        (10, False), (20, False), (30, True)]  # 0.30 >= 0.2632 and above 0.05


def write_tune_results(trial: Path, iterations: int, interval: int) -> None:
    """Tune's result.json: a JSON line per result, the hook's metrics nested under "metrics"."""
    trial.mkdir(parents=True)
    history = hand_made_history(iterations, interval)
    lines = []
    for step, i in history[cli.ITERATIONS].items():
        metrics = {k.removeprefix(pearl.HOOK): history[k][step] for k in KEYS.values() if step in history[k]}
        lines.append(json.dumps({"env_steps": step, "iterations": int(i), "wall_s": history[cli.WALL_S][step],
                                 "training_iteration": int(i), **({"metrics": metrics} if metrics else {})}))
    (trial / cli.TUNE_RESULTS).write_text("\n".join(lines) + "\n")


def test_tunes_result_json_gives_the_same_points(tmp_path):
    write_tune_results(tmp_path / "trial", 7, 3)
    out = {"mlflow_run_id": None, "checkpoint": str(tmp_path / "trial" / "checkpoint_000006")}
    rows, source = cli.evaluations(out, list(KEYS.values()), eval_interval=3, tracking_uri=None)
    assert source == cli.TUNE
    assert [(p["iteration"], p["reached"]) for p in (pearl.meta_point(r, 4) for r in rows)] == [
        (i, shares_at(i)) for i in (3, 6, 7)]


def test_mlflows_metric_history_becomes_points(tmp_path):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("pearl-bench-test")).info.run_id
    client.log_batch(run_id, metrics=[Metric(key, value, 0, step) for key, by_step in hand_made_history(4, 2).items()
                                      for step, value in by_step.items()])
    rows, source = cli.evaluations({"mlflow_run_id": run_id, "checkpoint": None}, list(KEYS.values()),
                                   eval_interval=2, tracking_uri=uri)
    assert source == cli.MLFLOW
    points = [pearl.meta_point(r, 4) for r in rows]
    assert [(p["iteration"], p["reached"], p["ideal"], p["revealed_reached"]) for p in points] == [
        (2, shares_at(2), IDEAL, 0.92), (4, shares_at(4), IDEAL, 0.92)]


def test_the_json_lines_final_meta_test_is_the_last_resort():
    metrics = {k.removeprefix(pearl.HOOK): v for k, v in row_at(2, shares_at(2)).items() if k.startswith("metrics/")}
    out = {"env_steps": 20_000, "iterations": 2, "train_wall_s": 99.5, "metrics": metrics}
    p = pearl.meta_point(pearl.final_row(out, 4), 4)
    assert (p["iteration"], p["env_steps"], p["wall_s"], p["reached"]) == (2, 20_000, 99.5, shares_at(2))
    assert pearl.meta_point(pearl.final_row({"env_steps": 1, "iterations": 1, "train_wall_s": 1.0}, 4), 4) is None


# Flags and the command ----------------------------------------------------------------------------------------------


def test_the_command_is_the_readmes_with_a_seed():
    settings = pearl.config(context_episodes=4, held_out=100)
    argv = pearl.run_argv(iters=100, eval_interval=5, seed=0, settings=settings)
    assert shlex.split(README_COMMAND)[3:] == argv
    args = harness.runner.parser(pearl.BENCHMARK).parse_args([])
    cmd = cli.train_command("pearl", argv, args)
    assert cmd[:4] == [sys.executable, "-m", "rlfrontier", "train"]
    assert cmd[4:] == ["pearl", *argv, "--experiment", "rlfrontier-pearl", "--json", "--quiet"]
    args = harness.runner.parser(pearl.BENCHMARK).parse_args(["--tracking-uri", "sqlite:////tmp/x.db", "--progress"])
    assert cli.train_command("pearl", argv, args)[-5:] == [
        "--experiment", "rlfrontier-pearl", "--json", "--tracking-uri", "sqlite:////tmp/x.db"]


def test_defaults_and_plan():
    args = harness.runner.parser(pearl.BENCHMARK).parse_args([])
    assert (args.seeds, args.iters, args.eval_interval, args.context_episodes, args.held_out, args.smoke) == (
        3, 100, 5, 4, 100, False)
    plan = pearl.plan(args)
    assert plan.settings["command"] == README_COMMAND.replace("--seed 0", "--seed SEED") + (
        " --experiment rlfrontier-pearl --json")
    plan = pearl.plan(harness.runner.parser(pearl.BENCHMARK).parse_args(
        ["--seeds", "2", "--iters", "7", "--eval-interval", "3", "--context-episodes", "6", "--held-out", "20",
         "--lock", "/tmp/lock", "--runs-experiment", "x"]))
    assert list(plan.seeds) == [0, 1] and plan.target == 0.7
    assert [(c.name, c.budget) for c in plan.contenders] == [("pearl", 7)]
    assert plan.settings["command"] == (
        "rlfrontier train pearl --env rlfrontier/SparsePointNav-v0 --seed SEED --stop-iters 7 --eval-interval 3 "
        "--set critic_reward=dense_reward context_batch_size=512 meta_batch_size=8 num_train_steps_per_iteration=1000 "
        "context_episodes=6 lr=0.001 held_out_tasks=20 --experiment x --json")
    # Everything a run's result depends on is in the settings (--resume keeps a run only where they are equal).
    assert plan.settings["config"] == {**pearl.SETTINGS, "context_episodes": 6, "lr": 0.001, "held_out_tasks": 20}
    assert (plan.settings["iters"], plan.settings["eval_interval"], plan.settings["runs_experiment"]) == (7, 3, "x")
    assert plan.criterion({"reached": [0.0, 0.1, 0.27], "ideal": IDEAL})
    assert not plan.criterion({"reached": [0.0, 0.1, 0.26], "ideal": IDEAL})


def test_smoke_lowers_the_work_and_says_so_in_the_settings():
    plan = pearl.plan(harness.runner.parser(pearl.BENCHMARK).parse_args(["--smoke", "--held-out", "4"]))
    assert plan.settings["smoke"] is True
    assert plan.settings["config"]["num_train_steps_per_iteration"] == pearl.SMOKE["num_train_steps_per_iteration"]
    assert "num_train_steps_per_iteration=10 " in plan.settings["command"]
    assert "num_train_tasks=10 " in plan.settings["command"] and "held_out_tasks=4 " in plan.settings["command"]


@pytest.mark.parametrize("flags", [["--seeds", "0"], ["--iters", "-1"], ["--eval-interval", "x"],
                                   ["--eval-interval", "0"], ["--context-episodes", "1"],
                                   ["--context-episodes", "two"], ["--held-out", "0"], ["--seeds", "2.5"],
                                   ["--test-goals", "-1"], ["--test-seed", "0"]])
def test_bad_flags_exit_2_naming_the_flag(flags, capsys):
    with pytest.raises(SystemExit) as exc:
        harness.main(pearl.BENCHMARK, [*flags, "--no-mlflow", "--out", "/nonexistent/never-written"])
    assert exc.value.code == 2
    assert flags[0] in capsys.readouterr().err


# The report --------------------------------------------------------------------------------------------------------


def fake_results() -> dict:
    args = harness.runner.parser(pearl.BENCHMARK).parse_args(["--iters", "10"])
    plan = pearl.plan(args)

    def run(seed: int, curves: list[list[float]]) -> dict:
        points = [pearl.meta_point(row_at(5 * (j + 1), curve), 4) for j, curve in enumerate(curves)]
        first = next((p for p in points if plan.criterion(p)), None)
        return {"contender": "pearl", "group": {}, "seed": seed, "reached": first is not None,
                "steps_to_target": first and first["env_steps"], "wall_s_to_target": first and first["wall_s"],
                "env_steps": 100_000, "env_steps_per_s": 250.0, "setup_s": 12.0, "train_wall_s": 400.0,
                "error": None, "points": points,
                "extra": {"iterations": 10, "trial_train_wall_s": 395.0, "command_wall_s": 430.0,
                          "source": cli.MLFLOW}}

    runs = [run(0, [[0.10, 0.20, 0.30, 0.30, 0.30], [0.10, 0.20, 0.25, 0.30, 0.30]]),  # held, then below
            run(1, [[0.30, 0.30, 0.30, 0.30, 0.30], [0.05, 0.20, 0.35, 0.40, 0.45]]),  # flat, then held
            run(2, [[0.00, 0.05, 0.10, 0.10, 0.10], [0.05, 0.10, 0.20, 0.20, 0.20]]),  # never
            {"contender": "pearl", "group": {}, "seed": 3, "error": "RuntimeError: boom", "points": [], "extra": {}}]
    return {"benchmark": "pearl", "machine": {}, "settings": plan.settings, "seeds": [0, 1, 2, 3],
            "target": plan.target, "contenders": [c.to_dict() for c in plan.contenders], "runs": runs}


def test_report_counts_seeds_at_the_bar_per_meta_test(tmp_path):
    text = pearl.render(fake_results())
    assert "--seed SEED --stop-iters 10 --eval-interval 5" in text and "held_out_tasks=100" in text
    assert "Smoke" not in text
    assert ("(ideal 0.376, so at least 0.263), and above the k = 0 share. At each run's last meta-test (iteration "
            "10): 1/3 seeds at the bar; at any meta-test: 2/3; at every meta-test: 0/3.") in text
    # The harness's table: 2 of 4 reached, at 50,000 and 100,000 env steps; seeds 2 (never) and 3 (failed) count
    # as infinitely slow, so the median is "never".
    assert "| pearl on SparsePointNav-v0 | 2/4 | never (50,000–never) | never (250.0–never) | 250 | 12.0 |" in text
    assert "- pearl on SparsePointNav-v0: s0: 50,000, s1: 100,000, s2: never, s3: error" in text
    # At each meta-test: k of n, median (min–max) of k = 2, the ideal and the bar, mean shares, revealed.
    assert "| 5 | 50,000 | 1/3 | 0.30 (0.10–0.30) | 0.376 | 0.263 | 0.13, 0.18, 0.23, 0.23, 0.23 | 0.92 |" in text
    assert "| 10 | 100,000 | 1/3 | 0.25 (0.20–0.35) | 0.376 | 0.263 |" in text
    assert "| 0 | 5 | 50,000 | 0.10, 0.20, 0.30, 0.30, 0.30 | 0.376 | 0.80 | 0.92 | yes |" in text
    assert "| 0 | 10 | 100,000 | 0.10, 0.20, 0.25, 0.30, 0.30 | 0.376 | 0.66 | 0.92 | no (below 0.7 x ideal) |" in text
    assert "| 1 | 5 | 50,000 | 0.30, 0.30, 0.30, 0.30, 0.30 | 0.376 | 0.80 | 0.92 | no (k = 2 not above k = 0) |" in text
    assert "| 0 | 5 | 1.00, 2.00, 3.00, 3.00, 3.00 | 12.12 | 2.62 | 13.60 |" in text
    assert "| 0 | 10 | 100,000 | 395.0 | 430.0 | 12.0 | 250 | 5 (50,000 env steps) | MLflow metric history |" in text
    assert "| 2 | 10 | 100,000 | 395.0 | 430.0 | 12.0 | 250 | never |" in text
    assert "pearl seed 3 failed: RuntimeError: boom" in text
    assert f"]({pearl.PLOT_K2})" in text and f"]({pearl.PLOT_BY_K})" in text


def test_the_checkpoint_tests_are_evaluate_metrics_on_other_goals(tmp_path, monkeypatch):
    args = harness.runner.parser(pearl.BENCHMARK).parse_args(["--test-goals", "7", "--test-seed", "3"])
    assert pearl.test_overrides(args) == {"held_out_tasks": 7, "held_out_seed": 3, "context_episodes": 4}
    defaults = harness.runner.parser(pearl.BENCHMARK).parse_args([])
    assert (defaults.test_goals, defaults.test_seed) == (500, 1)  # the runs' own meta-tests: held_out_seed 0
    best = tmp_path / "best"
    best.mkdir()
    (best / "rlfrontier.json").write_text(json.dumps({"env_steps": 50_000}))
    calls = []

    def evaluate_metrics(path, overrides, _args):
        calls.append((path, overrides))
        row = row_at(0, [0.1, 0.2, 0.3, 0.3, 0.3])
        return {"metrics": {key.removeprefix(pearl.HOOK): row[key] for key in KEYS.values()}}, 12.0

    monkeypatch.setattr(cli, "evaluate_metrics", evaluate_metrics)
    points = [pearl.meta_point(row_at(5, [0.0] * 5), 4), pearl.meta_point(row_at(10, [0.0] * 5), 4)]
    extra = {"best_checkpoint": str(best), "checkpoint": str(tmp_path / "gone")}
    tests = pearl.checkpoint_tests(extra, points, args)
    # Only the checkpoint that exists is evaluated, with the other goals' settings.
    assert calls == [(str(best), {"held_out_tasks": 7, "held_out_seed": 3, "context_episodes": 4})]
    assert (tests["goals"], tests["seed"]) == (7, 3) and "gone" in tests["last"]["error"]
    # The best checkpoint's iteration is the run's meta-test at its env steps (row_at(5, ...): 50,000).
    assert tests["best"]["iteration"] == 5 and tests["best"]["reached"] == [0.1, 0.2, 0.3, 0.3, 0.3]
    assert tests["best"]["checkpoint"] == str(best) and pearl.holds(0.7, tests["best"])
    # A resumed run is tested once for these settings, and kept either way.
    run = {"seed": 0, "points": points, "extra": dict(extra)}
    assert pearl.tested(args, run) is None and len(calls) == 2 and run["extra"]["tests"]["goals"] == 7
    assert pearl.tested(args, run) is None and len(calls) == 2
    none = harness.runner.parser(pearl.BENCHMARK).parse_args(["--test-goals", "0"])
    assert pearl.tested(none, {"seed": 1, "points": points, "extra": dict(extra)}) is None and len(calls) == 2


def test_the_report_judges_the_bar_on_the_other_goals_too():
    results = fake_results()
    held = pearl.meta_point(row_at(5, [0.10, 0.20, 0.30, 0.30, 0.30]), 4)
    below = pearl.meta_point(row_at(10, [0.10, 0.20, 0.25, 0.30, 0.30]), 4)
    results["runs"][0]["extra"]["tests"] = {"goals": 500, "seed": 1, "best": {**held, "iteration": 5},
                                            "last": {**below, "iteration": 10}}
    results["runs"][1]["extra"]["tests"] = {"goals": 500, "seed": 1, "best": {**held, "iteration": 10},
                                            "last": {"error": "checkpoint '/x' is gone"}}
    text = pearl.render(results)
    assert "On 500 other held-out goals (held_out_seed 1" in text
    assert "seeds at the bar: best checkpoints 2/3; last checkpoints 0/3." in text
    assert "| 0 | best | 5 | 0.10, 0.20, 0.30, 0.30, 0.30 | 0.376 | 0.80 | 0.92 | yes |" in text
    assert "| 0 | last | 10 | 0.10, 0.20, 0.25, 0.30, 0.30 | 0.376 | 0.66 | 0.92 | no (below 0.7 x ideal) |" in text
    assert "| 1 | last | — | — | — | — | — | no test: checkpoint '/x' is gone |" in text
    assert "| 2 | best | — | — | — | — | — | no test: not tested |" in text
    # Without any test the section is left out.
    assert "other held-out goals" not in pearl.render(fake_results())


def test_plots_are_written(tmp_path):
    results = fake_results()
    for name, writer in pearl.BENCHMARK.plots.items():
        assert writer(results, tmp_path / name), name
        assert (tmp_path / name).stat().st_size > 0
    assert not pearl.plot_k2({**results, "runs": []}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_from_json_re_renders_without_training(tmp_path):
    results = fake_results()
    results["settings"] = {**results["settings"], "smoke": True}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert harness.main(pearl.BENCHMARK, ["--from-json", str(tmp_path / "results.json")]) == 0
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# PEARL on SparsePointNav-v0") and "these numbers measure nothing" in text
    assert (tmp_path / pearl.PLOT_K2).is_file() and (tmp_path / pearl.PLOT_BY_K).is_file()
