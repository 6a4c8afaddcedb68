"""Tune config files: every file in tune_configs/ loads; bad ones name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlfrontier import tuning
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


@pytest.mark.parametrize("path", TUNE_CONFIGS, ids=lambda p: p.name)
def test_shipped_tune_configs_load_and_open_with_how_to_run(path):
    spec = tuning.load_search(path)
    assert spec.space, "a search needs a search space"
    head = path.read_text().splitlines()[:12]
    assert any("Run:" in line for line in head) and any("Expect:" in line for line in head)


def test_every_project_algorithm_has_a_tune_config():
    algos = {tuning.load_search(p).algo for p in TUNE_CONFIGS}
    own = {name for name, spec in ALGORITHMS.items() if spec.source == "rlfrontier"}
    assert own <= algos


def test_good_file_gives_tune_domains(tmp_path):
    spec = tuning.load_search(write(tmp_path, GOOD), num_samples=3)
    assert spec.num_samples == 3 and spec.scheduler == {"type": "fifo"} and spec.searcher == "random"
    from ray.tune.search.sample import Categorical, Float, Integer

    domains = {k: d.to_tune() for k, d in spec.space.items()}
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
    "out-of-range extreme": (GOOD.replace("[0.01, 1.0]", "[0.01, 1.5]"), "tau=1.5"),
    "unknown scheduler": (GOOD + "scheduler: {type: hyperband2}\n", "scheduler.type='hyperband2'"),
    "unknown scheduler setting": (GOOD + "scheduler: {type: asha, grace: 2}\n", "scheduler.grace=2"),
    "unknown searcher": (GOOD + "searcher: {type: bohb}\n", "searcher.type='bohb'"),
    "unknown algo": (GOOD.replace("algo: soft_q", "algo: soft_qq"), "soft_qq"),
    "unknown env": (GOOD.replace("CartPole-v1", "CartPoel-v1"), "CartPoel-v1"),
    "no stop": (GOOD.replace("stop: {timesteps: 1000}\n", ""), "stop criterion"),
    "bad resources": (GOOD + "resources: {gpus: 1}\n", "resources.gpus=1"),
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
        tuning.load_search(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and needle in message, message
