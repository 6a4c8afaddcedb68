"""BootDQNConfig: defaults validate, bad values name the field, shared replay fields work."""

from __future__ import annotations

import pytest

from rlfrontier.algorithms.boot_dqn import BootDQNConfig
from rlfrontier.algorithms.soft_q import SoftQConfig
from rlfrontier.validation import BadInput


def config(**training) -> BootDQNConfig:
    return BootDQNConfig().environment("CartPole-v1").training(**training)


def test_defaults_validate_and_reach_the_module():
    cfg = config()
    cfg.validate()
    model = cfg.model_config
    assert (model["num_heads"], model["prior_scale"], model["epsilon"]) == (10, 10.0, 0.0)
    assert model["zero_bias_init"] is True
    assert model["prior_fan_in"] is None
    assert model["hidden_sizes"] == [64, 64]


def test_training_sets_own_replay_and_rllib_fields():
    cfg = config(num_heads=3, mask_prob=1.0, n_step=3, prioritized_replay=True, lr=5e-4, gamma=0.9)
    assert (cfg.num_heads, cfg.mask_prob, cfg.n_step, cfg.prioritized_replay) == (3, 1.0, 3, True)
    assert (cfg.lr, cfg.gamma) == (5e-4, 0.9)
    cfg.validate()


def test_soft_q_takes_the_same_replay_fields():
    cfg = SoftQConfig().environment("CartPole-v1").training(n_step=2, replay_capacity=1000, alpha=0.1)
    assert (cfg.n_step, cfg.replay_capacity, cfg.alpha) == (2, 1000, 0.1)
    cfg.validate()


def test_unknown_training_keyword_is_refused():
    with pytest.raises(TypeError):
        BootDQNConfig().training(num_headz=3)


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_heads", 0),
        ("num_heads", 2.5),
        ("prior_scale", -1.0),
        ("mask_prob", 0.0),
        ("mask_prob", 1.5),
        ("tau", 0.0),
        ("target_update_interval", 0),
        ("epsilon", 1.5),
        ("epsilon", [[0, 1.0], [100, 2.0]]),
        ("epsilon", [[100, 1.0], [0, 0.1]]),
        ("epsilon", [1.0, 0.1]),
        ("hidden_sizes", [64, 0]),
        ("replay_capacity", 0),
        ("training_intensity", 0.0),
        ("double_q", "yes"),
        ("zero_bias_init", 0),
        ("prior_fan_in", 0),
        ("prior_fan_in", 2.5),
        ("prior_fan_in", True),
    ],
)
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(BadInput) as info:
        config(**{field: value}).validate()
    assert field in str(info.value)


def test_prior_fan_in_reaches_the_module():
    cfg = config(prior_fan_in=100)
    cfg.validate()
    assert cfg.model_config["prior_fan_in"] == 100


def test_epsilon_schedule_is_accepted_and_reaches_the_module():
    cfg = config(epsilon=[[0, 1.0], [5000, 0.05]])
    cfg.validate()
    assert cfg.model_config["epsilon"] == [[0, 1.0], [5000, 0.05]]
