"""Input checks before Ray starts: SoftQConfig.validate, CLI assignments, YAML, stop criteria, build_config."""

from __future__ import annotations

import math

import pytest

from rlfrontier.algorithms.soft_q import SoftQ, SoftQConfig
from rlfrontier.configure import apply_overrides, build_config
from rlfrontier.spec import Origin, StopCriteria, load_yaml_mapping, parse, parse_assignments
from rlfrontier.validation import BadInput, check_choice, check_range


def cartpole_config(**training) -> SoftQConfig:
    return SoftQConfig().environment("CartPole-v1").training(**training)


# ----------------------------------------------------------------------------
# validation.check_range / check_choice
# ----------------------------------------------------------------------------


def test_check_range_accepts_closed_bounds():
    check_range("x", 0.0, 0.0, 1.0)
    check_range("x", 1, 0.0, 1.0)
    check_range("x", 5, 1, None, integer=True)
    check_range("x", -1e9, None, None)


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0.0, dict(low=0.0, high=1.0, low_open=True), "x=0.0 is out of range: allowed (0, 1]"),
        (1.0, dict(low=0.0, high=1.0, high_open=True), "x=1.0 is out of range: allowed [0, 1)"),
        (-0.5, dict(low=0.0, high=None), "x=-0.5 is out of range: allowed [0, inf)"),
        (3, dict(low=None, high=2), "x=3 is out of range: allowed (-inf, 2]"),
    ],
)
def test_check_range_rejects_out_of_range_with_the_allowed_interval(value, kwargs, message):
    kwargs = dict(kwargs)
    low, high = kwargs.pop("low"), kwargs.pop("high")
    with pytest.raises(BadInput) as info:
        check_range("x", value, low, high, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [True, False, "1", None, [1]])
def test_check_range_rejects_non_numbers_and_bools(value):
    with pytest.raises(BadInput, match="must be a number"):
        check_range("x", value, None, None)


@pytest.mark.parametrize("value", [1.0, 2.5, True])
def test_check_range_integer_rejects_floats_and_bools(value):
    with pytest.raises(BadInput, match="must be an integer"):
        check_range("n", value, 0, None, integer=True)


def test_bad_input_is_a_value_error():
    assert issubclass(BadInput, ValueError)


def test_check_choice():
    check_choice("mode", "a", ("a", "b"))
    check_choice("flag", True, (True, False))
    with pytest.raises(BadInput, match=r"mode='c' is not one of 'a', 'b'"):
        check_choice("mode", "c", ("a", "b"))
    # 1 == True, but a flag must be a real bool; and True is not a valid non-bool choice.
    with pytest.raises(BadInput, match="flag=1"):
        check_choice("flag", 1, (True, False))
    with pytest.raises(BadInput, match="k=True"):
        check_choice("k", True, (1, 2))


# ----------------------------------------------------------------------------
# SoftQConfig
# ----------------------------------------------------------------------------


def test_defaults_validate():
    config = cartpole_config()
    config.validate()
    assert config.algo_class is SoftQ
    assert config.gamma == 0.99
    # The stable recipe (README, "Why soft_q used to collapse"): clipped double Q, Polyak target.
    assert (config.twin_q, config.tau, config.target_update_interval) == (True, 0.005, 1)
    # One update of 128 per 2 env steps: each transition replayed 64 times.
    assert (config.train_batch_size_per_learner, config.training_intensity) == (128, 64.0)


def test_training_sets_fields_and_returns_self():
    config = SoftQConfig()
    out = config.training(alpha=0.3, n_step=3, twin_q=False, huber_delta=None, gamma=0.9, lr=5e-4)
    assert out is config
    assert (config.alpha, config.n_step, config.twin_q, config.huber_delta) == (0.3, 3, False, None)
    assert (config.gamma, config.lr) == (0.9, 5e-4)
    # Fields not passed keep their defaults.
    assert config.tau == 0.005
    assert config.target_update_interval == 1


