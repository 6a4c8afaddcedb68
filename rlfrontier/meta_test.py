"""The meta-test every meta-RL algorithm reports (issue 10, part 6): held-out tasks, returns by amount of
adaptation, and the two references that say what those returns mean.

An algorithm's registry evaluation hook measures, on its run's held-out tasks
(drawn from a stream of their own, never trained on), the mean return after k
units of adaptation, k = 0 being none: inner gradient steps for MAML,
episodes of context for PEARL and RL². It reports them as
`held_out_return_k{k}` together with `reference_metrics`:

- the oracle: a hand-coded policy that knows the task (`TaskEnv.oracle_action`),
  i.e. what perfect adaptation would reach;
- task-blind: a good hand-coded policy that does not know it and so cannot
  adapt (`TaskEnv.task_blind_action`). On PointNav it is the best such
  policy (stay at the origin), so no multi-task policy does better; on
  Bandit any policy blind to the rewards earns the same in expectation (it
  pulls arm 0); on SparsePointNav it is the best fixed target point found
  by a grid search, not a proven optimum;

and from them `held_out_gap_closed`, the share of the gap between no
adaptation and the oracle that the most adaptation measured closes (MAML's
acceptance: at least half after one inner step), and
`held_out_adaptation_gain`. The references are rolled out on the driver, on
one local copy of the env, over the same held-out tasks.

MLflow gets these as metrics; at the end of a run `plot_meta_test` draws
return against k with both references (rlfrontier.tracking logs it as
meta_test.png).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np

from rlfrontier.envs.tasks import Task
from rlfrontier.plotting import figure

HELD_OUT = "held_out_"
RETURN_K = HELD_OUT + "return_k{}"
ORACLE_RETURN_MEAN = HELD_OUT + "oracle_return_mean"
TASK_BLIND_RETURN_MEAN = HELD_OUT + "task_blind_return_mean"
GAP_CLOSED = HELD_OUT + "gap_closed"
ADAPTATION_GAIN = HELD_OUT + "adaptation_gain"
_RETURN_K_PATTERN = re.compile(r"^held_out_return_k(\d+)$")

POLICIES = {"oracle": "oracle_action", "task_blind": "task_blind_action"}


EPISODE_COLUMNS = ("obs", "actions", "rewards", "next_obs")


def play_episode(env: gym.Env, act, *, seed: int) -> dict[str, list]:
    """One episode of `act` (an observation -> an action) on `env` from env.reset(seed=seed): per step its
    observation, action, reward and next observation (EPISODE_COLUMNS, lists in step order). An `act` that
    raises (e.g. NotImplementedError: the env defines no such policy) raises before any step."""
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list] = {key: [] for key in EPISODE_COLUMNS}
    done = False
    while not done:
        action = act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(EPISODE_COLUMNS, (obs, action, reward, next_obs)):
            rows[key].append(value)
        obs, done = next_obs, terminated or truncated
    return rows


def rollout_returns(env: gym.Env, tasks: Sequence[Task], *, policy: str, episodes: int, seed: int) -> list[float]:
    """Returns of `episodes` episodes per task of a reference policy ("oracle" or "task_blind").

    Args:
        env: a TaskEnv, behind any wrappers; its task is left at the last of `tasks`.
        tasks: the held-out tasks.
        policy: a key of POLICIES.
        episodes: episodes per task.
        seed: reset seeds are seed, seed + 1, ... in order (the rewards of a stochastic env, e.g. Bandit).
    """
    base = env.unwrapped
    act = getattr(base, POLICIES[policy])
    out = []
    reset_seed = seed
    for task in tasks:
        base.set_task(task)
        for _ in range(episodes):
            rewards = play_episode(env, act, seed=reset_seed)["rewards"]
            reset_seed += 1
            out.append(sum(float(r) for r in rewards))
    return out


def reference_metrics(env: gym.Env, tasks: Sequence[Task], *, episodes: int, seed: int) -> dict[str, float]:
    """{ORACLE_RETURN_MEAN, TASK_BLIND_RETURN_MEAN} over `tasks` (see rollout_returns); a reference the env
    does not define is left out."""
    keys = {"oracle": ORACLE_RETURN_MEAN, "task_blind": TASK_BLIND_RETURN_MEAN}
    out = {}
    for policy, key in keys.items():
        try:
            out[key] = float(np.mean(rollout_returns(env, tasks, policy=policy, episodes=episodes, seed=seed)))
        except NotImplementedError:
            continue
    return out


def gap_closed(*, before: float, after: float, oracle: float) -> float:
    """(after - before) / (oracle - before): 0 without progress, 1 at the oracle; NaN when before >= oracle."""
    gap = oracle - before
    return (after - before) / gap if gap > 0 else math.nan


def adaptation_metrics(returns_by_k: Mapping[int, float], references: Mapping[str, float]) -> dict[str, float]:
    """The meta-test's metrics: RETURN_K per k, the references, ADAPTATION_GAIN and GAP_CLOSED (the largest k
    against k = 0; the latter only with an oracle)."""
    if 0 not in returns_by_k or len(returns_by_k) < 2:
        raise ValueError(f"returns_by_k needs k = 0 and at least one k > 0, got {sorted(returns_by_k)}")
    out = {RETURN_K.format(k): float(v) for k, v in sorted(returns_by_k.items())}
    out.update(references)
    before, after = returns_by_k[0], returns_by_k[max(returns_by_k)]
    out[ADAPTATION_GAIN] = float(after - before)
    if ORACLE_RETURN_MEAN in references:
        out[GAP_CLOSED] = gap_closed(before=before, after=after, oracle=references[ORACLE_RETURN_MEAN])
    return out


def returns_by_k(metrics: Mapping[str, Any]) -> dict[int, float]:
    """The RETURN_K entries of a metrics dict, by k."""
    out = {}
    for key, value in metrics.items():
        match = _RETURN_K_PATTERN.match(key)
        if match and isinstance(value, (int, float)) and math.isfinite(value):
            out[int(match.group(1))] = float(value)
    return out


def plot_meta_test(metrics: Mapping[str, Any], path: Path, *, title: str, unit: str = "adaptation steps") -> bool:
    """Writes return against k, with the oracle's and the task-blind policy's returns as lines; False (and no
    file) when `metrics` hold fewer than two k."""
    by_k = returns_by_k(metrics)
    if len(by_k) < 2:
        return False
    ks = sorted(by_k)
    with figure(path, title=title, xlabel=unit, ylabel="mean episode return") as ax:
        ax.plot(ks, [by_k[k] for k in ks], marker="o", label="meta-learned policy, held-out tasks")
        for key, label, style in ((ORACLE_RETURN_MEAN, "oracle (knows the task)", "--"),
                                  (TASK_BLIND_RETURN_MEAN, "task-blind (cannot adapt)", ":")):
            value = metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                ax.axhline(value, linestyle=style, color="grey", label=label)
        ax.set_xticks(ks)
    return True
