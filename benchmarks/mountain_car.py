#!/usr/bin/env python
"""MountainCar-v0 benchmark: env steps to the flag and to a mean return above -150, with and without a bonus (issue #8).

MountainCar-v0 is sparse: -1 every step, and the episode ends early only at the
flag (position >= 0.5, `terminated`); otherwise gymnasium's TimeLimit cuts it
at 200 steps (`truncated`, return -200). Contenders, each built by
`rlfrontier.configure.build_config` as `rlfrontier train ALGO --env
MountainCar-v0 --seed S [--bonus ...]` builds it (the registry's defaults,
RLlib's evaluation off):

  soft_q:       soft_q, no bonus;
  soft_q_count: soft_q --bonus count --bonus-config beta=1.0 (README: 3 of 3 seeds at the flag within 100,000);
  soft_q_rnd:   soft_q --bonus rnd --bonus-config beta=RND_BETA (--rnd-beta; why this beta: RND_BETA below);
  ppo:          RLlib's PPO as the registry builds it (4,000 env steps an iteration, 2 EnvRunners);
  ppo_rnd:      the same PPO with the project's RND (Burda et al. 2018: second value head), the same beta.

Measured on the training episodes (exploration included, no greedy
evaluation): an RLlib callback (`FinishedEpisodes`) logs every finished
training episode's return and whether it reached the flag (terminated before
the time limit); the benchmark collects them from every `algo.train()` result,
in the order RLlib hands them over, and after each iteration records a point:

- first flag: the env steps at the end of the first iteration in which a
  training episode reached the flag;
- mean return above -150: the first iteration after which the mean return of
  the last 100 finished training episodes (all EnvRunners together, at least
  100 of them) is above -150. The same definition for every contender: RLlib's
  own episode_return_mean is a per-EnvRunner window of 100 / num_env_runners
  episodes merged, so it means the last 100 for soft_q (one local EnvRunner) but
  two windows of 50 for PPO (recorded beside it, as `rllib_return_mean`).

The granularity is one iteration (soft_q: 1,024 env steps, PPO: 4,000), shown
in the report. A run stops once the mean is above -150, or when the budget
(default 100,000 env steps) is spent; a figure reached only in the iteration
that crosses the budget does not count. Reported per contender: k of n seeds and
the per-seed env steps for both figures, median env steps/s. Runs on
benchmarks/harness; see benchmarks/README.md.

    python benchmarks/mountain_car.py                                  # 5 contenders x 3 seeds x 100,000 env steps
    python benchmarks/mountain_car.py --budget 3000 --seeds 1 --no-mlflow --out /tmp/mc_smoke   # smoke
    python benchmarks/mountain_car.py --from-json benchmarks/results/mountain_car/results.json
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Sequence

from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

import harness
from harness.rllib import build_algo, ppo_takes_rnd, ray_session, train_until_target

ENV_ID = "MountainCar-v0"
TIME_LIMIT = 200  # gymnasium's max_episode_steps for MountainCar-v0: an episode this long ran out of time
THRESHOLD = -150.0  # issue #8: "a mean return above -150"
WINDOW = 100  # episodes in the mean
BUDGET = 100_000  # env steps per run (issue #8's acceptance: the flag within 100,000 env steps)
# Logged by FinishedEpisodes on every EnvRunner: one [return, reached the flag] item per finished
# training episode; the train() result carries the iteration's items under env_runners.
EPISODES = "finished_episodes"

CONTENDERS = ("soft_q", "soft_q_count", "soft_q_rnd", "ppo", "ppo_rnd")
# The count bonus the README reports on MountainCar: beta 1.0 reached the flag on 3 of 3 seeds within
# 100,000 env steps; 0.1 not on seed 0 (its bonus, ~0.004 a step, was too small against the -1 a step).
COUNT_BETA = 1.0
# RND's beta, by DeepSea's reasoning (deep_sea.py, README): RND's bonus is beta * error / std(intrinsic
# return), and its size against what the agent weighs it with (-1 a step here, soft_q's temperature 0.05)
# is what steers, so beta = the bonus wanted / (error / std) as measured on this env. The bonus wanted: the
# count bonus's that reached the flag (beta 1.0 above). Measured in one run, soft_q seed 0
# (`--contenders soft_q_count soft_q_rnd --rnd-beta 1 --budget 3000 --seeds 1`), the mean bonus over the
# replayed steps: count 0.081 and 0.074 after 2,048 and 3,072 env steps, RND with beta 1 2.8e-5 and
# 1.6e-5 (the predictor fits MountainCar's 2-D observations within an iteration, while the lifetime std of
# the intrinsic return stays ~1, that of the untrained predictor's errors: DeepSea's case), ratios 2,900
# and 4,800. Hence 3000, not the paper's 1 (with 1 the bonus is ~1e-5 a step: nothing against -1).
# ppo_rnd takes the same beta: the same bonus on the same observations (DeepSea's ppo_rnd took soft_q's too).
RND_BETA = 3000.0
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "mountain_car"


# The episodes ---------------------------------------------------------------------------------------------------


class FinishedEpisodes(RLlibCallback):
    """Logs [return, reached the flag] of every finished training episode, as an item series.

    Reached the flag: terminated (MountainCar ends an episode early only at
    the flag) rather than truncated by the time limit. The return is the whole
    episode's, its earlier chunks included, and the env's own reward (the
    bonuses are added in the learners or at replay, not to the episode's rewards).
    """

    def on_episode_end(self, *, episode, prev_episode_chunks=None, metrics_logger=None, **kwargs) -> None:
        chunks = [*(prev_episode_chunks or []), episode]
        ret = float(sum(chunk.get_return() for chunk in chunks))
        metrics_logger.log_value(EPISODES, [ret, bool(episode.is_terminated)], reduce="item_series")


def finished_episodes(result: dict[str, Any]) -> list[tuple[float, bool]]:
    """The (return, reached the flag) of the episodes that ended in this train() iteration, oldest first."""
    items = result.get(ENV_RUNNER_RESULTS, {}).get(EPISODES)
    if not isinstance(items, (list, tuple)):
        return []  # no episode ended in this iteration (RLlib gives nan or nothing)
    if len(items) == 2 and not isinstance(items[0], (list, tuple)):
        items = [items]  # a single item unwrapped
    return [(float(ret), bool(flag)) for ret, flag in items]


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class EpisodeLog:
    """`measure` for train_until_target: every finished training episode so far, and the figures of each point.

    A point holds the episodes and flag episodes so far, the mean return of
    the last WINDOW episodes (None until WINDOW have ended), the bonus's logged
    figures where there is one, and RLlib's own episode_return_mean.
    """

    def __init__(self, rec: harness.Recorder | None = None, log_every: int = 10, window: int = WINDOW) -> None:
        self.rec = rec
        self.log_every = log_every
        self.window = window
        self.returns: list[float] = []
        self.flags = 0
        self.first_flag_episode: int | None = None  # 1-based, in the order RLlib handed the episodes over
        self.iterations = 0

    def add(self, episodes: Iterable[tuple[float, bool]]) -> None:
        for ret, flag in episodes:
            self.returns.append(ret)
            if flag:
                self.flags += 1
                if self.first_flag_episode is None:
                    self.first_flag_episode = len(self.returns)

    def mean_return(self) -> float | None:
        """Mean return of the last `window` finished episodes; None while fewer have finished."""
        if len(self.returns) < self.window:
            return None
        return sum(self.returns[-self.window:]) / self.window

    def figures(self) -> dict[str, Any]:
        return {"episodes": len(self.returns), "flag_episodes": self.flags, "return_mean_100": self.mean_return()}

    def __call__(self, result: dict[str, Any]) -> dict[str, Any]:
        self.add(finished_episodes(result))
        self.iterations += 1
        point = self.figures()
        rllib_mean = result.get(ENV_RUNNER_RESULTS, {}).get("episode_return_mean")
        if finite(rllib_mean):  # nan in an iteration in which no episode ended
            point["rllib_return_mean"] = float(rllib_mean)
        for key, value in (result.get("bonus") or {}).items():  # rlfrontier.bonuses.RESULTS
            if finite(value):
                point[f"bonus_{key}"] = float(value)
        if self.rec is not None and self.iterations % self.log_every == 0:
            harness.log(f"{self.rec.name}: {point['episodes']:>5} episodes, {self.flags} at the flag, mean of "
                        f"the last {self.window}: {harness.fmt(point['return_mean_100'], 1)}")
        return point


# Criteria ---------------------------------------------------------------------------------------------------------


def above_threshold(point: dict[str, Any], *, budget: int) -> bool:
    """The harness's criterion: the mean of the last 100 episodes above -150, within the budget."""
    mean = point.get("return_mean_100")
    return mean is not None and mean > THRESHOLD and point["env_steps"] <= budget


def first_flag_steps(run: dict[str, Any]) -> int | None:
    """Env steps at the first point with a flag episode, within the run's budget (None: never)."""
    budget = run.get("budget")
    return next((int(p["env_steps"]) for p in run.get("points") or []
                 if p.get("flag_episodes") and (budget is None or p["env_steps"] <= budget)), None)


def threshold_steps(run: dict[str, Any]) -> int | None:
    return run.get("steps_to_target")


# Contenders ---------------------------------------------------------------------------------------------------------


def algorithm(contender: str, *, count_beta: float = COUNT_BETA,
              rnd_beta: float = RND_BETA) -> tuple[str, dict[str, Any]]:
    """The registry algorithm and the overrides (`rlfrontier train ALGO --set ...`) of a contender."""
    count = {"bonus": {"type": "count", "beta": count_beta}}
    rnd = {"bonus": {"type": "rnd", "beta": rnd_beta}}
    return {"soft_q": ("soft_q", {}), "soft_q_count": ("soft_q", count), "soft_q_rnd": ("soft_q", rnd),
            "ppo": ("ppo", {}), "ppo_rnd": ("ppo", rnd)}[contender]


def labels(count_beta: float = COUNT_BETA, rnd_beta: float = RND_BETA) -> dict[str, str]:
    return {
        "soft_q": "soft_q (no bonus)",
        "soft_q_count": f"soft_q + count (beta {count_beta:g})",
        "soft_q_rnd": f"soft_q + RND (beta {rnd_beta:g})",
        "ppo": "PPO (no bonus)",
        "ppo_rnd": f"PPO + RND (beta {rnd_beta:g})",
    }


AVAILABLE = {"ppo_rnd": ppo_takes_rnd}


def run_mountain_car(contender: str, count_beta: float, rnd_beta: float, seed: int, budget: int,
                     rec: harness.Recorder) -> None:
    algo_name, overrides = algorithm(contender, count_beta=count_beta, rnd_beta=rnd_beta)
    rec.extra.update(algo=algo_name, overrides=overrides)
    with rec.setup():
        algo = build_algo(algo_name, overrides, env=ENV_ID, seed=seed, callback=FinishedEpisodes)
    episodes = EpisodeLog(rec)
    train_until_target(algo, rec, measure=episodes)
    rec.extra.update(first_flag_episode=episodes.first_flag_episode, episodes=len(episodes.returns))


# Flags and plan -------------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", type=harness.positive_int, default=BUDGET,
                   help=f"env steps per run (default {BUDGET:,})")
    p.add_argument("--seeds", type=harness.positive_int, default=3, help="seeds per contender: 0..N-1 (default 3)")
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    p.add_argument("--count-beta", type=harness.positive_float, default=COUNT_BETA,
                   help=f"soft_q_count's beta (default {COUNT_BETA:g})")
    p.add_argument("--rnd-beta", type=harness.positive_float, default=RND_BETA,
                   help=f"soft_q_rnd's and ppo_rnd's beta (default {RND_BETA:g})")


