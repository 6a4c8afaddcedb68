"""benchmarks/deep_sea.py without training: bsuite's bad-episode rule, its callback, the criterion, the report.

bsuite (bsuite/environments/deep_sea.py): an episode is bad when the agent
chooses left while on the diagonal (row == column); the run is solved at the
first episode where bad episodes / episodes < 0.9 (experiments/deep_sea/analysis.py; 0.8 before its 2022 fix).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import deep_sea  # noqa: E402
import deep_sea_scaling  # noqa: E402
import harness  # noqa: E402
from harness.rllib import with_callback  # noqa: E402

from rlfrontier.envs.deep_sea import DeepSeaEnv  # noqa: E402

SIZE = 4


@pytest.fixture
def env() -> DeepSeaEnv:
    return DeepSeaEnv(size=SIZE, mapping_seed=3)


def one_hot(row: int, column: int, size: int = SIZE) -> np.ndarray:
    obs = np.zeros(size * size, dtype=np.float32)
    obs[row * size + column] = 1.0
    return obs


def play(env: DeepSeaEnv, moves: str) -> tuple[list[np.ndarray], list[int]]:
    """Observations before each action and the actions, for moves 'R'/'L' in the env's own mapping."""
    obs, _ = env.reset()
    observations, actions = [], []
    for move in moves:
        info = env._info()
        right = env.right_action(info["row"], info["column"])
        action = right if move == "R" else 1 - right
        observations.append(obs)
        actions.append(action)
        obs, *_ = env.step(action)
    return observations, actions


def is_bad(env: DeepSeaEnv, observations, actions) -> bool:
    return deep_sea.bad_episode(observations, actions, size=env.size, right_action=env.right_action)


# The rule ------------------------------------------------------------------------------------------------------


def test_all_right_is_not_bad(env):
    assert not is_bad(env, *play(env, "RRRR"))


def test_left_on_the_diagonal_is_bad(env):
    assert is_bad(env, *play(env, "RRLL"))  # left at (2, 2)
    assert is_bad(env, *play(env, "LRRR"))  # left at (0, 0): the first cell is on the diagonal


def test_left_off_the_diagonal_is_not_bad(env):
    # A stochastic DeepSea's failed "right" at (0, 0) leaves the agent at (1, 0);
    # the lefts it then chooses are off the diagonal, and bsuite does not count them.
    right = env.right_action
    observations = [one_hot(0, 0), one_hot(1, 0), one_hot(2, 0), one_hot(3, 0)]
    actions = [right(0, 0), 1 - right(1, 0), 1 - right(2, 0), 1 - right(3, 0)]
    assert not is_bad(env, observations, actions)


def test_the_rule_uses_the_mapping_not_the_action_number():
    flipped = [DeepSeaEnv(size=SIZE, mapping_seed=s) for s in range(20)]
    env = next(e for e in flipped if e.right_action(0, 0) == 0)  # action 0 moves right at (0, 0)
    assert not is_bad(env, [one_hot(0, 0)], [0])
    assert is_bad(env, [one_hot(0, 0)], [1])
    # An N x N observation reads the same as its flat one-hot.
    assert is_bad(env, [one_hot(0, 0).reshape(SIZE, SIZE)], [1])


# The callback ------------------------------------------------------------------------------------------------------


