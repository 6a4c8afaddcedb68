"""Tune config files: every file in tune_configs/ loads; bad ones name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlfrontier import demos, runs, spec
from rlfrontier.registry import ALGORITHMS
from rlfrontier.validation import BadInput

ROOT = Path(__file__).resolve().parents[2]
TUNE_CONFIGS = sorted((ROOT / "tune_configs").glob("*.yaml"))

GOOD = """\
algo: soft_q
env: CartPole-v1
search_space:
  lr: {loguniform: [1.0e-4, 1.0e-2]}
  alpha: {choice: [0.01, 0.1]}
  n_step: {grid: [1, 3]}
  tau: {uniform: [0.01, 1.0]}
  target_update_interval: {randint: [10, 100]}
stop: {timesteps: 1000}
"""


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return path


def load_search(path: Path, tmp_path: Path, **overrides) -> spec.RunSpec:
    """The file as `tune` reads it, and every check `tune` makes before Ray starts.

    A file that learns from demonstrations gets a few, recorded as its header says
    (`demos record --scripted optimal` on a tabular world, `--scripted cartpole` on
    CartPole), in place of its folder.
    """
    try:
        data = spec.load_yaml(path.read_text())
    except Exception:  # noqa: BLE001 - a malformed file: load_file says how
        data = None
    if isinstance(data, dict) and "demos" in data and "demos" not in overrides:
        overrides["demos"] = str(tmp_path / "demos")
        expert = "cartpole" if "CartPole" in data["env"] else "optimal"
        demos.record(out=overrides["demos"], env_id=data["env"], env_config=data.get("env_config"), episodes=2,
                     scripted=expert)
    run = spec.load_file(path, overrides={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", **overrides})
    runs.prepare(run)
    return run


@pytest.mark.parametrize("path", TUNE_CONFIGS, ids=lambda p: p.name)
def test_shipped_tune_configs_load_and_open_with_how_to_run(path, tmp_path):
    run = load_search(path, tmp_path)
    assert run.search_space and run.is_search, "a search needs a search space"
    head = path.read_text().splitlines()[:12]
    assert any("Run:" in line for line in head) and any("Expect:" in line for line in head)


def test_every_project_algorithm_has_a_tune_config():
    algos = {spec.load_file(p).algo for p in TUNE_CONFIGS}
    own = {name for name, spec in ALGORITHMS.items() if spec.source == "rlfrontier"}
    assert own <= algos


def test_good_file_gives_tune_domains(tmp_path):
    run = load_search(write(tmp_path, GOOD), tmp_path, num_samples=3)
    assert run.num_samples == 3 and run.scheduler.type == "fifo" and run.searcher.type == "random"
    assert run.experiment == run.name == "search", "the file's stem names the experiment and its Tune folder"
    from ray.tune.search.sample import Categorical, Float, Integer

    domains = {k: d.to_tune() for k, d in run.search_space.items()}
    assert isinstance(domains["lr"], Float) and isinstance(domains["alpha"], Categorical)
    assert isinstance(domains["target_update_interval"], Integer)
    assert domains["n_step"] == {"grid_search": [1, 3]}


BAD = {
    "malformed yaml": ("algo: soft_q\nsearch_space: {lr: [1\n", "malformed YAML"),
    "unknown top-level key": (GOOD + "schedular: {type: asha}\n", "schedular"),
    "unknown setting in space": (GOOD.replace("tau:", "tauu:"), "tauu"),
    "lower > upper": (GOOD.replace("[0.01, 1.0]", "[1.0, 0.01]"), "search_space.tau.uniform=[1.0, 0.01] has lower >= upper"),
    "unknown distribution": (GOOD.replace("{choice: [0.01, 0.1]}", "{normal: [0, 1]}"), "search_space.alpha.normal"),
    "loguniform from zero": (GOOD.replace("[1.0e-4, 1.0e-2]", "[0, 1.0e-2]"), "needs lower > 0"),
    "out-of-range extreme": (
        GOOD.replace("[0.01, 1.0]", "[0.01, 1.5]"),
        "search_space.tau.uniform=[0.01, 1.5] includes a value the algorithm rejects: tau=1.5 is out of range"),
    "unknown scheduler": (GOOD + "scheduler: {type: hyperband2}\n", "scheduler.type='hyperband2'"),
    "unknown scheduler setting": (GOOD + "scheduler: {type: asha, grace: 2}\n", "scheduler.grace=2"),
    "unknown searcher": (GOOD + "searcher: {type: bohb}\n", "searcher.type='bohb'"),
    "unknown searcher setting": (GOOD + "searcher: {type: random, seed: 1}\n", "searcher.seed=1 is an unknown key"),
    "string for a number": (GOOD + "num_samples: '4'\n", "num_samples='4' must be an integer"),
    "float for an integer": (GOOD.replace("timesteps: 1000", "timesteps: 1000.0"), "stop.timesteps=1000.0 must be an integer"),
    "unknown stop criterion": (GOOD.replace("stop: {timesteps: 1000}", "stop: {timesteps: 1000, episodes: 3}"),
                               "stop.episodes=3 is an unknown key"),
    "bad mode": (GOOD + "mode: maximum\n", "mode='maximum' must be 'max' or 'min'"),
    "pbt fraction out of range": (
        GOOD.replace("n_step: {grid: [1, 3]}", "n_step: {choice: [1, 3]}")
        + "scheduler: {type: pbt, quantile_fraction: 0.7}\n",
        "scheduler.quantile_fraction=0.7 is out of range: allowed (0, 0.5]"),
    "asha setting under fifo": (GOOD + "scheduler: {grace_period: 2}\n", "scheduler.grace_period=2 is not a fifo setting"),
    "searched and fixed": (GOOD + "config: {lr: 1.0e-3}\n", "search_space.lr={'loguniform': [0.0001, 0.01]} is also fixed under config"),
    "bad seed in space": (GOOD.replace("search_space:\n", "search_space:\n  seed: {choice: [-1, 2]}\n"),
                          "search_space.seed.choice=[-1, 2] must hold seeds"),
    "unknown dotted setting": (GOOD.replace("search_space:\n", "search_space:\n  no_such_field.x: {choice: [1]}\n"),
                               "search_space.no_such_field.x: unknown setting 'no_such_field' for SoftQ"),
    "evaluation out of range": (GOOD + "evaluation: {interval: -1}\n", "evaluation.interval=-1 is out of range: allowed [0, inf)"),
    "unknown algo": (GOOD.replace("algo: soft_q", "algo: soft_qq"), "soft_qq"),
    "unknown env": (GOOD.replace("CartPole-v1", "CartPoel-v1"), "CartPoel-v1"),
    "no stop": (GOOD.replace("stop: {timesteps: 1000}\n", ""), "stop criterion"),
    "bad resources": (GOOD + "resources: {gpus: 1}\n", "resources.gpus=1"),
    "resources out of range": (GOOD + "resources: {num_env_runners: -1}\n",
                               "resources.num_env_runners=-1 is out of range: allowed [0, inf)"),
    "pbt with grid": (GOOD + "scheduler: {type: pbt, perturbation_interval: 2}\n", "grid"),
    "pbt mutating a string": (
        GOOD.replace("n_step: {grid: [1, 3]}", "n_step: {choice: ['one', 'three']}")
        + "scheduler: {type: pbt, perturbation_interval: 2}\n",
        "search_space.n_step.choice=['one', 'three'] has values that are not numbers",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tune_config_names_file_key_and_value(case, tmp_path):
    text, needle = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as info:
        load_search(path, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and needle in message, message


NESTED = GOOD.replace("search_space:\n", "search_space:\n  model_config.hidden_sizes: {choice: [[16], [32, 32]]}\n")


def test_a_dotted_key_searches_inside_a_mapping_setting(tmp_path):
    run = load_search(write(tmp_path, NESTED), tmp_path)
    assert run.search_space["model_config.hidden_sizes"].args == [[16], [32, 32]]
    from rlfrontier import tuning

    space = tuning.param_space(run, seeded=False)
    assert "model_config.hidden_sizes" in space and "seed" in space, "flat keys: one MLflow param each"


def test_a_trials_metric_is_read_flat_or_nested_as_tune_flattens_it():
    """Regression: a search ranked by an evaluation hook's number (`metric: metrics/expected_value_difference`)
    printed '-' for every trial and `best ... = None`: the summary looked the flattened key up in the nested result."""
    from rlfrontier.trainable import metric_value

    result = {"eval_return_mean": 3.5, "metrics": {"expected_value_difference": 0.25, "nested": {"x": 1}}}
    assert metric_value(result, "eval_return_mean") == 3.5
    assert metric_value(result, "metrics/expected_value_difference") == 0.25
    assert metric_value(result, "metrics/nested/x") == 1
    assert metric_value(result, "metrics/absent") is None and metric_value(result, "eval_return_mean/x") is None
