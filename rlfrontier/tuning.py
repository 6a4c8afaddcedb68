"""`tune FILE.yaml`: a Ray Tune search over one algorithm, from a YAML file.

The file schema (tune_configs/README.md has the long form):

    algo: soft_q                      # required, as for `train`
    env: CartPole-v1                  # required
    env_config: {}                    # optional
    experiment: soft_q-cartpole       # Tune experiment and MLflow experiment name (default: file stem)
    config: {n_step: 1}               # fixed AlgorithmConfig settings
    search_space:                     # one distribution per setting
      lr: {loguniform: [1.0e-4, 3.0e-3]}
      alpha: {choice: [0.01, 0.05]}
      n_step: {grid: [1, 3]}
      tau: {uniform: [0.005, 1.0]}
      target_update_interval: {randint: [50, 200]}   # upper bound exclusive, as in Tune
    num_samples: 4                    # per grid point; --num-samples overrides
    metric: eval_return_mean          # what the scheduler, searcher and "best" use
    mode: max
    scheduler: {type: asha, grace_period: 2, max_t: 30, reduction_factor: 2}   # fifo | asha | pbt
    searcher: {type: random}          # random | optuna
    stop: {timesteps: 30000}          # timesteps | iterations | reward
    resources: {num_env_runners: 0, num_envs_per_env_runner: 8, num_learners: 0, gpus_per_learner: 0}
    evaluation: {interval: 5, episodes: 10}   # the defaults, as for `train`
    max_concurrent_trials: 1
    checkpoint_every: 10

Everything is checked before Ray starts; a wrong file, key or value is a
BadInput that names all three.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlfrontier import configure, envs
from rlfrontier.configure import StopCriteria
from rlfrontier.validation import BadInput

DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint")
SCHEDULERS = ("fifo", "asha", "pbt")
SEARCHERS = ("random", "optuna")
TOP_LEVEL = (
    "algo", "env", "env_config", "experiment", "config", "search_space", "num_samples", "metric",
    "mode", "scheduler", "searcher", "stop", "resources", "evaluation", "max_concurrent_trials",
    "checkpoint_every", "max_failures",
)
SCHEDULER_KEYS = {
    "fifo": (),
    "asha": ("grace_period", "max_t", "reduction_factor"),
    "pbt": ("perturbation_interval", "quantile_fraction", "resample_probability"),
}
RESOURCE_KEYS = ("num_env_runners", "num_envs_per_env_runner", "num_learners", "gpus_per_learner")


@dataclass
class Distribution:
    kind: str
    args: list[Any]

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
        """Values that validate() must accept for the whole range to be valid."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        if self.kind == "randint":
            return [self.args[0], self.args[1] - 1]
        return list(self.args)


@dataclass
class SearchSpec:
    path: Path
    algo: str
    env: str
    env_config: dict[str, Any]
    experiment: str
    fixed: dict[str, Any]
    space: dict[str, Distribution]
    num_samples: int
    metric: str
    mode: str
    scheduler: dict[str, Any]
    searcher: str
    stop: StopCriteria
    resources: dict[str, Any]
    eval_interval: int
    eval_episodes: int
    max_concurrent_trials: int
    checkpoint_every: int
    max_failures: int
    base: Any = field(default=None, repr=False)  # the validated AlgorithmConfig


def _bad(path: Path, key: str, value: Any, why: str) -> BadInput:
    return BadInput(f"{path}: {key}={value!r} {why}")


def _number(path, key, value, *, integer=False):
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _bad(path, key, value, f"must be {'an integer' if integer else 'a number'}")
    return value


def parse_distribution(path: Path, key: str, raw: Any) -> Distribution:
    where = f"search_space.{key}"
    if not isinstance(raw, dict) or len(raw) != 1:
        raise _bad(path, where, raw, f"must be one of {{{', '.join(DISTRIBUTIONS)}: ...}}")
    kind, args = next(iter(raw.items()))
    if kind not in DISTRIBUTIONS:
        raise _bad(path, f"{where}.{kind}", args, f"is not a distribution: use one of {', '.join(DISTRIBUTIONS)}")
    where = f"{where}.{kind}"
    if not isinstance(args, list) or not args:
        raise _bad(path, where, args, "must be a non-empty list")
    if kind in ("uniform", "loguniform", "randint"):
        if len(args) != 2:
            raise _bad(path, where, args, "must be [lower, upper]")
        lo, hi = (_number(path, where, a, integer=kind == "randint") for a in args)
        if lo >= hi:
            raise _bad(path, where, args, "has lower >= upper")
        if kind == "loguniform" and lo <= 0:
            raise _bad(path, where, args, "needs lower > 0")
    return Distribution(kind, list(args))


