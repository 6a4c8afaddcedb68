"""`train`: one Tune trial of one algorithm, tracked in MLflow."""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlfrontier import configure, envs, session, tracking
from rlfrontier import trainable as T
from rlfrontier.configure import StopCriteria
from rlfrontier.progress import ProgressPrinter
from rlfrontier.registry import get_algorithm
from rlfrontier.validation import BadInput, check_range


@dataclass
class TrainArgs:
    algo: str
    env: str
    env_config: dict[str, Any]
    overrides: dict[str, Any]
    config_file: str | None = None
    seed: int | None = None
    stop: StopCriteria | None = None
    num_env_runners: int | None = None
    num_envs_per_env_runner: int | None = None
    num_learners: int | None = None
    gpus_per_learner: float | None = None
    eval_interval: int = configure.DEFAULT_EVAL_INTERVAL
    eval_episodes: int = configure.DEFAULT_EVAL_EPISODES
    checkpoint_every: int = 10
    restore: str | None = None
    address: str | None = None
    tracking_uri: str | None = None
    experiment: str = "rlfrontier"
    storage_path: str = "ray_results"
    max_failures: int = 0
    verbose: bool = False
    quiet: bool = False


class RunFailed(RuntimeError):
    """Training or tracking failed at run time (exit 1); `summary` says what is kept."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


def _restore_mode(restore: str, env: str, obs_space, act_space) -> bool:
    """True: weights only (fine-tuning on another env); False: full resume."""
    path = Path(restore)
    if not (path / "algorithm_state.pkl").exists() and not (path / "rllib_checkpoint.json").exists():
        raise BadInput(f"--restore {restore!r} is not an RLlib algorithm checkpoint")
    meta = T.read_meta(path)
    if not meta or meta.get("env") == env:
        return False
    if meta.get("observation_space") != repr(obs_space) or meta.get("action_space") != repr(act_space):
        raise BadInput(
            f"--restore {restore!r}: its spaces ({meta.get('observation_space')}, {meta.get('action_space')}) "
            f"differ from {env}'s ({obs_space!r}, {act_space!r})"
        )
    return True


def prepare(args: TrainArgs) -> dict[str, Any]:
    """Validates everything and builds what the run needs; raises BadInput."""
    get_algorithm(args.algo)
    envs.check_env(args.env, args.env_config)
    stop = args.stop or StopCriteria()
    stop.validate()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    check = check_range
    check("--seed", seed, 0, 2**31 - 1, integer=True)
    check("--checkpoint-every", args.checkpoint_every, 1, None, integer=True)
    check("--max-failures", args.max_failures, -1, None, integer=True)
    spec, config, applied = configure.build_config(
        algo=args.algo,
        env=args.env,
        env_config=args.env_config,
        seed=seed,
        config_file=args.config_file,
        overrides=args.overrides,
        num_env_runners=args.num_env_runners,
        num_envs_per_env_runner=args.num_envs_per_env_runner,
        num_learners=args.num_learners,
        gpus_per_learner=args.gpus_per_learner,
        evaluation_interval=args.eval_interval,
        evaluation_episodes=args.eval_episodes,
    )
    resources = config.algo_class.default_resource_request(config)  # what one trial asks of Ray
    session.check_local_gpus(args.address, resources)
    obs_space, act_space = envs.check_env(args.env, args.env_config)
    weights_only = _restore_mode(args.restore, args.env, obs_space, act_space) if args.restore else False
    tracking_uri = tracking.resolve_tracking_uri(args.tracking_uri)
    tracking.check_tracking_uri(tracking_uri)
    return {
        "spec": spec,
        "config": config,
        "applied": applied,
        "seed": seed,
        "stop": stop,
        "tracking_uri": tracking_uri,
        "weights_only": weights_only,
        "resources": resources,
        "meta": {
            "algo": spec.name,
            "env": args.env,
            "env_config": args.env_config,
            "seed": seed,
            "observation_space": repr(obs_space),
            "action_space": repr(act_space),
        },
    }


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


def train(args: TrainArgs) -> dict[str, Any]:
    """Runs one trial; returns the summary (the `--json` object)."""
    prepared = prepare(args)
    spec, config, seed = prepared["spec"], prepared["config"], prepared["seed"]
    resources = prepared["resources"]
    session.init_ray(args.address, verbose=args.verbose, trial_resources=resources)

    # Tune's own experiment tables would interleave with our progress lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune

    name = run_name(spec.name, args.env)
    tags = {
        "algo": spec.name,
        "env": args.env,
        "seed": str(seed),
        "git_commit": session.git_commit(),
        **session.versions(),
    }
    tracker = tracking.MLflowTracking(
        tracking_uri=prepared["tracking_uri"],
        experiment=args.experiment,
        tags=tags,
        params=config_params(config),
        config_yaml=config_yaml(config),
        run_name=lambda trial: name,
    )
    callbacks = [tracker]
    if not args.quiet:
        callbacks.append(ProgressPrinter(stop_timesteps=prepared["stop"].timesteps))

    trainable = tune.with_parameters(
        T.train_loop,
        base_config=config,
        stop=prepared["stop"],
        meta=prepared["meta"],
        checkpoint_every=args.checkpoint_every,
        restore=str(Path(args.restore).resolve()) if args.restore else None,
        restore_weights_only=prepared["weights_only"],
    )
    trainable.__name__ = spec.name  # names the trial folders: <algo>_<trial id>
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space={},
        run_config=tune.RunConfig(
            name=name,
            storage_path=resolve_storage(args.storage_path),
            callbacks=callbacks,
            checkpoint_config=T.checkpoint_config(num_to_keep=3),
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            verbose=0,
        ),
    )
    started = time.perf_counter()
    grid = tuner.fit()
    result = grid[0]
    record = next(iter(tracker.records.values()), None)
    last = result.metrics or {}
    checkpoint = result.checkpoint.path if result.checkpoint else None
    best_checkpoint, best_eval = T.best_checkpoint(result.best_checkpoints or [])
    learner = last.get("learners", {}).get("default_policy", {}) if isinstance(last.get("learners"), dict) else {}
    summary = {
        "algo": spec.name,
        "env": args.env,
        "seed": seed,
        "env_steps": last.get(T.ENV_STEPS),
        "iterations": last.get(T.ITERATIONS),
        "episode_return_mean": last.get(T.EPISODE_RETURN_MEAN),
        "eval_return_mean": last.get(T.EVAL_RETURN_MEAN),
        "best_eval_return_mean": last.get(T.BEST_EVAL_RETURN_MEAN, best_eval),
        "wall_s": round(time.perf_counter() - started, 2),
        "train_wall_s": last.get(T.WALL_S),
        "env_steps_per_s": last.get(T.ENV_STEPS_PER_S),
        "checkpoint": checkpoint,
        "best_checkpoint": best_checkpoint,
        "mlflow_run_id": record.run_id if record else None,
        "tracking_uri": prepared["tracking_uri"],
        "experiment": args.experiment,
        "metrics": {k: learner[k] for k in spec.reported_metrics if k in learner},
        "status": "FAILED" if result.error else "FINISHED",
    }
    if result.error:
        first = str(result.error).strip().splitlines()
        raise RunFailed(
            f"training failed: {first[-1] if first else type(result.error).__name__}; "
            f"checkpoint kept: {checkpoint or 'none'}"
            + (f" (best: {best_checkpoint})" if best_checkpoint and best_checkpoint != checkpoint else "")
            + f"; MLflow run {summary['mlflow_run_id']} marked FAILED",
            summary,
        )
    if tracker.failures:
        summary["tracking_errors"] = tracker.failures
        raise RunFailed(
            f"training finished but MLflow at {prepared['tracking_uri']} did not take "
            f"{len(tracker.failures)} request(s) (first: {tracker.failures[0]}); "
            f"checkpoint at {checkpoint}",
            summary,
        )
    return summary
