"""The one Tune trainable behind `train` and `tune`.

A function trainable rather than the Algorithm class itself, so that it can
(a) decide when a run is done and evaluate and checkpoint that final policy,
(b) resume from Tune's checkpoint after a failure, or fine-tune from a user's
checkpoint, (c) report the few top-level figures every run shares, and (d)
keep the best-evaluated policy as well as the last one.

The best policy is a Tune checkpoint like the others, reported when an
evaluation beats every earlier one by the algorithm's primary metric (the
registry's `primary_metric` and `mode`: the greedy evaluation return unless
the algorithm has a better measure, e.g. PEARL's held-out adapted return or
MaxEnt IRL's expected value difference), with `CHECKPOINT_SCORE` set to that
metric's value, negated where the algorithm minimises it, so that higher is
always better (every other checkpoint scores `NOT_BEST`). `checkpoint_config`
ranks checkpoints by that score: Tune's top-k then keeps the best-evaluated
ones, deletes the periodic ones first, always keeps the latest (what a failed
trial resumes from), and restores its bookkeeping after a failure or
`--resume` (its checkpoint manager is part of the experiment state). A copy kept by hand in the trial folder would have none of that, nor
work with remote storage (s3://, gs://).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rlfrontier import envs

if TYPE_CHECKING:
    from rlfrontier.spec import StopCriteria

META_FILE = "rlfrontier.json"
MODULE_PATH = "learner_group/learner/rl_module"

# Top-level result keys every run reports (metric names defined once here).
ENV_STEPS = "env_steps"
EPISODE_RETURN_MEAN = "episode_return_mean"
EVAL_RETURN_MEAN = "eval_return_mean"
BEST_EVAL_RETURN_MEAN = "best_eval_return_mean"  # the highest evaluation return so far
# Tune's checkpoint_score_attribute: a best checkpoint's evaluation return, NOT_BEST otherwise
# (the lowest finite float: TensorBoard's logger warns on every -inf).
CHECKPOINT_SCORE = "checkpoint_score"
NOT_BEST = -sys.float_info.max
# In a checkpoint's meta file: the metric that ranks checkpoints, its value for this checkpoint's policy
# (None: not evaluated at this iteration) and its best value so far (what a resumed trial compares with).
RANKED_BY = "ranked_by"
RANK_VALUE = "rank_value"
BEST_RANK_VALUE = "best_rank_value"
ENV_STEPS_PER_S = "env_steps_per_s"
WALL_S = "wall_s"
ITERATIONS = "iterations"
DONE_REASON = "done_reason"


def checkpoint_config(num_to_keep: int | None):
    """Tune's CheckpointConfig for `train_loop`: keeps `num_to_keep` checkpoints
    (None: all) and, among them, always the best-evaluated and the latest."""
    from ray.tune import CheckpointConfig

    return CheckpointConfig(
        num_to_keep=num_to_keep, checkpoint_score_attribute=CHECKPOINT_SCORE, checkpoint_score_order="max"
    )


def best_checkpoint(checkpoints: Iterable[tuple[Any, dict[str, Any]]]) -> tuple[str | None, float | None]:
    """The best-evaluated of a trial's kept checkpoints: (path, its `CHECKPOINT_SCORE`: the primary
    metric's value, negated where the algorithm minimises it).

    Args:
        checkpoints: (tune.Checkpoint or path, the result reported with it)
            pairs, e.g. a Tune `Result.best_checkpoints`.

    Returns:
        (None, None) when no kept checkpoint was saved at a best evaluation
        (evaluation off, or none finished).
    """
    best: tuple[str | None, float | None] = (None, None)
    for checkpoint, metrics in checkpoints:
        score = (metrics or {}).get(CHECKPOINT_SCORE)
        if _unknown(score) or not math.isfinite(float(score)) or float(score) <= NOT_BEST:
            continue
        if best[1] is None or float(score) >= best[1]:  # ties: the later one
            best = (str(getattr(checkpoint, "path", checkpoint)), float(score))
    return best


def read_meta(checkpoint: str | Path) -> dict[str, Any]:
    path = Path(checkpoint) / META_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _get(result: dict, *keys, default=None):
    for key in keys:
        if not isinstance(result, dict) or key not in result:
            return default
        result = result[key]
    return result


def _env_steps(result: dict[str, Any]) -> int:
    return int(_get(result, "env_runners", "num_env_steps_sampled_lifetime", default=0) or 0)


def summarize(
    result: dict[str, Any],
    *,
    wall_s: float,
    last_eval: float | None,
    steps_at_start: int,
    best_eval: float | None = None,
) -> dict[str, Any]:
    """The top-level keys of every result; throughput counts this run's steps only."""
    steps = _env_steps(result)
    return {
        ENV_STEPS: steps,
        ITERATIONS: int(result.get("training_iteration", 0)),
        EPISODE_RETURN_MEAN: _get(result, "env_runners", "episode_return_mean"),
        EVAL_RETURN_MEAN: last_eval,
        BEST_EVAL_RETURN_MEAN: best_eval,
        WALL_S: wall_s,
        ENV_STEPS_PER_S: (steps - steps_at_start) / max(wall_s, 1e-9),
    }