def episode_chunks(env: DeepSeaEnv, moves: str, cut_after: int):
    """One DeepSea episode as RLlib's EnvRunner builds it: a chunk cut after `cut_after` steps, then the rest."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    _, actions = play(env, moves)
    chunk = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
    obs, info = env.reset()
    chunk.add_env_reset(observation=obs, infos=info)
    chunks = []
    for t, action in enumerate(actions):
        if t == cut_after:
            chunks.append(chunk)
            chunk = chunk.cut()
        obs, reward, terminated, truncated, info = env.step(action)
        chunk.add_env_step(observation=obs, action=action, reward=reward, infos=info, terminated=terminated,
                           truncated=truncated)
    return [*chunks, chunk]


def test_a_cut_episode_is_read_whole(env):
    observations, actions = play(env, "RRLR")
    chunks = episode_chunks(env, "RRLR", cut_after=2)
    assert len(chunks) == 2
    got_obs, got_actions = deep_sea.episode_steps(chunks)
    assert got_actions == actions
    assert [int(np.argmax(o)) for o in got_obs] == [int(np.argmax(o)) for o in observations]


@pytest.mark.parametrize("moves, bad", [("RRRR", 0), ("RRLL", 1), ("LLLL", 1)])
def test_the_callback_logs_the_lifetime_bad_count(env, moves, bad):
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    env_config = {"size": SIZE, "mapping_seed": 3}
    runner = SimpleNamespace(config=SimpleNamespace(env_config=env_config))
    logger = MetricsLogger()
    callback = deep_sea.BadEpisodes()
    *prev, last = episode_chunks(env, moves, cut_after=1)
    for _ in range(2):
        callback.on_episode_end(episode=last, prev_episode_chunks=prev, env_runner=runner, metrics_logger=logger,
                                env=None, env_index=0)
    assert logger.peek(deep_sea.NUM_BAD_EPISODES_LIFETIME) == 2 * bad


def test_the_callback_goes_after_the_algorithms_own():
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class Own(RLlibCallback):
        pass

    assert with_callback(RLlibCallback, deep_sea.BadEpisodes) == [deep_sea.BadEpisodes]
    assert with_callback(Own, deep_sea.BadEpisodes) == [Own, deep_sea.BadEpisodes]
    assert with_callback([Own], deep_sea.BadEpisodes) == [Own, deep_sea.BadEpisodes]


# The criterion -----------------------------------------------------------------------------------------------------


def test_solved_is_below_90_percent_bad_within_the_budget():
    """bsuite's find_solution(thresh=0.9) since its commit b26b429 (0.8 before)."""
    assert deep_sea.BAD_THRESHOLD == 0.9
    solved = lambda **p: deep_sea.solved(p, budget_episodes=1000)  # noqa: E731
    assert not solved(episodes=500, bad_episodes=450)  # exactly 0.9: not below
    assert solved(episodes=500, bad_episodes=449)
    assert not solved(episodes=1100, bad_episodes=0)  # beyond bsuite's episode budget
    assert not solved(episodes=0, bad_episodes=0)
    assert not deep_sea.solved({"episodes": 500, "bad_episodes": 420}, budget_episodes=1000, threshold=0.8)


def _kept(points: list[tuple[int, int]], *, reached: bool, target: float = 0.8) -> dict:
    """A kept run of size 10 with (episodes, bad episodes) points, judged by `target` when it ran."""
    pts = [{"env_steps": 10 * e, "wall_s": e / 100, "episodes": e, "bad_episodes": b} for e, b in points]
    return {"contender": "x", "group": {"size": 10}, "seed": 0, "target": target, "reached": reached,
            "steps_to_target": pts[-1]["env_steps"] if reached else None,
            "wall_s_to_target": pts[-1]["wall_s"] if reached else None, "points": pts, "extra": {}}


def test_resume_judges_kept_runs_by_the_current_threshold_from_their_points():
    rejudge = partial(deep_sea.rejudged, 1000, 0.9)
    # Solved by 0.8 at 300 episodes; below 0.9 already at 200: earlier, from the same points.
    run = _kept([(100, 100), (200, 170), (300, 230)], reached=True)
    assert rejudge(run) is None
    assert (run["reached"], run["steps_to_target"], run["wall_s_to_target"], run["target"]) == (True, 2000, 2.0, 0.9)
    # Never below 0.8 in its whole budget, below 0.9 at 1000: solved now.
    run = _kept([(500, 490), (1000, 880)], reached=False)
    assert rejudge(run) is None and run["reached"] and run["steps_to_target"] == 10_000
    # Never below 0.9: still not solved.
    run = _kept([(500, 490), (1000, 950)], reached=False)
    assert rejudge(run) is None and not run["reached"] and run["steps_to_target"] is None
    # Solved by a laxer threshold only: it stopped too early to tell, so it runs again, untouched.
    run = _kept([(100, 100), (200, 170)], reached=True, target=0.9)
    assert "0.9" in partial(deep_sea.rejudged, 1000, 0.8)(run) and run["target"] == 0.9
    # An implied failure runs again: the plan implies it again or runs it.
    implied = {**_kept([(100, 100)], reached=False), "points": [], "extra": {"implied": "not solved at N=10"}}
    assert "implied" in rejudge(implied)