def test_training_rejects_unknown_keywords():
    with pytest.raises(TypeError, match="foo"):
        SoftQConfig().training(foo=1)


def test_model_config_carries_the_module_settings():
    config = SoftQConfig().training(twin_q=True, alpha=0.3, learn_alpha=True)
    model_config = config.model_config
    assert model_config["twin_q"] is True
    assert model_config["initial_alpha"] == 0.3
    assert model_config["learn_alpha"] is True


def test_resolved_target_entropy():
    # 0.2 * log 3.
    assert SoftQConfig().resolved_target_entropy(3) == pytest.approx(0.2 * math.log(3))


@pytest.mark.parametrize(
    "field, value",
    [
        ("gamma", 2),
        ("gamma", -0.1),
        ("tau", 0),
        ("tau", 1.5),
        ("n_step", 0),
        ("n_step", 2.0),
        ("alpha", -1),
        ("alpha", 0.0),
        ("alpha_lr", 0.0),
        ("lr", 0.0),
        ("target_entropy_ratio", 1.5),
        ("target_update_interval", 0),
        ("huber_delta", 0.0),
        ("replay_capacity", 0),
        ("prioritized_replay_alpha", -0.1),
        ("training_intensity", 0),
        ("prioritized_replay_beta", 1.5),
        ("prioritized_replay_eps", 0.0),
        ("num_steps_sampled_before_learning_starts", -1),
        ("train_batch_size_per_learner", 0),
        ("twin_q", "yes"),
        ("learn_alpha", 1),
        ("prioritized_replay", None),
    ],
)
def test_validate_rejects_bad_values_naming_the_field(field, value):
    config = cartpole_config(**{field: value})
    with pytest.raises(BadInput) as info:
        config.validate()
    assert str(info.value).startswith(f"{field}={value!r}")


@pytest.mark.parametrize(
    "field, value",
    [
        ("gamma", 1.0),
        ("tau", 1.0),
        ("huber_delta", None),
        ("prioritized_replay_beta", 0.0),
        ("prioritized_replay_beta", 1.0),
        ("target_entropy_ratio", 0.0),
        ("num_steps_sampled_before_learning_starts", 0),
        ("twin_q", True),
    ],
)
def test_validate_accepts_boundary_values(field, value):
    config = cartpole_config(**{field: value})
    config.validate()  # raises BadInput if the boundary were rejected
    assert getattr(config, field) == value


# ----------------------------------------------------------------------------
# parse_assignments
# ----------------------------------------------------------------------------


def test_parse_assignments_reads_yaml_values():
    parsed = parse_assignments(
        ["a=1", "b=[1, 2]", "c=none", "d=null", "e=", "f=0.5", "g=true", "h=x=y", " i =2", "j={k: 3}"],
        flag="--set",
    )
    assert parsed == {
        "a": 1,
        "b": [1, 2],
        "c": "none",  # YAML's null is null / ~ / empty, not "none"
        "d": None,
        "e": None,
        "f": 0.5,
        "g": True,
        "h": "x=y",  # only the first '=' separates key and value
        "i": 2,
        "j": {"k": 3},
    }
    assert isinstance(parsed["a"], int)


def test_parse_assignments_of_nothing_is_empty():
    assert parse_assignments(None, flag="--set") == {}
    assert parse_assignments([], flag="--set") == {}


@pytest.mark.parametrize("pair", ["novalue", "=3", " =3"])
def test_parse_assignments_rejects_pairs_without_key_or_equals(pair):
    with pytest.raises(BadInput) as info:
        parse_assignments([pair], flag="--set")
    assert str(info.value) == f"--set {pair!r} is not key=value"


def test_parse_assignments_rejects_malformed_yaml_values():
    with pytest.raises(BadInput, match=r"--env-config b='\[1, 2' is not a valid value"):
        parse_assignments(["b=[1, 2"], flag="--env-config")


def test_parse_assignments_reads_exponent_notation_as_float():
    assert parse_assignments(["lr=1e-3"], flag="--set") == {"lr": 0.001}


