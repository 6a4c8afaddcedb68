"""Runs a RunSpec as Ray Tune trials: one for `train`, many for `tune`.

One path for both commands: every check before Ray starts (`prepare`), then
one Tuner with the MLflow callback, progress lines, checkpointing, failure
handling and resume, and one summary of the trials. A run without a search
part is a search of one trial: FIFO, no searcher, and a seed drawn up front
(so that it is in the run's tags and folder).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlfrontier import bonuses, configure, envs, registry, session, tracking, tuning
from rlfrontier import trainable as T
from rlfrontier.progress import ProgressPrinter
from rlfrontier.registry import AlgoSpec
from rlfrontier.spec import SEED_MAX, RunSpec
from rlfrontier.validation import BadInput


@dataclass
class Prepared:
    """What `prepare` checked and built: everything the Tuner needs."""

    algo: AlgoSpec
    base: Any  # the validated AlgorithmConfig every trial starts from
    seed: int | None  # None: each trial draws its own
    resources: Any  # what one trial asks of Ray (a PlacementGroupFactory)
    meta: dict[str, Any]  # written next to every checkpoint (rlfrontier.json)
    restore: str | None
    restore_weights_only: bool
    tracking_uri: str
    storage: str  # Tune storage: an absolute folder or a URI
    name: str  # the run's Tune folder under `storage`

    @property
    def experiment_dir(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"


def same_env(meta: dict[str, Any], *, env: str, env_config: dict[str, Any] | None) -> bool:
    """Whether a checkpoint's meta names this env with this env_config (as given; JSON-equal): a run to
    continue. The same env id with other settings (another physics, another DeepSea size) is another
    env: the checkpoint's weights fine-tune on it, its optimiser state and counters do not come along."""
    def canonical(value: Any) -> str:
        return json.dumps(value or {}, sort_keys=True, default=str)

    return meta.get("env") == env and canonical(meta.get("env_config")) == canonical(env_config)


def _restore_mode(spec: RunSpec, obs_space, act_space) -> bool:
    """True: weights only (fine-tuning on another env: another id or other env_config (same_env), or from
    another algorithm's run); False: full resume.

    Another algorithm's checkpoint (bc's) gives only its module, and only to
    the algorithm that module was built for (meta `module_of`, else `algo`):
    its learner state, counters and buffers are not this algorithm's.
    """
    path = Path(spec.restore)
    if not (path / "algorithm_state.pkl").exists() and not (path / "rllib_checkpoint.json").exists():
        raise spec.bad(("restore",), "is not an RLlib algorithm checkpoint", value=spec.restore)
    meta = T.read_meta(path)
    if not meta:
        return False
    if meta.get("algo") != spec.algo:
        built_for = meta.get("module_of", meta.get("algo"))
        if built_for != spec.algo:
            raise spec.bad(("restore",), f"holds a {meta.get('algo')} run's module built for {built_for}, "
                                         f"not for {spec.algo}: restore it into {built_for}", value=spec.restore)
    elif same_env(meta, env=spec.env, env_config=spec.env_config):
        return False
    if meta.get("observation_space") != repr(obs_space) or meta.get("action_space") != repr(act_space):
        raise spec.bad(
            ("restore",),
            f"has other spaces ({meta.get('observation_space')}, {meta.get('action_space')}) "
            f"than {spec.env} ({obs_space!r}, {act_space!r})",
            value=spec.restore,
        )
    return True


def prepare(spec: RunSpec, *, address: str | None = None) -> Prepared:
    """Checks everything that can be checked before Ray starts; raises BadInput, writes nothing."""
    seed = spec.seed
    if seed is None and not spec.is_search:
        seed = random.randrange(SEED_MAX + 1)
    algo, base = configure.algorithm_config(spec, seed=seed)
    # What "best" means unless the file says: the algorithm's own primary metric (registry).
    if "metric" not in spec.model_fields_set:
        spec.metric = algo.primary_metric
    if "mode" not in spec.model_fields_set:
        spec.mode = algo.mode
    tuning.check_extremes(spec, base)
    resources = base.algo_class.default_resource_request(base)
    session.check_local_gpus(address, resources)
    obs_space, act_space = envs.check_env(spec.env, spec.env_config)
    weights_only = _restore_mode(spec, obs_space, act_space) if spec.restore else False
    tracking_uri = tracking.resolve_tracking_uri(spec.tracking_uri)
    tracking.check_tracking_uri(tracking_uri)
    name = spec.name or run_name(algo.name, spec.env)
    meta = {
        "algo": algo.name, "env": spec.env, "env_config": spec.env_config,
        **({"seed": seed} if seed is not None else {}),
        "observation_space": repr(obs_space), "action_space": repr(act_space),
        # Whose module a checkpoint holds, when not this algorithm's (bc's; see _restore_mode).
        **({"module_of": base.module_algorithm} if hasattr(base, "module_algorithm") else {}),
    }
    return Prepared(
        algo=algo, base=base, seed=seed, resources=resources, meta=meta,
        restore=str(Path(spec.restore).resolve()) if spec.restore else None, restore_weights_only=weights_only,
        tracking_uri=tracking_uri, storage=resolve_storage(spec.storage_path), name=name,
    )


