"""`rlfrontier tune`: an ASHA search from tune_configs/, and resume after the driver dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import RLFRONTIER, cli, last_json

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_two_trial_asha_search_from_tune_configs_registers_the_best(tmp_path):
    # The shipped search as it is, on a smaller budget (its own is 30,000 env
    # steps a trial): ASHA's first rung (iteration 4), evaluation and registration are the same.
    shipped = yaml.safe_load((ROOT / "tune_configs" / "soft_q_cartpole.yaml").read_text())
    search = tmp_path / "soft_q_cartpole.yaml"
    search.write_text(yaml.safe_dump({**shipped, "stop": {**shipped["stop"], "timesteps": 4000}}))
    proc = cli("tune", str(search), "--num-samples", "2", "--register", "soft-q-cartpole", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["num_trials"] == 2 and summary["num_errored"] == 0
    best = summary["best"]
    assert best is not None and best["eval_return_mean"] == max(
        t["eval_return_mean"] for t in summary["trials"] if t["eval_return_mean"] is not None)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {t["trial_id"]: client.get_run(t["mlflow_run_id"]) for t in summary["trials"]}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    for trial in summary["trials"]:
        params = runs[trial["trial_id"]].data.params
        assert float(params["lr"]) == pytest.approx(trial["config"]["lr"])
    assert runs[best["trial_id"]].data.tags["best_trial"] == "true"
    version = client.get_model_version_by_alias("soft-q-cartpole", "best")
    assert version.run_id == best["mlflow_run_id"]
    # The best trial's best-evaluated checkpoint, not its last one.
    assert version.source.endswith("/best_checkpoint")
    assert best["best_eval_return_mean"] >= best["eval_return_mean"]
    assert Path(best["best_checkpoint"], "rlfrontier.json").is_file()
    logged = {a.path for a in client.list_artifacts(best["mlflow_run_id"])}
    assert {"checkpoint", "best_checkpoint"} <= logged


SEARCH = """\
algo: soft_q
env: CartPole-v1
experiment: resume-me
metric: episode_return_mean
search_space:
  alpha: {grid: [0.02, 0.05, 0.1]}
scheduler: {type: fifo}
stop: {timesteps: 2500}
evaluation: {interval: 0}
max_concurrent_trials: 1
checkpoint_every: 1
"""


def _status_on_disk(experiment: Path, trial_id: str) -> str | None:
    for state_file in sorted(experiment.glob("experiment_state-*.json")):
        try:
            data = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return None  # being written
        for trial_json, _ in data.get("trial_data", []):
            trial = json.loads(trial_json)
            if trial.get("trial_id") == trial_id:
                return trial.get("status")
    return None


def test_killed_tune_driver_resumes_and_keeps_finished_trials(ray_head, tmp_path):
    search = tmp_path / "search.yaml"
    search.write_text(SEARCH)
    args = [RLFRONTIER, "tune", str(search), "--address", ray_head.address, "--json"]
    env = {**ray_head.env(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    seen_trials: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(seen_trials) < 2:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if line.startswith("[") and "steps" in line:
                trial = line[1:line.index("]")]
                if trial not in seen_trials:
                    seen_trials.append(trial)
        assert len(seen_trials) == 2, "the second trial never started"
        # Wait until the experiment state on disk records the first trial as
        # finished (Tune snapshots it periodically), then kill the driver as a
        # crash would.
        experiment = tmp_path / "ray_results" / "resume-me"
        while time.monotonic() < deadline and _status_on_disk(experiment, seen_trials[0]) != "TERMINATED":
            time.sleep(0.5)
        assert _status_on_disk(experiment, seen_trials[0]) == "TERMINATED"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    first = seen_trials[0]
    result_file = next((tmp_path / "ray_results" / "resume-me").glob(f"*{first}*/result.json"))
    lines_before = result_file.read_text().count("\n")

    resumed = subprocess.run(args + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = last_json(resumed.stdout)
    assert summary["num_trials"] == 3 and summary["num_errored"] == 0
    assert {t["trial_id"] for t in summary["trials"]} >= set(seen_trials)
    assert all(t["env_steps"] >= 2500 for t in summary["trials"])
    assert summary["best"] is not None
    # The finished trial was kept, not run again.
    assert result_file.read_text().count("\n") == lines_before
    assert f"[{first}]" not in resumed.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("resume-me").experiment_id])
    assert len(runs) == 3, "a resumed trial must go on in its MLflow run, not open a new one"
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_resume_without_an_experiment_is_bad_input(tmp_path):
    search = tmp_path / "search.yaml"
    search.write_text(SEARCH)
    proc = cli("tune", str(search), "--resume", cwd=tmp_path, ray=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr


PBT_SEARCH = """\
algo: soft_q
env: CartPole-v1
experiment: pbt
metric: episode_return_mean
config: {lr: 1.0e-3}
search_space:
  alpha: {uniform: [0.01, 0.3]}
  target_update_interval: {randint: [50, 200]}
