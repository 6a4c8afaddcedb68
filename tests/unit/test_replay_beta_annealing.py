"""Prioritised replay's importance-sampling exponent rises linearly to 1 (Schaul et al. 2016, 3.4)."""

from __future__ import annotations

import pytest

from rlfrontier.algorithms.soft_q import SoftQConfig
from rlfrontier.offpolicy import annealed_beta
from rlfrontier.validation import BadInput


@pytest.mark.parametrize(
    ("timesteps", "expected"),
    [
        (0, 0.4),
        (25_000, 0.4 + 0.25 * 0.6),  # a quarter of the way: 0.55
        (50_000, 0.7),
        (100_000, 1.0),
        (250_000, 1.0),  # stays at 1 after the annealing period
    ],
)
def test_beta_schedule_is_linear_from_the_start_value_to_one(timesteps, expected):
    beta = annealed_beta(beta_start=0.4, annealing_timesteps=100_000, timesteps=timesteps)
    assert beta == pytest.approx(expected)


def test_beta_schedule_is_monotone_and_bounded():
    betas = [annealed_beta(beta_start=0.2, annealing_timesteps=1000, timesteps=t) for t in range(0, 2000, 7)]
    assert all(b2 >= b1 for b1, b2 in zip(betas, betas[1:]))
    assert betas[0] == pytest.approx(0.2)
    assert max(betas) == pytest.approx(1.0)


def test_beta_start_of_one_stays_one():
    assert annealed_beta(beta_start=1.0, annealing_timesteps=10, timesteps=3) == 1.0


def test_annealing_period_is_a_validated_config_field():
    config = SoftQConfig().environment("CartPole-v1")
    assert config.prioritized_replay_beta_annealing_timesteps == 100_000
    config.training(prioritized_replay_beta_annealing_timesteps=20_000)
    assert config.prioritized_replay_beta_annealing_timesteps == 20_000
    config.validate()


@pytest.mark.parametrize("value", [0, -5, 2.5, True])
def test_annealing_period_out_of_range_names_the_field(value):
    config = SoftQConfig().environment("CartPole-v1").training(prioritized_replay_beta_annealing_timesteps=value)
    with pytest.raises(BadInput, match="prioritized_replay_beta_annealing_timesteps"):
        config.validate()
