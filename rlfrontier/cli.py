"""The `rlfrontier` command line (see README: Command line)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from rlfrontier.validation import BadInput

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every bad input
        raise BadInput(f"{self.prog}: {message}")


def _json_default(value: Any):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def emit_json(obj: dict[str, Any]) -> None:
    print(json.dumps(_clean(obj), default=_json_default), flush=True)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="last line of stdout is one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rlfrontier", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("algos", help="list the algorithms")
    _add_common(p)
    p = sub.add_parser("envs", help="list the environments")
    p.add_argument("--all", action="store_true", help="every gymnasium id, not just the project's and classic control")
    _add_common(p)

    p = sub.add_parser("train", help="train one algorithm on one env (one Tune trial, tracked in MLflow)")
    p.add_argument("algo")
    p.add_argument("--env", required=True)
    p.add_argument("--env-config", nargs="*", default=[], metavar="K=V")
    p.add_argument("--config", dest="config_file", metavar="FILE.yaml", help="AlgorithmConfig settings")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], action="extend", metavar="K=V")
    p.add_argument("--stop-timesteps", type=int)
    p.add_argument("--stop-iters", type=int)
    p.add_argument("--stop-reward", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-env-runners", type=int)
    p.add_argument("--num-envs-per-env-runner", type=int)
    p.add_argument("--num-learners", type=int)
    p.add_argument("--gpus-per-learner", type=float)
    # Defaults (None here): rlfrontier.configure's evaluation budget.
    p.add_argument("--eval-interval", type=int, help="iterations between evaluations (0: none; default 5)")
    p.add_argument("--eval-episodes", type=int, help="greedy episodes per evaluation, run side by side (default 10)")
    p.add_argument("--checkpoint-every", type=int, default=10, help="iterations between checkpoints")
    p.add_argument("--restore", metavar="CHECKPOINT", help="continue a run, or fine-tune its policy on another env")
    p.add_argument("--demos", metavar="PATH", help="demonstrations (algorithms that learn from them)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    p.add_argument("--experiment", default="rlfrontier", help="MLflow experiment name")
    p.add_argument("--storage-path", default="ray_results", help="Tune storage (checkpoints)")
    p.add_argument("--max-failures", type=int, default=0, help="trial restarts from its last checkpoint")
    p.add_argument("--verbose", action="store_true", help="show Ray's and RLlib's own logs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_common(p)

    p = sub.add_parser("tune", help="a Ray Tune search from a YAML file (see tune_configs/README.md)")
    p.add_argument("file", metavar="TUNE_CONFIG.yaml")
    p.add_argument("--num-samples", type=int, help="override the file's num_samples")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search (finished trials are kept)")
    p.add_argument("--register", metavar="NAME", help="register the best checkpoint in the MLflow model registry (alias 'best')")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    p.add_argument("--storage-path", default="ray_results", help="Tune storage (local folder or s3://, gs://)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--quiet", action="store_true")
    _add_common(p)

    p = sub.add_parser("submit", help="run an rlfrontier command as a Ray job: submit [opts] -- train ...")
    p.add_argument("--address", help="Ray job server (default: RAY_API_SERVER_ADDRESS, RAY_ADDRESS or http://127.0.0.1:8265)")
    p.add_argument("--no-wait", action="store_true", help="print the job id and return")
    p.add_argument("--gpus", type=float, default=0, help="GPUs for the job's driver")
    p.add_argument("--job-id", help="submission id (default: Ray's)")
    p.add_argument("job_command", nargs=argparse.REMAINDER, help="-- then the rlfrontier command")
    _add_common(p)

    p = sub.add_parser("jobs", help="list, inspect and stop Ray jobs")
    p.add_argument("action", choices=["list", "status", "logs", "stop"])
    p.add_argument("job_id", nargs="?")
    p.add_argument("--address", help="Ray job server (default as for submit)")
    _add_common(p)

    p = sub.add_parser("evaluate", help="run a checkpoint's greedy policy")
    p.add_argument("checkpoint")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--env", help="another env with the same spaces (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--explore", action="store_true", help="sample the exploration policy instead")
    _add_common(p)
    return parser


def cmd_algos(args) -> int:
    from rlfrontier.registry import ALGORITHMS

    rows = [
        {"name": s.name, "source": s.source, "action_spaces": list(s.action_spaces), "summary": s.summary}
        for s in ALGORITHMS.values()
    ]
    for r in rows:
        print(f"{r['name']:<10} {r['source']:<11} {'/'.join(r['action_spaces']):<14} {r['summary']}")
    if args.json:
        emit_json({"algorithms": rows})
    return EXIT_OK


def cmd_envs(args) -> int:
    from rlfrontier import envs

    rows = envs.list_envs()
    if not args.all:
        rows = [r for r in rows if r["source"] == "rlfrontier" or "classic_control" in (r["entry_point"] or "")]
    for r in rows:
        print(f"{r['id']:<40} {r['source']:<11} max_episode_steps={r['max_episode_steps']}")
    if args.json:
        emit_json({"envs": rows})
    return EXIT_OK


def _num(value: float | None) -> str:
    return "-" if value is None else format(value, ".4g")


def cmd_train(args) -> int:
    from rlfrontier import configure, runs

    if args.demos:
        raise BadInput(f"--demos {args.demos!r}: {args.algo} does not learn from demonstrations")
    train_args = runs.TrainArgs(
        algo=args.algo,
        env=args.env,
        env_config=configure.parse_assignments(args.env_config, flag="--env-config"),
        overrides=configure.parse_assignments(args.overrides, flag="--set"),
        config_file=args.config_file,
        seed=args.seed,
        stop=configure.StopCriteria(args.stop_timesteps, args.stop_iters, args.stop_reward),
        num_env_runners=args.num_env_runners,
        num_envs_per_env_runner=args.num_envs_per_env_runner,
        num_learners=args.num_learners,
        gpus_per_learner=args.gpus_per_learner,
        eval_interval=configure.DEFAULT_EVAL_INTERVAL if args.eval_interval is None else args.eval_interval,
        eval_episodes=configure.DEFAULT_EVAL_EPISODES if args.eval_episodes is None else args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        restore=args.restore,
        address=args.address,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        storage_path=args.storage_path,
        max_failures=args.max_failures,
        verbose=args.verbose,
        quiet=args.quiet,
    )
    try:
        summary = runs.train(train_args)
    except runs.RunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json:
            emit_json(exc.summary)
        return EXIT_FAILED
    ev, best = summary["eval_return_mean"], summary["best_eval_return_mean"]
    print(
        f"done: {summary['algo']} on {summary['env']} (seed {summary['seed']}): "
        f"{summary['env_steps']:,} env steps in {summary['train_wall_s']:.1f} s "
        f"({summary['env_steps_per_s']:,.0f} steps/s), eval return "
        f"{_num(ev)} (best {_num(best)})"
    )
    print(f"checkpoint (last): {summary['checkpoint']}")
    print(f"checkpoint (best): {summary['best_checkpoint'] or '- (no evaluation)'}")
    print(f"MLflow run: {summary['mlflow_run_id']} in experiment {summary['experiment']!r} at {summary['tracking_uri']}")
    if summary["tracking_uri"].startswith("sqlite:///"):
        print("  look at it: mlflow ui --backend-store-uri " + summary["tracking_uri"])
    if args.json:
        emit_json(summary)
    return EXIT_OK


def cmd_tune(args) -> int:
    from rlfrontier import tuning
    from rlfrontier.trainable import BEST_EVAL_RETURN_MEAN

    spec = tuning.load_search(args.file, num_samples=args.num_samples)
    summary = tuning.run_search(
        spec, resume=args.resume, address=args.address, tracking_uri=args.tracking_uri,
        storage_path=args.storage_path, register=args.register, verbose=args.verbose, quiet=args.quiet,
    )
    for t in summary["trials"]:
        value = t.get(spec.metric)
        print(f"{t['trial_id']}  {t['status']:<10} {spec.metric}={'-' if value is None else format(value, '.2f')}  "
              f"steps={t['env_steps']}  config={t['config']}")
    best = summary["best"]
    if best:
        print(f"best: {best['trial_id']} {spec.metric}={best[spec.metric]} checkpoint (last): {best['checkpoint']}")
        print(f"  checkpoint (best, eval return {_num(best.get(BEST_EVAL_RETURN_MEAN))}): "
              f"{best.get('best_checkpoint') or '-'}")
        print(f"MLflow run: {best['mlflow_run_id']} in experiment {spec.experiment!r} at {summary['tracking_uri']}")
    else:
        print(f"no trial reported {spec.metric}: no best trial", file=sys.stderr)
    if summary.get("registered_model"):
        reg = summary["registered_model"]
        print(f"registered: models:/{reg['name']}@{reg['alias']} (version {reg['version']})")
    failed = summary["num_errored"] or summary.get("tracking_errors")
    if summary.get("tracking_errors"):
        print(f"error: MLflow at {summary['tracking_uri']} did not take {len(summary['tracking_errors'])} "
              f"request(s) (first: {summary['tracking_errors'][0]}); results under {summary['experiment_path']}",
              file=sys.stderr)
    elif failed:
        print(f"error: {summary['num_errored']} of {summary['num_trials']} trials failed; "
              f"resume with: rlfrontier tune {args.file} --resume", file=sys.stderr)
    if args.json:
        emit_json(summary)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_submit(args) -> int:
    from rlfrontier import jobs

    command = list(args.job_command)
    if command and command[0] == "--":
        command = command[1:]
    summary = jobs.submit(command, address=args.address, wait=not args.no_wait, gpus=args.gpus, job_id=args.job_id)
    if args.no_wait:
        print(summary["job_id"])
        code = EXIT_OK
    else:
        print(f"job {summary['job_id']}: {summary['status']}" + (f" ({summary['message']})" if summary.get("message") else ""),
              file=sys.stderr)
        if summary.get("hint"):
            print(summary["hint"], file=sys.stderr)
        code = jobs.exit_code(summary)
    if args.json:
        emit_json(summary)
    return code


def cmd_jobs(args) -> int:
    from rlfrontier import jobs

    client = jobs.client(args.address)
    if args.action != "list" and not args.job_id:
        raise BadInput(f"jobs {args.action}: give a job id")
    if args.action == "list":
        rows = [jobs.job_summary(info) for info in client.list_jobs()]
        for r in rows:
            print(f"{r['job_id']:<28} {r['status']:<10} {r['entrypoint']}")
        out: dict = {"jobs": rows}
    else:
        try:
            info = client.get_job_info(args.job_id)
        except RuntimeError:
            raise BadInput(f"jobs {args.action}: no job {args.job_id!r} at {jobs.jobs_address(args.address)}") from None
        if args.action == "status":
            out = jobs.job_summary(info)
            print(f"{out['job_id']}: {out['status']}" + (f" ({out['message']})" if out["message"] else ""))
            hint = jobs.failure_hint(client, args.job_id, out["status"])
            if hint:
                out["hint"] = hint
                print(hint, file=sys.stderr)
        elif args.action == "logs":
            logs = client.get_job_logs(args.job_id)
            sys.stdout.write(logs)
            out = {"job_id": args.job_id, "logs_chars": len(logs)}
        else:
            stopped = client.stop_job(args.job_id)
            out = {"job_id": args.job_id, "stop_requested": bool(stopped)}
            print(f"{args.job_id}: {'stop requested' if stopped else 'already finished'}")
    if args.json:
        emit_json(out)
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from rlfrontier import evaluation

    out = evaluation.evaluate(
        args.checkpoint, episodes=args.episodes, env=args.env, seed=args.seed, explore=args.explore
    )
    print(
        f"{out['episodes']} episodes of {out['env']}: return {out['return_mean']:.1f} "
        f"+- {out['return_std']:.1f} (min {out['return_min']:.1f}, max {out['return_max']:.1f})"
    )
    if args.json:
        emit_json(out)
    return EXIT_OK


COMMANDS = {"algos": cmd_algos, "envs": cmd_envs, "train": cmd_train, "tune": cmd_tune, "evaluate": cmd_evaluate,
            "submit": cmd_submit, "jobs": cmd_jobs}


def _quiet_libraries(verbose: bool) -> None:
    """RLlib's start-up warnings (new API stack, gputil) are noise on a CLI."""
    import logging

    import mlflow  # noqa: F401 - both configure their loggers on import; override after
    import ray.rllib  # noqa: F401

    if not verbose:
        for name in ("ray.rllib", "ray.tune", "ray.train", "mlflow"):
            logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _quiet_libraries(getattr(args, "verbose", False))
        return COMMANDS[args.command](args)
    except BadInput as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a run-time failure: one line, exit 1
        if "--verbose" in (argv if argv is not None else sys.argv):
            raise
        first = str(exc).strip().splitlines()
        print(f"error: {type(exc).__name__}: {first[0] if first else ''} (--verbose for the traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
