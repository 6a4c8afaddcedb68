"""RLlib's DQN as a baseline: epsilon-greedy that works where every Q-value is 0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.core.columns import Columns

from rlfrontier.baselines import EpsilonGreedyDQNModule, epsilon_greedy
from rlfrontier.registry import get_algorithm


def test_random_actions_are_uniform_over_allowed_actions_even_when_every_q_is_zero():
    generator = torch.Generator().manual_seed(0)
    zeros = torch.zeros(6000, 3)
    actions = epsilon_greedy(zeros, 1.0, generator).numpy()
    # 6000 uniform draws over 3 actions: each count is 2000 +- 37 (1 sd); 5 sd is 183.
    assert np.all(np.abs(np.bincount(actions, minlength=3) - 2000) < 183)
    masked = torch.tensor([[0.0, -float("inf"), 1.0]]).repeat(2000, 1)
    assert set(epsilon_greedy(masked, 1.0, generator).tolist()) == {0, 2}
    assert set(epsilon_greedy(masked, 0.0, generator).tolist()) == {2}


def test_the_dqn_baseline_explores_from_an_all_zero_observation():
    config = get_algorithm("dqn").make_config().environment("CartPole-v1")
    spec = config.get_rl_module_spec(env=None, spaces={"default_policy": (
        gym.spaces.Box(0.0, 1.0, (36,), np.float32), gym.spaces.Discrete(2))})
    assert spec.module_class is EpsilonGreedyDQNModule
    module = spec.build()
    # RLlib's tuned CartPole settings zero every bias: Q(0) = 0 for both actions.
    with torch.no_grad():
        q = module.compute_q_values({Columns.OBS: torch.zeros(4, 36)})["qf_preds"]
        assert torch.count_nonzero(q) == 0
        out = module.forward_exploration({Columns.OBS: torch.zeros(4, 36)}, t=0)
    assert set(out[Columns.ACTIONS].tolist()) <= {0, 1}
