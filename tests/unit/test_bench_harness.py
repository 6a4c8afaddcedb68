"""The benchmark harness (benchmarks/harness): recorder arithmetic, summaries, tables, --from-json, MLflow.

No training: the contenders here are scripted curves that take milliseconds.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import harness  # noqa: E402
from harness import record  # noqa: E402
from harness.runner import RESULTS_JSON, RESULTS_MD, log_to_mlflow  # noqa: E402

TARGET = 450.0


class FakeTime:
    """perf_counter under the test's control."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(record.time, "perf_counter", fake)
    return fake


# Recorder -----------------------------------------------------------------------------------------------


def test_steps_and_wall_clock_to_target_are_the_first_point_at_or_above_it():
    points = [
        {"env_steps": 1000, "wall_s": 2.0, "eval_return": 100.0},
        {"env_steps": 2000, "wall_s": 4.0, "eval_return": None},  # a throughput point: no evaluation
        {"env_steps": 3000, "wall_s": 6.5, "eval_return": 450.0},
        {"env_steps": 4000, "wall_s": 9.0, "eval_return": 500.0},
    ]
    assert harness.steps_to_target(points, TARGET) == 3000
    assert harness.wall_s_to_target(points, TARGET) == 6.5
    assert harness.steps_to_target(points, 501.0) is None
    assert harness.steps_to_target(points, None) is None
    assert harness.env_steps_per_s(4000, 8.0) == 500.0
    assert harness.env_steps_per_s(4000, 0.0) is None


def test_recorder_schedule_clock_and_derived_figures(clock):
    rec = harness.Recorder(contender="a", seed=3, budget=5000, target=TARGET, eval_every=2000, quiet=True)
    with rec.setup():
        clock.now += 1.5  # building the algorithm: setup_s, not training
    rec.start()
    assert not rec.due(1999)
    assert rec.due(2100)

    def evaluation(ret: float, cost_s: float):
        def evaluate() -> float:
            clock.now += cost_s  # evaluating: outside the training clock
            return ret
        return evaluate

    clock.now += 10.0
    assert rec.evaluate(2100, evaluation(200.0, 3.0)) is False
    assert not rec.due(3999) and rec.due(4000)  # next multiple of eval_every, not 2100 + 2000
    clock.now += 10.0
    assert rec.evaluate(4200, evaluation(460.0, 3.0)) is True
    rec.stop(4200, iterations=4)
    clock.now += 50.0  # after stop the clock stands still
    run = rec.to_dict()
    assert run["setup_s"] == pytest.approx(1.5)
    assert run["eval_s"] == pytest.approx(6.0)
    assert [p["wall_s"] for p in run["points"]] == pytest.approx([10.0, 20.0])
    assert run["steps_to_target"] == 4200 and run["wall_s_to_target"] == pytest.approx(20.0)
    assert run["train_wall_s"] == pytest.approx(20.0)  # both evaluations (6 s) left out
    assert run["env_steps_per_s"] == pytest.approx(4200 / 20.0)
    assert run["reached"] and run["extra"] == {"iterations": 4} and run["error"] is None


def test_recorder_due_at_budget_end_and_final_evaluation_once(clock):
    rec = harness.Recorder(contender="a", seed=0, budget=3000, target=TARGET, eval_every=2000, quiet=True)
    rec.start()
    assert rec.due(3000)  # the end of the budget is always evaluated
    assert rec.evaluate(3000, lambda: 10.0) is False
    assert rec.evaluate_at_end(3000, lambda: pytest.fail("evaluated twice at one step count")) is False
    assert rec.evaluate_at_end(3100, lambda: 20.0) is False
    assert [p["env_steps"] for p in rec.points] == [3000, 3100]


def test_recorder_failure_keeps_the_points(clock):
    rec = harness.Recorder(contender="a", seed=0, budget=3000, target=TARGET, quiet=True)
    rec.start()
    rec.record(500, eval_return=9.0)
    rec.fail(RuntimeError("boom"))
    run = rec.to_dict()
    assert run["error"] == "RuntimeError: boom" and run["env_steps"] == 500 and len(run["points"]) == 1


