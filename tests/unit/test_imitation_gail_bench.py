"""benchmarks/imitation_gail.py without training: the side script's JSON lines, the 90% criterion, the skip,
the --env flag and the Pendulum settings.

Needs no Ray cluster (the Pendulum settings are checked on configs that are
built, not run) and no `.venv-imitation`, except the equivalence checks of the
side venv's CartPole and Pendulum against ours, which run the side scripts'
`rollout` in `.venv-imitation` and are skipped where that venv is missing.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import harness  # noqa: E402
import imitation_gail as bench  # noqa: E402

SIDE = BENCHMARKS / "imitation_side"


def recorder(target: float | None = 450.0, budget: int = 1_000_000) -> harness.Recorder:
    return harness.Recorder(contender="imitation_gail", seed=0, budget=budget, target=target, eval_every=4000,
                            quiet=True)


# The side script's JSON lines ------------------------------------------------------------------------------


def test_an_event_line_is_parsed_and_everything_else_is_not():
    line = json.dumps({"event": "eval", "round": 1, "env_steps": 16384, "wall_s": 7.1, "eval_return": 8.3})
    assert bench.parse_side_line(line + "\n") == json.loads(line)
    for other in ("", "\n", "round:  50%|#####     | 1/2 [00:07<00:07,  7.29s/it]", "{not json", "[1, 2]",
                  json.dumps({"round": 1}), json.dumps({"event": 3}), "Using cpu device"):
        assert bench.parse_side_line(other) is None, other


def side_run(events: list[dict], target: float = 450.0) -> harness.Recorder:
    rec = recorder(target)
    done = [bench.apply_side_event(rec, e) for e in events]
    assert done == [e["event"] == "done" for e in events]
    return rec


SETUP = {"event": "setup", "setup_s": 2.0, "import_s": 3.8, "settings": {"n_envs": 8},
         "versions": {"imitation": "1.0.1"}, "demos": {"episodes": 20}}


def test_the_side_runs_events_become_the_runs_points_and_totals():
    rec = side_run([
        SETUP,
        {"event": "eval", "round": 1, "env_steps": 16384, "wall_s": 7.0, "eval_return": 8.3, "eval_s": 0.2},
        {"event": "eval", "round": 2, "env_steps": 32768, "wall_s": 13.0, "eval_return": 460.0, "eval_s": 0.2},
        {"event": "eval", "round": 3, "env_steps": 49152, "wall_s": 19.0, "eval_return": 300.0, "eval_s": 0.2},
        {"event": "done", "env_steps": 49152, "wall_s": 19.5, "rounds": 3, "reached": True, "eval_s": 0.6},
    ])
    run = rec.to_dict()
    assert (run["steps_to_target"], run["wall_s_to_target"], run["reached"]) == (32768, 13.0, True)
    assert (run["env_steps"], run["train_wall_s"], run["setup_s"], run["eval_s"]) == (49152, 19.5, 2.0, 0.6)
    assert run["env_steps_per_s"] == pytest.approx(49152 / 19.5)
    assert [p["round"] for p in run["points"]] == [1, 2, 3]
    assert run["extra"]["imitation_versions"] == {"imitation": "1.0.1"}
    assert run["extra"]["rounds"] == 3
    assert (bench.best_return(run), bench.final_return(run)) == (460.0, 300.0)


def test_a_side_run_that_never_gets_there_is_not_reached():
    rec = side_run([SETUP, {"event": "eval", "round": 1, "env_steps": 16384, "wall_s": 7.0, "eval_return": 449.9},
                    {"event": "done", "env_steps": 16384, "wall_s": 7.0, "rounds": 1, "reached": False}])
    run = rec.to_dict()
    assert (run["reached"], run["steps_to_target"], run["wall_s_to_target"]) == (False, None, None)


def test_the_side_command_carries_the_evaluation_seeds_target_and_budget(tmp_path):
    cmd = bench.side_command(demos=tmp_path, seed=2, budget=1_000_000, target=450.0, eval_episodes=3,
                             full_budget=True, python=Path("/x/python"))
    assert cmd[:3] == ["/x/python", str(bench.SIDE_SCRIPT), "train"]
    assert cmd[cmd.index("--eval-seeds") + 1] == "1000200,1000201,1000202"
    assert (cmd[cmd.index("--budget") + 1], float(cmd[cmd.index("--target") + 1])) == ("1000000", 450.0)
    assert "--full-budget" in cmd
    assert "--full-budget" not in bench.side_command(demos=tmp_path, seed=0, budget=10, target=None,
                                                     eval_episodes=1, full_budget=False)


# The 90% criterion ------------------------------------------------------------------------------------------


def test_the_target_is_90_percent_of_the_experts_mean_return():
    assert bench.TARGET_FRACTION == 0.9
    assert bench.target_of(500.0) == pytest.approx(450.0)
    assert bench.target_of(200.0, 0.5) == pytest.approx(100.0)


def test_a_point_reaches_the_target_at_90_percent_not_below():
    target = bench.target_of(500.0)
    points = [{"env_steps": 4000, "wall_s": 1.0, "eval_return": 449.99},
              {"env_steps": 8000, "wall_s": 2.0, "eval_return": 450.0},
              {"env_steps": 12000, "wall_s": 3.0, "eval_return": 500.0}]
    assert harness.steps_to_target(points, target) == 8000
    assert harness.wall_s_to_target(points, target) == 2.0
    assert harness.steps_to_target(points[:1], target) is None


def test_evaluation_seeds_are_the_same_for_every_contender_and_no_training_seed():
    assert bench.eval_seeds(0) == list(range(1_000_000, 1_000_010))
    assert bench.eval_seeds(1, 3) == [1_000_100, 1_000_101, 1_000_102]


# The skip ----------------------------------------------------------------------------------------------------


def test_imitation_is_skipped_without_its_venv_naming_make_imitation_env(tmp_path, monkeypatch):
    reason = bench.imitation_missing(tmp_path / "no-venv" / "bin" / "python")
    assert reason is not None and "make imitation-env" in reason
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert bench.imitation_missing(python) is None

    monkeypatch.setattr(bench, "IMITATION_PYTHON", tmp_path / "missing" / "python")
    args = argparse.Namespace(imitation_budget=16384, budget=8000, bc_iters=2, eval_episodes=3, full_budget=False)
    contenders = [bench.contender(name, args, tmp_path, {"return_mean": 500.0}, 450.0)
                  for name in ("gail", "imitation_gail")]
    plan = harness.Plan(contenders=contenders, seeds=[0], settings={}, target=450.0, eval_every=4000)
    results = {"skipped": {}}
    from harness.runner import available_contenders

    assert [c.name for c in available_contenders(plan, results)] == ["gail"]
    assert "make imitation-env" in results["skipped"]["imitation_gail"]
    assert any("imitation_gail skipped" in line and "make imitation-env" in line
               for line in harness.notes(results))


def test_smoke_shrinks_the_budgets_and_writes_elsewhere():
    args = argparse.Namespace(smoke=True, budget=400_000, imitation_budget=1_000_000, bc_iters=20, eval_episodes=10,
                              out=None)
    bench.smoke_defaults(args)
    assert (args.budget, args.imitation_budget, args.bc_iters) == (8000, 16384, 2)
    assert args.out is not None and Path(args.out).resolve() != bench.DEFAULT_OUT.resolve()


def parse(argv: list[str]) -> argparse.Namespace:
    return harness.runner.parser(bench.BENCHMARK).parse_args(argv)


def test_the_defaults_are_the_briefs_budgets():
    args = parse([])
    task = bench.task_defaults(args)
    assert task.env_id == args.env == "rlfrontier/CartPoleFixedHorizon-v0"
    assert (args.budget, args.imitation_budget, args.eval_every, args.seeds) == (400_000, 1_000_000, 4000, 1)
    assert args.algos == ["expert", "bc", "gail", "airl", "imitation_gail"]  # as before --env: no random row
    assert args.out is None  # the harness's default_out: benchmarks/results/imitation_gail
    assert bench.rllib_settings("gail", task) == bench.rllib_settings("bc", task) == {}  # the registry's


def test_pendulum_has_its_own_defaults_and_output_folder():
    args = parse(["--env", "Pendulum-v1"])
    task = bench.task_defaults(args)
    assert task.env_id == "Pendulum-v1" and task.from_random and task.expert == "pendulum"
    assert (args.budget, args.imitation_budget, args.eval_every) == (500_000, 1_000_000, 4096)
    assert args.algos == list(bench.CONTENDERS) and "random" in args.algos
    assert args.out == bench.DEFAULT_OUT.with_name("imitation_gail_pendulum")
    assert task.side_script == SIDE / "gail_pendulum.py" and task.side_script.is_file()
    # Given flags win over the task's defaults.
    args = parse(["--env", "Pendulum-v1", "--budget", "1000", "--algos", "gail", "--eval-every", "2048",
                  "--out", "/tmp/x"])
    bench.task_defaults(args)
    assert (args.budget, args.algos, args.eval_every, args.out) == (1000, ["gail"], 2048, Path("/tmp/x"))


@pytest.mark.parametrize("argv", [["--env", "CartPole-v1"], ["--env", "pendulum"], ["--env"],
                                  ["--algos", "gail,sac"]])
def test_a_bad_env_or_contender_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    assert "--env" in capsys.readouterr().err or "--algos" in argv


def test_the_side_scripts_import_neither_ray_nor_rlfrontier():
    paths = sorted(SIDE.glob("*.py"))
    assert {p.name for p in paths} >= {"gail_runner.py", "gail_cartpole.py", "gail_pendulum.py", "fixed_cartpole.py"}
    for path in paths:
        tree = ast.parse(path.read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {n for n in names if n.split(".")[0] in ("ray", "rlfrontier")}, path


# The report ---------------------------------------------------------------------------------------------------


def recorded_run(contender: str, returns: list[float], steps: list[int], target: float = 450.0) -> dict:
    """A finished run's dict with these evaluations, its training clock at 1 ms per env step."""
    rec = harness.Recorder(contender=contender, seed=0, budget=400_000, target=target, quiet=True)
    for s, r in zip(steps, returns):
        rec.record(s, eval_return=r, wall_s=s / 1000)
    rec.stop(steps[-1])
    rec.train_wall_s = steps[-1] / 1000
    return rec.to_dict()