def plan(args: argparse.Namespace) -> harness.Plan:
    names = labels(args.count_beta, args.rnd_beta)
    contenders = [
        harness.Contender(name=name, run=partial(run_mountain_car, name, args.count_beta, args.rnd_beta),
                          budget=args.budget, label=names[name], available=AVAILABLE.get(name))
        for name in args.contenders
    ]
    return harness.Plan(
        contenders=contenders,
        seeds=range(args.seeds),
        settings={
            "env": ENV_ID, "budget_env_steps": args.budget, "threshold": THRESHOLD, "window": WINDOW,
            "count_beta": args.count_beta, "rnd_beta": args.rnd_beta,
            "overrides": {name: algorithm(name, count_beta=args.count_beta, rnd_beta=args.rnd_beta)
                          for name in args.contenders},
            "criterion": f"mean return of the last {WINDOW} training episodes > {THRESHOLD:g}, checked after "
                         "every iteration; first flag: the first iteration with a terminated training episode",
        },
        target=THRESHOLD,
        session=lambda contenders, results: ray_session(results),
        criterion=partial(above_threshold, budget=args.budget),
    )


# The report -----------------------------------------------------------------------------------------------------


def per_seed(s: harness.Summary, figure) -> str:
    """'10,240; never; 8,192' in seed order ('error' for a run that raised)."""
    return "; ".join("error" if r.get("error") else (harness.fmt(figure(r)) if figure(r) is not None else "never")
                     for r in s.runs)