# Summaries --------------------------------------------------------------------------------------------------


def test_censored_stats_count_never_as_slowest():
    s = harness.censored_stats([300.0, None, 100.0])
    assert (s.median, s.min, s.max, s.k, s.n) == (300.0, 100.0, None, 2, 3)
    s = harness.censored_stats([None, None, 5.0])
    assert (s.median, s.min, s.max, s.k) == (None, 5.0, None, 1)  # median run never got there
    s = harness.censored_stats([1.0, 2.0, 3.0, 4.0])
    assert (s.median, s.min, s.max) == (2.5, 1.0, 4.0)
    assert harness.censored_stats([]).n == 0


def _run(contender, seed, steps, wall, speed, *, group=None, error=None):
    return {"contender": contender, "group": group or {}, "seed": seed, "target": TARGET,
            "steps_to_target": steps, "wall_s_to_target": wall, "reached": steps is not None,
            "env_steps_per_s": speed, "setup_s": 1.0, "error": error, "points": []}


def _results(runs, *, reference="ref"):
    names = list(dict.fromkeys(r["contender"] for r in runs))
    return {"benchmark": "unit", "target": TARGET, "reference": reference, "runs": runs,
            "contenders": [{"name": n, "label": n.upper(), "budget": 10_000, "group": {}} for n in names]}


RUNS = [
    _run("ref", 0, 1000, 10.0, 100.0), _run("ref", 1, 3000, 30.0, 100.0), _run("ref", 2, 2000, 20.0, 100.0),
    _run("other", 0, 4000, 20.0, 200.0), _run("other", 1, None, None, 200.0),
    _run("other", 2, 8000, 40.0, None, error="RuntimeError: x"),
]


def test_summaries_k_of_n_medians_and_ratios():
    ref, other = harness.summarize(_results(RUNS))
    assert (ref.contender, ref.label, ref.reached, ref.n) == ("ref", "REF", 3, 3)
    assert (ref.steps.median, ref.wall_s.median, ref.env_steps_per_s) == (2000.0, 20.0, 100.0)
    # other: 4000, never, 8000 (that run raised after reaching; it still counts where it got).
    assert (other.reached, other.n, other.errors) == (2, 3, 1)
    assert (other.steps.median, other.steps.min, other.steps.max) == (8000.0, 4000.0, None)
    assert other.env_steps_per_s == 200.0  # the failed run's throughput is left out
    (r,) = harness.ratios_vs([ref, other], "ref")
    assert r.summary is other and (r.steps, r.wall_s, r.env_steps_per_s) == (4.0, 2.0, 2.0)


def test_ratios_only_within_a_group():
    runs = [_run("ref", 0, 1000, 1.0, 10.0, group={"size": 10}), _run("b", 0, 3000, 3.0, 10.0, group={"size": 10}),
            _run("b", 0, 5000, 5.0, 10.0, group={"size": 20})]
    ratios = harness.ratios_vs(harness.summarize(_results(runs)), "ref")
    assert [(r.summary.group, r.steps) for r in ratios] == [({"size": 10}, 3.0)]


# Tables ---------------------------------------------------------------------------------------------------------


def test_summary_and_ratio_tables_render():
    summaries = harness.summarize(_results(RUNS))
    table = harness.summary_table(summaries, harness.standard_columns("450"))
    assert table.splitlines() == [
        "| contender | reached 450 | env steps to 450: median (min–max) | wall-clock to 450 (s): median (min–max) "
        "| median env steps/s | median setup (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| REF | 3/3 | 2,000 (1,000–3,000) | 20.0 (10.0–30.0) | 100 | 1.0 |",
        "| OTHER | 2/3 | 8,000 (4,000–never) | 40.0 (20.0–never) | 200 | 1.0 |",
    ]
    ratios = harness.ratio_table(summaries, "ref")
    assert "| OTHER | 4.00× | 2.00× | 2.00× |" in ratios.splitlines()
    lines = harness.per_run_lines(summaries, lambda r: harness.fmt(r["steps_to_target"]))
    assert lines[1] == "- OTHER: s0: 4,000, s1: —, s2: error"


