"""MLflow tracking as a Tune callback: one MLflow run per trial.

Not MLflowLoggerCallback: it makes one request per metric and its artifact
upload misses checkpoints (ray-project/ray#46569). This one sends params once,
metrics in batches (one `log_batch` request per flush), and at the end the
final checkpoint (artifact `checkpoint/`), the best-evaluated one (artifact
`best_checkpoint/`), config.yaml, summary.json and a learning-curve PNG.

A tracking server that stops answering never stops training: each failure is
recorded (what was not logged), the callback backs off, and `failures` tells
the command line what to report.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Collection
from typing import Any, Callable

# Fail fast on a dead server instead of MLflow's default minutes of retries;
# set before mlflow is imported so its HTTP session picks them up.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from ray.tune import Callback  # noqa: E402

from rlfrontier import trainable as T  # noqa: E402
from rlfrontier.meta_test import plot_meta_test  # noqa: E402
from rlfrontier.plotting import figure  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# MLflow 3's UI opens an experiment without this tag in its GenAI view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
CHECKPOINT_ARTIFACT = "checkpoint"  # the last policy
BEST_CHECKPOINT_ARTIFACT = "best_checkpoint"  # the best-evaluated policy
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_VALUE = 6000
# Result keys that are bookkeeping, not metrics.
_SKIP_PREFIXES = ("config", "trial_id", "date", "hostname", "node_ip", "pid", "experiment_tag", "done",
                  T.CHECKPOINT_SCORE)


def resolve_tracking_uri(uri: str | None) -> str:
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # Relative SQLite paths are resolved against the driver's working
        # directory once, so that Tune's actors (other cwd) use the same file.
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return uri


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def numeric_metrics(result: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in flatten(result).items():
        if key.startswith(_SKIP_PREFIXES) or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = float(value)
        elif hasattr(value, "item") and getattr(value, "size", 2) == 1:
            value = float(value.item())
            if math.isfinite(value):
                out[key] = value
    return out


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text[:MAX_PARAM_VALUE]


@dataclass
class TrialRecord:
    run_id: str | None = None
    curve: list[tuple[int, float | None, float | None]] = field(default_factory=list)
    pending: list[Metric] = field(default_factory=list)
    last_flush: float = 0.0
    checkpoint: str | None = None
    best_checkpoint: str | None = None
    last_result: dict[str, Any] = field(default_factory=dict)
    closed: bool = False
    status: str | None = None  # the MLflow run's final status (FINISHED, FAILED, KILLED) once closed


class MLflowTracking(Callback):
    """Tune callback logging each trial to one MLflow run.

    Args:
        tracking_uri: MLflow tracking URI (SQLite file or server).
        experiment: MLflow experiment name (created if missing).
        tags: tags set on every run (algo, env, versions, git commit, ...).
        params: flattened settings logged once per run, before the trial's
            own config (Tune's sampled point) is added.
        config_yaml: text of the resolved config, logged as config.yaml.
        run_name: makes an MLflow run name from a Tune trial.
        flush_every_s: seconds between metric batches.
        mutable_keys: config keys a scheduler changes during a trial (PBT's
            mutations). MLflow params are write-once, so these are left out of
            the params and logged as `config/<key>` metrics at every result.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment: str,
        tags: dict[str, str],
        params: dict[str, Any],
        config_yaml: str,
        run_name: Callable[[Any], str] = lambda trial: trial.trial_id,
        flush_every_s: float = 5.0,
        mutable_keys: Collection[str] = (),
    ):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.tags = tags
        self.params = params
        self.config_yaml = config_yaml
        self.run_name = run_name
        self.flush_every_s = flush_every_s
        self.mutable_keys = frozenset(mutable_keys)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.records: dict[str, TrialRecord] = {}
        self.failures: list[str] = []
        self._experiment_id: str | None = None
        self._down_since: float | None = None

    # Error handling -----------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Runs one MLflow request; on failure records `what` and returns None."""
        if self._down_since is not None and time.monotonic() - self._down_since < 30:
            self.failures.append(what)
            return None
        try:
            result = fn()
            self._down_since = None
            return result
        except Exception as exc:  # noqa: BLE001 - tracking must never stop training
            self._down_since = time.monotonic()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.failures.append(f"{what} ({first[:200]})")
            logger.warning("MLflow at %s: %s not logged: %s", self.tracking_uri, what, first)
            return None

    def experiment_id(self) -> str | None:
        if self._experiment_id is None:
            def get_or_create():
                exp = self.client.get_experiment_by_name(self.experiment)
                if exp is None:
                    return self.client.create_experiment(
                        self.experiment, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
                    )
                if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    self.client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
                return exp.experiment_id
            self._experiment_id = self._call(f"experiment {self.experiment!r}", get_or_create)
        return self._experiment_id

    # Tune hooks -----------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        record = self.records.setdefault(trial.trial_id, TrialRecord())
        if record.run_id is not None:  # restarted after a failure: same run
            return
        exp_id = self.experiment_id()
        if exp_id is None:
            return
        existing = self._find_run(trial.trial_id)
        if existing is not None:  # a resumed search: the trial goes on in its run
            record.run_id = existing
            self._call("run status RUNNING", lambda: self.client.update_run(existing, status="RUNNING"))
            return
        tags = {**self.tags, "tune_trial_id": trial.trial_id}
        run = self._call(
            "run creation",
            lambda: self.client.create_run(exp_id, tags=tags, run_name=self.run_name(trial)),
        )
        if run is None:
            return
        record.run_id = run.info.run_id
        params = {
            k: v for k, v in {**self.params, **flatten(trial.config or {})}.items()
            if k not in self.mutable_keys
        }
        items = [Param(k, _param_value(v)) for k, v in sorted(params.items())]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            chunk = items[i : i + MAX_PARAMS_PER_BATCH]
            self._call(
                f"{len(chunk)} params",
                lambda chunk=chunk: self.client.log_batch(record.run_id, params=chunk),
            )

    def on_trial_result(self, iteration, trials, trial, result, **info):
        record = self.records.setdefault(trial.trial_id, TrialRecord())
        record.last_result = result
        step = int(result.get(T.ENV_STEPS, result.get("training_iteration", 0)) or 0)
        now_ms = int(time.time() * 1000)
        record.pending += [Metric(k, v, now_ms, step) for k, v in numeric_metrics(result).items()]
        # Booleans as 0/1; a choice among strings or lists has no metric form.
        current = numeric_metrics({
            k: float(v) if isinstance(v, bool) else v
            for k, v in (trial.config or {}).items() if k in self.mutable_keys
        })
        record.pending += [Metric(f"config/{k}", v, now_ms, step) for k, v in current.items()]
        record.curve.append((step, result.get(T.EPISODE_RETURN_MEAN), result.get(T.EVAL_RETURN_MEAN)))
        if time.monotonic() - record.last_flush >= self.flush_every_s:
            self._flush(record)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        record = self.records.setdefault(trial.trial_id, TrialRecord())
        record.checkpoint = checkpoint.path
        # Tune calls on_trial_result with the result a checkpoint came with first.
        if T.best_checkpoint([(checkpoint, record.last_result)])[0]:
            record.best_checkpoint = checkpoint.path

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, status="FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, status="FAILED")

    def on_experiment_end(self, trials, **info):
        # Trials still open here were stopped (driver interrupted, scheduler).
        for trial in trials:
            record = self.records.get(trial.trial_id)
            if record and record.run_id and not record.closed:
                self._finish(trial, status="KILLED")

    # Search results ---------------------------------------------------------------
    def _find_run(self, trial_id: str) -> str | None:
        exp_id = self.experiment_id()
        if exp_id is None:
            return None
        runs = self._call(
            "run lookup",
            lambda: self.client.search_runs(
                [exp_id], filter_string=f"tags.tune_trial_id = '{trial_id}'", max_results=1
            ),
        )
        return runs[0].info.run_id if runs else None

    def run_id_of(self, trial_id: str | None) -> str | None:
        record = self.records.get(trial_id) if trial_id else None
        if record and record.run_id:
            return record.run_id
        return self._find_run(trial_id) if trial_id else None

    def status_of(self, trial_id: str | None) -> str | None:
        """The final status this callback gave a trial's MLflow run (None: not closed by it)."""
        record = self.records.get(trial_id) if trial_id else None
        return record.status if record else None

    def mark_best(self, run_id: str, *, metric: str, value: Any, register: str | None = None) -> dict | None:
        """Tags the best trial's run; with `register`, registers its checkpoint.

        The registered model version points at the run's `best_checkpoint`
        artifact (its `checkpoint`, the last policy, where the run has no best
        one: evaluation off) and gets the alias "best" (MLflow model registry
        aliases).
        """
        self._call("best-trial tag", lambda: self.client.set_tag(run_id, "best_trial", "true"))
        if value is not None:
            self._call("best-trial tag", lambda: self.client.set_tag(run_id, f"best_{metric}", str(value)))
        if not register:
            return None

        def do_register():
            from mlflow.exceptions import MlflowException

            try:
                self.client.create_registered_model(register)
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                    raise
            run = self.client.get_run(run_id)
            logged = {a.path for a in self.client.list_artifacts(run_id)}
            artifact = BEST_CHECKPOINT_ARTIFACT if BEST_CHECKPOINT_ARTIFACT in logged else CHECKPOINT_ARTIFACT
            version = self.client.create_model_version(
                register, source=f"{run.info.artifact_uri}/{artifact}", run_id=run_id,
                tags={"metric": metric, "value": str(value), "checkpoint": artifact},
            )
            self.client.set_registered_model_alias(register, "best", version.version)
            return {"name": register, "version": version.version, "alias": "best", "run_id": run_id}

        return self._call(f"model registration {register!r}", do_register)

    # Internals ------------------------------------------------------------------
    def _flush(self, record: TrialRecord) -> None:
        record.last_flush = time.monotonic()
        if record.run_id is None or not record.pending:
            return
        pending, record.pending = record.pending, []
        for i in range(0, len(pending), MAX_METRICS_PER_BATCH):
            chunk = pending[i : i + MAX_METRICS_PER_BATCH]
            self._call(
                f"{len(chunk)} metric values",
                lambda chunk=chunk: self.client.log_batch(record.run_id, metrics=chunk),
            )

    def _finish(self, trial, *, status: str) -> None:
        record = self.records.setdefault(trial.trial_id, TrialRecord())
        if record.closed:
            return
        record.closed, record.status = True, status
        self._flush(record)
        if record.run_id is None:
            return
        checkpoint = record.checkpoint or (trial.checkpoint.path if trial.checkpoint else None)
        best = record.best_checkpoint or _best_kept_checkpoint(trial)
        summary = {
            "status": status,
            "tune_trial_id": trial.trial_id,
            "checkpoint": checkpoint,
            "best_checkpoint": best,
            **{k: record.last_result.get(k) for k in (
                T.ENV_STEPS, T.ITERATIONS, T.EPISODE_RETURN_MEAN, T.EVAL_RETURN_MEAN, T.BEST_EVAL_RETURN_MEAN,
                T.WALL_S, T.ENV_STEPS_PER_S,
            )},
        }
        if status == "FAILED" and trial.error_file and Path(trial.error_file).is_file():
            summary["error"] = Path(trial.error_file).read_text()[-4000:]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "config.yaml").write_text(self.config_yaml)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
            files = [tmp / "config.yaml", tmp / "summary.json"]
            png = tmp / "learning_curve.png"
            if record.curve and plot_curve(record.curve, png, title=self.run_name(trial)):
                files.append(png)
            # A meta-RL run's last meta-test (rlfrontier.meta_test): return against the amount of adaptation.
            meta_png = tmp / "meta_test.png"
            hook_metrics = (record.last_result or {}).get("metrics")  # registry.EVALUATION_METRICS
            if isinstance(hook_metrics, dict) and plot_meta_test(
                    hook_metrics, meta_png, title=f"meta-test: {self.run_name(trial)}"):
                files.append(meta_png)
            for path in files:
                self._call(f"artifact {path.name}", lambda p=path: self.client.log_artifact(record.run_id, str(p)))
        for path, artifact in ((checkpoint, CHECKPOINT_ARTIFACT), (best, BEST_CHECKPOINT_ARTIFACT)):
            if path and Path(path).is_dir():
                self._call(
                    f"{artifact} artifact {path}",
                    lambda p=path, a=artifact: self.client.log_artifacts(record.run_id, p, artifact_path=a),
                )
        self._call(f"run status {status}", lambda: self.client.set_terminated(record.run_id, status=status))