def config_params(config) -> dict[str, Any]:
    """The flattened config for MLflow params (JSON-able values only)."""
    flat = tracking.flatten(config.to_dict())
    out = {}
    for key, value in flat.items():
        if callable(value) or key.startswith("_"):
            continue
        try:
            yaml.safe_dump(value)
        except yaml.YAMLError:
            value = repr(value)
        out[key] = value
    return out


def config_yaml(config) -> str:
    data = {}
    for key, value in config.to_dict().items():
        try:
            yaml.safe_dump({key: value})
            data[key] = value
        except yaml.YAMLError:
            data[key] = repr(value)
    return yaml.safe_dump(data, sort_keys=True)


def resolve_storage(storage_path: str) -> str:
    """Local folders become absolute; URIs (s3://, gs://, ...) pass through untouched."""
    if "://" in storage_path:
        return storage_path
    return str(Path(storage_path).resolve())


def run_name(algo: str, env: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{algo}-{env}-{time.strftime('%Y%m%d-%H%M%S')}")


def _tracker(spec: RunSpec, prepared: Prepared) -> tracking.MLflowTracking:
    tags = {"algo": prepared.algo.name, "env": spec.env, "git_commit": session.git_commit(), **session.versions()}
    if prepared.seed is not None:
        tags["seed"] = str(prepared.seed)
    if spec.origin.file is not None:
        tags["tune_config"] = str(spec.origin.file)
    if spec.is_search:
        def name(trial):
            return f"{prepared.algo.name}-{spec.env}-{trial.trial_id}"
    else:
        def name(trial):
            return prepared.name
    return tracking.MLflowTracking(
        tracking_uri=prepared.tracking_uri,
        experiment=spec.experiment,
        tags=tags,
        params=config_params(prepared.base),
        config_yaml=config_yaml(prepared.base),
        run_name=name,
        # PBT changes these during a trial: metrics, not (write-once) params.
        mutable_keys=tuple(spec.search_space) if spec.scheduler.type == "pbt" else (),
    )


def run(
    spec: RunSpec,
    *,
    resume: bool = False,
    address: str | None = None,
    register: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Runs (or resumes) the trials `spec` describes; returns the summary for `--json`.

    Args:
        spec: the run.
        resume: continue the interrupted run in `spec`'s Tune folder
            (finished trials are kept).
        address: a Ray cluster (None: RAY_ADDRESS or a local Ray).
        register: register the best trial's best checkpoint in the MLflow
            model registry under this name (alias "best").
        verbose: Ray's and RLlib's own logs.
        quiet: no progress lines.

    Returns:
        experiment, experiment_path, algo, env, metric, mode, num_trials,
        num_errored, best (a trial or None), trials (one dict each, see
        `_trial_summary`), wall_s, tracking_uri, and registered_model and
        tracking_errors when there are any.
    """
    prepared = prepare(spec, address=address)
    # Tune's own experiment tables would interleave with our progress lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # The evaluation return exists only from the first evaluation on; the
    # schedulers skip results without their metric, Tune's strict check would
    # fail the trial instead.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # Snapshot the experiment state often: what --resume keeps after a crash
    # is what the last snapshot recorded (Tune's default period adapts, up to minutes).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
    from ray import tune

    if resume and not tune.Tuner.can_restore(prepared.experiment_dir):
        raise BadInput(f"--resume: no experiment to resume at {prepared.experiment_dir}")
    session.init_ray(address, verbose=verbose, trial_resources=prepared.resources)

    tracker = _tracker(spec, prepared)
    callbacks = [tracker]
    if not quiet:
        callbacks.append(ProgressPrinter(stop_timesteps=spec.stop.timesteps))
    trainable = tune.with_parameters(
        T.train_loop,
        base_config=prepared.base,
        stop=spec.stop,
        meta=prepared.meta,
        checkpoint_every=spec.checkpoint_interval,
        restore=prepared.restore,
        restore_weights_only=prepared.restore_weights_only,
        rank_by=(spec.metric, spec.mode),  # the best checkpoint is best by what the run optimises
    )
    trainable.__name__ = prepared.algo.name  # names the trial folders: <algo>_<trial id>
    trainable = tune.with_resources(trainable, prepared.resources)
    param_space = tuning.param_space(spec, seeded=prepared.seed is not None)

    started = time.perf_counter()
    if resume:
        tuner = tune.Tuner.restore(
            prepared.experiment_dir, trainable=trainable, param_space=param_space,
            resume_unfinished=True, resume_errored=True,
        )
        # The restored run config carries pickled copies of the callbacks:
        # use this process's, so that the summary below sees what they logged.
        tuner._local_tuner.get_run_config().callbacks = callbacks
    else:
        pbt = spec.scheduler.type == "pbt"
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                num_samples=spec.num_samples,
                scheduler=tuning.scheduler(spec),
                search_alg=tuning.searcher(spec),
                metric=spec.metric,
                mode=spec.mode,
                max_concurrent_trials=spec.max_concurrent_trials,
            ),
            run_config=tune.RunConfig(
                name=prepared.name,
                storage_path=prepared.storage,
                callbacks=callbacks,
                # PBT: keep every checkpoint. With num_to_keep, Tune 2.60 deletes
                # a checkpoint that one trial cloned from another's folder, and
                # the owner then fails on FileNotFoundError (seen in our PBT test).
                # Either way the best-evaluated checkpoint is kept (T.checkpoint_config).
                # A search keeps fewer per trial than one run (disk).
                checkpoint_config=T.checkpoint_config(num_to_keep=None if pbt else 2 if spec.is_search else 3),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                verbose=0,
            ),
        )
    with warnings.catch_warnings():
        # Tune suggests reuse_actors for PBT; a function trainable rebuilds its
        # algorithm on every exploit either way.
        warnings.filterwarnings("ignore", message="Consider boosting PBT performance")
        grid = tuner.fit()
    trials = [_trial_summary(result, spec=spec, prepared=prepared, tracker=tracker) for result in grid]
    best = None
    try:
        best_result = grid.get_best_result(metric=spec.metric, mode=spec.mode, filter_nan_and_inf=True)
        best = next((t for t in trials if t["trial_id"] == (best_result.metrics or {}).get("trial_id")), None)
    except RuntimeError:
        best = None
    if best is not None and isinstance(best.get(spec.metric), float) and math.isnan(best[spec.metric]):
        best = None
    summary = {
        "experiment": spec.experiment,
        "experiment_path": prepared.experiment_dir,
        "algo": prepared.algo.name,
        "env": spec.env,
        "metric": spec.metric,
        "mode": spec.mode,
        "num_trials": len(trials),
        "num_errored": sum(t["status"] == "ERROR" for t in trials),
        "best": best,
        "trials": trials,
        "wall_s": round(time.perf_counter() - started, 2),
        "tracking_uri": prepared.tracking_uri,
    }
    if best is not None and best["mlflow_run_id"] and (spec.is_search or register):
        summary["registered_model"] = tracker.mark_best(
            best["mlflow_run_id"], metric=spec.metric, value=best[spec.metric], register=register
        )
    if tracker.failures:
        summary["tracking_errors"] = tracker.failures
    return summary


def _trial_summary(result, *, spec: RunSpec, prepared: Prepared, tracker: tracking.MLflowTracking) -> dict[str, Any]:
    """One trial: its figures, checkpoints, config, seed, MLflow run and error (None: none)."""
    m = result.metrics or {}
    best_checkpoint, _ = T.best_checkpoint(result.best_checkpoints or [])
    config = dict(result.config or {})
    learners = m.get("learners")
    learner = learners.get(prepared.algo.policy_module_id, {}) if isinstance(learners, dict) else {}
    error = None
    if result.error:
        lines = str(result.error).strip().splitlines()
        error = lines[-1] if lines else type(result.error).__name__
    return {
        "trial_id": m.get("trial_id"),
        "status": "ERROR" if result.error else "TERMINATED",
        spec.metric: T.metric_value(m, spec.metric),
        "seed": config.get("seed", prepared.seed),
        "env_steps": m.get(T.ENV_STEPS),
        "iterations": m.get(T.ITERATIONS),
        T.EPISODE_RETURN_MEAN: m.get(T.EPISODE_RETURN_MEAN),
        T.EVAL_RETURN_MEAN: m.get(T.EVAL_RETURN_MEAN),
        T.BEST_EVAL_RETURN_MEAN: m.get(T.BEST_EVAL_RETURN_MEAN),
        "train_wall_s": m.get(T.WALL_S),
        T.ENV_STEPS_PER_S: m.get(T.ENV_STEPS_PER_S),
        "checkpoint": result.checkpoint.path if result.checkpoint else None,
        "best_checkpoint": best_checkpoint,
        "config": config,
        "metrics": {
            **{k: learner[k] for k in prepared.algo.reported_metrics if k in learner},
            **(m.get(registry.EVALUATION_METRICS) or {}),
            **{f"{bonuses.RESULTS}/{k}": v for k, v in (m.get(bonuses.RESULTS) or {}).items()},
        },
        "mlflow_run_id": tracker.run_id_of(m.get("trial_id")),
        # KILLED: stopped before its stop criterion (Ctrl-C of the driver); Tune still says TERMINATED.
        "mlflow_status": tracker.status_of(m.get("trial_id")),
        "error": error,
    }

