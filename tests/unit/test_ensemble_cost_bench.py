"""benchmarks/ensemble_cost.py without training: the contenders' settings, the flags, the report's ratios."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import ensemble_cost  # noqa: E402
import harness  # noqa: E402


def test_contenders_differ_only_in_what_they_name():
    assert ensemble_cost.overrides("k10") == {}  # boot_dqn's defaults: 10 heads
    assert ensemble_cost.overrides("k1") == {"num_heads": 1}
    eps = ensemble_cost.overrides("eps_dqn")
    assert (eps["num_heads"], eps["prior_scale"], eps["mask_prob"]) == (1, 0.0, 1.0) and eps["epsilon"] > 0
    assert set(ensemble_cost.CONTENDERS) == set(ensemble_cost.LABELS)


def test_flags_make_a_seed_major_plan_and_refuse_bad_values(capsys):
    parser = harness.runner.parser(ensemble_cost.BENCHMARK)
    args = parser.parse_args(["--size", "6", "--seconds", "2.5", "--seeds", "2", "--contenders", "k10", "k1"])
    plan = ensemble_cost.plan(args)
    assert [c.name for c in plan.contenders] == ["k10", "k1"] and list(plan.seeds) == [0, 1]
    assert all(c.budget == 2.5 and c.group == {"size": 6} for c in plan.contenders)
    assert plan.reference == "k1" and plan.settings["overrides"] == {"k10": {}, "k1": {"num_heads": 1}}
    assert plan.settings["gpus_per_learner"] == 0.0  # a CPU learner unless asked
    assert ensemble_cost.plan(parser.parse_args(["--gpus-per-learner", "1"])).settings["gpus_per_learner"] == 1.0
    for bad in (["--seconds", "0"], ["--seconds", "x"], ["--contenders", "k3"], ["--size", "0"],
                ["--gpus-per-learner", "-1"], ["--gpus-per-learner", "one"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(bad)
        assert exit_info.value.code == 2


def run(contender: str, seed: int, rate: float | None) -> dict:
    return {"contender": contender, "seed": seed, "group": {"size": 10}, "env_steps_per_s": rate,
            "error": None if rate is not None else "RuntimeError: boom", "setup_s": 1.0, "extra": {}}


def test_report_gives_medians_per_run_rates_and_the_ratio_to_one_head():
    results = {"benchmark": "ensemble_cost", "status": "finished", "reference": "k1",
               "settings": {"env": ensemble_cost.ENV_ID, "size": 10, "seconds": 20.0},
               "contenders": [{"name": n, "label": ensemble_cost.LABELS[n], "budget": 20.0, "group": {"size": 10}}
                              for n in ensemble_cost.CONTENDERS],
               "machine": {}, "timings": {},
               "runs": [run("k10", 0, 150.0), run("k10", 1, 170.0), run("k10", 2, None),
                        run("k1", 0, 300.0), run("k1", 1, 320.0), run("k1", 2, 310.0),
                        run("eps_dqn", 0, 400.0), run("eps_dqn", 1, 420.0), run("eps_dqn", 2, 410.0)]}
    md = ensemble_cost.render(results)
    # k10: median of the two runs that did not fail (160), over k1's median (310).
    assert f"| {ensemble_cost.LABELS['k10']} | 160 | 150, 170, error | 0.52 |" in md
    assert f"| {ensemble_cost.LABELS['k1']} | 310 | 300, 320, 310 | 1.00 |" in md
    assert f"| {ensemble_cost.LABELS['eps_dqn']} | 410 | 400, 420, 410 | 1.32 |" in md
