"""From command-line input to a validated AlgorithmConfig, before Ray starts.

Everything a user can get wrong (algorithm, env, YAML file, --set values,
stop criteria) is checked here and raised as BadInput naming the bad value,
so `train` exits 2 without starting Ray or writing anything.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rlfrontier import envs
from rlfrontier.registry import AlgoSpec, get_algorithm
from rlfrontier.validation import BadInput, check_range

class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-3 (no dot) as a string; accept it as a float, as 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


# Fields of AlgorithmConfig that the command line owns through its own flags.
_CLI_OWNED = {"env", "env_config", "seed"}


def parse_assignments(pairs: list[str] | None, *, flag: str) -> dict[str, Any]:
    """['a=1', 'b=[1, 2]'] -> {'a': 1, 'b': [1, 2]}; values are read as YAML."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"{flag} {pair!r} is not key=value")
        try:
            out[key] = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise BadInput(f"{flag} {key}={raw!r} is not a valid value: {_first_line(exc)}") from None
    return out


def load_yaml_mapping(path: str | Path, *, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{what} file {str(path)!r} does not exist")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadInput(f"{what} file {str(path)!r} is malformed YAML{where}: {_first_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{what} file {str(path)!r} must hold a mapping of settings, got {type(data).__name__}")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def apply_overrides(config: AlgorithmConfig, overrides: dict[str, Any], *, source: str) -> None:
    """Sets AlgorithmConfig fields by name; unknown names are BadInput."""
    for key, value in overrides.items():
        if key in _CLI_OWNED:
            raise BadInput(f"{source}: set {key!r} with its own flag (--env, --env-config, --seed)")
        if not hasattr(config, key) or key.startswith("_") or callable(getattr(config, key)):
            raise BadInput(f"{source}: unknown setting {key!r} for {config.algo_class.__name__}")
        current = getattr(config, key)
        if isinstance(current, dict) and isinstance(value, dict):
            value = {**current, **value}
        try:
            if key == "model_config":  # a read-only property; its setter is rl_module()
                if not isinstance(value, dict):
                    raise TypeError("model_config must be a mapping")
                current_model = config._model_config
                if is_dataclass(current_model):  # RLlib's DefaultModelConfig
                    current_model = asdict(current_model)
                config.rl_module(model_config={**(current_model or {}), **value})
            else:
                config.update_from_dict({key: value})
        except AttributeError:
            raise BadInput(f"{source}: {key!r} is derived by RLlib and cannot be set") from None
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{source}: {key}={value!r} rejected: {_first_line(exc)}") from None


@dataclass
class StopCriteria:
    timesteps: int | None = None
    iterations: int | None = None
    reward: float | None = None

    def validate(self) -> None:
        if self.timesteps is not None:
            check_range("--stop-timesteps", self.timesteps, 1, None, integer=True)
        if self.iterations is not None:
            check_range("--stop-iters", self.iterations, 1, None, integer=True)
        if self.reward is not None:
            check_range("--stop-reward", self.reward, None, None)
        if self.timesteps is None and self.iterations is None and self.reward is None:
            raise BadInput("give a stop criterion: --stop-timesteps, --stop-iters or --stop-reward")

    def reached(self, *, env_steps: int, iterations: int, return_mean: float | None) -> bool:
        return bool(
            (self.timesteps is not None and env_steps >= self.timesteps)
            or (self.iterations is not None and iterations >= self.iterations)
            or (self.reward is not None and return_mean is not None and return_mean >= self.reward)
        )


# Evaluation budget: 10 greedy episodes, stepped together in one vector env
# (one batched forward per step), every 5 iterations. Evaluating a CartPole
# policy at 500 takes 500 batched steps, 0.5-0.7 s of CPU against ~1.3 s for one
# soft_q iteration (1,000 env steps, 1,000 SGD updates): every 2 iterations
# that is up to ~25% on top of training, every 5 ~10%. Not in parallel with
# training (evaluation_parallel_to_training): that evaluates the weights from
# before the iteration, not those checkpointed after it, which would pair a
# best checkpoint with another policy's return, and costs a CPU per trial.
DEFAULT_EVAL_INTERVAL = 5
DEFAULT_EVAL_EPISODES = 10
MAX_EVAL_ENVS = 10


def build_config(
    *,
    algo: str,
    env: str,
    env_config: dict[str, Any] | None = None,
    seed: int,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
    num_env_runners: int | None = None,
    num_envs_per_env_runner: int | None = None,
    num_learners: int | None = None,
    gpus_per_learner: float | None = None,
    evaluation_interval: int = DEFAULT_EVAL_INTERVAL,
    evaluation_episodes: int = DEFAULT_EVAL_EPISODES,
) -> tuple[AlgoSpec, AlgorithmConfig, dict[str, Any]]:
    """Builds and validates the AlgorithmConfig; returns (spec, config, applied overrides)."""
    spec = get_algorithm(algo)
    env_config = envs.with_run_seed(env, env_config, seed)
    _, action_space = envs.check_env(env, env_config)
    if type(action_space).__name__ not in spec.action_spaces:
        raise BadInput(
            f"{algo} needs a {' or '.join(spec.action_spaces)} action space; {env} has {action_space}"
        )
    config = spec.make_config()
    envs.register_with_ray(env)
    config.environment(env, env_config=env_config)
    config.debugging(seed=seed)

    applied: dict[str, Any] = {}
    if config_file:
        from_file = load_yaml_mapping(config_file, what="--config")
        apply_overrides(config, from_file, source=f"--config {config_file}")
        applied.update(from_file)
    if overrides:
        apply_overrides(config, overrides, source="--set")
        applied.update(overrides)

    runners: dict[str, Any] = {}
    if num_env_runners is not None:
        check_range("--num-env-runners", num_env_runners, 0, None, integer=True)
        runners["num_env_runners"] = num_env_runners
    if num_envs_per_env_runner is not None:
        check_range("--num-envs-per-env-runner", num_envs_per_env_runner, 1, None, integer=True)
        runners["num_envs_per_env_runner"] = num_envs_per_env_runner
    if runners:
        config.env_runners(**runners)
    learners: dict[str, Any] = {}
    if num_learners is not None:
        check_range("--num-learners", num_learners, 0, None, integer=True)
        learners["num_learners"] = num_learners
    if gpus_per_learner is not None:
        check_range("--gpus-per-learner", gpus_per_learner, 0, None)
        learners["num_gpus_per_learner"] = gpus_per_learner
    if learners:
        config.learners(**learners)

    check_range("--eval-interval", evaluation_interval, 0, None, integer=True)
    check_range("--eval-episodes", evaluation_episodes, 1, None, integer=True)
    if evaluation_interval:
        eval_envs = min(evaluation_episodes, MAX_EVAL_ENVS)
        config.evaluation(
            evaluation_interval=evaluation_interval,
            evaluation_duration=evaluation_episodes,
            evaluation_duration_unit="episodes",
            evaluation_config={"explore": False, "num_envs_per_env_runner": eval_envs},
        )
    try:
        config.validate()
    except BadInput:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"invalid {algo} config: {_first_line(exc)}") from None
    return spec, config, applied


def clone_config(config: AlgorithmConfig) -> AlgorithmConfig:
    return copy.deepcopy(config)