def test_render_shows_best_and_final_returns_and_the_skip():
    run = recorded_run
    results = {
        "benchmark": "imitation_gail", "machine": {}, "target": 450.0, "eval_every": 4000,
        "reference": "imitation_gail", "skipped": {"airl": "not here"}, "timings": {},
        "settings": {"budget": 400_000, "imitation_budget": 1_000_000, "bc_iters": 20, "demo_episodes": 20,
                     "expert_return_mean": 500.0, "target_fraction": 0.9, "eval_episodes": 10, "full_budget": True},
        "contenders": [{"name": n, "label": bench.LABELS[n], "budget": 0, "group": {}}
                       for n in ("gail", "imitation_gail")],
        "runs": [run("gail", [10.0, 470.0, 420.0], [4000, 8000, 12000]),
                 run("imitation_gail", [8.0, 455.0], [16384, 32768])],
    }
    md = bench.render(results)
    assert "| gail (rlfrontier, RLlib PPO) | 1/1 | 8,000 | 8.0 | 470.0 | 420.0 | 12,000 |" in md
    assert "s0: 455.0 / 455.0" in md
    assert "airl skipped: not here" in md


# The side venv's CartPole against ours ---------------------------------------------------------------------------


@pytest.mark.skipif(not bench.IMITATION_PYTHON.is_file(),
                    reason=".venv-imitation is missing (`make imitation-env` creates it)")
