"""benchmarks/maml.py without training: the gap arithmetic, the flags, the command it runs, reading a run's
meta-tests back (MLflow's metric history, Tune's result.json, the JSON line) and the report.

The benchmark's claim rests on these: the command is the README's, only the
iterations that ran a meta-test are read (RLlib repeats the last one in every
later result), and the gap closed is (after - before) / (oracle - before).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import harness  # noqa: E402
import maml  # noqa: E402
from harness import cli  # noqa: E402

README_COMMAND = ("rlfrontier train maml --env rlfrontier/PointNav-v0 --stop-iters 100 --eval-interval 20 "
                  "--num-envs-per-env-runner 10 --set meta_batch_size=10 --set pre_adaptation_episodes=10 "
                  "--set post_adaptation_episodes=10")
K0, K1, BLIND, ORACLE = (maml.KEYS[k] for k in ("before", "after", "task_blind", "oracle"))

# Arithmetic ---------------------------------------------------------------------------------------------------------


def test_gap_closed_is_the_share_of_the_way_from_before_to_the_oracle():
    assert maml.gap(before=-40.0, after=-20.0, oracle=0.0) == pytest.approx(0.5)
    assert maml.gap(before=-41.0, after=-20.75, oracle=-0.5) == pytest.approx(0.5)
    assert maml.gap(before=-40.0, after=-40.0, oracle=-0.5) == 0.0
    assert maml.gap(before=-40.0, after=-0.5, oracle=-0.5) == pytest.approx(1.0)
    assert maml.gap(before=-30.0, after=-40.0, oracle=0.0) == pytest.approx(-1 / 3)  # worse after the step
    assert maml.gap(before=-0.5, after=-0.4, oracle=-0.5) is None  # no gap to close
    assert maml.gap(before=0.0, after=-1.0, oracle=-0.5) is None


def test_a_point_holds_the_four_returns_and_the_gap_and_the_criterion_reads_it():
    row = {"env_steps": 400_000, "iteration": 20, "wall_s": 63.7, K0: -39.2, K1: -20.1, BLIND: -40.8, ORACLE: -0.55}
    p = maml.meta_point(row)
    assert p == {"env_steps": 400_000, "wall_s": 63.7, "iteration": 20, "eval_return": -20.1, "before": -39.2,
                 "after": -20.1, "task_blind": -40.8, "oracle": -0.55,
                 "gap_closed": pytest.approx((-20.1 + 39.2) / (-0.55 + 39.2))}
    assert not maml.closes(0.5, p) and maml.closes(0.49, p)
    assert not maml.closes(0.5, {**p, "gap_closed": None})
    assert maml.meta_point({**row, K1: None}) is None
    assert maml.meta_point({**row, "wall_s": None}) is None


# Flags and the command ----------------------------------------------------------------------------------------------


def test_the_command_is_the_readmes_with_a_seed():
    argv = maml.run_argv(iters=100, eval_interval=20, seed=2)
    assert shlex.split(README_COMMAND)[3:] + ["--seed", "2"] == argv
    args = harness.runner.parser(maml.BENCHMARK).parse_args([])
    cmd = cli.train_command("maml", argv, args)
    assert cmd[:4] == [sys.executable, "-m", "rlfrontier", "train"]
    assert cmd[4:] == ["maml", *argv, "--experiment", "rlfrontier-maml", "--json", "--quiet"]


def test_defaults_and_plan():
    args = harness.runner.parser(maml.BENCHMARK).parse_args([])
    assert (args.seeds, args.iters, args.eval_interval, args.min_gap) == (3, 100, 20, 0.5)
    plan = maml.plan(harness.runner.parser(maml.BENCHMARK).parse_args(
        ["--seeds", "2", "--iters", "7", "--eval-interval", "3", "--min-gap", "0.6"]))
    assert list(plan.seeds) == [0, 1] and plan.target == 0.6
    assert [(c.name, c.budget) for c in plan.contenders] == [("maml", 7)]
    assert plan.settings["command"].startswith("rlfrontier train maml --env rlfrontier/PointNav-v0 --stop-iters 7 "
                                               "--eval-interval 3 ")
    assert plan.criterion({"gap_closed": 0.6}) and not plan.criterion({"gap_closed": 0.59})


@pytest.mark.parametrize("flags", [["--seeds", "0"], ["--iters", "-1"], ["--eval-interval", "x"],
                                   ["--eval-interval", "0"], ["--min-gap", "0"], ["--min-gap", "1.5"],
                                   ["--min-gap", "half"], ["--seeds", "2.5"]])
def test_bad_flags_exit_2_naming_the_flag(flags, capsys):
    with pytest.raises(SystemExit) as exc:
        harness.main(maml.BENCHMARK, [*flags, "--no-mlflow", "--out", "/nonexistent/never-written"])
    assert exc.value.code == 2
    assert flags[0] in capsys.readouterr().err


# Reading the meta-tests back ----------------------------------------------------------------------------------------

STEPS = 20_000  # env steps an iteration


def meta_test_at(iteration: int) -> dict[str, float]:
    """A distinct meta-test per evaluated iteration: before -40 - i, after -20 + i/10."""
    return {K0: -40.0 - iteration, K1: -20.0 + iteration / 10, BLIND: -40.8, ORACLE: -0.55}


def hand_made_history(iterations: int, interval: int) -> dict[str, dict[int, float]]:
    """What MLflow holds for a run: every iteration's result at step = env steps, the hook's metrics repeated
    after each meta-test until the next one (none before the first)."""
    history: dict[str, dict[int, float]] = {cli.ITERATIONS: {}, cli.WALL_S: {}, **{k: {} for k in maml.KEYS.values()}}
    latest: dict[str, float] = {}
    for i in range(1, iterations + 1):
        step = i * STEPS
        history[cli.ITERATIONS][step] = float(i)
        history[cli.WALL_S][step] = 3.0 * i
        if i % interval == 0 or i == iterations:
            latest = meta_test_at(i)
        for key, value in latest.items():
            history[key][step] = value
    return history


def test_only_the_iterations_that_ran_a_meta_test_are_read_and_the_last_always():
    rows = cli.evaluation_rows(hand_made_history(9, 4), list(maml.KEYS.values()), eval_interval=4)
    assert [(r["iteration"], r["env_steps"], r["wall_s"]) for r in rows] == [
        (4, 80_000, 12.0), (8, 160_000, 24.0), (9, 180_000, 27.0)]
    points = [maml.meta_point(r) for r in rows]
    assert [(p["before"], p["after"]) for p in points] == [(-44.0, -19.6), (-48.0, -19.2), (-49.0, -19.1)]
    assert points[-1]["gap_closed"] == pytest.approx((-19.1 + 49.0) / (-0.55 + 49.0))
    # The last iteration a multiple of the interval: read once.
    rows = cli.evaluation_rows(hand_made_history(8, 4), list(maml.KEYS.values()), eval_interval=4)
    assert [r["iteration"] for r in rows] == [4, 8]
    assert cli.evaluation_rows({}, list(maml.KEYS.values()), eval_interval=4) == []


def write_tune_results(trial: Path, iterations: int, interval: int) -> None:
    """Tune's result.json: a JSON line per result, the hook's metrics nested under "metrics"."""
    trial.mkdir(parents=True)
    history = hand_made_history(iterations, interval)
    lines = []
    for step, i in history[cli.ITERATIONS].items():
        metrics = {k.removeprefix(maml.HOOK): history[k][step] for k in maml.KEYS.values() if step in history[k]}
        lines.append(json.dumps({"env_steps": step, "iterations": int(i), "wall_s": history[cli.WALL_S][step],
                                 "training_iteration": int(i), **({"metrics": metrics} if metrics else {})}))
    (trial / cli.TUNE_RESULTS).write_text("\n".join(lines) + "\n")


def test_tunes_result_json_gives_the_same_rows_as_mlflows_history(tmp_path):
    write_tune_results(tmp_path / "trial", 5, 2)
    keys = list(maml.KEYS.values())
    assert cli.tune_history(tmp_path / "trial" / cli.TUNE_RESULTS, keys) == hand_made_history(5, 2)
    out = {"mlflow_run_id": None, "checkpoint": str(tmp_path / "trial" / "checkpoint_000004")}
    rows, source = cli.evaluations(out, keys, eval_interval=2, tracking_uri=None)
    assert source == cli.TUNE and [r["iteration"] for r in rows] == [2, 4, 5]
    assert cli.evaluations({"mlflow_run_id": None, "checkpoint": None}, keys, eval_interval=2,
                           tracking_uri=None) == ([], None)


def test_mlflows_metric_history_is_read_first(tmp_path):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("maml-bench-test")).info.run_id
    metrics = [Metric(key, value, 0, step) for key, by_step in hand_made_history(6, 3).items()
               for step, value in by_step.items()]
    client.log_batch(run_id, metrics=metrics)
    write_tune_results(tmp_path / "trial", 2, 1)  # a different run: must not be the one read
    out = {"mlflow_run_id": run_id, "checkpoint": str(tmp_path / "trial" / "checkpoint_000001")}
    rows, source = cli.evaluations(out, list(maml.KEYS.values()), eval_interval=3, tracking_uri=uri)
    assert source == cli.MLFLOW
    assert [(r["iteration"], r[K0], r[K1]) for r in rows] == [(3, -43.0, -19.7), (6, -46.0, -19.4)]


def test_the_json_lines_final_meta_test_is_the_last_resort():
    out = {"env_steps": 40_000, "iterations": 2, "train_wall_s": 9.5,
           "metrics": {k.removeprefix(maml.HOOK): v for k, v in meta_test_at(2).items()}}
    p = maml.meta_point(maml.final_row(out))
    assert (p["iteration"], p["env_steps"], p["wall_s"], p["before"], p["after"]) == (2, 40_000, 9.5, -42.0, -19.8)


# The report --------------------------------------------------------------------------------------------------------


def fake_results() -> dict:
    args = harness.runner.parser(maml.BENCHMARK).parse_args(["--iters", "40"])
    plan = maml.plan(args)

    def run(seed: int, gaps: list[float | None]) -> dict:
        points = []
        for j, g in enumerate(gaps):
            before, oracle = -40.0, -0.5
            after = before if g is None else before + g * (oracle - before)
            points.append({"env_steps": (j + 1) * 400_000, "wall_s": 60.0 * (j + 1), "iteration": 20 * (j + 1),
                           "eval_return": after, "before": before if g is not None else 0.0, "after": after,
                           "task_blind": -40.8, "oracle": oracle, "gap_closed": g})
        return {"contender": "maml", "group": {}, "seed": seed, "reached": any(g and g >= 0.5 for g in gaps),
                "steps_to_target": None, "wall_s_to_target": None, "env_steps": 800_000, "env_steps_per_s": 4000.0,
                "setup_s": 12.0, "train_wall_s": 200.0, "error": None, "points": points,
                "extra": {"iterations": 40, "trial_train_wall_s": 190.0, "command_wall_s": 215.0,
                          "source": cli.MLFLOW}}

    runs = [run(0, [0.45, 0.55]), run(1, [0.52, 0.61]), run(2, [None, 0.49]),
            {"contender": "maml", "group": {}, "seed": 3, "error": "RuntimeError: boom", "points": [], "extra": {}}]
    return {"benchmark": "maml", "machine": {}, "settings": plan.settings, "seeds": [0, 1, 2, 3],
            "target": plan.target, "contenders": [c.to_dict() for c in plan.contenders], "runs": runs}


def test_report_counts_seeds_per_meta_test_and_draws_the_gap(tmp_path):
    results = fake_results()
    text = maml.render(results)
    assert "--stop-iters 40 --eval-interval 20" in text and "--seed SEED" in text
    # Iteration 20: seeds 0 and 1 have a gap (0.45, 0.52), seed 2 none; one of three closes half.
    assert "| 20 | 400,000 | 1/3 | 0.48 (0.45–0.52) |" in text
    assert "| 40 | 800,000 | 2/3 | 0.55 (0.49–0.61) |" in text
    assert "At each run's last meta-test (iteration 40): 2/3 seeds closed at least 0.5" in text
    assert "at every meta-test: 1/3 seeds" in text
    assert "| 2 | 20 | 400,000 | 0.0 | -40.0 | -40.8 | -0.50 | — (no gap) |" in text
    assert "| 0 | 40 | 800,000 | 190.0 | 215.0 | 12.0 | 4,000 | 40 (800,000 env steps) |" in text
    assert "| 2 | 40 | 800,000 | 190.0 | 215.0 | 12.0 | 4,000 | never |" in text
    assert "maml seed 3 failed: RuntimeError: boom" in text
    for name, writer in maml.BENCHMARK.plots.items():
        assert writer(results, tmp_path / name), name
        assert (tmp_path / name).stat().st_size > 0


def test_from_json_re_renders_without_training(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(fake_results()))
    assert harness.main(maml.BENCHMARK, ["--from-json", str(tmp_path / "results.json")]) == 0
    assert (tmp_path / "results.md").read_text().startswith("# MAML on PointNav-v0")
    assert (tmp_path / maml.PLOT_GAP).is_file()