def test_fmt_stats_never_and_single_seed():
    assert harness.fmt_stats(harness.censored_stats([None, None])) == "never"
    assert harness.fmt_stats(harness.censored_stats([1234.0])) == "1,234"
    assert harness.fmt_stats(harness.censored_stats([None, 5.0, None]), 1) == "never (5.0–never)"


# A whole invocation, --from-json, MLflow ---------------------------------------------------------------------


def scripted(curve: dict[int, float], *, fail: bool = False):
    """A contender whose greedy return after N env steps is curve[N] (1000-step iterations)."""
    def run(seed: int, budget: int, rec: harness.Recorder) -> None:
        with rec.setup():
            pass
        rec.start()
        steps = 0
        while steps < budget:
            steps += 1000
            if fail and steps > 1000:
                raise RuntimeError("learner died")
            if rec.due(steps) and rec.evaluate(steps, lambda: curve.get(steps, 0.0) + seed, iteration=steps // 1000):
                break
        rec.stop(steps)
    return run


def unit_benchmark(*, broken: bool = False) -> harness.Benchmark:
    def add_arguments(p):
        p.add_argument("--seeds", type=harness.positive_int, default=2)

    def plan(args):
        contenders = [
            harness.Contender(name="fast", run=scripted({2000: 300.0, 4000: 460.0}), budget=6000, label="Fast"),
            harness.Contender(name="slow", run=scripted({6000: 100.0}), budget=6000, label="Slow"),
            harness.Contender(name="missing", run=scripted({}), budget=6000, available=lambda: "not installed here"),
        ]
        if broken:
            contenders.append(harness.Contender(name="broken", run=scripted({}, fail=True), budget=6000))
        return harness.Plan(contenders=contenders, seeds=range(args.seeds), settings={"env": "Scripted-v0"},
                            target=TARGET, eval_every=2000, reference="fast")

    def render(results):
        summaries = harness.summarize(results)
        return "\n".join([harness.machine_line(results), "",
                          harness.summary_table(summaries, harness.standard_columns("450")), "",
                          harness.ratio_table(summaries, "fast") or "", *harness.notes(results), ""])

    def plot(results, path):
        return harness.plot_learning_curves(results, path, ylabel="return", title="unit", loglog=True)

    return harness.Benchmark(name="unit", doc="unit benchmark", default_out=Path("unused"),
                             add_arguments=add_arguments, plan=plan, render=render, plots={"curves.png": plot})


def test_invocation_writes_results_and_from_json_rerenders_them(tmp_path, capsys):
    out = tmp_path / "out"
    assert harness.main(unit_benchmark(), ["--seeds", "2", "--out", str(out), "--no-mlflow"]) == 0
    results = json.loads((out / RESULTS_JSON).read_text())
    assert results["benchmark"] == "unit" and results["status"] == "finished"
    assert results["command"][1:] == ["--seeds", "2", "--out", str(out), "--no-mlflow"]
    machine = results["machine"]
    for key in ("cpu_model", "cpu_count", "load_avg_start", "load_avg_end", "python", "git_commit", "git_dirty"):
        assert key in machine
    assert machine["versions"]["torch"] and machine["versions"]["ray"]
    assert results["skipped"] == {"missing": "not installed here"}
    assert [(r["contender"], r["seed"]) for r in results["runs"]] == [("fast", 0), ("slow", 0), ("fast", 1),
                                                                       ("slow", 1)]
    fast0 = results["runs"][0]
    assert fast0["steps_to_target"] == 4000 and [p["env_steps"] for p in fast0["points"]] == [2000, 4000]
    assert results["runs"][1]["steps_to_target"] is None and results["runs"][1]["env_steps"] == 6000
    md = (out / RESULTS_MD).read_text()
    assert "| Fast | 2/2 | 4,000 (4,000–4,000) |" in md and "| Slow | 0/2 | never | never |" in md
    assert "- missing skipped: not installed here" in md
    assert (out / "curves.png").stat().st_size > 0
    assert md in capsys.readouterr().out

    again = tmp_path / "again"
    assert harness.main(unit_benchmark(), ["--from-json", str(out / RESULTS_JSON), "--out", str(again)]) == 0
    assert (again / RESULTS_MD).read_text() == md
    assert (again / "curves.png").is_file() and not (again / RESULTS_JSON).exists()


def test_a_failing_run_is_recorded_and_the_exit_code_is_1(tmp_path):
    out = tmp_path / "out"
    assert harness.main(unit_benchmark(broken=True), ["--seeds", "1", "--out", str(out), "--no-mlflow"]) == 1
    results = json.loads((out / RESULTS_JSON).read_text())
    broken = results["runs"][-1]
    assert results["status"] == "failed"
    assert broken["contender"] == "broken" and broken["error"] == "RuntimeError: learner died"
    assert "- broken seed 0 failed: RuntimeError: learner died" in (out / RESULTS_MD).read_text()


def test_from_json_refuses_a_file_that_is_not_harness_results(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"meta": {}, "cells": []}))
    with pytest.raises(SystemExit) as exc:
        harness.main(unit_benchmark(), ["--from-json", str(path)])
    assert exc.value.code == 2


