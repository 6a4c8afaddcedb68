"""The one description of a run: `RunSpec`, filled in by `train`'s flags and by a tune file.

A RunSpec says what to train (algo, env, AlgorithmConfig settings, seed),
with what (resources), how trials are judged and stopped (evaluation, stop),
where results go (checkpoints, Tune storage, MLflow), and, for a search,
what varies and how trials are picked (search_space, num_samples, metric,
mode, scheduler, searcher). `train` fills in no search part: it is a search
of one trial. Both commands hand their RunSpec to `rlfrontier.runs.run`.

The schema is pydantic's: strict types, ranges and unknown keys, plus the
checks that span fields (a stop criterion, what PBT and Optuna can take).
Every failure is one BadInput line naming where the value came from (the
flag, or the file and the key) and the value:

    search.yaml: scheduler.grace=2 is not an asha setting (known: type, grace_period, max_t, reduction_factor)
    --stop-timesteps=-5 is out of range: allowed [1, inf)

What only an algorithm knows (its fields and their ranges) is checked when
its AlgorithmConfig is built (`rlfrontier.configure`), the ends of every
search range included (`rlfrontier.tuning.check_extremes`), still before
Ray starts.

AlgorithmConfig settings (`config`, `--set`, search_space keys) may be
dotted to reach into a mapping field: `reward_transform.scale`.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, TypeVar, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from rlfrontier.trainable import EVAL_RETURN_MEAN
from rlfrontier.validation import BadInput

SEED_MAX = 2**31 - 1

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


# Reading input ------------------------------------------------------------------


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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
            raise BadInput(f"{flag} {key}={raw!r} is not a valid value: {first_line(exc)}") from None
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
        raise BadInput(f"{what} file {str(path)!r} is malformed YAML{where}: {first_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{what} file {str(path)!r} must hold a mapping of settings, got {type(data).__name__}")
    return data


# Where values came from, to name them ---------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a spec's values came from: a file, command-line flags, or both.

    Args:
        file: the tune file (None: the command line or Python).
        flags: the flag that set each field, by field path: {("stop", "timesteps"): "--stop-timesteps"}.
    """

    file: Path | None = None
    flags: Mapping[tuple[str, ...], str] = field(default_factory=dict)

    def name(self, path: tuple[str, ...]) -> str:
        """The flag that set `path`, else its dotted key ('': the whole spec, or a part
        that only the command line's flags spell, e.g. stop)."""
        if path in self.flags:
            return self.flags[path]
        if self.file is None and any(f[: len(path)] == path for f in self.flags):
            return ""
        return ".".join(path)

    @property
    def prefix(self) -> str:
        """What a message about the file's content opens with."""
        return f"{self.file}: " if self.file is not None else ""

    def where(self, path: tuple[str, ...]) -> str:
        """'FILE: key' or '--flag': where a value came from."""
        return self.name(path) if path in self.flags else self.prefix + self.name(path)

    def message(self, path: tuple[str, ...], why: str, *, value: Any = ...) -> str:
        """'FILE: key=value why', '--flag=value why' or 'key: why' (no value)."""
        where = self.where(path)
        if value is ...:
            return f"{where}: {why}" if self.name(path) else f"{where}{why}"
        return f"{where}={value!r} {why}"


def invalid(why: str, *, at: tuple[str, ...] = (), value: Any = ..., names: tuple[tuple[str, ...], ...] = ()):
    """A validation error for `to_bad_input`: `why` about `value` at `at` (below where
    it is raised); '{names}' in `why` becomes the names of the fields at `names`."""
    return PydanticCustomError("rlfrontier", "{why}", {"why": why, "at": at, "value": value, "names": names})


def _number(value: Any) -> str:
    return str(value) if isinstance(value, int) else format(value, "g")


