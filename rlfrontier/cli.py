"""The `rlfrontier` command line (see README: Command line)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from rlfrontier import spec
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
    p.set_defaults(spec_fields={})
    _field(p, "algo", field="algo")
    _field(p, "--env", field="env", required=True)
    _field(p, "--env-config", field="env_config", nargs="*", default=[], metavar="K=V")
    _field(p, "--config", field="config_file", dest="config_file", metavar="FILE.yaml", help="AlgorithmConfig settings")
    _field(p, "--set", field="config", dest="overrides", nargs="*", default=[], action="extend", metavar="K=V",
           help="AlgorithmConfig settings, after --config's (a dotted key reaches into a mapping: a.b=1)")
    _field(p, "--stop-timesteps", field="stop.timesteps", type=int)
    _field(p, "--stop-iters", field="stop.iterations", type=int)
    _field(p, "--stop-reward", field="stop.reward", type=float)
    _field(p, "--seed", field="seed", type=int, help="default: drawn at random (and reported)")
    _field(p, "--num-env-runners", field="resources.num_env_runners", type=int)
    _field(p, "--num-envs-per-env-runner", field="resources.num_envs_per_env_runner", type=int)
    _field(p, "--num-learners", field="resources.num_learners", type=int)
    _field(p, "--gpus-per-learner", field="resources.gpus_per_learner", type=float)
    _field(p, "--eval-interval", field="evaluation.interval", type=int,
           help=f"iterations between evaluations (0: none; default {spec.default_of('evaluation.interval')})")
    _field(p, "--eval-episodes", field="evaluation.episodes", type=int,
           help=f"greedy episodes per evaluation, run side by side (default {spec.default_of('evaluation.episodes')})")
    _field(p, "--checkpoint-every", field="checkpoint_every", type=int,
           help=f"iterations between checkpoints (default {spec.default_of('checkpoint_every')})")
    _field(p, "--restore", field="restore", metavar="CHECKPOINT", help="continue a run, or fine-tune its policy on another env")
    _field(p, "--demos", field="demos", metavar="DIR",
           help="demonstrations from `rlfrontier demos record` (algorithms that learn from them)")
    _field(p, "--bonus", field="config.bonus.type", metavar="KIND",
           help="an exploration bonus added to the rewards (`rlfrontier algos` says which algorithms take which)")
    _field(p, "--bonus-config", field="config.bonus", nargs="*", default=[], action="extend", metavar="K=V",
           help="the bonus's settings, e.g. beta=0.05 (see README, Exploration bonuses)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    _field(p, "--tracking-uri", field="tracking_uri",
           help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    _field(p, "--experiment", field="experiment", help=f"MLflow experiment name (default {spec.default_of('experiment')})")
    _field(p, "--storage-path", field="storage_path",
           help=f"Tune storage (checkpoints; default {spec.default_of('storage_path')})")
    _field(p, "--max-failures", field="max_failures", type=int,
           help=f"trial restarts from its last checkpoint (default {spec.default_of('max_failures')}; -1: no limit)")
    p.add_argument("--verbose", action="store_true", help="show Ray's and RLlib's own logs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_common(p)

    p = sub.add_parser("tune", help="a Ray Tune search from a YAML file (see tune_configs/README.md)")
    p.set_defaults(spec_fields={})
    p.add_argument("file", metavar="TUNE_CONFIG.yaml")
    _field(p, "--num-samples", field="num_samples", type=int, help="override the file's num_samples")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search (finished trials are kept)")
    p.add_argument("--register", metavar="NAME", help="register the best checkpoint in the MLflow model registry (alias 'best')")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    _field(p, "--tracking-uri", field="tracking_uri",
           help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    _field(p, "--storage-path", field="storage_path",
           help=f"Tune storage (local folder or s3://, gs://; default {spec.default_of('storage_path')})")
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

    p = sub.add_parser("demos", help="record and show demonstrations (rlfrontier.demos)")
    demos = p.add_subparsers(dest="demos_command", required=True, parser_class=_Parser)
    p = demos.add_parser("record", help="record an expert's episodes as Parquet rows with a manifest")
    p.add_argument("checkpoint", nargs="?", help="a checkpoint of `rlfrontier train` whose policy acts")
    p.add_argument("--scripted", metavar="NAME", help="a scripted expert instead: optimal (tabular worlds), cartpole")
    p.add_argument("--env", required=True, help="the env (from a checkpoint: its own, or one with the same spaces)")
    p.add_argument("--env-config", nargs="*", default=[], metavar="K=V")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created with its parents)")
    p.add_argument("--seed", type=int, default=0, help="episode i resets with SEED + i (default 0)")
    p.add_argument("--explore", action="store_true", help="a checkpoint's exploration policy instead of its greedy one")
    p.add_argument("--overwrite", action="store_true", help="replace the demonstrations already in DIR")
    _add_common(p)
    p = demos.add_parser("show", help="print a demonstrations folder's manifest")
    p.add_argument("dir", metavar="DIR")
    _add_common(p)

    p = sub.add_parser("evaluate", help="run a checkpoint's greedy policy")
    p.add_argument("checkpoint")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--env", help="another env with the same spaces (default: the checkpoint's)")
    p.add_argument("--env-config", nargs="*", default=[], metavar="K=V",
                   help="the env's settings instead of the checkpoint's (e.g. held-out physics); same spaces")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--explore", action="store_true", help="sample the exploration policy instead")
    p.add_argument("--metrics", action="store_true",
                   help="the algorithm's own evaluation instead of greedy episodes, as a run logs it (maml, pearl, "
                        "rl2: the meta-test on held-out tasks; gail, airl: the expert-return ratio; maxent_irl, "
                        "gcl: the reward's), in a local Ray")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], action="extend", metavar="K=V",
                   help="with --metrics: AlgorithmConfig settings first (e.g. held_out_tasks=500 held_out_seed=1)")
    _add_common(p)
    return parser


def cmd_algos(args) -> int:
    from rlfrontier.registry import ALGORITHMS

    rows = [
        {"name": s.name, "source": s.source, "action_spaces": list(s.action_spaces), "summary": s.summary,
         # What a run must provide, what "best" means (search metric, best checkpoint), which bonuses it takes.
         "needs": list(s.needs), "primary_metric": s.primary_metric, "mode": s.mode, "bonuses": list(s.bonuses)}
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


def _field(p: argparse.ArgumentParser, name: str, *, field: str, **kwargs) -> None:
    """An argument that sets the RunSpec field `field` (dotted: a field of a part, e.g. stop.timesteps)."""
    action = p.add_argument(name, **kwargs)
    flag = name if name.startswith("-") else name.upper()
    p.get_default("spec_fields")[action.dest] = (tuple(field.split(".")), flag)


def spec_flags(args) -> dict[tuple[str, ...], str]:
    """The flag of every RunSpec field this command has one for."""
    return dict(args.spec_fields.values())


def _spec_input(args) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The RunSpec fields this command line gave (nested as in a tune file), and their flags."""
    data: dict[str, Any] = {}
    given: dict[tuple[str, ...], str] = {}
    for dest, (path, flag) in args.spec_fields.items():
        value = getattr(args, dest)
        if value is None or value == []:
            continue
        if isinstance(value, list):  # K=V pairs
            value = spec.parse_assignments(value, flag=flag)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        current = node.get(path[-1])
        # Flags that fill one mapping (--set's config, --bonus's config.bonus) add to it.
        node[path[-1]] = {**value, **current} if isinstance(current, dict) and isinstance(value, dict) else value
        given[path] = flag
    return data, given


