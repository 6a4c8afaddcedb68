"""maxent_irl recovers rewards: exactly from the expert's occupancies, and from a few demonstrations;
a deep reward beats a linear one where the true reward is not linear in the features (Wulfmeier et al. 2015).

The algorithms run in this process on the module's Ray session (real Learner
and EnvRunner); demonstrations are recorded by rlfrontier.demos from the
worlds' optimal policies, with demo seeds that were not used to pick any
default (maxent_irl's reward_l2 and GridWorld's slip were picked on demo
seeds 0-4 with the record seed 1000 * k; these use 100_000 + 1000 * k).
"""

from __future__ import annotations

import pytest

from rlfrontier import demos, envs
from rlfrontier.algorithms.maxent_irl import MaxEntIRLConfig
from rlfrontier.algorithms.maxent_irl.maxent_irl import EVD_RATIO, REWARD_CORRELATION

GRID = "rlfrontier/GridWorld-v0"
OBJECTS = "rlfrontier/ObjectWorld-v0"
SMALL_OBJECTS = {"size": 10}
DEMO_SEEDS = (0, 1, 2)


def _measures(env_id: str, *, updates: int, env_config: dict | None = None, **training) -> dict[str, float]:
    envs.register_with_ray(env_id)
    config = (MaxEntIRLConfig().environment(env_id, env_config=env_config or {}).training(**training)
              .evaluation(evaluation_interval=None).debugging(seed=0))
    algo = config.build_algo()
    try:
        for _ in range(updates):
            algo.train()
        return algo.reward_metrics()
    finally:
        algo.stop()


def _record(tmp_path, env_id: str, k: int, episodes: int, env_config: dict | None = None) -> str:
    out = tmp_path / f"{env_id.split('/')[-1]}-{k}"
    demos.record(out=out, env_id=env_id, env_config=env_config, episodes=episodes, scripted="optimal",
                 seed=100_000 + 1000 * k)
    return str(out)


def test_exact_expert_occupancies_give_a_reward_whose_optimal_policy_is_the_experts(local_ray):
    """Deterministic (no sampling anywhere): the expected value difference falls from the
    uniform policy's to under 1% of the optimal value in 300 updates."""
    start = _measures(GRID, updates=1)
    end = _measures(GRID, updates=300)
    assert start[EVD_RATIO] > 0.01  # after one step the policy is still far from the expert's
    assert end[EVD_RATIO] < 0.01, end


def test_fifty_demonstrations_give_a_correlated_reward_and_a_near_optimal_policy(local_ray, tmp_path):
    """Acceptance's figures (EVD < 10% of optimal, correlation >= 0.8) on 2 of 3 held-out demo sets.

    On the 5 tuning sets every one met both (correlation 0.82-0.87, EVD <= 0.3%); the README has the
    held-out ten.
    """
    met = 0
    for k in DEMO_SEEDS:
        m = _measures(GRID, updates=300, demos=_record(tmp_path, GRID, k, 50))
        met += m[EVD_RATIO] < 0.10 and m[REWARD_CORRELATION] >= 0.8
        if met == 2:
            break
    assert met >= 2


def test_a_deep_reward_beats_a_linear_one_on_objectworld(local_ray, tmp_path):
    """ObjectWorld's reward is not linear in its distance features: on 2 of 3 demo sets (32
    demonstrations, 10 x 10 world, 150 updates) the MLP's expected value difference is lower."""
    wins = 0
    for k in DEMO_SEEDS:
        path = _record(tmp_path, OBJECTS, k, 32, SMALL_OBJECTS)
        evd = {
            model: _measures(OBJECTS, updates=150, env_config=SMALL_OBJECTS, demos=path, reward_model=model,
                             lr=0.01)[EVD_RATIO]
            for model in ("linear", "mlp")
        }
        wins += evd["mlp"] < evd["linear"]
        if wins == 2:
            break
    assert wins >= 2


@pytest.fixture(scope="module", autouse=True)
def _own_envs():
    envs.register_envs()
