"""UCB1 and Thompson sampling on Bernoulli bandits, and their regret: the baselines RL² must match (issue 10 part 5).

Duan et al. 2016 (RL², section 4.1, table 1) meta-train a recurrent policy
on K-armed Bernoulli bandits whose arm means are uniform in [0, 1] and
compare it with these hand-designed learners on the same bandits; issue 10
accepts RL² on rlfrontier/Bandit-v0 (K = 5, 10 pulls) when its regret is at
most 1.2x Thompson sampling's.

Regret here is pseudo-regret: the sum over pulls of the best arm's mean
minus the pulled arm's mean (`pseudo_regret`), the expectation of the
reward lost to an oracle that knows the means and always pulls the best
arm, which therefore has regret 0. It does not depend on the reward draws,
so it has less variance than realised regret. The other reference is a
uniformly random learner, whose expected regret is exact (`random_regret`).

A learner is built fresh for each run of one task from the number of arms
(`UCB1(arms)`, `ThompsonSampling(arms)`, `UniformRandom(arms)`); it
chooses with `act(rng)` and learns from `update(arm, reward)`.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, Sequence

import numpy as np

from rlfrontier.envs.tasks import Task, check_finite, check_positive_int, check_task_keys, check_vector
from rlfrontier.validation import BadInput


def pseudo_regret(means: np.ndarray, arms: np.ndarray) -> float:
    """sum_t (max_a mu_a - mu_{a_t}).

    Args:
        means: [K] arm means mu.
        arms: [T] the arms pulled.
    """
    means = np.asarray(means, dtype=np.float64)
    return float(np.sum(means.max() - means[np.asarray(arms, dtype=np.int64)]))


def random_regret(tasks: Sequence[Task], pulls: int) -> float:
    """Exact expected pseudo-regret of pulling uniformly at random, averaged over `tasks`: T (max mu - mean mu)."""
    means = _task_means(tasks)
    check_positive_int("pulls", pulls)
    return float(np.mean([pulls * (m.max() - m.mean()) for m in means]))


class BanditAgent(Protocol):
    def act(self, rng: np.random.Generator) -> int: ...

    def update(self, arm: int, reward: float) -> None: ...


class UniformRandom:
    """Pulls an arm uniformly at random: the reference that knows and learns nothing."""

    def __init__(self, arms: int) -> None:
        self.arms = check_positive_int("arms", arms, low=2)

    def act(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.arms))

    def update(self, arm: int, reward: float) -> None:
        pass


class UCB1:
    """UCB1 (Auer, Cesa-Bianchi and Fischer 2002, figure 1): each arm once, then argmax of mean + c sqrt(ln t / n).

    t is the number of pulls so far and n the arm's; c = sqrt(2) is the
    paper's constant (Duan et al. tuned it; `c` lets a comparison do so).
    Ties go to the lowest arm, so the learner is deterministic given its
    rewards; it draws nothing from `rng`.
    """

    def __init__(self, arms: int, *, c: float = math.sqrt(2.0)) -> None:
        self.arms = check_positive_int("arms", arms, low=2)
        self.c = check_finite("c", c)
        if self.c < 0:
            raise BadInput(f"c={c!r} must be >= 0")
        self.counts = np.zeros(self.arms, dtype=np.int64)
        self.sums = np.zeros(self.arms)

    def act(self, rng: np.random.Generator) -> int:
        unpulled = np.flatnonzero(self.counts == 0)
        if unpulled.size:
            return int(unpulled[0])
        t = self.counts.sum()
        upper = self.sums / self.counts + self.c * np.sqrt(math.log(t) / self.counts)
        return int(np.argmax(upper))

    def update(self, arm: int, reward: float) -> None:
        self.counts[arm] += 1
        self.sums[arm] += reward


class ThompsonSampling:
    """Thompson sampling for Bernoulli arms (Thompson 1933; Chapelle and Li 2011, algorithm 2), Beta(1, 1) prior.

    Each arm's mean has posterior Beta(alpha, beta) = Beta(prior_alpha +
    successes, prior_beta + failures); a pull draws one mean per arm from it
    and takes the largest.
    """

    def __init__(self, arms: int, *, prior_alpha: float = 1.0, prior_beta: float = 1.0) -> None:
        self.arms = check_positive_int("arms", arms, low=2)
        self.alpha = np.full(self.arms, check_finite("prior_alpha", prior_alpha, positive=True))
        self.beta = np.full(self.arms, check_finite("prior_beta", prior_beta, positive=True))

    def act(self, rng: np.random.Generator) -> int:
        return int(np.argmax(rng.beta(self.alpha, self.beta)))

    def update(self, arm: int, reward: float) -> None:
        if reward not in (0, 1):
            raise BadInput(f"reward={reward!r}: Bernoulli Thompson sampling takes rewards 0 or 1")
        self.alpha[arm] += reward
        self.beta[arm] += 1 - reward


def cumulative_regrets(
    policy: Callable[[int], BanditAgent], tasks: Sequence[Task], pulls: int, rng: np.random.Generator, runs: int
) -> np.ndarray:
    """Pseudo-regret after `pulls` pulls of each of `runs` independent runs on each task.

    Args:
        policy: builds a fresh learner from the number of arms (e.g. `UCB1`).
        tasks: Bandit-v0 tasks, {"means": [K floats in [0, 1]]}.
        pulls: pulls per run (an RL² trial).
        rng: every reward and every choice of the learners is drawn from it.
        runs: runs per task.

    Returns:
        [len(tasks), runs] cumulative pseudo-regrets.
    """
    all_means = _task_means(tasks)
    check_positive_int("pulls", pulls)
    check_positive_int("runs", runs)
    if not isinstance(rng, np.random.Generator):
        raise BadInput(f"rng={rng!r} must be a numpy Generator (np.random.default_rng(seed))")
    regrets = np.empty((len(all_means), runs))
    for i, means in enumerate(all_means):
        for run in range(runs):
            agent = policy(len(means))
            arms = np.empty(pulls, dtype=np.int64)
            for t in range(pulls):
                arms[t] = agent.act(rng)
                agent.update(int(arms[t]), float(rng.random() < means[arms[t]]))
            regrets[i, run] = pseudo_regret(means, arms)
    return regrets


def expected_regret(
    policy: Callable[[int], BanditAgent], tasks: Sequence[Task], pulls: int, rng: np.random.Generator, runs: int
) -> float:
    """Mean cumulative pseudo-regret of `policy` over `tasks` and `runs` runs each (see `cumulative_regrets`)."""
    return float(cumulative_regrets(policy, tasks, pulls, rng, runs).mean())


def _task_means(tasks: Sequence[Task]) -> list[np.ndarray]:
    if isinstance(tasks, dict) or not isinstance(tasks, Sequence) or not tasks:
        raise BadInput(f"tasks={tasks!r} must be a non-empty list of Bandit-v0 tasks")
    means = []
    for i, task in enumerate(tasks):
        check_task_keys(task, ("means",))
        values, name = task["means"], f"tasks[{i}]['means']"
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or len(values) < 2:
            raise BadInput(f"{name}={values!r} must be a list of at least 2 numbers in [0, 1]")
        row = np.array(check_vector(name, values, len(values)))
        if np.any((row < 0) | (row > 1)):
            raise BadInput(f"{name}={values!r} must be a list of at least 2 numbers in [0, 1]")
        means.append(row)
    return means