def _interval(metadata: list[Any]) -> str:
    """'[1, inf)' from a field's ge/gt/le/lt constraints (check_range's notation)."""
    lo, hi = "(-inf", "inf)"
    for c in metadata:
        if isinstance(c, annotated_types.Ge):
            lo = f"[{_number(c.ge)}"
        elif isinstance(c, annotated_types.Gt):
            lo = f"({_number(c.gt)}"
        elif isinstance(c, annotated_types.Le):
            hi = f"{_number(c.le)}]"
        elif isinstance(c, annotated_types.Lt):
            hi = f"{_number(c.lt)})"
    return f"{lo}, {hi}"


def _walk(root: type[BaseModel], loc: tuple) -> tuple[tuple[str, ...], type[BaseModel] | None, Any, str | None]:
    """Follows pydantic's error location through the schema.

    Returns:
        (the field path without union tags, the model that holds the last key,
        that key's FieldInfo (None: not a field), the union tag passed on the way).
    """
    path: list[str] = []
    expect: Any = root
    holder, info, tag = None, None, None
    i = 0
    while i < len(loc):
        key = loc[i]
        if isinstance(expect, type) and issubclass(expect, BaseModel):
            holder, info = expect, expect.model_fields.get(key)
            expect = info.annotation if info is not None else None
        elif get_origin(expect) is Annotated:
            expect = get_args(expect)[0]
            continue
        elif get_origin(expect) in (Union, types.UnionType):
            members = get_args(expect)
            tagged = {
                m.tag: get_args(a)[0] for a in members if get_origin(a) is Annotated
                for m in get_args(a)[1:] if isinstance(m, Tag)
            }
            if key in tagged:
                tag, expect = key, tagged[key]
                i += 1
                continue
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            expect = models[0] if len(models) == 1 else None  # (Optional[Model]: the model)
            continue
        elif get_origin(expect) is dict:
            holder, info = None, None
            expect = get_args(expect)[1]
        else:
            holder, info, expect = None, None, None
        path.append(str(key))
        i += 1
    return tuple(path), holder, info, tag


_TYPE_ERRORS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "union_tag_not_found": "must be a mapping",
}


def to_bad_input(model: type[BaseModel], error: dict[str, Any], origin: Origin) -> BadInput:
    """One pydantic error as one line naming the flag or key and the value."""
    path, holder, info, tag = _walk(model, tuple(error["loc"]))
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "rlfrontier":
        at = path + tuple(ctx["at"])
        names = [origin.name(path + tuple(n)) for n in ctx["names"]]
        listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
        return BadInput(origin.message(at, ctx["why"].replace("{names}", listed), value=ctx["value"]))
    if kind == "missing":
        return BadInput(f"{origin.where(path)} is required")
    if kind == "extra_forbidden":
        known = ", ".join(holder.model_fields) if holder is not None else ""
        what = f"is not {'an' if tag[0] in 'aeiou' else 'a'} {tag} setting" if tag else "is an unknown key"
        return BadInput(origin.message(path, f"{what} (known: {known})", value=value))
    if kind == "union_tag_invalid":
        return BadInput(origin.message(path + ("type",), f"is not one of {ctx['expected_tags']}", value=ctx["tag"]))
    if kind == "literal_error":
        return BadInput(origin.message(path, f"must be {ctx['expected']}", value=value))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bounds = _interval(info.metadata) if info is not None else str(ctx)
        return BadInput(origin.message(path, f"is out of range: allowed {bounds}", value=value))
    why = _TYPE_ERRORS.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
    return BadInput(origin.message(path, why, value=value))


_M = TypeVar("_M", bound=BaseModel)


def parse(model: type[_M], data: Any, *, origin: Origin = Origin()) -> _M:
    """Validates `data` as `model`; BadInput (one line) on the first error."""
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        raise to_bad_input(model, exc.errors()[0], origin) from None
    if isinstance(spec, ConfigSpec):
        spec._origin = origin
    return spec


# The schema ---------------------------------------------------------------------


class _Part(BaseModel):
    """Strict: no unknown keys, no strings for numbers, no floats or booleans for integers."""

    model_config = ConfigDict(extra="forbid", strict=True)