def test_a_results_file_of_the_old_threshold_is_continued_not_refused():
    plan = deep_sea.plan(parse())
    fresh = {"benchmark": "deep_sea", "target": plan.target, "eval_every": None, "reference": plan.reference,
             "settings": plan.settings}
    old = {**fresh, "target": 0.8, "settings": {**plan.settings, "bad_threshold": 0.8,
                                                 "criterion": "bsuite: ... < 0.8"}}
    assert harness.runner.resume_mismatch(old, fresh, plan) is None
    other = {**old, "settings": {**old["settings"], "budget_episodes": 5}}
    assert "budget_episodes" in harness.runner.resume_mismatch(other, fresh, plan)


def test_measure_reads_the_lifetime_counts_and_keeps_them_through_an_iteration_without_episodes():
    rec = harness.Recorder(contender="x", seed=0, budget=100, quiet=True)
    count = deep_sea.BadEpisodeCount(rec)
    result = {"env_runners": {"num_episodes_lifetime": 50, deep_sea.NUM_BAD_EPISODES_LIFETIME: 45}}
    assert count(result) == {"episodes": 50, "bad_episodes": 45, "bad_fraction": 0.9}
    assert count({"env_runners": {}})["episodes"] == 50 and count.episodes({"env_runners": {}}) == 50


# Contenders and plan ------------------------------------------------------------------------------------------------


def test_contenders_are_the_issues_six_and_the_bonuses_baselines_built_through_the_registry():
    assert deep_sea.algorithm("soft_q", size=10, budget_episodes=100) == ("soft_q", {})  # the bonuses' baseline
    assert deep_sea.algorithm("soft_q_count", size=10, budget_episodes=100) == (
        "soft_q", {"bonus": {"type": "count", "beta": 1.0}})
    assert deep_sea.algorithm("soft_q_rnd", size=10, budget_episodes=100)[1] == {"bonus": {"type": "rnd", "beta": 2000.0}}
    assert deep_sea.algorithm("ppo", size=10, budget_episodes=100) == ("ppo", {})  # RND's baseline
    assert deep_sea.algorithm("ppo_rnd", size=10, budget_episodes=100) == (
        "ppo", {"bonus": {"type": "rnd", "beta": 2000.0}})
    algo, overrides = deep_sea.algorithm("eps_dqn", size=10, budget_episodes=100)
    assert algo == "boot_dqn" and overrides["epsilon"] == [[0, 1.0], [500, 0.05]]  # half of 100 x 10 env steps
    assert deep_sea.algorithm("boot_dqn_prior100", size=10, budget_episodes=100) == ("boot_dqn", {"prior_fan_in": 100})
    algo, overrides = deep_sea.algorithm("boot_dqn_bsuite", size=10, budget_episodes=100)
    assert algo == "boot_dqn" and overrides["num_heads"] == 20 and overrides["mask_prob"] == 1.0
    assert overrides["double_q"] is False and overrides["huber_delta"] is None and "prior_fan_in" not in overrides
    assert set(deep_sea.CONTENDERS) | set(deep_sea.ABLATIONS) | set(deep_sea.ADDITIONS) == set(deep_sea.LABELS)
    assert deep_sea.algorithm("boot_dqn_no_masks", size=10, budget_episodes=100) == ("boot_dqn", {"mask_prob": 1.0})