num_samples: 2
scheduler: {type: pbt, perturbation_interval: 1, quantile_fraction: 0.5, resample_probability: 0.0}
stop: {timesteps: 6000}
evaluation: {interval: 0}
max_concurrent_trials: 2
"""


def test_pbt_exploits_through_checkpoints_and_logs_mutations_as_metrics(tmp_path):
    search = tmp_path / "pbt.yaml"
    search.write_text(PBT_SEARCH)
    proc = cli("tune", str(search), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["num_trials"] == 2 and summary["num_errored"] == 0
    experiment = tmp_path / "ray_results" / "pbt"
    # Tune's PBT log: [target tag, clone tag, target iteration, clone iteration, old config, new config].
    exploits = [json.loads(line) for f in experiment.rglob("pbt_global.txt") for line in f.read_text().splitlines()]
    assert exploits, "PBT never exploited: with two trials the worse one must copy the better one"
    ids = {t["trial_id"]: t for t in summary["trials"]}
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for trial in summary["trials"]:
        params = client.get_run(trial["mlflow_run_id"]).data.params
        # Mutated hyperparameters are not params (write-once) ...
        assert "alpha" not in params and "target_update_interval" not in params
        assert params["lr"] == "0.001" and "seed" in params
    def trial_of(tag: str) -> dict:  # experiment tags start with the trial's index
        return next(t for tid, t in ids.items() if int(tid.rsplit("_", 1)[1]) == int(tag.split("_", 1)[0]))

    for target_tag, clone_tag, _, clone_iteration, clone_config, new in exploits:
        target, clone = trial_of(target_tag), trial_of(clone_tag)
        assert target is not clone
        # The new config is the clone's, perturbed (resample_probability 0: with 0.01 Tune redrew alpha from
        # its distribution once in a fresh-clone run, 1% a hyperparameter and exploit).
        assert new["alpha"] in (pytest.approx(clone_config["alpha"] * 0.8), pytest.approx(clone_config["alpha"] * 1.2))
        # ... and shows up in the target's config/alpha metric history.
        history = [m.value for m in client.get_metric_history(target["mlflow_run_id"], "config/alpha")]
        assert history[0] != pytest.approx(new["alpha"]), history
        assert any(v == pytest.approx(new["alpha"]) for v in history), (history, new["alpha"])
        # The exploiting trial went on from the clone's checkpoint: its own
        # iteration counter (restored with the algorithm) never restarted at 1.
        # (Its result.json need not hold its first result: a fresh-clone run once
        # logged iterations [2, 3, 6] there, so only a 1 after the first is a restart.)
        result_file = next(experiment.glob(f"*{target['trial_id']}*/result.json"))
        iterations = [json.loads(line)["iterations"] for line in result_file.read_text().splitlines()]
        assert 1 not in iterations[1:], iterations
        assert max(iterations) > clone_iteration
    assert all(t["env_steps"] >= 6000 for t in summary["trials"])
    # Each trial's final result tells Tune it is done, so no scheduler acts on
    # it (PBT once "exploited" into a trial whose function had returned).
    for result_file in experiment.glob("*/result.json"):
        dones = [json.loads(line)["done"] for line in result_file.read_text().splitlines()]
        assert dones[-1] is True and not any(dones[:-1]), dones


NESTED_SEARCH = """\
algo: soft_q
env: CartPole-v1
experiment: nested
search_space:
  model_config.hidden_sizes: {grid: [[16], [32, 32]]}
  seed: {grid: [5]}
stop: {iterations: 1}
evaluation: {interval: 0}
"""


def test_a_dotted_key_searches_inside_a_mapping_and_seeds_can_be_searched(tmp_path):
    search = tmp_path / "nested.yaml"
    search.write_text(NESTED_SEARCH)
    proc = cli("tune", str(search), "--json", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["num_trials"] == 2 and summary["num_errored"] == 0
    from rlfrontier.evaluation import checkpoint_config

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    sizes = []
    for trial in summary["trials"]:
        assert trial["seed"] == 5 and trial["config"]["seed"] == 5
        hidden = trial["config"]["model_config.hidden_sizes"]
        sizes.append(hidden)
        # Flat in Tune's config and MLflow's params, nested in the trial's AlgorithmConfig.
        assert json.loads(client.get_run(trial["mlflow_run_id"]).data.params["model_config.hidden_sizes"]) == hidden
        config = checkpoint_config(Path(trial["checkpoint"]))
        assert config.model_config["hidden_sizes"] == hidden and config.model_config["twin_q"] is True
        assert config.seed == 5
        assert json.loads(Path(trial["checkpoint"], "rlfrontier.json").read_text())["seed"] == 5
    assert sorted(sizes) == [[16], [32, 32]]