def train_summary(run: dict[str, Any]) -> dict[str, Any]:
    """`train --json`: the run's one trial (README, "Command line")."""
    trial = run["trials"][0]
    out = {
        "algo": run["algo"],
        "env": run["env"],
        "seed": trial["seed"],
        **{k: trial[k] for k in ("env_steps", "iterations", "episode_return_mean", "eval_return_mean",
                                 "best_eval_return_mean")},
        "wall_s": run["wall_s"],
        **{k: trial[k] for k in ("train_wall_s", "env_steps_per_s", "checkpoint", "best_checkpoint", "mlflow_run_id")},
        "tracking_uri": run["tracking_uri"],
        "experiment": run["experiment"],
        "metrics": trial["metrics"],
        "status": "FAILED" if trial["error"] else "KILLED" if trial.get("mlflow_status") == "KILLED" else "FINISHED",
    }
    if run.get("tracking_errors"):
        out["tracking_errors"] = run["tracking_errors"]
    return out


def _train_failure(summary: dict[str, Any], trial: dict[str, Any]) -> str | None:
    """The one error line of a train run that failed at run time (None: it did not)."""
    checkpoint, best = summary["checkpoint"], summary["best_checkpoint"]
    if trial["error"]:
        return (
            f"training failed: {trial['error']}; checkpoint kept: {checkpoint or 'none'}"
            + (f" (best: {best})" if best and best != checkpoint else "")
            + f"; MLflow run {summary['mlflow_run_id']} marked FAILED"
        )
    if summary["status"] == "KILLED":
        return (f"training interrupted at {summary['env_steps'] or 0:,} env steps; checkpoint kept: "
                f"{checkpoint or 'none'}; MLflow run {summary['mlflow_run_id']} marked KILLED")
    errors = summary.get("tracking_errors")
    if errors:
        return (
            f"training finished but MLflow at {summary['tracking_uri']} did not take "
            f"{len(errors)} request(s) (first: {errors[0]}); checkpoint at {checkpoint}"
        )
    return None