def test_each_ablation_puts_one_of_bsuites_settings_back_to_boot_dqns_default():
    from algorithms.boot_dqn.boot_dqn import BootDQNConfig

    defaults = BootDQNConfig()
    assert deep_sea.BOOT_DQN_DEFAULTS == {key: getattr(defaults, key) for key in deep_sea.BOOT_DQN_DEFAULTS}
    assert set(deep_sea.BOOT_DQN_DEFAULTS) == set(deep_sea.BSUITE_AGENT)
    for name, key in deep_sea.ABLATIONS.items():
        algo, overrides = deep_sea.algorithm(name, size=10, budget_episodes=100)
        differ = {k for k in overrides if overrides[k] != deep_sea.BSUITE_AGENT[k]}
        assert algo == "boot_dqn" and differ == {key} and overrides[key] == getattr(defaults, key)
    assert parse("--contenders", "bsuite_but_num_heads").contenders == ["bsuite_but_num_heads"]
    assert not set(parse().contenders) & {*deep_sea.ABLATIONS, *deep_sea.ADDITIONS}  # not run by default


def test_ppo_rnd_is_skipped_when_the_registry_says_ppo_takes_no_rnd(monkeypatch):
    from rlfrontier import registry

    spec = registry.get_algorithm("ppo")
    monkeypatch.setattr(registry, "get_algorithm", lambda name: SimpleNamespace(bonuses=("count",)))
    assert "no rnd" in deep_sea.ppo_takes_rnd()
    monkeypatch.setattr(registry, "get_algorithm", lambda name: SimpleNamespace(bonuses=("count", "rnd")))
    assert deep_sea.ppo_takes_rnd() is None
    assert spec.name == "ppo"


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    deep_sea.add_arguments(p)
    return p.parse_args(argv)


def test_plan_defaults_follow_the_issue_and_sizes_go_up():
    args = parse()
    assert (args.sizes, args.seeds, args.episodes) == ([10, 20, 30, 40], 3, 10_000)
    plan = deep_sea.plan(parse("--sizes", "20", "10", "--contenders", "boot_dqn", "eps_dqn"))
    assert [(c.name, c.group["size"], c.budget) for c in plan.contenders] == [
        ("boot_dqn", 10, 10_000), ("eps_dqn", 10, 10_000), ("boot_dqn", 20, 10_000), ("eps_dqn", 20, 10_000)]
    assert plan.implied_failure is not None and plan.target == 0.9
    assert deep_sea.plan(parse("--run-all-sizes")).implied_failure is None
    assert list(deep_sea.plan(parse("--seeds", "2", "--first-seed", "3")).seeds) == [3, 4]


# The report ----------------------------------------------------------------------------------------------------------


def run(contender: str, size: int, seed: int, solved_at: int | None, *, implied: str | None = None) -> dict:
    points = [] if implied else [{"env_steps": e * size, "wall_s": e / 10, "eval_return": None, "episodes": e,
                                  "bad_episodes": e - 1 if e != solved_at else int(0.7 * e)}
                                 for e in range(100, (solved_at or 1000) + 1, 100)]
    reached = solved_at is not None
    return {"contender": contender, "group": {"size": size}, "seed": seed, "budget": 1000, "target": 0.8,
            "steps_to_target": solved_at * size if reached else None, "wall_s_to_target": solved_at / 10 if reached
            else None, "reached": reached, "env_steps": None if implied else points[-1]["env_steps"],
            "train_wall_s": None if implied else points[-1]["wall_s"],
            "env_steps_per_s": None if implied else 10.0 * size, "setup_s": None if implied else 1.0,
            "error": None, "extra": {"implied": implied} if implied else {}, "points": points}


def results_of(runs: list[dict]) -> dict:
    return {"benchmark": "deep_sea", "target": 0.8, "reference": "boot_dqn", "status": "finished",
            "settings": {"budget_episodes": 1000, "bad_threshold": 0.8, "sizes": [4, 8, 16]},
            "contenders": [{"name": n, "label": n, "budget": 1000, "group": {"size": s}}
                           for s in (4, 8, 16) for n in ("boot_dqn", "eps_dqn")],
            "runs": runs}