class StopCriteria(_Part):
    """When a trial is done: the first criterion reached (at least one is needed)."""

    timesteps: int | None = Field(None, ge=1, description="env steps")
    iterations: int | None = Field(None, ge=1, description="training iterations")
    reward: float | None = Field(
        None, description="return; the evaluation return when evaluation is on, else the training return"
    )

    @model_validator(mode="after")
    def _one_criterion(self) -> StopCriteria:
        if self.timesteps is None and self.iterations is None and self.reward is None:
            raise invalid("give a stop criterion: {names}", names=(("timesteps",), ("iterations",), ("reward",)))
        return self

    def reached(self, *, env_steps: int, iterations: int, return_mean: float | None) -> bool:
        return bool(
            (self.timesteps is not None and env_steps >= self.timesteps)
            or (self.iterations is not None and iterations >= self.iterations)
            or (self.reward is not None and return_mean is not None and return_mean >= self.reward)
        )


class Resources(_Part):
    """What one trial asks for (None: the algorithm's default)."""

    num_env_runners: int | None = Field(None, ge=0)
    num_envs_per_env_runner: int | None = Field(None, ge=1)
    num_learners: int | None = Field(None, ge=0)
    gpus_per_learner: float | None = Field(None, ge=0)


class Evaluation(_Part):
    """Greedy evaluation (see DEFAULT_EVAL_INTERVAL for the budget)."""

    interval: int = Field(DEFAULT_EVAL_INTERVAL, ge=0, description="iterations between evaluations (0: none)")
    episodes: int = Field(DEFAULT_EVAL_EPISODES, ge=1, description="greedy episodes per evaluation")


DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint")


class Distribution(_Part):
    """One searched setting, written `{kind: args}`: `{loguniform: [1.0e-4, 3.0e-3]}`.

    `randint`'s upper bound is exclusive, as in Tune.
    """

    kind: Literal["choice", "grid", "uniform", "loguniform", "randint"]
    args: list[Any]

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, raw: Any) -> Any:
        if isinstance(raw, Distribution):
            return raw
        if not isinstance(raw, dict) or len(raw) != 1:
            raise invalid(f"must be one of {{{', '.join(DISTRIBUTIONS)}: ...}}", value=raw)
        kind, args = next(iter(raw.items()))
        if kind not in DISTRIBUTIONS:
            raise invalid(f"is not a distribution: use one of {', '.join(DISTRIBUTIONS)}", at=(str(kind),), value=args)
        if not isinstance(args, list) or not args:
            raise invalid("must be a non-empty list", at=(kind,), value=args)
        if kind in ("uniform", "loguniform", "randint"):
            integer = kind == "randint"
            if len(args) != 2:
                raise invalid("must be [lower, upper]", at=(kind,), value=args)
            for a in args:
                if isinstance(a, bool) or not isinstance(a, int if integer else (int, float)):
                    raise invalid(f"must be [lower, upper] of {'integers' if integer else 'numbers'}",
                                  at=(kind,), value=args)
            if args[0] >= args[1]:
                raise invalid("has lower >= upper", at=(kind,), value=args)
            if kind == "loguniform" and args[0] <= 0:
                raise invalid("needs lower > 0", at=(kind,), value=args)
        return {"kind": kind, "args": args}

    def to_tune(self):
        from ray import tune

        if self.kind == "choice":
            return tune.choice(self.args)
        if self.kind == "grid":
            return tune.grid_search(self.args)
        if self.kind == "uniform":
            return tune.uniform(*self.args)
        if self.kind == "loguniform":
            return tune.loguniform(*self.args)
        return tune.randint(*self.args)

    def extremes(self) -> list[Any]:
        """Values that the algorithm's validate() must accept for the whole range to be valid."""
        if self.kind == "randint":
            return [self.args[0], self.args[1] - 1]
        return list(self.args)


class Fifo(_Part):
    type: Literal["fifo"] = "fifo"


class Asha(_Part):
    """Tune's ASHAScheduler, in training iterations (None: Tune's default)."""

    type: Literal["asha"]
    grace_period: int | None = Field(None, ge=1)
    max_t: int | None = Field(None, ge=1)
    reduction_factor: float | None = Field(None, gt=1)


