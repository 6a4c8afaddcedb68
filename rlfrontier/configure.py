"""From a run's description (rlfrontier.spec.ConfigSpec) to a validated AlgorithmConfig, before Ray starts.

What only the algorithm knows (its fields, their ranges, the action spaces
it takes) is checked here and raised as BadInput naming the bad value, so
`train` and `tune` exit 2 without starting Ray or writing anything.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rlfrontier import envs
from rlfrontier.registry import AlgoSpec, check_bonus, check_needs, get_algorithm, takes_demos
from rlfrontier.spec import (
    DEFAULT_EVAL_EPISODES,
    DEFAULT_EVAL_INTERVAL,
    ConfigSpec,
    first_line,
    load_yaml_mapping,
    parse,
)
from rlfrontier.validation import BadInput

# Fields of AlgorithmConfig that a run description sets in its own fields.
_OWN_FIELDS = {"env": "--env", "env_config": "--env-config", "seed": "--seed", "demos": "--demos"}
MAX_EVAL_ENVS = 10


def nest(settings: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys into nested mappings: {'a.b': 1, 'a': {'c': 2}} -> {'a': {'c': 2, 'b': 1}}."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        head, *rest = str(key).split(".")
        for part in reversed(rest):
            value = {part: value}
        out[head] = merge(out[head], value) if head in out else value
    return out


def merge(current: Any, new: Any) -> Any:
    """`new` over `current`, mappings merged key by key at every depth."""
    if isinstance(current, dict) and isinstance(new, dict):
        return {**current, **{k: merge(current[k], v) if k in current else v for k, v in new.items()}}
    return new


def apply_overrides(config: AlgorithmConfig, overrides: dict[str, Any], *, source: str) -> None:
    """Sets AlgorithmConfig fields by name; unknown names are BadInput.

    A mapping value is merged into the field's current mapping, and a dotted
    key reaches into one: `reward_transform.scale=2` changes only the scale.
    """
    for key, value in nest(overrides).items():
        if key in _OWN_FIELDS:
            raise BadInput(f"{source}: set {key!r} with its own flag or key ({_OWN_FIELDS[key]}, or {key}: in a tune file)")
        if not hasattr(config, key) or key.startswith("_") or callable(getattr(config, key)):
            raise BadInput(f"{source}: unknown setting {key!r} for {config.algo_class.__name__}")
        try:
            if key == "model_config":  # a read-only property; its setter is rl_module()
                if not isinstance(value, dict):
                    raise TypeError("model_config must be a mapping")
                current_model = config._model_config
                if is_dataclass(current_model):  # RLlib's DefaultModelConfig
                    current_model = asdict(current_model)
                config.rl_module(model_config=merge(current_model or {}, value))
            else:
                config.update_from_dict({key: merge(getattr(config, key), value)})
        except AttributeError:
            raise BadInput(f"{source}: {key!r} is derived by RLlib and cannot be set") from None
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{source}: {key}={value!r} rejected: {first_line(exc)}") from None


def algorithm_config(run: ConfigSpec, *, seed: int | None) -> tuple[AlgoSpec, AlgorithmConfig]:
    """Builds and validates the AlgorithmConfig `run` describes, with `seed` (None: unseeded,
    e.g. the base of a search whose trials draw their own).

    BadInput names the bad value as the run's origin gave it (a tune file's
    messages open with the file).
    """
    try:
        return _build(run, seed)
    except BadInput as exc:
        raise BadInput(run.origin.prefix + str(exc)) from None


def _check_bonus(spec: AlgoSpec, run: ConfigSpec, from_file: dict[str, Any]) -> None:
    """BadInput, before any setting is applied, when the run asks for a bonus the algorithm cannot take."""
    from rlfrontier import bonuses

    in_file, in_config = nest(from_file).get(bonuses.FIELD), nest(run.config).get(bonuses.FIELD)
    bonus = in_file if in_config is None else in_config if in_file is None else merge(in_file, in_config)
    if bonus is None:
        return
    where = run.origin.flags.get(("config", bonuses.FIELD, "type"), bonuses.FIELD)
    try:
        kind = bonuses.kind_of(bonus)
    except ValueError as exc:
        raise BadInput(f"{where}: {exc}") from None
    check_bonus(spec, kind, where=where)


def _set_demos(config: AlgorithmConfig, run: ConfigSpec, env_config: dict[str, Any], observation_space,
               action_space) -> None:
    """Checks the run's demonstrations against its env and hands their folder to the algorithm.

    The absolute path travels in the config to the Learners and EnvRunners: on
    a cluster it must be on storage every node reads (rlfrontier.demos).
    """
    from rlfrontier import demos

    demos.check(run.demos, run.env, env_config, observation_space, action_space,
                where=run.origin.name(("demos",)))
    if not hasattr(config, "demos"):  # a registry entry that takes demonstrations without the field
        raise TypeError(f"{type(config).__name__} takes demonstrations but has no `demos` field")
    config.demos = str(Path(run.demos).expanduser().resolve())


def _build(run: ConfigSpec, seed: int | None) -> tuple[AlgoSpec, AlgorithmConfig]:
    spec = get_algorithm(run.algo)
    if run.demos is not None and not takes_demos(spec):
        raise BadInput(f"{run.origin.name(('demos',))} {run.demos}: {run.algo} does not learn from demonstrations")
    env_config = envs.with_run_seed(run.env, run.env_config, seed)
    observation_space, action_space = envs.check_env(
        run.env, env_config, inspect=lambda env: check_needs(spec, env, env_id=run.env, demos=run.demos)
    )
    if type(action_space).__name__ not in spec.action_spaces:
        raise BadInput(
            f"{run.algo} needs a {' or '.join(spec.action_spaces)} action space; {run.env} has {action_space}"
        )
    config = spec.make_config()
    envs.register_with_ray(run.env)
    config.environment(run.env, env_config=env_config)
    config.debugging(seed=seed)

    from_file: dict[str, Any] = {}
    if run.config_file:
        name = run.origin.name(("config_file",))
        from_file = load_yaml_mapping(run.config_file, what=name)
    _check_bonus(spec, run, from_file)
    if from_file:
        apply_overrides(config, from_file, source=f"{name} {run.config_file}")
    if run.config:
        apply_overrides(config, run.config, source=run.origin.name(("config",)))

    if run.demos is not None:
        _set_demos(config, run, env_config, observation_space, action_space)

    res = run.resources
    runners = {"num_env_runners": res.num_env_runners, "num_envs_per_env_runner": res.num_envs_per_env_runner}
    learners = {"num_learners": res.num_learners, "num_gpus_per_learner": res.gpus_per_learner}
    if any(v is not None for v in runners.values()):
        config.env_runners(**{k: v for k, v in runners.items() if v is not None})
    if any(v is not None for v in learners.values()):
        config.learners(**{k: v for k, v in learners.items() if v is not None})
    if run.evaluation.interval:
        episodes = run.evaluation.episodes
        config.evaluation(
            evaluation_interval=run.evaluation.interval,
            evaluation_duration=episodes,
            evaluation_duration_unit="episodes",
            evaluation_config={"explore": False, "num_envs_per_env_runner": min(episodes, MAX_EVAL_ENVS)},
        )
    try:
        config.validate()
    except BadInput:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"invalid {run.algo} config: {first_line(exc)}") from None
    return spec, config


def build_config(
    *,
    algo: str,
    env: str,
    seed: int,
    env_config: dict[str, Any] | None = None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
    evaluation_interval: int = DEFAULT_EVAL_INTERVAL,
    evaluation_episodes: int = DEFAULT_EVAL_EPISODES,
    demos: str | None = None,
    **resources: Any,
) -> tuple[AlgoSpec, AlgorithmConfig, dict[str, Any]]:
    """For scripts and tests: `algorithm_config` of the ConfigSpec these keywords spell.

    `resources` are spec.Resources' fields (num_env_runners, num_envs_per_env_runner,
    num_learners, gpus_per_learner). Returns (spec, config, the settings applied:
    the file's, then `overrides`).
    """
    run = parse(ConfigSpec, {
        "algo": algo, "env": env, "seed": seed, "env_config": env_config, "config_file": config_file,
        "config": overrides, "resources": resources,
        "evaluation": {"interval": evaluation_interval, "episodes": evaluation_episodes}, "demos": demos,
    })
    spec, config = algorithm_config(run, seed=seed)
    from_file = load_yaml_mapping(config_file, what="config_file") if config_file else {}
    return spec, config, {**from_file, **(overrides or {})}


def clone_config(config: AlgorithmConfig) -> AlgorithmConfig:
    return copy.deepcopy(config)