# ----------------------------------------------------------------------------
# load_yaml_mapping
# ----------------------------------------------------------------------------


def test_load_yaml_mapping_reads_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("alpha: 0.1\nn_step: 3\nhidden: [8, 8]\n")
    assert load_yaml_mapping(path, what="--config") == {"alpha": 0.1, "n_step": 3, "hidden": [8, 8]}


def test_load_yaml_mapping_of_an_empty_file_is_empty(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_yaml_mapping(path, what="--config") == {}


def test_load_yaml_mapping_names_file_and_line_of_malformed_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("alpha: 0.1\n  gamma: 0.9\n")  # the indented key on line 2 is the error
    with pytest.raises(BadInput) as info:
        load_yaml_mapping(path, what="--config")
    message = str(info.value)
    assert message.startswith(f"--config file {str(path)!r} is malformed YAML at line 2")
    assert "\n" not in message


def test_load_yaml_mapping_rejects_a_list(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(BadInput, match="must hold a mapping of settings, got list"):
        load_yaml_mapping(path, what="--config")


def test_load_yaml_mapping_rejects_a_scalar(tmp_path):
    path = tmp_path / "scalar.yaml"
    path.write_text("just text\n")
    with pytest.raises(BadInput, match="got str"):
        load_yaml_mapping(path, what="--config")


def test_load_yaml_mapping_rejects_a_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(BadInput) as info:
        load_yaml_mapping(path, what="--config")
    assert str(info.value) == f"--config file {str(path)!r} does not exist"


def test_load_yaml_mapping_rejects_a_directory(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_yaml_mapping(tmp_path, what="--config")


# ----------------------------------------------------------------------------
# apply_overrides
# ----------------------------------------------------------------------------


def test_apply_overrides_sets_fields():
    config = cartpole_config()
    apply_overrides(config, {"alpha": 0.2, "n_step": 3, "gamma": 0.95}, source="--set")
    assert (config.alpha, config.n_step, config.gamma) == (0.2, 3, 0.95)


@pytest.mark.parametrize("key", ["gamma_typo", "training", "_model_config", "validate"])
def test_apply_overrides_rejects_unknown_private_and_method_names(key):
    config = cartpole_config()
    with pytest.raises(BadInput) as info:
        apply_overrides(config, {key: 1}, source="--set")
    assert str(info.value) == f"--set: unknown setting {key!r} for SoftQ"


@pytest.mark.parametrize("key", ["env", "env_config", "seed"])
def test_apply_overrides_rejects_fields_owned_by_cli_flags(key):
    config = cartpole_config()
    with pytest.raises(BadInput, match=f"set {key!r} with its own flag or key"):
        apply_overrides(config, {key: 1}, source="--config x.yaml")
    assert config.env == "CartPole-v1"


def test_apply_overrides_merges_dict_fields():
    config = cartpole_config()
    config.evaluation(evaluation_config={"explore": False, "num_envs_per_env_runner": 2})
    apply_overrides(config, {"evaluation_config": {"explore": True}}, source="--set")
    assert config.evaluation_config == {"explore": True, "num_envs_per_env_runner": 2}


def test_apply_overrides_turns_read_only_properties_into_bad_input():
    config = cartpole_config()
    with pytest.raises(BadInput, match="total_train_batch_size"):
        apply_overrides(config, {"total_train_batch_size": 64}, source="--set")


def test_apply_overrides_merges_model_config_through_rl_module():
    config = cartpole_config()
    apply_overrides(config, {"model_config": {"hidden_sizes": [8]}}, source="--set")
    assert config.model_config["hidden_sizes"] == [8]
    assert config.model_config["twin_q"] is True  # auto-included fields survive
    with pytest.raises(BadInput, match="model_config"):
        apply_overrides(config, {"model_config": [8]}, source="--set")


# ----------------------------------------------------------------------------
# StopCriteria
# ----------------------------------------------------------------------------


STOP_FLAGS = Origin(flags={("timesteps",): "--stop-timesteps", ("iterations",): "--stop-iters",
                           ("reward",): "--stop-reward"})


def test_stop_criteria_needs_one_criterion():
    with pytest.raises(BadInput, match="give a stop criterion: timesteps, iterations or reward"):
        parse(StopCriteria, {})
    with pytest.raises(BadInput, match="^give a stop criterion: --stop-timesteps, --stop-iters or --stop-reward$"):
        parse(StopCriteria, {}, origin=STOP_FLAGS)
    StopCriteria(timesteps=1)
    StopCriteria(iterations=3)
    StopCriteria(reward=-100.0)


@pytest.mark.parametrize(
    "data, message",
    [
        (dict(timesteps=0), "--stop-timesteps=0 is out of range: allowed [1, inf)"),
        (dict(timesteps=1.5), "--stop-timesteps=1.5 must be an integer"),
        (dict(iterations=0), "--stop-iters=0 is out of range: allowed [1, inf)"),
        (dict(iterations=True), "--stop-iters=True must be an integer"),
        (dict(reward="high"), "--stop-reward='high' must be a number"),
    ],
)
def test_stop_criteria_rejects_bad_values_naming_the_flag(data, message):
    with pytest.raises(BadInput) as info:
        parse(StopCriteria, data, origin=STOP_FLAGS)
    assert str(info.value) == message


def test_stop_criteria_reached():
    stop = StopCriteria(timesteps=1000, iterations=10, reward=450.0)
    assert not stop.reached(env_steps=999, iterations=9, return_mean=449.0)
    assert stop.reached(env_steps=1000, iterations=0, return_mean=None)
    assert stop.reached(env_steps=0, iterations=10, return_mean=None)
    assert stop.reached(env_steps=0, iterations=0, return_mean=450.0)
    assert not stop.reached(env_steps=0, iterations=0, return_mean=None)


def test_stop_criteria_reached_ignores_unset_criteria():
    only_reward = StopCriteria(reward=10.0)
    assert not only_reward.reached(env_steps=10**9, iterations=10**6, return_mean=None)
    assert not only_reward.reached(env_steps=10**9, iterations=10**6, return_mean=9.99)
    assert only_reward.reached(env_steps=0, iterations=0, return_mean=10.0)
    # A negative reward threshold is a real threshold, not "unset".
    negative = StopCriteria(reward=-50.0)
    assert not negative.reached(env_steps=0, iterations=0, return_mean=-60.0)
    assert negative.reached(env_steps=0, iterations=0, return_mean=-50.0)
    only_iters = StopCriteria(iterations=2)
    assert not only_iters.reached(env_steps=10**9, iterations=1, return_mean=1e9)


# ----------------------------------------------------------------------------
# build_config
# ----------------------------------------------------------------------------


def test_build_config_soft_q_cartpole():
    spec, config, applied = build_config(
        algo="soft_q", env="CartPole-v1", seed=0, overrides={"gamma": 0.95}
    )
    assert spec.name == "soft_q"
    assert isinstance(config, SoftQConfig)
    assert config.gamma == 0.95
    assert config.seed == 0
    assert config.env == "CartPole-v1"
    assert applied == {"gamma": 0.95}
    # Evaluation defaults: every 5 iterations, 10 episodes, greedy.
    assert config.evaluation_interval == 5
    assert config.evaluation_duration == 10
    assert config.evaluation_config["explore"] is False


def test_build_config_applies_file_then_set(tmp_path):
    path = tmp_path / "soft_q.yaml"
    path.write_text("alpha: 0.2\nn_step: 3\n")
    _, config, applied = build_config(
        algo="soft_q", env="CartPole-v1", seed=7, config_file=str(path), overrides={"n_step": 5},
        num_env_runners=0, num_envs_per_env_runner=2, evaluation_interval=0,
    )
    assert (config.alpha, config.n_step, config.seed) == (0.2, 5, 7)
    assert config.num_envs_per_env_runner == 2
    assert applied == {"alpha": 0.2, "n_step": 5}
    assert not config.evaluation_interval


def test_build_config_unknown_algo_names_it():
    with pytest.raises(BadInput, match="'no_such_algo'"):
        build_config(algo="no_such_algo", env="CartPole-v1", seed=0)


def test_build_config_unknown_env_names_it():
    with pytest.raises(BadInput, match="'NoSuchEnv-v9'"):
        build_config(algo="soft_q", env="NoSuchEnv-v9", seed=0)


def test_build_config_out_of_range_override_is_bad_input():
    with pytest.raises(BadInput, match=r"^gamma=2 is out of range"):
        build_config(algo="soft_q", env="CartPole-v1", seed=0, overrides={"gamma": 2})


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(num_env_runners=-1), "resources.num_env_runners"),
        (dict(num_envs_per_env_runner=0), "resources.num_envs_per_env_runner"),
        (dict(num_learners=-1), "resources.num_learners"),
        (dict(gpus_per_learner=-0.5), "resources.gpus_per_learner"),
        (dict(evaluation_interval=-1), "evaluation.interval"),
        (dict(evaluation_episodes=0), "evaluation.episodes"),
        (dict(no_such_resource=1), "resources.no_such_resource"),
    ],
)
def test_build_config_rejects_bad_resources_naming_the_key(kwargs, key):
    # (The command line's names, --num-env-runners and so on, are tested in tests/unit/test_spec.py.)
    with pytest.raises(BadInput, match=rf"^{key}="):
        build_config(algo="soft_q", env="CartPole-v1", seed=0, **kwargs)