def test_the_side_venvs_cartpole_plays_like_ours_step_for_step():
    from rlfrontier.envs.cartpole_fixed import CartPoleFixedHorizonEnv

    horizon = 250
    # Random play, then pushing right until the cart meets its stop and the pole rests on its own.
    actions = "".join(map(str, np.random.default_rng(3).integers(2, size=100))) + "1" * (horizon - 100)
    out = subprocess.run([str(bench.IMITATION_PYTHON), str(SIDE / "gail_cartpole.py"), "rollout", "--seed", "7",
                          "--horizon", str(horizon), "--actions", ",".join(actions)],
                         capture_output=True, text=True, timeout=120, check=True)
    side = bench.parse_side_line(out.stdout.strip().splitlines()[-1])
    assert side is not None and side["event"] == "rollout"

    env = CartPoleFixedHorizonEnv(horizon=horizon)
    obs, _ = env.reset(seed=7)
    observations, rewards, terminated, truncated = [obs], [], [], []
    for a in actions:
        obs, reward, term, trunc, _ = env.step(int(a))
        observations.append(obs)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
    ours = np.array(observations, dtype=np.float32)
    np.testing.assert_array_equal(np.array(side["observations"], dtype=np.float32), ours)
    assert side["rewards"] == rewards
    assert side["terminated"] == terminated == [False] * horizon
    assert side["truncated"] == truncated == [False] * (horizon - 1) + [True]
    # The rollout did reach the stops, where the two envs differ from CartPole.
    assert ours[:, 0].max() == pytest.approx(4.8) and np.abs(ours[:, 2]).max() == pytest.approx(np.radians(24))
    assert 0 < sum(rewards) < horizon


# Pendulum: the target from a random policy's return -----------------------------------------------------------