def counted(s: harness.Summary, figure) -> harness.Stats:
    return harness.censored_stats([figure(r) for r in s.runs])


def steps_per_iteration(s: harness.Summary) -> float | None:
    rates = [r["points"][-1]["env_steps"] / len(r["points"]) for r in s.runs if r.get("points")]
    return statistics.median(rates) if rates else None


def best_mean(run: dict[str, Any]) -> float | None:
    means = [p["return_mean_100"] for p in run.get("points") or [] if p.get("return_mean_100") is not None]
    return max(means) if means else None


def run_table(summaries: Sequence[harness.Summary]) -> str:
    """One row per run: the last point's episode counts, the best mean of 100, env steps and their rate."""
    rows = []
    for s in summaries:
        for r in s.runs:
            last = (r.get("points") or [{}])[-1]
            extra = r.get("extra") or {}
            rows.append([s.label, str(r["seed"]), harness.fmt(last.get("episodes")),
                         harness.fmt(last.get("flag_episodes")), harness.fmt(extra.get("first_flag_episode")),
                         harness.fmt(best_mean(r), 1), harness.fmt(r.get("env_steps")),
                         harness.fmt(r.get("env_steps_per_s")), "error" if r.get("error") else ""])
    return harness.markdown_table(
        ["contender", "seed", "episodes", "at the flag", "first flag: episode", f"best mean of {WINDOW}",
         "env steps", "env steps/s", ""], rows, ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"])


def command_line(results: dict[str, Any]) -> str:
    command = results.get("command") or []
    return shlex.join(["python", *command]) if command else "?"


def render(results: dict[str, Any]) -> str:
    settings = results["settings"]
    summaries = harness.summarize(results)
    k_of_n = lambda figure: lambda s: f"{counted(s, figure).k}/{s.n}"  # noqa: E731
    columns = [
        harness.CONTENDER,
        harness.Column("reached the flag", k_of_n(first_flag_steps)),
        harness.Column("env steps to the first flag: median (min–max)",
                       lambda s: harness.fmt_stats(counted(s, first_flag_steps))),
        harness.Column("per seed", lambda s: per_seed(s, first_flag_steps), "---"),
        harness.Column(f"mean of {WINDOW} > {THRESHOLD:g}", k_of_n(threshold_steps)),
        harness.Column(f"env steps to a mean > {THRESHOLD:g}: median (min–max)",
                       lambda s: harness.fmt_stats(counted(s, threshold_steps))),
        harness.Column("per seed", lambda s: per_seed(s, threshold_steps), "---"),
        harness.STEPS_PER_S,
        harness.Column("env steps / iteration", lambda s: harness.fmt(steps_per_iteration(s))),
    ]
    lines = [
        f"# {ENV_ID}: env steps to the flag and to a mean return above {THRESHOLD:g}",
        "",
        harness.machine_line(results),
        "",
        f"Budget per run: {settings['budget_env_steps']:,} env steps. Measured on the training episodes, after every "
        f"train() iteration (the granularity: last column). First flag: the env steps at the end of the first "
        f"iteration in which a training episode reached the flag (terminated before the {TIME_LIMIT}-step limit). "
        f"Mean > {THRESHOLD:g}: the first iteration after which the mean return of the last {WINDOW} finished "
        f"training episodes (all EnvRunners, at least {WINDOW} episodes) is above {THRESHOLD:g}; a run stops "
        "there. Medians count a run that never got there as slowest (never: the median run did not). "
        "Per seed: seeds in order.",
        "",
        harness.summary_table(summaries, columns),
        "",
        "Per run (at its last point; first flag: the count of finished training episodes up to the first that "
        "reached the flag, in the order RLlib handed them over):",
        "",
        run_table(summaries),
        "",
        f"Command: `{command_line(results)}`",
        *(["", *notes] if (notes := harness.notes(results)) else []),
    ]
    return "\n".join(lines) + "\n"


# The harness's declaration (benchmarks/README.md, "The harness"); no plots.
BENCHMARK = harness.Benchmark(name="mountain_car", doc=__doc__, default_out=DEFAULT_OUT, add_arguments=add_arguments,
                              plan=plan, render=render)


if __name__ == "__main__":
    sys.exit(harness.main(BENCHMARK))