def _ranked(checkpoint: str | None) -> str:
    """", by METRIC = VALUE": what made `checkpoint` the best one, from its meta file ("" where unknown)."""
    from rlfrontier import trainable as T

    meta = T.read_meta(checkpoint) if checkpoint and Path(checkpoint).is_dir() else {}
    metric, value = meta.get(T.RANKED_BY), meta.get(T.RANK_VALUE)
    return f", by {metric} = {_num(value)}" if metric and value is not None else ""


def cmd_train(args) -> int:
    from rlfrontier import runs

    from rlfrontier.registry import get_algorithm, takes_demos

    if args.demos and not takes_demos(get_algorithm(args.algo)):
        raise BadInput(f"--demos {args.demos}: {args.algo} does not learn from demonstrations")
    data, _ = _spec_input(args)
    if args.bonus_config and not args.bonus:
        raise BadInput(f"--bonus-config {' '.join(args.bonus_config)}: give the bonus with --bonus KIND")
    run_spec = spec.parse(spec.RunSpec, data, origin=spec.Origin(flags=spec_flags(args)))
    run = runs.run(run_spec, address=args.address, verbose=args.verbose, quiet=args.quiet)
    summary = train_summary(run)
    failure = _train_failure(summary, run["trials"][0])
    if failure:
        print(f"error: {failure}", file=sys.stderr)
        if args.json:
            emit_json(summary)
        return EXIT_FAILED
    ev, best = summary["eval_return_mean"], summary["best_eval_return_mean"]
    print(
        f"done: {summary['algo']} on {summary['env']} (seed {summary['seed']}): "
        f"{summary['env_steps']:,} env steps in {summary['train_wall_s']:.1f} s "
        f"({summary['env_steps_per_s']:,.0f} steps/s), eval return "
        f"{_num(ev)} (best {_num(best)})"
    )
    print(f"checkpoint (last): {summary['checkpoint']}")
    print(f"checkpoint (best{_ranked(summary['best_checkpoint'])}): {summary['best_checkpoint'] or '- (no evaluation)'}")
    print(f"MLflow run: {summary['mlflow_run_id']} in experiment {summary['experiment']!r} at {summary['tracking_uri']}")
    if summary["tracking_uri"].startswith("sqlite:///"):
        print("  look at it: mlflow ui --backend-store-uri " + summary["tracking_uri"])
    if args.json:
        emit_json(summary)
    return EXIT_OK