class Pbt(_Part):
    """Tune's PopulationBasedTraining over the search space, in training iterations."""

    type: Literal["pbt"]
    perturbation_interval: int | None = Field(None, ge=1)
    quantile_fraction: float | None = Field(None, gt=0, le=0.5)
    resample_probability: float | None = Field(None, ge=0, le=1)


def _scheduler_type(raw: Any) -> Any:
    return raw.get("type", "fifo") if isinstance(raw, dict) else getattr(raw, "type", None)


Scheduler = Annotated[
    Union[Annotated[Fifo, Tag("fifo")], Annotated[Asha, Tag("asha")], Annotated[Pbt, Tag("pbt")]],
    Discriminator(_scheduler_type),
]


class Searcher(_Part):
    type: Literal["random", "optuna"] = "random"


def _drop_none(data: Any) -> Any:
    """A key set to null (`stop:` with nothing after it) means its default."""
    return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


def _bonus_into_config(data: Any) -> Any:
    """A tune file's `bonus:` section is the AlgorithmConfig field `bonus` (rlfrontier.bonuses),
    so that its fields are searched and checked as `bonus.beta`, like any setting."""
    if not isinstance(data, dict) or "bonus" not in data:
        return data
    data = dict(data)
    bonus = data.pop("bonus")
    config = dict(data.get("config") or {})
    if any(key == "bonus" or str(key).startswith("bonus.") for key in config):
        raise invalid("is also set under config", at=("bonus",), value=bonus)
    config["bonus"] = bonus
    data["config"] = config
    return data


class ConfigSpec(_Part):
    """The part of a run that makes its AlgorithmConfig (`rlfrontier.configure.algorithm_config`)."""

    algo: str = Field(description="an algorithm name from `rlfrontier algos`")
    env: str = Field(description="a gymnasium id or one of the project's envs")
    env_config: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the env")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="None: drawn per run, or per trial of a search")
    config_file: str | None = Field(None, description="a YAML file of AlgorithmConfig settings")
    config: dict[str, Any] = Field(
        default_factory=dict, description="AlgorithmConfig settings, after config_file's (dotted keys reach into mappings)"
    )
    resources: Resources = Field(default_factory=Resources)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    demos: str | None = Field(
        None, description="a demonstrations folder (`rlfrontier demos record`); on a cluster, on storage every node reads"
    )

    _origin: Origin = PrivateAttr(default_factory=Origin)

    @model_validator(mode="before")
    @classmethod
    def _none_is_default(cls, data: Any) -> Any:
        return _bonus_into_config(_drop_none(data))

    @property
    def origin(self) -> Origin:
        return self._origin

    def bad(self, path: tuple[str, ...], why: str, *, value: Any = ...) -> BadInput:
        """BadInput about the value at `path`, named as the user gave it."""
        return BadInput(self._origin.message(path, why, value=value))