def _unknown(value: Any) -> bool:
    """None or NaN (of any float type)."""
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _eval_return(result: dict[str, Any]) -> float | None:
    """The evaluation return of this result; None when it has none (NaN included:
    RLlib reports NaN for an evaluation whose metrics hold no episode, e.g. just
    after a restore)."""
    value = _get(result, "evaluation", "env_runners", "episode_return_mean")
    return None if _unknown(value) else float(value)


def _evaluated_now(result: dict[str, Any], config: AlgorithmConfig) -> bool:
    """Whether this iteration ran an evaluation (RLlib evaluates when iteration % evaluation_interval == 0)."""
    interval = config.evaluation_interval
    return bool(interval) and int(result.get("training_iteration", 0)) % interval == 0


def is_new_best(evaluated: float | None, best: float | None, mode: str = "max") -> bool:
    """An evaluation that beats every earlier one (strictly: a tie keeps the older
    checkpoint, so that the best one is not replaced by every later 500 on CartPole);
    `mode` "min": lower is better."""
    if evaluated is None:
        return False
    if best is None:
        return True
    return evaluated < best if mode == "min" else evaluated > best


def metric_value(metrics: dict[str, Any], key: str) -> Any:
    """A result's value of `key`, flat ("eval_return_mean") or nested as Tune flattens it
    ("metrics/expected_value_difference": the evaluation hook's numbers); None when absent."""
    if key in metrics:
        return metrics[key]
    value: Any = metrics
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def rank_value(result: dict[str, Any], metric: str) -> float | None:
    """`metric` in `result` (metric_value) as a number; None where absent, NaN or not a number."""
    value = metric_value(result, metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or _unknown(value):
        return None
    return float(value)


def checkpoint_score(value: float, mode: str) -> float:
    """`CHECKPOINT_SCORE` of a best checkpoint: higher is better whatever `mode` (Tune ranks by "max")."""
    return -value if mode == "min" else value


def _resumed_best(meta: dict[str, Any], metric: str) -> float | None:
    """The best rank value a resumed trial compares with: its checkpoint's (a checkpoint written before
    checkpoints were ranked by the primary metric holds only the best evaluation return)."""
    if meta.get(RANKED_BY) == metric:
        return meta.get(BEST_RANK_VALUE)
    return meta.get(BEST_EVAL_RETURN_MEAN) if metric == EVAL_RETURN_MEAN else None


def restore_weights(algo, checkpoint: Path) -> None:
    """The checkpoint's RLModule weights into `algo` and its EnvRunners, not optimiser state, counters or
    buffers (fine-tuning, `evaluate --metrics`)."""
    algo.restore_from_path(checkpoint / MODULE_PATH, component=MODULE_PATH)
    algo.env_runner_group.sync_weights(
        from_worker_or_learner_group=algo.learner_group, inference_only=True
    )
    if algo.eval_env_runner_group is not None:
        algo.eval_env_runner_group.sync_weights(
            from_worker_or_learner_group=algo.learner_group, inference_only=True
        )


def train_loop(
    params: dict[str, Any],
    *,
    base_config: AlgorithmConfig,
    stop: StopCriteria,
    meta: dict[str, Any],
    checkpoint_every: int = 10,
    restore: str | None = None,
    restore_weights_only: bool = False,
    rank_by: tuple[str, str] | None = None,
) -> None:
    """Builds the algorithm, trains until `stop`, evaluates and checkpoints the end.

    Checkpoints: every `checkpoint_every` iterations, at the end, and at every
    evaluation that beats the best so far (see the module docstring); the
    best return so far travels in each checkpoint's meta file, so a resumed
    trial goes on comparing against it.

    Args:
        params: Tune's trial config: AlgorithmConfig settings that override
            `base_config` (dotted keys reach into mappings), and the trial's
            `seed` when it draws its own (empty for `train`, the sampled
            point for `tune`).
        base_config: the validated AlgorithmConfig.
        stop: when to stop; `reward` is compared with the evaluation return
            when evaluation is on, else with the training return.
        meta: what `evaluate` needs to rebuild the policy (algo, env, its
            env_config as given, spaces, seed).
        checkpoint_every: iterations between intermediate checkpoints.
        restore: a checkpoint to continue (same env) or fine-tune from.
        restore_weights_only: restore only the RLModule weights (fine-tuning).
        rank_by: (metric, mode) that ranks the checkpoints: the run's `metric`
            and `mode` (what a search optimises); None: the registry's
            primary metric and mode of the algorithm.
    """
    config = base_config.copy(copy_frozen=False)
    params = dict(params or {})
    if "seed" in params:  # a search's trial: its own seed, and the env's hidden parameters with it
        seed = params.pop("seed")
        meta = {**meta, "seed": seed}
        config.debugging(seed=seed)
        config.environment(env_config=envs.with_run_seed(meta["env"], meta.get("env_config"), seed))
    if params:
        # (Imported here: configure imports rlfrontier.spec, which imports this module's result keys.)
        from rlfrontier.configure import apply_overrides

        apply_overrides(config, params, source="trial config")
    from rlfrontier import registry  # (registry imports this module's metric names)

    algo = config.build_algo()
    algo_spec = registry.get_algorithm(meta["algo"])
    hook_metrics: dict[str, float] = {}
    evaluating = bool(config.evaluation_interval)
    best_eval: float | None = None
    # What ranks the checkpoints: the algorithm's primary metric, as a search would (module docstring).
    ranked_by, mode = rank_by or (algo_spec.primary_metric, algo_spec.mode)
    best_rank: float | None = None
    try:
        resume_from = tune.get_checkpoint()
        if resume_from is not None:
            with resume_from.as_directory() as d:
                algo.restore_from_path(d)
                resumed = read_meta(d)
                best_eval = resumed.get(BEST_EVAL_RETURN_MEAN)
                best_rank = _resumed_best(resumed, ranked_by)
        elif restore:
            if restore_weights_only:
                restore_weights(algo, Path(restore))
            else:
                algo.restore_from_path(restore)

        start = time.perf_counter()
        steps_at_start = None
        last_eval: float | None = None
        while True:
            result = algo.train()
            # RLlib repeats the last evaluation in every later result: only an
            # iteration that evaluated (its own rule, algorithm.py) has a fresh one.
            evaluated_now = _evaluated_now(result, config)
            evaluated = _eval_return(result) if evaluated_now else None
            if evaluated is not None:
                last_eval = evaluated
            wall_s = time.perf_counter() - start
            if steps_at_start is None:  # throughput of this run, not of a restored one
                steps_at_start = _env_steps(result) - int(
                    _get(result, "env_runners", "num_env_steps_sampled", default=0) or 0
                )
            summary = summarize(result, wall_s=wall_s, last_eval=last_eval, steps_at_start=steps_at_start)
            done = stop.reached(
                env_steps=summary[ENV_STEPS],
                iterations=summary[ITERATIONS],
                return_mean=last_eval if evaluating else summary[EPISODE_RETURN_MEAN],
            )
            if done and evaluating and evaluated is None:
                # The final policy is the one that is judged: evaluate it now.
                result["evaluation"] = algo.evaluate()
                evaluated_now = True
                evaluated = _eval_return(result)
                if evaluated is not None:
                    last_eval = evaluated
                summary[EVAL_RETURN_MEAN] = last_eval
            # The algorithm's own measures of this policy (registry hook); the last ones ride on.
            fresh_metrics = registry.evaluation_metrics(algo_spec, algo) if evaluated_now else {}
            hook_metrics = fresh_metrics or hook_metrics
            if hook_metrics:
                result[registry.EVALUATION_METRICS] = hook_metrics
            if is_new_best(evaluated, best_eval):
                best_eval = evaluated
            summary[BEST_EVAL_RETURN_MEAN] = best_eval
            # Absent, not None or NaN, until known: schedulers skip results
            # without their metric, but would fail comparing None and rank NaN
            # anywhere (RLlib's training return is NaN until an episode ends,
            # e.g. just after a restore).
            result.update({k: v for k, v in summary.items() if not _unknown(v)})
            result[DONE_REASON] = "stop criterion" if done else ""
            # Tune's own flag (RLlib's result carries it as False): a final
            # result must stop the trial before the scheduler sees it, or PBT
            # may "exploit" into a trial whose function has already returned.
            result["done"] = bool(done)
            # This policy's own value of the ranking metric: only an iteration that evaluated has one
            # (the result repeats the last evaluation's numbers in between).
            ranked = rank_value({**result, EVAL_RETURN_MEAN: evaluated, registry.EVALUATION_METRICS: fresh_metrics},
                                ranked_by) if evaluated_now else None
            new_best = is_new_best(ranked, best_rank, mode)
            if new_best:
                best_rank = ranked
            if new_best or done or summary[ITERATIONS] % checkpoint_every == 0:
                result[CHECKPOINT_SCORE] = checkpoint_score(ranked, mode) if new_best else NOT_BEST
                with tempfile.TemporaryDirectory() as tmp:
                    algo.save_to_path(tmp)
                    (Path(tmp) / META_FILE).write_text(json.dumps({
                        **meta, "module_id": algo_spec.policy_module_id, ENV_STEPS: summary[ENV_STEPS],
                        # This policy's own evaluation (None: not evaluated at this iteration).
                        EVAL_RETURN_MEAN: evaluated, BEST_EVAL_RETURN_MEAN: best_eval,
                        RANKED_BY: ranked_by, RANK_VALUE: ranked, BEST_RANK_VALUE: best_rank,
                    }, indent=2))
                    tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))
            else:
                tune.report(result)
            if done:
                return
    finally:
        algo.stop()