def test_invocation_is_one_mlflow_run_with_a_child_per_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    argv = ["--seeds", "2", "--out", str(out), "--tracking-uri", uri, "--experiment", "bench-unit"]
    assert harness.main(unit_benchmark(), argv) == 0

    results = json.loads((out / RESULTS_JSON).read_text())
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("bench-unit")
    assert results["mlflow"]["run_id"] and results["mlflow"]["experiment"] == "bench-unit"
    parent = client.get_run(results["mlflow"]["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["benchmark"] == "unit"
    params, metrics = parent.data.params, parent.data.metrics
    assert params["benchmark"] == "unit" and params["contenders"] == "fast,slow,missing"
    assert params["seeds"] == "[0, 1]" and params["settings/env"] == "Scripted-v0"
    assert "machine/cpu_model" in params and json.loads(params["budgets"]) == {"fast": 6000, "slow": 6000,
                                                                                "missing": 6000}
    assert metrics["fast/reached"] == 2 and metrics["fast/median_steps_to_target"] == 4000
    assert metrics["slow/reached"] == 0 and "slow/median_steps_to_target" not in metrics
    assert "slow/steps_to_target_vs_fast" not in metrics and "slow/env_steps_per_s_vs_fast" in metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {RESULTS_JSON, RESULTS_MD, "curves.png"} <= artifacts

    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.info.run_name for c in children) == ["fast seed 0", "fast seed 1", "slow seed 0", "slow seed 1"]
    fast0 = next(c for c in children if c.info.run_name == "fast seed 0")
    assert fast0.data.metrics["steps_to_target"] == 4000
    curve = client.get_metric_history(fast0.info.run_id, "curve/eval_return")
    assert [(m.step, m.value) for m in curve] == [(2000, 300.0), (4000, 460.0)]
    iterations = client.get_metric_history(fast0.info.run_id, "curve/iteration")  # a point's other numbers
    assert [(m.step, m.value) for m in iterations] == [(2000, 2.0), (4000, 4.0)]


def test_mlflow_failure_keeps_the_results_files(tmp_path):
    out = tmp_path / "out"
    assert harness.main(unit_benchmark(), ["--seeds", "1", "--out", str(out), "--no-mlflow"]) == 0
    results = json.loads((out / RESULTS_JSON).read_text())
    files = [out / RESULTS_JSON, out / RESULTS_MD]
    (tmp_path / "a_file").write_text("")  # the store's folder cannot be made under a file
    args = type("Args", (), {"tracking_uri": f"sqlite:///{tmp_path}/a_file/mlflow.db", "experiment": "x"})()
    log_to_mlflow(results, files, args)
    kept = json.loads((out / RESULTS_JSON).read_text())
    assert "error" in kept["mlflow"] and kept["runs"] == results["runs"]
    assert (out / RESULTS_MD).is_file()


# Other success criteria, implied failures, power-law fits --------------------------------------------------------


def test_a_criterion_replaces_the_return_threshold(clock):
    def below(point):
        return point["bad"] < 0.8

    rec = harness.Recorder(contender="a", seed=0, budget=10, target=0.8, criterion=below, quiet=True)
    rec.start()
    assert rec.record(100, bad=0.9) is False
    clock.now += 5.0
    assert rec.record(200, bad=0.8) is False  # not below
    assert rec.record(300, bad=0.5) is True
    rec.stop()
    run = rec.to_dict()
    assert run["steps_to_target"] == 300 and run["wall_s_to_target"] == pytest.approx(5.0) and run["reached"]


def sized(solves: dict[int, bool], *, raises_at: int | None = None):
    """A contender that, at group size N, reaches the target at 1000 steps if solves[N], else spends its budget."""
    def run(size: int, seed: int, budget: int, rec: harness.Recorder) -> None:
        rec.start()
        if size == raises_at:
            raise RuntimeError("learner died")
        for steps in range(1000, budget + 1, 1000):
            if rec.evaluate(steps, lambda: 500.0 if solves[size] else 0.0):
                break
        rec.stop()
    return run


def implied_benchmark() -> harness.Benchmark:
    def plan(args):
        contenders = [
            harness.Contender(name=name, run=partial(run, size), budget=3000, label=name.upper(), group={"size": size})
            for size in (1, 2, 3)
            for name, run in (("a", sized({1: True, 2: False, 3: True})),
                              ("b", sized({1: False, 2: True, 3: True}, raises_at=None)),
                              ("c", sized({1: True, 2: True, 3: True}, raises_at=1)))
        ]
        return harness.Plan(contenders=contenders, seeds=range(1), settings={}, target=TARGET, reference="a",
                            implied_failure=harness.implied_by_smaller("size", label="N", outcome="not solved"))

    def render(results):
        summaries = harness.summarize(results)
        return "\n".join([*harness.per_run_lines(summaries, lambda r: harness.fmt(r["steps_to_target"])),
                          *harness.notes(results), ""])

    return harness.Benchmark(name="implied", doc="", default_out=Path("unused"), add_arguments=lambda p: None,
                             plan=plan, render=render)


def test_a_failure_at_a_smaller_size_implies_failure_at_the_larger_ones_without_running(tmp_path):
    out = tmp_path / "out"
    assert harness.main(implied_benchmark(), ["--out", str(out), "--no-mlflow"]) == 1  # c raised at N=1
    results = json.loads((out / RESULTS_JSON).read_text())
    runs = {(r["contender"], r["group"]["size"]): r for r in results["runs"]}
    assert [(r["contender"], r["group"]["size"]) for r in results["runs"]] == [
        (name, size) for size in (1, 2, 3) for name in "abc"]  # sizes go up within the seed
    assert runs["a", 3]["extra"] == {"implied": "not solved at N=2"} and not runs["a", 3]["points"]
    assert runs["b", 2]["extra"]["implied"] == "not solved at N=1" and runs["b", 3]["extra"]["implied"] == \
        "not solved at N=1"
    assert runs["c", 2]["reached"] and "implied" not in runs["c", 2]["extra"]  # an error implies nothing
    assert all(not r["reached"] and r["env_steps"] is None for r in results["runs"] if r["extra"].get("implied"))
    by = {(s.contender, s.group["size"]): s for s in harness.summarize(results)}
    assert (by["a", 3].reached, by["a", 3].n, by["a", 3].implied, by["a", 3].steps.median) == (0, 1, 1, None)
    md = (out / RESULTS_MD).read_text()
    assert "- A (size=3): s0: not run (not solved at N=2)" in md
    assert "- 3 runs not run and recorded as not reached" in md


def test_loglog_fit_recovers_a_power_law():
    fit = harness.loglog_fit([10, 20, 40], [3 * 10 ** 2.5, 3 * 20 ** 2.5, 3 * 40 ** 2.5])
    assert fit.slope == pytest.approx(2.5) and fit.intercept == pytest.approx(math.log(3)) and fit.points == 3
    assert harness.loglog_fit([10], [100]) is None
    assert harness.loglog_fit([10, 10], [100, 200]) is None  # one size twice: no slope
    assert fit.r2 == pytest.approx(1.0)


def test_exp_fit_recovers_an_exponential_and_r2_tells_the_two_apart():
    xs = [10, 20, 30, 40]
    doubling = [5 * 2.0 ** x for x in xs]
    fit = harness.exp_fit(xs, doubling)
    assert fit.rate == pytest.approx(math.log(2)) and fit.intercept == pytest.approx(math.log(5))
    assert fit.points == 4 and fit.r2 == pytest.approx(1.0)
    # A power law is a curve in log(y) against x: the exponential explains less of it than the power law does.
    power = [3 * x ** 2 for x in xs]
    assert harness.exp_fit(xs, power).r2 < harness.loglog_fit(xs, power).r2 == pytest.approx(1.0)
    # r2 by hand: log(y) = 0, 1, 0 at x = 0, 1, 2 has a flat line (slope 0) explaining none of it.
    flat = harness.exp_fit([0, 1, 2], [1.0, math.e, 1.0])
    assert flat.rate == pytest.approx(0.0, abs=1e-12) and flat.r2 == pytest.approx(0.0, abs=1e-12)
    assert harness.exp_fit([3], [7]) is None


def resumable_benchmark(calls: list, *, env: str = "Scripted-v0", interrupt_at: tuple | None = None,
                        fail_once: set | None = None, resumed=None, terminate_at: tuple | None = None
                        ) -> harness.Benchmark:
    """Two contenders; each run appends (name, seed) to `calls`. interrupt_at=(name, seed): that run is
    interrupted (Ctrl-C); terminate_at: that run's process gets SIGTERM; fail_once: those (name, seed)
    raise the first time."""
    def run(name, curve, seed, budget, rec):
        calls.append((name, seed))
        if (name, seed) == interrupt_at:
            raise KeyboardInterrupt
        if (name, seed) == terminate_at:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at once; a test that waits here has failed
        if fail_once is not None and (name, seed) in fail_once:
            fail_once.discard((name, seed))
            raise RuntimeError("learner died")
        scripted(curve)(seed, budget, rec)

    def add_arguments(p):
        p.add_argument("--seeds", type=harness.positive_int, default=2)

    def plan(args):
        return harness.Plan(
            contenders=[harness.Contender(name="a", run=partial(run, "a", {2000: 460.0}), budget=4000),
                        harness.Contender(name="b", run=partial(run, "b", {4000: 100.0}), budget=4000)],
            seeds=range(args.seeds), settings={"env": env, "tmp": f"/tmp/{len(calls)}"}, target=TARGET,
            eval_every=2000, resume_ignores=frozenset({"tmp"}), resumed=resumed)

    return harness.Benchmark(name="resumable", doc="", default_out=Path("unused"), add_arguments=add_arguments,
                             plan=plan, render=lambda results: "\n".join(harness.notes(results)))


def test_resume_goes_on_from_an_interrupted_invocation_without_running_a_finished_run_again(tmp_path):
    out, calls = tmp_path / "out", []
    argv = ["--seeds", "2", "--out", str(out), "--no-mlflow"]
    assert harness.main(resumable_benchmark(calls, interrupt_at=("b", 1)), argv) == 1
    first = json.loads((out / RESULTS_JSON).read_text())
    assert first["status"] == "interrupted" and [(r["contender"], r["seed"]) for r in first["runs"]] == [
        ("a", 0), ("b", 0), ("a", 1)]
    calls.clear()
    assert harness.main(resumable_benchmark(calls), [*argv, "--resume"]) == 0
    assert calls == [("b", 1)]  # the only run that had not finished
    results = json.loads((out / RESULTS_JSON).read_text())
    assert results["status"] == "finished"
    assert [(r["contender"], r["seed"]) for r in results["runs"]] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert results["runs"][:3] == first["runs"]  # kept as they were
    assert [e["status"] for e in results["resumed_from"]] == ["interrupted"]
    assert "--resume" not in first["command"] and "--resume" in results["command"]
    assert "resumed (--resume): runs of 1 earlier invocation" in (out / RESULTS_MD).read_text()


class SysExitOnTerm:
    """A plan session that, like ray.init, sets a SIGTERM handler calling sys.exit (and leaves it set)."""

    def __enter__(self):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))

    def __exit__(self, *exc):
        return False