def test_build_config_rejects_an_action_space_the_algorithm_cannot_handle():
    with pytest.raises(BadInput, match="Pendulum-v1"):
        build_config(algo="soft_q", env="Pendulum-v1", seed=0)


def test_validate_accepts_an_lr_schedule():
    # RLlib takes lr as [[timestep, value], ...]; the range check applies to a plain number only.
    config = cartpole_config(lr=[[0, 1e-3], [10_000, 1e-4]])
    config.validate()  # raises if the schedule were range-checked as a number
    assert config.lr == [[0, 1e-3], [10_000, 1e-4]]


def test_model_config_override_merges_into_rllibs_default_model_config():
    # The dqn baseline sets a DefaultModelConfig dataclass, not a dict.
    _, config, _ = build_config(
        algo="dqn", env="CartPole-v1", seed=0, overrides={"model_config": {"fcnet_bias_initializer": None}}
    )
    assert config.model_config["fcnet_bias_initializer"] is None
    assert config.model_config["fcnet_hiddens"] == [256]  # the rest of the baseline's settings kept


def test_apply_overrides_reaches_into_mappings_with_dotted_keys():
    config = cartpole_config()
    apply_overrides(config, {"model_config.hidden_sizes": [8]}, source="--set")
    assert config.model_config["hidden_sizes"] == [8] and config.model_config["twin_q"] is True
    config.evaluation(evaluation_config={"explore": False, "num_envs_per_env_runner": 2, "env_config": {"a": 1}})
    apply_overrides(config, {"evaluation_config.env_config.b": 2}, source="--set")
    assert config.evaluation_config == {"explore": False, "num_envs_per_env_runner": 2, "env_config": {"a": 1, "b": 2}}
    with pytest.raises(BadInput, match="unknown setting 'no_such_field'"):
        apply_overrides(config, {"no_such_field.x": 1}, source="--set")


def test_nest_and_merge():
    from rlfrontier.configure import merge, nest

    assert nest({"a.b": 1, "a": {"c": 2}, "x": 3}) == {"a": {"b": 1, "c": 2}, "x": 3}
    assert nest({"a.b.c": 1}) == {"a": {"b": {"c": 1}}}
    assert merge({"a": {"b": 1, "c": 2}, "d": 4}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 4}
    assert merge(None, {"scale": 2}) == {"scale": 2} and merge({"x": 1}, 3) == 3
