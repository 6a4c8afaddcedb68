"""benchmarks/transfer.py without training: its held-out physics, how it pins them, what it hands the CLI, its report.

The benchmark's claim rests on these: every held-out task lies outside the
domain-randomisation ranges, the evaluation really plays the task it names
(real RandomCartPole envs, no mocks), and the randomised runs draw inside
their ranges.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import transfer  # noqa: E402

from rlfrontier import envs  # noqa: E402
from rlfrontier.evaluation import greedy_return_mean  # noqa: E402
from rlfrontier.spec import parse_assignments  # noqa: E402


def make(env_config: dict) -> gym.Env:
    envs.register_envs()
    return gym.make(transfer.RANDOM_ENV, **env_config)


def test_nominal_task_is_gymnasiums_and_inside_the_training_ranges():
    env = make({})
    assert env.unwrapped.nominal_task() == pytest.approx(transfer.NOMINAL_TASK)
    assert transfer.outside(transfer.NOMINAL_TASK) == []


@pytest.mark.parametrize("name", [*transfer.HELD_OUT, "fine-tuning task"])
def test_held_out_physics_lie_outside_the_training_ranges(name):
    physics = transfer.task(transfer.HELD_OUT.get(name, transfer.SHIFTED))
    assert set(physics) == set(transfer.TRAINING_RANGES)
    assert transfer.outside(physics), f"{name} {physics} lies inside {transfer.TRAINING_RANGES}"
    assert all(value > 0 for value in physics.values())


@pytest.mark.parametrize("name", list(transfer.evaluation_tasks()))
def test_pinned_env_config_plays_that_task_at_every_reset(name):
    physics = transfer.evaluation_tasks()[name]
    env = make(transfer.pinned_env_config(physics))
    for seed in (0, 1, 12345):
        env.reset(seed=seed)
        assert env.unwrapped.get_task() == pytest.approx(physics)
        # CartPole's step reads these two derived values as well.
        assert env.unwrapped.total_mass == pytest.approx(physics["masspole"] + physics["masscart"])
        assert env.unwrapped.polemass_length == pytest.approx(physics["masspole"] * physics["length"])


def test_randomised_runs_draw_inside_the_ranges_and_vary():
    env = make(transfer.randomised_env_config())
    tasks = []
    for seed in range(20):
        env.reset(seed=seed)
        tasks.append(env.unwrapped.get_task())
    for key, (low, high) in transfer.TRAINING_RANGES.items():
        values = [t[key] for t in tasks]
        assert all(low <= v <= high for v in values)
        assert np.std(values) > 0.1 * (high - low), f"{key} does not vary: {values}"


def test_env_config_reaches_the_cli_as_given():
    for config in (transfer.randomised_env_config(), transfer.pinned_env_config(transfer.task(transfer.SHIFTED))):
        parsed = parse_assignments(transfer.env_config_args(config), flag="--env-config")
        assert parsed == {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def test_evaluation_on_a_held_out_task_plays_its_physics():
    """A fixed policy's return on the pinned nominal task equals CartPole-v1's, and on a longer pole it differs."""
    def always_right(obs):
        return np.ones(len(obs), dtype=np.int64)

    seeds = transfer.eval_seeds(0, 5)
    nominal = greedy_return_mean(always_right, transfer.RANDOM_ENV, seeds=seeds,
                                 env_config=transfer.pinned_env_config(transfer.NOMINAL_TASK))
    assert nominal == greedy_return_mean(always_right, transfer.NOMINAL_ENV, seeds=seeds)
    # A longer pole falls more slowly: pushing one way keeps it up longer.
    longer = greedy_return_mean(always_right, transfer.RANDOM_ENV, seeds=seeds,
                                env_config=transfer.pinned_env_config(transfer.task(transfer.HELD_OUT["longer pole"])))
    assert longer > nominal


def fake_results() -> dict:
    names = [transfer.NOMINAL, *transfer.HELD_OUT, transfer.FT]

    def dr_run(contender: str, seed: int, level: float) -> dict:
        returns = {name: level + i for i, name in enumerate(names)}
        return {"contender": contender, "group": {"experiment": transfer.DR}, "seed": seed, "reached": True,
                "steps_to_target": 10_000, "wall_s_to_target": 30.0, "env_steps": 20_000, "env_steps_per_s": 300.0,
                "setup_s": 10.0, "points": [{"env_steps": 10_000, "wall_s": 30.0, "eval_return": 500.0}],
                "extra": {"returns": {"final": returns, "best": returns}}}

    def ft_run(contender: str, seed: int, steps: int | None) -> dict:
        return {"contender": contender, "group": {"experiment": transfer.FT}, "seed": seed,
                "reached": steps is not None, "steps_to_target": steps, "wall_s_to_target": steps and steps / 300,
                "env_steps": steps or 20_000, "env_steps_per_s": 300.0, "setup_s": 10.0,
                "points": [{"env_steps": steps or 20_000, "wall_s": 60.0, "eval_return": 480.0 if steps else 200.0}],
                "extra": {"final_eval_return": 480.0 if steps else 200.0}}

    args = transfer.harness.runner.parser(transfer.BENCHMARK).parse_args([])
    plan = transfer.plan(args)
    runs = []
    for seed in (0, 1):
        runs += [dr_run("nominal", seed, 100.0), dr_run("randomised", seed, 150.0 - 60 * seed),
                 ft_run("finetune", seed, 3000), ft_run("scratch", seed, None if seed else 20_000)]
    return {"benchmark": "transfer", "machine": {}, "settings": plan.settings, "target": plan.target,
            "reference": plan.reference, "contenders": [c.to_dict() for c in plan.contenders], "runs": runs}


def test_report_gives_the_margin_per_task_and_seed(tmp_path):
    results = fake_results()
    text = transfer.render(results)
    held_out_mean_nominal = 100.0 + np.mean(range(1, 1 + len(transfer.HELD_OUT)))
    # Seed 0: randomised 50 ahead on every task; seed 1: 10 behind. Mean margin +20, one seed of two ahead.
    assert "| **held-out mean** | mean of the 5 above |  | " f"{held_out_mean_nominal:,.1f} (" in text
    assert "| 20.0 (-10.0–50.0) | 1/2 |" in text
    assert "| final | s1 |" in text and "| -10.0 |" in text
    assert "nominal, never (last 200.0)" not in text and "s1: never (last 200.0)" in text
    assert "none (inside)" in text
    for name, writer in transfer.BENCHMARK.plots.items():
        assert writer(results, tmp_path / name), name


def test_held_out_names_are_valid_mlflow_param_keys():
    """The harness logs settings/held_out/<name>/<key> as MLflow params; a comma in a name made MLflow refuse the run."""
    import re

    for name in transfer.HELD_OUT:
        assert re.fullmatch(r"[\w\-. :/]+", f"settings/held_out/{name}/gravity"), name


def test_resume_hands_a_kept_nominal_runs_checkpoint_to_fine_tuning_or_runs_it_again(tmp_path):
    checkpoints: dict[int, str] = {}
    kept = {"contender": "nominal", "seed": 3, "extra": {"checkpoint": str(tmp_path / "last"),
                                                        "best_checkpoint": str(tmp_path)}}
    assert transfer.resumed_run(checkpoints, kept) is None and checkpoints == {3: str(tmp_path)}
    gone = {"contender": "nominal", "seed": 4, "extra": {"checkpoint": str(tmp_path / "gone")}}
    assert "is gone" in transfer.resumed_run(checkpoints, gone) and 4 not in checkpoints
    assert transfer.resumed_run(checkpoints, {"contender": "finetune", "seed": 4, "extra": {}}) is None