def _best_kept_checkpoint(trial) -> str | None:
    """The best checkpoint in the trial's own bookkeeping: what a callback that
    did not see it reported (a resumed search's new callback) still finds."""
    manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
    kept = getattr(manager, "best_checkpoint_results", None) or []
    return T.best_checkpoint((r.checkpoint, r.metrics) for r in kept)[0]


def plot_curve(curve: list[tuple[int, float | None, float | None]], path: Path, *, title: str) -> bool:
    """Writes the learning curve (training and evaluation return by env steps)."""
    train = [(s, r) for s, r, _ in curve if r is not None and math.isfinite(r)]
    evals = [(s, e) for s, _, e in curve if e is not None and math.isfinite(e)]
    if not train and not evals:
        return False
    with figure(path, title=title, xlabel="env steps", ylabel="episode return") as ax:
        if train:
            ax.plot(*zip(*train), label="training return (episodes finished per iteration)")
        if evals:
            ax.plot(*zip(*evals), marker="o", markersize=3, label="evaluation return (greedy)")
    return True


def check_tracking_uri(uri: str) -> None:
    """BadInput if the tracking store cannot be reached (before training starts)."""
    from rlfrontier.validation import BadInput

    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status >= 400:
                    raise BadInput(f"tracking server {uri!r} answered HTTP {response.status} on /health")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BadInput(f"tracking server {uri!r} is unreachable: {reason}") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise BadInput(f"tracking URI {uri!r}: folder {str(folder)!r} does not exist")
    elif uri.startswith("file:") or "://" not in uri:
        raise BadInput(
            f"tracking URI {uri!r}: MLflow 3 refuses plain file stores; use sqlite:///PATH.db or a server URL"
        )