def cmd_tune(args) -> int:
    from rlfrontier import runs
    from rlfrontier.trainable import BEST_EVAL_RETURN_MEAN

    overrides, given = _spec_input(args)
    run_spec = spec.load_file(args.file, overrides=overrides, flags=given)
    summary = runs.run(run_spec, resume=args.resume, address=args.address, register=args.register,
                       verbose=args.verbose, quiet=args.quiet)
    metric = run_spec.metric
    for t in summary["trials"]:
        value = t.get(metric)
        print(f"{t['trial_id']}  {t['status']:<10} {metric}={'-' if value is None else format(value, '.2f')}  "
              f"steps={t['env_steps']}  config={t['config']}")
    best = summary["best"]
    if best:
        print(f"best: {best['trial_id']} {metric}={best[metric]} checkpoint (last): {best['checkpoint']}")
        print(f"  checkpoint (best{_ranked(best.get('best_checkpoint'))}; best eval return "
              f"{_num(best.get(BEST_EVAL_RETURN_MEAN))}): {best.get('best_checkpoint') or '-'}")
        print(f"MLflow run: {best['mlflow_run_id']} in experiment {run_spec.experiment!r} at {summary['tracking_uri']}")
    else:
        print(f"no trial reported {metric}: no best trial", file=sys.stderr)
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

    overrides = spec.parse_assignments(args.overrides, flag="--set")
    if args.metrics:
        ignored = [flag for flag, given in (("--episodes", args.episodes != 10), ("--env", args.env),
                                            ("--env-config", args.env_config), ("--seed", args.seed != 0),
                                            ("--explore", args.explore)) if given]
        if ignored:
            raise BadInput(f"evaluate --metrics: {ignored[0]} is for greedy episodes; "
                           "set the algorithm's own evaluation with --set (e.g. held_out_tasks=500)")
        out = evaluation.algorithm_metrics(args.checkpoint, overrides=overrides)
        for key, value in sorted(out["metrics"].items()):
            print(f"{key} {value:.4g}")
        if args.json:
            emit_json(out)
        return EXIT_OK
    if overrides:
        raise BadInput("evaluate --set: only with --metrics (greedy episodes take --env-config and --seed)")
    out = evaluation.evaluate(
        args.checkpoint, episodes=args.episodes, env=args.env, seed=args.seed, explore=args.explore,
        env_config=spec.parse_assignments(args.env_config, flag="--env-config") or None,
    )
    print(
        f"{out['episodes']} episodes of {out['env']}: return {out['return_mean']:.1f} "
        f"+- {out['return_std']:.1f} (min {out['return_min']:.1f}, max {out['return_max']:.1f})"
    )
    if args.json:
        emit_json(out)
    return EXIT_OK


def cmd_demos(args) -> int:
    from rlfrontier import demos

    if args.demos_command == "show":
        manifest = demos.show(args.dir)
        print(demos.manifest_table(manifest, path=manifest["path"]))
    else:
        if args.checkpoint and args.scripted:
            raise BadInput(f"demos record: give CHECKPOINT {args.checkpoint!r} or --scripted {args.scripted}, not both")
        manifest = demos.record(
            out=args.out, env_id=args.env, env_config=spec.parse_assignments(args.env_config, flag="--env-config"),
            episodes=args.episodes, scripted=args.scripted, checkpoint=args.checkpoint, explore=args.explore,
            seed=args.seed, overwrite=args.overwrite, progress=sys.stderr,
        )
        print(demos.summary_line(manifest))
    if args.json:
        emit_json(manifest)
    return EXIT_OK


COMMANDS = {"algos": cmd_algos, "envs": cmd_envs, "train": cmd_train, "tune": cmd_tune, "evaluate": cmd_evaluate,
            "submit": cmd_submit, "jobs": cmd_jobs, "demos": cmd_demos}


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