def _mapping(path: Path, data: dict, key: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise _bad(path, key, value, "must be a mapping")
    return value


def load_search(path: str | Path, *, num_samples: int | None = None) -> SearchSpec:
    """Reads and validates a tune config; BadInput names file, key and value."""
    path = Path(path)
    data = configure.load_yaml_mapping(path, what="tune config")
    for key in data:
        if key not in TOP_LEVEL:
            raise _bad(path, key, data[key], f"is an unknown key (known: {', '.join(TOP_LEVEL)})")
    for key in ("algo", "env"):
        if not isinstance(data.get(key), str):
            raise _bad(path, key, data.get(key), "is required and must be a string")

    env_config = _mapping(path, data, "env_config")
    fixed = _mapping(path, data, "config")
    space = {k: parse_distribution(path, k, v) for k, v in _mapping(path, data, "search_space").items()}
    overlap = set(space) & set(fixed)
    if overlap:
        key = sorted(overlap)[0]
        raise _bad(path, f"search_space.{key}", data["search_space"][key], "is also fixed under config")

    sched = dict(_mapping(path, data, "scheduler") or {"type": "fifo"})
    kind = sched.pop("type", "fifo")
    if kind not in SCHEDULERS:
        raise _bad(path, "scheduler.type", kind, f"is not one of {', '.join(SCHEDULERS)}")
    for key, value in sched.items():
        if key not in SCHEDULER_KEYS[kind]:
            raise _bad(path, f"scheduler.{key}", value, f"is not a {kind} setting ({', '.join(SCHEDULER_KEYS[kind]) or 'none'})")
        _number(path, f"scheduler.{key}", value)
        if value <= 0:
            raise _bad(path, f"scheduler.{key}", value, "must be > 0")
    if kind == "pbt" and not space:
        raise _bad(path, "scheduler.type", kind, "needs a search_space to mutate")
    if kind == "pbt" and any(d.kind == "grid" for d in space.values()):
        raise _bad(path, "scheduler.type", kind, "cannot mutate grid values; use choice")
    if kind == "pbt":
        for key, dist in space.items():
            odd = [v for v in dist.args if not isinstance(v, (int, float))]  # bools are 0/1
            if odd:
                raise _bad(path, f"search_space.{key}.{dist.kind}", dist.args,
                           "has values that are not numbers or booleans: PBT logs its mutations as metrics")

    searcher = _mapping(path, data, "searcher") or {"type": "random"}
    searcher_kind = searcher.get("type", "random")
    if searcher_kind not in SEARCHERS or set(searcher) - {"type"}:
        raise _bad(path, "searcher.type", searcher_kind, f"is not one of {', '.join(SEARCHERS)}")
    if searcher_kind == "optuna":
        if any(d.kind == "grid" for d in space.values()):
            raise _bad(path, "searcher.type", searcher_kind, "cannot take grid values; use choice")
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise _bad(path, "searcher.type", searcher_kind, "needs the optuna package (pip install optuna)") from None

    stop_raw = _mapping(path, data, "stop")
    for key in stop_raw:
        if key not in ("timesteps", "iterations", "reward"):
            raise _bad(path, f"stop.{key}", stop_raw[key], "is not a stop criterion (timesteps, iterations, reward)")
    stop = StopCriteria(stop_raw.get("timesteps"), stop_raw.get("iterations"), stop_raw.get("reward"))
    try:
        stop.validate()
    except BadInput as exc:
        raise BadInput(f"{path}: stop: {exc}") from None

    resources = _mapping(path, data, "resources")
    for key in resources:
        if key not in RESOURCE_KEYS:
            raise _bad(path, f"resources.{key}", resources[key], f"is not one of {', '.join(RESOURCE_KEYS)}")
    evaluation = _mapping(path, data, "evaluation")
    for key in evaluation:
        if key not in ("interval", "episodes"):
            raise _bad(path, f"evaluation.{key}", evaluation[key], "is not one of interval, episodes")

    mode = data.get("mode", "max")
    if mode not in ("max", "min"):
        raise _bad(path, "mode", mode, "is not max or min")
    metric = data.get("metric", "eval_return_mean")
    if not isinstance(metric, str):
        raise _bad(path, "metric", metric, "must be a result key")
    samples = num_samples if num_samples is not None else data.get("num_samples", 1)
    _number(path, "num_samples", samples, integer=True)
    if samples < 1:
        raise _bad(path, "num_samples", samples, "must be >= 1")
    ints = {}
    for key, default in (("max_concurrent_trials", 1), ("checkpoint_every", 10), ("max_failures", 0)):
        ints[key] = _number(path, key, data.get(key, default), integer=True)
        if ints[key] < (0 if key == "max_failures" else 1):
            raise _bad(path, key, ints[key], "is out of range")
    if kind == "pbt":
        # PBT exploits through checkpoints: one at every perturbation.
        ints["checkpoint_every"] = int(sched.get("perturbation_interval", ints["checkpoint_every"]))

    spec = SearchSpec(
        path=path,
        algo=data["algo"],
        env=data["env"],
        env_config=env_config,
        experiment=str(data.get("experiment") or path.stem),
        fixed=fixed,
        space=space,
        num_samples=samples,
        metric=metric,
        mode=mode,
        scheduler={"type": kind, **sched},
        searcher=searcher_kind,
        stop=stop,
        resources=resources,
        eval_interval=evaluation.get("interval", configure.DEFAULT_EVAL_INTERVAL),
        eval_episodes=evaluation.get("episodes", configure.DEFAULT_EVAL_EPISODES),
        **ints,
    )
    spec.base = _validated_base(spec)
    return spec


def _validated_base(spec: SearchSpec):
    """Builds the base config and checks every extreme of every distribution."""
    try:
        _, base, _ = configure.build_config(
            algo=spec.algo, env=spec.env, env_config=spec.env_config, seed=0,
            overrides=spec.fixed, evaluation_interval=spec.eval_interval,
            evaluation_episodes=spec.eval_episodes,
            **{k: v for k, v in spec.resources.items()},
        )
    except BadInput as exc:
        raise BadInput(f"{spec.path}: {exc}") from None
    for key, dist in spec.space.items():
        for value in dist.extremes():
            probe = configure.clone_config(base)
            try:
                configure.apply_overrides(probe, {key: value}, source=f"search_space.{key}")
                probe.validate()
            except BadInput as exc:
                raise BadInput(f"{spec.path}: {exc}") from None
            except (ValueError, TypeError) as exc:
                raise _bad(spec.path, f"search_space.{key}", value, f"is rejected: {str(exc).splitlines()[0]}") from None
    return base


def _scheduler(spec: SearchSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    kind = spec.scheduler["type"]
    opts = {k: v for k, v in spec.scheduler.items() if k != "type"}
    if kind == "asha":
        return ASHAScheduler(time_attr="training_iteration", **opts)
    if kind == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration",
            # A result without the metric (no evaluation yet) is skipped, and
            # the trial perturbed at its next result that has it.
            require_attrs=False,
            hyperparam_mutations={k: d.to_tune() for k, d in spec.space.items()},
            **opts,
        )
    return FIFOScheduler()


def _searcher(spec: SearchSpec):
    if spec.searcher == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch()
    return None


def run_search(
    spec: SearchSpec,
    *,
    resume: bool = False,
    address: str | None = None,
    tracking_uri: str | None = None,
    storage_path: str = "ray_results",
    register: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Runs (or resumes) the search; returns the summary for `--json`."""
    from rlfrontier import session, tracking
    from rlfrontier import trainable as T
    from rlfrontier.progress import ProgressPrinter
    from rlfrontier.runs import config_params, config_yaml, resolve_storage

    resources = spec.base.algo_class.default_resource_request(spec.base)
    session.check_local_gpus(address, resources)
    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.check_tracking_uri(uri)
    storage = resolve_storage(storage_path)
    experiment_dir = f"{storage.rstrip('/')}/{spec.experiment}"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # The evaluation return exists only from the first evaluation on; the
    # schedulers skip results without their metric, Tune's strict check would
    # fail the trial instead.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # Snapshot the experiment state often: what --resume keeps after a crash
    # is what the last snapshot recorded (Tune's default period adapts, up to minutes).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
    from ray import tune

    if resume and not tune.Tuner.can_restore(str(experiment_dir)):
        raise BadInput(f"--resume: no experiment to resume at {experiment_dir}")
    session.init_ray(address, verbose=verbose, trial_resources=resources)

    obs_space, act_space = envs.check_env(spec.env, spec.env_config)
    meta = {
        "algo": spec.algo, "env": spec.env, "env_config": spec.env_config,
        "observation_space": repr(obs_space), "action_space": repr(act_space),
    }
    tracker = tracking.MLflowTracking(
        tracking_uri=uri,
        experiment=spec.experiment,
        tags={"algo": spec.algo, "env": spec.env, "git_commit": session.git_commit(),
              "tune_config": str(spec.path), **session.versions()},
        params=config_params(spec.base),
        config_yaml=config_yaml(spec.base),
        run_name=lambda trial: f"{spec.algo}-{spec.env}-{trial.trial_id}",
        mutable_keys=tuple(spec.space) if spec.scheduler["type"] == "pbt" else (),
    )
    callbacks = [tracker]
    if not quiet:
        callbacks.append(ProgressPrinter(stop_timesteps=spec.stop.timesteps))
    trainable = tune.with_parameters(
        T.train_loop, base_config=spec.base, stop=spec.stop, meta=meta,
        checkpoint_every=spec.checkpoint_every,
    )
    trainable.__name__ = spec.algo
    trainable = tune.with_resources(trainable, resources)
    param_space = {k: d.to_tune() for k, d in spec.space.items()}
    # Each trial gets its own seed, recorded in its params.
    param_space["seed"] = tune.randint(0, 2**31 - 1)

    started = time.perf_counter()
    if resume:
        tuner = tune.Tuner.restore(
            str(experiment_dir), trainable=trainable, param_space=param_space,
            resume_unfinished=True, resume_errored=True,
        )
        # The restored run config carries pickled copies of the callbacks:
        # use this process's, so that the summary below sees what they logged.
        tuner._local_tuner.get_run_config().callbacks = callbacks
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                num_samples=spec.num_samples,
                scheduler=_scheduler(spec),
                search_alg=_searcher(spec),
                metric=spec.metric,
                mode=spec.mode,
                max_concurrent_trials=spec.max_concurrent_trials,
            ),
            run_config=tune.RunConfig(
                name=spec.experiment,
                storage_path=storage,
                callbacks=callbacks,
                # PBT: keep every checkpoint. With num_to_keep, Tune 2.60 deletes
                # a checkpoint that one trial cloned from another's folder, and
                # the owner then fails on FileNotFoundError (seen in our PBT test).
                # Either way the best-evaluated checkpoint is kept (T.checkpoint_config).
                checkpoint_config=T.checkpoint_config(
                    num_to_keep=None if spec.scheduler["type"] == "pbt" else 2
                ),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                verbose=0,
            ),
        )
    with warnings.catch_warnings():
        # Tune suggests reuse_actors for PBT; a function trainable rebuilds its
        # algorithm on every exploit either way.
        warnings.filterwarnings("ignore", message="Consider boosting PBT performance")
        grid = tuner.fit()
    trials = []
    for result in grid:
        m = result.metrics or {}
        best_checkpoint, best_eval = T.best_checkpoint(result.best_checkpoints or [])
        trials.append({
            "trial_id": m.get("trial_id"),
            "status": "ERROR" if result.error else "TERMINATED",
            spec.metric: m.get(spec.metric),
            "env_steps": m.get(T.ENV_STEPS),
            "iterations": m.get(T.ITERATIONS),
            "checkpoint": result.checkpoint.path if result.checkpoint else None,
            T.BEST_EVAL_RETURN_MEAN: m.get(T.BEST_EVAL_RETURN_MEAN, best_eval),
            "best_checkpoint": best_checkpoint,
            "config": {k: v for k, v in (result.config or {}).items()},
            "mlflow_run_id": tracker.run_id_of(m.get("trial_id")),
        })
    best = None
    try:
        best_result = grid.get_best_result(metric=spec.metric, mode=spec.mode, filter_nan_and_inf=True)
        best = next((t for t in trials if t["trial_id"] == (best_result.metrics or {}).get("trial_id")), None)
    except RuntimeError:
        best = None
    summary = {
        "experiment": spec.experiment,
        "experiment_path": str(experiment_dir),
        "algo": spec.algo,
        "env": spec.env,
        "metric": spec.metric,
        "mode": spec.mode,
        "num_trials": len(trials),
        "num_errored": sum(t["status"] == "ERROR" for t in trials),
        "best": best,
        "trials": trials,
        "wall_s": round(time.perf_counter() - started, 2),
        "tracking_uri": uri,
    }
    if best is not None and best["mlflow_run_id"]:
        registered = tracker.mark_best(best["mlflow_run_id"], metric=spec.metric, value=best[spec.metric],
                                       register=register)
        summary["registered_model"] = registered
    if tracker.failures:
        summary["tracking_errors"] = tracker.failures
    if best is None or (isinstance(best.get(spec.metric), float) and math.isnan(best[spec.metric])):
        summary["best"] = None
    return summary