RUNS = [
    # boot_dqn solves every size (100, 300, 900 episodes); eps_dqn's median run solves none.
    run("boot_dqn", 4, 0, 100), run("boot_dqn", 4, 1, 100), run("boot_dqn", 8, 0, 300), run("boot_dqn", 8, 1, 300),
    run("boot_dqn", 16, 0, 900), run("boot_dqn", 16, 1, 900),
    run("eps_dqn", 4, 0, 200), run("eps_dqn", 4, 1, None),
    run("eps_dqn", 8, 0, None), run("eps_dqn", 8, 1, None, implied="not solved at N=4"),
    run("eps_dqn", 16, 0, None, implied="not solved at N=8"), run("eps_dqn", 16, 1, None, implied="not solved at N=4"),
]


def test_render_tables_per_run_lines_and_slopes(tmp_path):
    results = results_of(RUNS)
    md = deep_sea.render(results)
    assert "| 4 | boot_dqn | 2/2 | 100 (100–100) |" in md
    assert "| 16 | eps_dqn | 0/2 (2 not run) | never |" in md
    assert "- eps_dqn (size=8): s0: never, s1: not run (not solved at N=4)" in md
    assert "3 runs not run and recorded as not reached" in md
    fit = deep_sea.fits(harness.summarize(results))
    expected = np.polyfit(np.log([4, 8, 16]), np.log([100, 300, 900]), 1)[0]
    assert fit["boot_dqn"].slope == pytest.approx(expected) and fit["boot_dqn"].points == 3
    assert fit["eps_dqn"] is None  # its median run solved no size (200 and never at N=4: median never)
    rate = np.polyfit([4, 8, 16], np.log([100, 300, 900]), 1)[0]
    assert deep_sea.exp_fits(harness.summarize(results))["boot_dqn"].rate == pytest.approx(rate)
    power_r2 = fit["boot_dqn"].r2
    assert f"| boot_dqn | {expected:.2f} | " in md and f" | {power_r2:.2f} | {rate:.3f} | " in md
    assert "| eps_dqn | — | — | — | — | — | 0 | fewer than 2 sizes solved by the median run: no fit |" in md
    assert deep_sea.plot(results, tmp_path / "plot.png") and (tmp_path / "plot.png").stat().st_size > 0


def test_episodes_to_solve_is_the_episode_count_at_the_solving_point():
    r = run("boot_dqn", 4, 0, 300)
    r["points"][2]["episodes"] = 301  # episodes that ended, not env steps // N
    assert deep_sea.episodes(r) == 301
    old = {"steps_to_target": 2000, "group": {"size": 10}, "points": []}  # the earlier greedy criterion's results
    assert deep_sea.episodes(old) == 200


def test_the_first_find_is_the_first_iteration_with_an_episode_that_was_not_bad(capsys):
    r = run("boot_dqn", 4, 0, 500)
    for p in r["points"][:2]:
        p["bad_episodes"] = p["episodes"]  # iterations 1-2: every episode bad
    assert deep_sea.first_find(r) == 300 and deep_sea.episodes(r) == 500
    never = run("eps_dqn", 4, 1, None)
    for p in never["points"]:
        p["bad_episodes"] = p["episodes"]
    assert deep_sea.first_find(never) is None
    assert deep_sea.first_find(run("eps_dqn", 8, 1, None, implied="not solved at N=4")) is None
    results = results_of([r, run("boot_dqn", 4, 1, 300), never])  # seed 1: found at 100, solved at 300
    stats = [deep_sea.first_find_stats(x) for x in harness.summarize(results)]
    assert [(x.median, x.min, x.max) for x in stats] == [(200, 100, 300), (None, None, None)]
    md = deep_sea.render(results)
    assert "episodes to the first find: median (min–max)" in md
    assert "| 4 | boot_dqn | 2/2 | 400 (300–500) | 40.0 (30.0–50.0) | 40 | 200 (100–300) | 100 |" in md
    scaling = deep_sea_scaling.render(deep_sea_scaling.pooled([results]))
    assert "| boot_dqn | 4 | 2/2 | 500, 300 | 400 | 300, 100 |" in scaling
    assert "| eps_dqn | 4 | 0/1 | never | never | never |" in scaling