def test_pendulums_target_is_90_percent_of_the_way_from_random_to_the_expert():
    # Negative returns: 90% of the expert's -140 (-126) would ask for more than the expert does.
    assert bench.target_of(-140.0, random_return=-1200.0) == pytest.approx(-1200.0 + 0.9 * 1060.0)  # -246
    assert bench.target_of(-140.0, 0.5, random_return=-1200.0) == pytest.approx(-670.0)
    assert bench.target_of(-140.0, 1.0, random_return=-1200.0) == pytest.approx(-140.0)
    assert bench.target_of(-140.0, 0.0, random_return=-1200.0) == pytest.approx(-1200.0)
    # CartPole's rule is unchanged: without a random return, from 0.
    assert bench.target_of(500.0) == bench.target_of(500.0, random_return=0.0) == pytest.approx(450.0)
    target = bench.target_of(-140.0, random_return=-1200.0)
    points = [{"env_steps": 4096, "wall_s": 1.0, "eval_return": -246.01},
              {"env_steps": 8192, "wall_s": 2.0, "eval_return": -246.0},
              {"env_steps": 12288, "wall_s": 3.0, "eval_return": -150.0}]
    assert harness.steps_to_target(points, target) == 8192


def test_the_random_reference_is_measured_on_the_evaluation_seeds_reproducibly():
    first = bench.random_return("Pendulum-v1", 0, episodes=2)
    assert first == bench.random_return("Pendulum-v1", 0, episodes=2)  # seeded: the plan's and the row's agree
    assert first != bench.random_return("Pendulum-v1", 1, episodes=2)
    assert -2000.0 < first < -500.0  # random torques leave the pendulum hanging: far below the expert's -140


def test_box_evaluation_plays_each_seed_once_as_gymnasium_does():
    import gymnasium as gym

    seeds = bench.eval_seeds(0, 3)
    torque = np.array([0.7], dtype=np.float32)
    want = []
    for s in seeds:
        env = gym.make("Pendulum-v1")
        env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(torque)
            total, done = total + float(reward), terminated or truncated
        want.append(total)
    got = bench.greedy_return_mean(lambda obs: np.tile(torque, (len(obs), 1)), seeds, "Pendulum-v1")
    assert got == pytest.approx(float(np.mean(want)), rel=1e-9)


# Pendulum: the contenders' settings ------------------------------------------------------------------------------


def test_gail_and_airl_on_pendulum_take_rllibs_tuned_pendulum_ppo_in_torque_units(tmp_path):
    from rlfrontier import demos
    from rlfrontier.configure import build_config

    demos.record(out=tmp_path / "demos", env_id="Pendulum-v1", episodes=2, scripted="pendulum", seed=0)
    task = bench.TASKS["Pendulum-v1"]
    assert bench.rllib_settings("gail", task) == bench.rllib_settings("airl", task) == {
        "lr": 0.0002, "gamma": 0.95, "lambda_": 0.5, "train_batch_size_per_learner": 1024, "minibatch_size": 128,
        "num_epochs": 30, "vf_loss_coeff": 1.0, "model_config": {"fcnet_activation": "relu"}}
    for name in ("gail", "airl"):
        _, config, _ = build_config(algo=name, env="Pendulum-v1", seed=0, demos=str(tmp_path / "demos"),
                                    evaluation_interval=0, overrides=bench.rllib_settings(name, task),
                                    **bench.RESOURCES)
        assert (config.lr, config.gamma, config.lambda_, config.train_batch_size_per_learner,
                config.minibatch_size, config.num_epochs, config.vf_loss_coeff) == (
            0.0002, 0.95, 0.5, 1024, 128, 30, 1.0)
        assert config.normalize_actions  # RLlib's default: the demonstrated torques are rescaled to its units
        assert config.model_config["fcnet_activation"] == "relu"
        assert config.vf_clip_param == 10_000.0  # the adversarial default, for the learned reward
        assert (config.num_env_runners, config.num_envs_per_env_runner) == (0, 8)
    _, config, _ = build_config(algo="bc", env="Pendulum-v1", seed=0, demos=str(tmp_path / "demos"),
                                evaluation_interval=0, overrides=bench.rllib_settings("bc", task), **bench.RESOURCES)
    assert (config.normalize_actions, config.module_algorithm) == (True, "ppo")
    assert config.get_default_rl_module_spec().model_config["fcnet_activation"] == "relu"