def test_sigterm_stops_a_benchmark_as_ctrl_c_does_and_the_handler_is_put_back(tmp_path):
    # A benchmark started with `&` from a script ignores SIGINT: `kill PID` must keep what finished,
    # even inside a session whose ray.init set its own SIGTERM handler.
    def survive(signum, frame):  # the test's own handler: a regression fails the test, not pytest
        survived.append(signum)

    survived = []
    previous = signal.signal(signal.SIGTERM, survive)
    try:
        out, calls = tmp_path / "out", []
        bench = resumable_benchmark(calls, terminate_at=("a", 1))
        plan = bench.plan
        bench = replace(bench, plan=lambda args: replace(plan(args), session=lambda c, r: SysExitOnTerm()))
        t0 = time.monotonic()
        assert harness.main(bench, ["--seeds", "2", "--out", str(out), "--no-mlflow"]) == 1
        assert time.monotonic() - t0 < 5 and not survived
        results = json.loads((out / RESULTS_JSON).read_text())
        assert results["status"] == "interrupted"
        assert [(r["contender"], r["seed"]) for r in results["runs"]] == [("a", 0), ("b", 0)]
        assert signal.getsignal(signal.SIGTERM) is survive  # put back
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_resume_runs_failed_runs_again_and_may_add_seeds(tmp_path):
    out, calls = tmp_path / "out", []
    assert harness.main(resumable_benchmark(calls, fail_once={("a", 0)}),
                        ["--seeds", "1", "--out", str(out), "--no-mlflow"]) == 1
    calls.clear()
    assert harness.main(resumable_benchmark(calls), ["--seeds", "2", "--out", str(out), "--no-mlflow",
                                                     "--resume"]) == 0
    assert calls == [("a", 0), ("a", 1), ("b", 1)]
    results = json.loads((out / RESULTS_JSON).read_text())
    assert sorted((r["contender"], r["seed"]) for r in results["runs"]) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert not any(r["error"] for r in results["runs"])