class RunSpec(ConfigSpec):
    """A whole run: the AlgorithmConfig's part, stopping, checkpoints, tracking and the search."""

    stop: StopCriteria
    checkpoint_every: int = Field(10, ge=1, description="iterations between checkpoints")
    max_failures: int = Field(0, ge=-1, description="restarts of a failed trial from its last checkpoint (-1: no limit)")
    restore: str | None = Field(None, description="a checkpoint to continue from, or to fine-tune on another env")
    experiment: str = Field("rlfrontier", description="MLflow experiment")
    name: str | None = Field(None, description="Tune experiment folder under storage_path (None: <algo>-<env>-<time>)")
    storage_path: str = Field("ray_results", description="Tune storage: a folder or s3://, gs://")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (None: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    search_space: dict[str, Distribution] = Field(default_factory=dict)
    num_samples: int = Field(1, ge=1, description="samples per grid point")
    metric: str = Field(EVAL_RETURN_MEAN, description="what the scheduler, searcher and 'best' use")
    mode: Literal["max", "min"] = "max"
    scheduler: Scheduler = Field(default_factory=Fifo)
    searcher: Searcher = Field(default_factory=Searcher)
    max_concurrent_trials: int = Field(1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _stop_is_checked_when_absent(cls, data: Any) -> Any:
        data = _drop_none(data)  # (before ConfigSpec's validator: pydantic runs the subclass's first)
        if isinstance(data, dict) and "stop" not in data:
            data = {**data, "stop": {}}
        return data

    @model_validator(mode="after")
    def _search_fits_together(self) -> RunSpec:
        for key, dist in self.search_space.items():
            fixed = self.seed is not None if key == "seed" else _lookup(self.config, key) is not _ABSENT
            if fixed:
                raise invalid(f"is also fixed under {'seed' if key == 'seed' else 'config'}",
                              at=("search_space", key), value={dist.kind: dist.args})
        kind = self.scheduler.type
        if kind == "pbt":
            if not self.search_space:
                raise invalid("needs a search_space to mutate", at=("scheduler", "type"), value=kind)
            if any(d.kind == "grid" for d in self.search_space.values()):
                raise invalid("cannot mutate grid values; use choice", at=("scheduler", "type"), value=kind)
            for key, dist in self.search_space.items():
                if any(not isinstance(v, (int, float)) for v in dist.args):  # bools are 0/1
                    raise invalid("has values that are not numbers or booleans: PBT logs its mutations as metrics",
                                  at=("search_space", key, dist.kind), value=dist.args)
        if self.searcher.type == "optuna":
            if any(d.kind == "grid" for d in self.search_space.values()):
                raise invalid("cannot take grid values; use choice", at=("searcher", "type"), value="optuna")
            try:
                import optuna  # noqa: F401
            except ImportError:
                raise invalid("needs the optuna package (pip install optuna)",
                              at=("searcher", "type"), value="optuna") from None
        return self

    @property
    def is_search(self) -> bool:
        """More than one trial, or settings that vary: trials get their own seeds."""
        return bool(self.search_space) or self.num_samples > 1

    @property
    def checkpoint_interval(self) -> int:
        """PBT exploits through checkpoints: one at every perturbation."""
        if isinstance(self.scheduler, Pbt) and self.scheduler.perturbation_interval:
            return self.scheduler.perturbation_interval
        return self.checkpoint_every


_ABSENT = object()


def _lookup(settings: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key in nested settings, whichever way they spell it
    ({'a.b': 1} or {'a': {'b': 1}}); _ABSENT when not set."""
    if dotted in settings:
        return settings[dotted]
    head, sep, rest = dotted.partition(".")
    if sep and isinstance(settings.get(head), dict):
        return _lookup(settings[head], rest)
    for key, value in settings.items():  # {'a.b': {'c': 1}} holds a.b.c
        if dotted.startswith(key + ".") and isinstance(value, dict):
            return _lookup(value, dotted[len(key) + 1:])
    return _ABSENT


def default_of(path: str, model: type[BaseModel] = RunSpec) -> Any:
    """A field's default, by dotted path ('evaluation.interval'), for help texts."""
    head, _, rest = path.partition(".")
    info = model.model_fields[head]
    if rest:
        return default_of(rest, info.annotation)
    return info.get_default(call_default_factory=True)


def load_file(path: str | Path, *, overrides: dict[str, Any] | None = None,
              flags: Mapping[tuple[str, ...], str] | None = None) -> RunSpec:
    """A tune file as a RunSpec; `overrides` are fields the command line set (named by `flags`).

    The file's stem is the default experiment, which is also its Tune folder,
    so that `--resume` finds it.
    """
    path = Path(path)
    data = _drop_none(load_yaml_mapping(path, what="tune config"))
    data.setdefault("experiment", path.stem)
    data.setdefault("name", data["experiment"])
    data.update(overrides or {})
    return parse(RunSpec, data, origin=Origin(file=path, flags=dict(flags or {})))


def is_field(path: str) -> bool:
    """Whether a dotted path names a RunSpec field (or a part of one)."""
    return path.partition(".")[0] in RunSpec.model_fields