def test_imitations_pendulum_settings_are_its_train_adversarial_defaults():
    sys.path.insert(0, str(SIDE))
    import gail_cartpole
    import gail_pendulum

    task = gail_pendulum.TASK
    assert (task.n_envs, task.horizon) == (8, 200)
    assert task.ppo_kwargs == {"n_steps": 256, "learning_rate": 3e-4, "batch_size": 64, "n_epochs": 10,
                               "ent_coef": 0.0}
    assert task.gail_kwargs == {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 2048,
                                "n_disc_updates_per_round": 4}
    # The benchmark's round sizes are the side's: n_steps per env x envs (SB3's default n_steps 2048 for CartPole).
    assert task.ppo_kwargs["n_steps"] * task.n_envs == bench.TASKS["Pendulum-v1"].round_steps
    assert 2048 * gail_cartpole.TASK.n_envs == bench.TASKS[bench.ENV_ID].round_steps
    assert gail_cartpole.TASK.gail_kwargs == {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 512,
                                              "n_disc_updates_per_round": 8}


def test_the_pendulum_side_command_runs_the_pendulum_script(tmp_path, monkeypatch):
    script = bench.TASKS["Pendulum-v1"].side_script
    cmd = bench.side_command(demos=tmp_path, seed=1, budget=999_424, target=-246.0, eval_episodes=2,
                             full_budget=False, python=Path("/x/python"), script=script)
    assert cmd[:3] == ["/x/python", str(script), "train"]
    assert float(cmd[cmd.index("--target") + 1]) == -246.0
    monkeypatch.setattr(bench, "IMITATION_PYTHON", tmp_path / "missing" / "python")
    args = argparse.Namespace(env="Pendulum-v1", imitation_budget=16384, budget=8000, bc_iters=2, eval_episodes=3,
                              full_budget=False)
    c = bench.contender("imitation_gail", args, tmp_path, {"return_mean": -140.0}, -246.0)
    assert "make imitation-env" in c.available()


def test_render_names_pendulums_target_rule_and_the_random_row():
    run = partial(recorded_run, target=-246.0)
    results = {
        "benchmark": "imitation_gail", "machine": {}, "target": -246.0, "eval_every": 4096,
        "reference": "imitation_gail", "skipped": {}, "timings": {},
        "settings": {"env": "Pendulum-v1", "budget": 500_000, "imitation_budget": 1_000_000, "bc_iters": 20,
                     "demo_episodes": 20, "expert_return_mean": -140.0, "random_return_mean": -1200.0,
                     "target_fraction": 0.9, "eval_episodes": 10, "full_budget": False,
                     "imitation_round_steps": 2048},
        "contenders": [{"name": n, "label": bench.LABELS[n], "budget": 0, "group": {}}
                       for n in ("random", "gail", "imitation_gail")],
        "runs": [run("random", [-1200.0], [0]), run("gail", [-900.0, -240.0], [4096, 8192]),
                 run("imitation_gail", [-800.0, -230.0], [2048, 4096])],
    }
    md = bench.render(results)
    assert md.startswith("# Pendulum-v1:")
    assert "90% of the way from uniformly random actions' mean return on the evaluation episodes, -1200.0" in md
    assert "episodes of 200 steps" in md and "round of 2,048 env steps" in md
    assert "| uniformly random actions (reference) | 0/1 |" in md
    assert "| gail (rlfrontier, RLlib PPO) | 1/1 | 8,192 |" in md


@pytest.mark.skipif(not bench.IMITATION_PYTHON.is_file(),
                    reason=".venv-imitation is missing (`make imitation-env` creates it)")
def test_the_side_venvs_pendulum_plays_like_ours_step_for_step():
    import gymnasium as gym

    horizon = 200  # the whole episode: the truncation at gymnasium's max_episode_steps too
    # Torques inside and outside [-2, 2] (both envs clip them).
    actions = np.random.default_rng(5).uniform(-3.0, 3.0, size=horizon).round(3)
    out = subprocess.run([str(bench.IMITATION_PYTHON), str(SIDE / "gail_pendulum.py"), "rollout", "--seed", "11",
                          "--horizon", str(horizon), "--actions", ",".join(map(str, actions))],
                         capture_output=True, text=True, timeout=120, check=True)
    side = bench.parse_side_line(out.stdout.strip().splitlines()[-1])
    assert side is not None and side["event"] == "rollout"

    env = gym.make("Pendulum-v1")
    assert env.spec.max_episode_steps == horizon
    obs, _ = env.reset(seed=11)
    observations, rewards, terminated, truncated = [obs], [], [], []
    for a in actions:
        obs, reward, term, trunc, _ = env.step(np.array([a], dtype=np.float32))
        observations.append(obs)
        rewards.append(float(reward))
        terminated.append(term)
        truncated.append(trunc)
    np.testing.assert_array_equal(np.array(side["observations"], dtype=np.float32),
                                  np.array(observations, dtype=np.float32))
    assert side["rewards"] == rewards
    assert side["terminated"] == terminated == [False] * horizon
    assert side["truncated"] == truncated == [False] * (horizon - 1) + [True]