def test_resume_lets_the_script_send_a_kept_run_back(tmp_path):
    out, calls = tmp_path / "out", []
    argv = ["--seeds", "1", "--out", str(out), "--no-mlflow"]
    assert harness.main(resumable_benchmark(calls), argv) == 0
    calls.clear()
    seen = []

    def resumed(run):
        seen.append(run["contender"])
        return "its checkpoint is gone" if run["contender"] == "a" else None

    assert harness.main(resumable_benchmark(calls, resumed=resumed), [*argv, "--resume"]) == 0
    assert seen == ["a", "b"] and calls == [("a", 0)]


@pytest.mark.parametrize("change,message", [
    (dict(env="Other-v0"), "its setting env was 'Scripted-v0', now 'Other-v0'"),
    (None, "nothing to go on from"),
])
def test_resume_refuses_another_benchmarks_results_or_none_with_exit_2(tmp_path, capsys, change, message):
    out, calls = tmp_path / "out", []
    argv = ["--seeds", "1", "--out", str(out), "--no-mlflow"]
    if change is not None:
        assert harness.main(resumable_benchmark(calls), argv) == 0
    before = (out / RESULTS_JSON).read_text() if change is not None else None
    calls.clear()
    with pytest.raises(SystemExit) as exc:
        harness.main(resumable_benchmark(calls, **(change or {})), [*argv, "--resume"])
    assert exc.value.code == 2 and message in capsys.readouterr().err and calls == []
    if before is not None:
        assert (out / RESULTS_JSON).read_text() == before  # nothing already written is lost
