"""benchmarks/mountain_car.py without training: the contenders, the flags, the flag and -150 bookkeeping, the report.

MountainCar-v0 ends an episode early only at the flag (terminated); otherwise
the 200-step time limit truncates it at a return of -200.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import harness  # noqa: E402
import mountain_car  # noqa: E402

# Contenders and flags -----------------------------------------------------------------------------------------------


def test_contenders_are_soft_q_with_and_without_each_bonus_and_ppo_with_and_without_rnd():
    assert mountain_car.algorithm("soft_q") == ("soft_q", {})
    assert mountain_car.algorithm("soft_q_count") == ("soft_q", {"bonus": {"type": "count", "beta": 1.0}})
    assert mountain_car.algorithm("soft_q_rnd") == ("soft_q", {"bonus": {"type": "rnd", "beta": 3000.0}})
    assert mountain_car.algorithm("ppo") == ("ppo", {})
    assert mountain_car.algorithm("ppo_rnd") == ("ppo", {"bonus": {"type": "rnd", "beta": 3000.0}})
    assert mountain_car.algorithm("ppo_rnd", rnd_beta=5.0)[1] == {"bonus": {"type": "rnd", "beta": 5.0}}
    assert mountain_car.algorithm("soft_q_count", count_beta=0.1)[1]["bonus"]["beta"] == 0.1
    assert set(mountain_car.CONTENDERS) == set(mountain_car.labels())
    assert mountain_car.AVAILABLE["ppo_rnd"] is harness.rllib.ppo_takes_rnd


def test_flags_make_a_seed_major_plan_with_the_defaults_of_the_issue():
    parser = harness.runner.parser(mountain_car.BENCHMARK)
    args = parser.parse_args([])
    assert (args.budget, args.seeds, args.contenders) == (100_000, 3, list(mountain_car.CONTENDERS))
    plan = mountain_car.plan(parser.parse_args(["--budget", "5000", "--seeds", "2", "--contenders", "ppo", "soft_q",
                                                "--rnd-beta", "10"]))
    assert [c.name for c in plan.contenders] == ["ppo", "soft_q"] and list(plan.seeds) == [0, 1]
    assert all(c.budget == 5000 and c.group == {} for c in plan.contenders)
    assert plan.target == -150.0 and plan.settings["rnd_beta"] == 10.0 and plan.settings["window"] == 100
    assert plan.settings["overrides"] == {"ppo": ("ppo", {}), "soft_q": ("soft_q", {})}
    labels = {c.name: c.label for c in mountain_car.plan(parser.parse_args(["--rnd-beta", "10"])).contenders}
    assert labels["ppo_rnd"] == "PPO + RND (beta 10)" and labels["soft_q_count"] == "soft_q + count (beta 1)"


@pytest.mark.parametrize("bad", [["--budget", "0"], ["--budget", "1e5"], ["--seeds", "0"], ["--seeds", "-1"],
                                 ["--contenders", "dqn"], ["--rnd-beta", "0"], ["--rnd-beta", "-1"],
                                 ["--rnd-beta", "x"], ["--count-beta", "0"]])
def test_flags_refuse_bad_values(bad):
    parser = harness.runner.parser(mountain_car.BENCHMARK)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(bad)
    assert exit_info.value.code == 2


# The episodes -----------------------------------------------------------------------------------------------------


def test_the_callback_logs_the_whole_return_and_whether_the_episode_reached_the_flag():
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    def chunk(rewards, terminated=False):
        return SimpleNamespace(get_return=lambda: float(sum(rewards)), is_terminated=terminated)

    logger = MetricsLogger()
    callback = mountain_car.FinishedEpisodes()
    callback.on_episode_end(episode=chunk([-1.0] * 50, terminated=True), prev_episode_chunks=[chunk([-1.0] * 60)],
                            metrics_logger=logger, env_runner=None, env=None, env_index=0)
    callback.on_episode_end(episode=chunk([-1.0] * 200), prev_episode_chunks=None, metrics_logger=logger,
                            env_runner=None, env=None, env_index=0)
    result = {"env_runners": {mountain_car.EPISODES: logger.peek(mountain_car.EPISODES)}}
    assert mountain_car.finished_episodes(result) == [(-110.0, True), (-200.0, False)]


def mountain_car_episode(policy, *, seed: int, cut_after: int):
    """One MountainCar-v0 episode as RLlib's EnvRunner builds it: a chunk cut after `cut_after` steps, then the rest."""
    import gymnasium as gym
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    env = gym.make(mountain_car.ENV_ID)
    chunk = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
    obs, info = env.reset(seed=seed)
    chunk.add_env_reset(observation=obs, infos=info)
    chunks, t, done = [], 0, False
    while not done:
        if t == cut_after:
            chunks.append(chunk)
            chunk = chunk.cut()
        action = policy(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        chunk.add_env_step(observation=obs, action=action, reward=reward, infos=info, terminated=terminated,
                           truncated=truncated)
        t, done = t + 1, terminated or truncated
    return chunks, chunk, t


@pytest.mark.parametrize("policy, flag", [
    (lambda obs: 2 if obs[1] >= 0 else 0, True),  # push along the velocity: pumps energy, reaches the flag
    (lambda obs: 1, False),                       # no push: runs out at the time limit
])
def test_the_callback_on_real_mountain_car_episodes(policy, flag):
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    chunks, last, steps = mountain_car_episode(policy, seed=0, cut_after=50)
    assert (steps < mountain_car.TIME_LIMIT) == flag and last.is_terminated == flag
    logger = MetricsLogger()
    mountain_car.FinishedEpisodes().on_episode_end(episode=last, prev_episode_chunks=chunks, metrics_logger=logger,
                                                   env_runner=None, env=None, env_index=0)
    result = {"env_runners": {mountain_car.EPISODES: logger.peek(mountain_car.EPISODES)}}
    assert mountain_car.finished_episodes(result) == [(-float(steps), flag)]


def test_finished_episodes_reads_an_iteration_without_episodes_and_a_single_unwrapped_one():
    assert mountain_car.finished_episodes({"env_runners": {}}) == []
    assert mountain_car.finished_episodes({"env_runners": {mountain_car.EPISODES: math.nan}}) == []
    assert mountain_car.finished_episodes({"env_runners": {mountain_car.EPISODES: [-120.0, True]}}) == [(-120.0, True)]


def result_of(episodes, **extra) -> dict:
    return {"env_runners": {mountain_car.EPISODES: [list(e) for e in episodes], **extra}}


def test_the_mean_waits_for_100_episodes_and_is_that_of_the_last_100():
    log = mountain_car.EpisodeLog()
    point = log(result_of([(-200.0, False)] * 99))
    assert point == {"episodes": 99, "flag_episodes": 0, "return_mean_100": None}
    point = log(result_of([(-100.0, True)], episode_return_mean=-199.0))
    assert point["return_mean_100"] == pytest.approx((99 * -200 - 100) / 100) and point["flag_episodes"] == 1
    assert point["rllib_return_mean"] == -199.0 and log.first_flag_episode == 100
    point = log(result_of([(-100.0, True)] * 60))  # the last 100: 39 at -200, 61 at -100
    assert point["return_mean_100"] == pytest.approx((39 * -200 + 61 * -100) / 100)
    assert point["episodes"] == 160 and point["flag_episodes"] == 61


def test_a_point_keeps_the_bonus_figures_and_drops_nan():
    log = mountain_car.EpisodeLog()
    result = {**result_of([]), "bonus": {"intrinsic_reward_mean": 0.07, "cells_visited": 28, "x": math.nan}}
    result["env_runners"]["episode_return_mean"] = math.nan
    point = log(result)
    assert point["bonus_intrinsic_reward_mean"] == 0.07 and point["bonus_cells_visited"] == 28.0
    assert "bonus_x" not in point and "rllib_return_mean" not in point


def points_of(sequence, steps_per_iteration: int = 1000) -> list[dict]:
    """Points after each iteration of hand-made episodes: `sequence` lists each iteration's episodes."""
    log = mountain_car.EpisodeLog()
    return [{"env_steps": (i + 1) * steps_per_iteration, "wall_s": float(i + 1), "eval_return": None,
             **log(result_of(episodes))} for i, episodes in enumerate(sequence)]


def run_of(points, budget: int, *, seed: int = 0, contender: str = "soft_q") -> dict:
    rec = harness.Recorder(contender=contender, seed=seed, budget=budget, target=mountain_car.THRESHOLD,
                           criterion=lambda p: mountain_car.above_threshold(p, budget=budget), quiet=True)
    for p in points:
        rec.record(p.pop("env_steps"), **{k: v for k, v in p.items() if k != "eval_return"})
    rec.stop()  # no clock: the points carry their wall_s
    return rec.to_dict()


TIMEOUT, FLAG = (-200.0, False), (-110.0, True)
# Iterations of 5 episodes: the 5th iteration's last episode reaches the flag, the others of the first 20
# iterations (100 episodes) time out; from the 21st iteration on every episode reaches the flag.
SEQUENCE = [[TIMEOUT] * 5] * 4 + [[TIMEOUT] * 4 + [FLAG]] + [[TIMEOUT] * 5] * 15 + [[FLAG] * 5] * 40


def test_first_flag_and_the_threshold_on_a_hand_made_run():
    points = points_of(SEQUENCE)
    run = run_of([dict(p) for p in points], budget=100_000)
    assert mountain_car.first_flag_steps(run) == 5000  # the 5th iteration
    # The mean of the last 100 is above -150 once k of them are at -110: (100 - k) x -200 + k x -110 > -15,000
    # for k >= 56. After iteration 20 + j (j >= 5) k = 5j: j = 12, the 32nd iteration (the 5th's flag is gone).
    first = next(i for i, p in enumerate(points) if p["return_mean_100"] is not None and p["return_mean_100"] > -150)
    assert first == 31 and run["steps_to_target"] == 32_000 and run["reached"]
    assert mountain_car.threshold_steps(run) == 32_000


def test_figures_after_the_budget_do_not_count():
    run = run_of([dict(p) for p in points_of(SEQUENCE)], budget=4_500)
    assert mountain_car.first_flag_steps(run) is None and not run["reached"]
    run = run_of([dict(p) for p in points_of(SEQUENCE)], budget=31_999)
    assert mountain_car.first_flag_steps(run) == 5000 and run["steps_to_target"] is None


# The report ---------------------------------------------------------------------------------------------------------


def run(contender: str, seed: int, flag_at: int | None, mean_at: int | None, *, error: str | None = None) -> dict:
    last = 100_000 if mean_at is None else mean_at  # a run stops at a mean above -150
    points = [{"env_steps": s, "wall_s": s / 500, "eval_return": None, "episodes": s // 150,
               "flag_episodes": 0 if flag_at is None or s < flag_at else 1 + (s - flag_at) // 200,
               "return_mean_100": -140.0 if mean_at is not None and s >= mean_at else (-190.0 if s >= 20_000 else None)}
              for s in range(4000, last + 1, 4000)]
    return {"contender": contender, "group": {}, "seed": seed, "budget": 100_000, "target": -150.0,
            "steps_to_target": mean_at, "wall_s_to_target": None if mean_at is None else mean_at / 500,
            "reached": mean_at is not None, "env_steps": points[-1]["env_steps"], "train_wall_s": last / 500,
            "env_steps_per_s": 500.0 + seed, "setup_s": 1.0, "error": error, "points": points,
            "extra": {"first_flag_episode": None if flag_at is None else flag_at // 150}}


def results_of(runs: list[dict]) -> dict:
    names = mountain_car.labels()
    return {"benchmark": "mountain_car", "target": -150.0, "reference": None, "status": "finished",
            "command": ["benchmarks/mountain_car.py", "--seeds", "3", "--out", "/tmp/mc dir"],
            "settings": {"budget_env_steps": 100_000, "threshold": -150.0, "window": 100},
            "contenders": [{"name": n, "label": names[n], "budget": 100_000, "group": {}}
                           for n in ("soft_q", "soft_q_count")],
            "machine": {}, "timings": {}, "runs": runs}


def test_render_gives_k_of_n_medians_and_per_seed_figures_for_both_criteria():
    runs = [run("soft_q", 0, None, None), run("soft_q", 1, 48_000, None), run("soft_q", 2, None, None),
            run("soft_q_count", 0, 8000, 40_000), run("soft_q_count", 1, 12_000, None),
            run("soft_q_count", 2, 4000, 28_000)]
    md = mountain_car.render(results_of(runs))
    # soft_q: its median run never reached the flag; its max is never as well.
    assert ("| soft_q (no bonus) | 1/3 | never (48,000–never) | never; 48,000; never | 0/3 | never | "
            "never; never; never | 501 | 4,000 |") in md
    assert ("| soft_q + count (beta 1) | 3/3 | 8,000 (4,000–12,000) | 8,000; 12,000; 4,000 | 2/3 | "
            "40,000 (28,000–never) | 40,000; never; 28,000 | 501 | 4,000 |") in md
    assert "| soft_q + count (beta 1) | 0 | 266 | 161 | 53 | -140.0 | 40,000 | 500 |  |" in md
    assert "Command: `python benchmarks/mountain_car.py --seeds 3 --out '/tmp/mc dir'`" in md
    assert "Budget per run: 100,000 env steps" in md


def test_render_marks_a_failed_run_and_rerenders_from_json(tmp_path):
    runs = [run("soft_q", 0, None, None), run("soft_q", 1, None, None, error="RuntimeError: boom")]
    results = results_of(runs)
    md = mountain_car.render(results)
    assert "| soft_q (no bonus) | 0/2 | never | never; error |" in md
    assert "| soft_q (no bonus) | 1 | 666 | 0 | — | -190.0 | 100,000 | 501 | error |" in md
    assert "- soft_q seed 1 failed: RuntimeError: boom" in md
    path = tmp_path / "results.json"
    harness.runner.write_json(path, results)
    assert harness.main(mountain_car.BENCHMARK, ["--from-json", str(path)]) == 0
    assert (tmp_path / "results.md").read_text() == md