def test_the_callback_builds_the_env_from_the_whole_env_config(env):
    import inspect

    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    if "stochastic" not in inspect.signature(DeepSeaEnv).parameters:
        pytest.skip("this DeepSeaEnv has no stochastic variant")
    runner = SimpleNamespace(config=SimpleNamespace(env_config={"size": SIZE, "mapping_seed": 3, "stochastic": True}))
    logger = MetricsLogger()
    callback = deep_sea.BadEpisodes()
    *prev, last = episode_chunks(env, "RRLL", cut_after=2)
    callback.on_episode_end(episode=last, prev_episode_chunks=prev, env_runner=runner, metrics_logger=logger,
                            env=None, env_index=0)
    assert callback._env.stochastic and logger.peek(deep_sea.NUM_BAD_EPISODES_LIFETIME) == 1


# deep_sea_scaling.py: several results files, one fit --------------------------------------------------------------


def test_scaling_pools_sizes_of_several_results_files_and_fits_them_all(tmp_path, capsys):

    first = results_of([r for r in RUNS if r["group"]["size"] != 8])
    later = results_of([run("boot_dqn", 8, 0, 300), run("boot_dqn", 8, 1, 500), run("boot_dqn", 32, 0, 2000),
                        run("boot_dqn", 32, 1, None)])
    later["contenders"] = [{"name": "boot_dqn", "label": "boot_dqn", "budget": 1000, "group": {"size": s}}
                           for s in (8, 32)]
    pool = deep_sea_scaling.pooled([first, later], contenders=["boot_dqn"])
    md = deep_sea_scaling.render(pool)
    # N = 8's median from the later file (300, 500: 400); N = 32's median run never solved: no point there.
    assert "| boot_dqn | 8 | 2/2 | 300, 500 | 400 |" in md and "| boot_dqn | 32 | 1/2 | 2,000, never | never |" in md
    slope = np.polyfit(np.log([4, 8, 16]), np.log([100, 400, 900]), 1)[0]
    assert f"| boot_dqn | {slope:.2f} | " in md and "3 (N = 4, 8, 16)" in md
    assert "eps_dqn" not in md

    paths = []
    for name, results in (("a", first), ("b", later)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(results))
    assert deep_sea_scaling.main([*map(str, paths)]) == 0
    assert "| eps_dqn | 4 | 1/2 | 200, never | never |" in capsys.readouterr().out


def test_scaling_refuses_results_judged_differently_or_the_same_run_twice(tmp_path, capsys):

    for field, value in (("bad_threshold", 0.9), ("budget_episodes", 2000)):
        other = results_of([run("boot_dqn", 32, 0, 2000)])
        other["settings"][field] = value
        with pytest.raises(deep_sea_scaling.Mismatch, match="judged differently"):
            deep_sea_scaling.pooled([results_of(RUNS), other])
    with pytest.raises(deep_sea_scaling.Mismatch, match="boot_dqn at N = 4 seed 0 is in two"):
        deep_sea_scaling.pooled([results_of(RUNS), results_of([run("boot_dqn", 4, 0, 200)])])
    with pytest.raises(deep_sea_scaling.Mismatch, match="no runs of soft_q"):
        deep_sea_scaling.pooled([results_of(RUNS)], contenders=["soft_q"])

    def written(name, content):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    running = {**results_of(RUNS), "status": "running"}
    for path, message in ((written("bad.json", "{"), "bad.json: "),
                          (written("list.json", "[1]"), "is not a benchmark harness results.json"),
                          (written("other.json", {**results_of(RUNS), "benchmark": "pearl"}), "holds 'pearl' results"),
                          (written("running.json", running), "is 'running', not finished")):
        assert deep_sea_scaling.main([path]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert deep_sea_scaling.main([written("running.json", running), "--allow-unfinished"]) == 0
    assert "running.json: running, 12 runs" in capsys.readouterr().out
