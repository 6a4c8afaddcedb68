"""The one description of a run: `train`'s flags and a tune file fill in the same RunSpec."""

from __future__ import annotations

import typing

from pathlib import Path

import pytest
from pydantic import BaseModel

from rlfrontier import cli, spec
from rlfrontier.validation import BadInput

ROOT = Path(__file__).resolve().parents[2]


def subparser(name: str):
    return cli.build_parser()._subparsers._group_actions[0].choices[name]


def train_spec(*argv: str) -> spec.RunSpec:
    """What `rlfrontier train ARGV` runs, without running it."""
    args = cli.build_parser().parse_args(["train", *argv])
    data, _ = cli._spec_input(args)
    return spec.parse(spec.RunSpec, data, origin=spec.Origin(flags=cli.spec_flags(args)))


def _is_field_path(model: type[BaseModel], path: tuple[str, ...]) -> bool:
    info = model.model_fields.get(path[0])
    if info is None:
        return False
    if len(path) == 1:
        return True
    inner = info.annotation
    if typing.get_origin(inner) is dict:  # a mapping field (config): flags may fill keys inside it
        return True
    return isinstance(inner, type) and issubclass(inner, BaseModel) and _is_field_path(inner, path[1:])


@pytest.mark.parametrize("command", ["train", "tune"])
def test_every_spec_flag_sets_a_run_spec_field(command):
    fields = subparser(command).get_default("spec_fields")
    assert fields
    for dest, (path, flag) in fields.items():
        assert _is_field_path(spec.RunSpec, path), (flag, path)


def test_train_flags_fill_the_run_spec(tmp_path):
    run = train_spec(
        "soft_q", "--env", "CartPole-v1", "--env-config", "max_episode_steps=100", "--config", "c.yaml",
        "--set", "lr=1e-3", "reward_transform.scale=2", "--stop-timesteps", "500", "--stop-reward", "450",
        "--seed", "3", "--num-env-runners", "1", "--num-envs-per-env-runner", "4", "--num-learners", "2",
        "--gpus-per-learner", "0.5", "--eval-interval", "2", "--eval-episodes", "3", "--checkpoint-every", "4",
        "--restore", "ckpt", "--tracking-uri", "sqlite:///x.db", "--experiment", "e", "--storage-path", "s",
        "--max-failures", "-1",
    )
    assert (run.algo, run.env, run.env_config, run.seed) == ("soft_q", "CartPole-v1", {"max_episode_steps": 100}, 3)
    assert run.config_file == "c.yaml" and run.config == {"lr": 1e-3, "reward_transform.scale": 2}
    assert (run.stop.timesteps, run.stop.iterations, run.stop.reward) == (500, None, 450.0)
    assert run.resources.model_dump() == {"num_env_runners": 1, "num_envs_per_env_runner": 4, "num_learners": 2,
                                          "gpus_per_learner": 0.5}
    assert (run.evaluation.interval, run.evaluation.episodes, run.checkpoint_every) == (2, 3, 4)
    assert (run.restore, run.tracking_uri, run.experiment, run.storage_path, run.max_failures) == (
        "ckpt", "sqlite:///x.db", "e", "s", -1)
    # train is a search of one trial: no search part.
    assert not run.is_search and run.num_samples == 1 and run.scheduler.type == "fifo" and not run.search_space
    assert run.name is None, "the Tune folder is named <algo>-<env>-<time> when the run starts"


def test_train_defaults_are_the_specs():
    run = train_spec("soft_q", "--env", "CartPole-v1", "--stop-iters", "1")
    assert run.model_dump(exclude={"algo", "env", "stop"}) == spec.RunSpec(
        algo="x", env="y", stop={"iterations": 1}).model_dump(exclude={"algo", "env", "stop"})
    assert (run.experiment, run.storage_path, run.checkpoint_every, run.max_failures) == ("rlfrontier", "ray_results", 10, 0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--stop-timesteps", "-5"], "--stop-timesteps=-5 is out of range: allowed [1, inf)"),
        ([], "give a stop criterion: --stop-timesteps, --stop-iters or --stop-reward"),
        (["--stop-iters", "1", "--num-env-runners", "-1"], "--num-env-runners=-1 is out of range: allowed [0, inf)"),
        (["--stop-iters", "1", "--gpus-per-learner", "-0.5"], "--gpus-per-learner=-0.5 is out of range: allowed [0, inf)"),
        (["--stop-iters", "1", "--eval-episodes", "0"], "--eval-episodes=0 is out of range: allowed [1, inf)"),
        (["--stop-iters", "1", "--seed", "-1"], "--seed=-1 is out of range: allowed [0, 2147483647]"),
        (["--stop-iters", "1", "--checkpoint-every", "0"], "--checkpoint-every=0 is out of range: allowed [1, inf)"),
        (["--stop-iters", "1", "--max-failures", "-2"], "--max-failures=-2 is out of range: allowed [-1, inf)"),
        (["--stop-iters", "1", "--env-config", "size"], "--env-config 'size' is not key=value"),
    ],
)
def test_bad_flags_are_named_as_typed(argv, message):
    with pytest.raises(BadInput) as info:
        train_spec("soft_q", "--env", "CartPole-v1", *argv)
    assert str(info.value) == message


def test_a_tune_file_and_its_command_line_overrides(tmp_path):
    path = tmp_path / "my-search.yaml"
    path.write_text("algo: soft_q\nenv: CartPole-v1\nenv_config:\nsearch_space:\n  lr: {choice: [0.001]}\n"
                    "num_samples: 2\nstop: {iterations: 2}\n")
    run = spec.load_file(path)
    assert run.experiment == run.name == "my-search" and run.num_samples == 2 and run.env_config == {}
    assert run.is_search and run.origin.file == path
    args = cli.build_parser().parse_args(["tune", str(path), "--num-samples", "0"])
    overrides, given = cli._spec_input(args)
    assert overrides == {"num_samples": 0} and given == {("num_samples",): "--num-samples"}
    with pytest.raises(BadInput) as info:
        spec.load_file(path, overrides=overrides, flags=given)
    assert str(info.value) == "--num-samples=0 is out of range: allowed [1, inf)", "named as the user gave it"
    path.write_text(path.read_text() + "experiment: shared\n")
    assert spec.load_file(path).name == "shared"


def test_a_tune_file_may_describe_one_run(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("algo: soft_q\nenv: CartPole-v1\nseed: 3\nconfig: {lr: 1.0e-3}\nstop: {timesteps: 100}\n")
    run = spec.load_file(path)
    assert not run.is_search and run.seed == 3 and run.config == {"lr": 1e-3}


@pytest.mark.parametrize("path", sorted((ROOT / "tune_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_tune_configs_are_run_specs(path):
    run = spec.load_file(path)
    # A budget every trial ends by: env steps, or iterations for an algorithm that samples nothing to train.
    assert run.is_search and (run.stop.timesteps or run.stop.iterations)


def test_pbt_checkpoints_at_every_perturbation():
    data = {"algo": "a", "env": "e", "stop": {"iterations": 9}, "checkpoint_every": 10,
            "search_space": {"lr": {"uniform": [0.1, 0.2]}}}
    assert spec.parse(spec.RunSpec, data).checkpoint_interval == 10
    pbt = spec.parse(spec.RunSpec, {**data, "scheduler": {"type": "pbt", "perturbation_interval": 3}})
    assert pbt.checkpoint_interval == 3


def test_searched_settings_may_not_also_be_fixed_whichever_way_they_are_spelled():
    base = {"algo": "a", "env": "e", "stop": {"iterations": 1},
            "search_space": {"reward_transform.scale": {"choice": [1.0, 2.0]}}}
    # The kind fixed, the scale searched: fine.
    spec.parse(spec.RunSpec, {**base, "config": {"reward_transform": {"type": "affine"}}})
    for fixed in ({"reward_transform": {"type": "affine", "scale": 3.0}}, {"reward_transform.scale": 3.0}):
        with pytest.raises(BadInput, match="search_space.reward_transform.scale=.* is also fixed under config"):
            spec.parse(spec.RunSpec, {**base, "config": fixed})
    with pytest.raises(BadInput, match="search_space.seed=.* is also fixed under seed"):
        spec.parse(spec.RunSpec, {**base, "seed": 1, "search_space": {"seed": {"grid": [1, 2]}}})


def test_distributions():
    assert spec.Distribution.model_validate({"randint": [1, 4]}).extremes() == [1, 3]
    assert spec.Distribution.model_validate({"choice": ["a", "b"]}).extremes() == ["a", "b"]
    with pytest.raises(BadInput, match=r"^randint=\[1, 2.5\] must be \[lower, upper\] of integers$"):
        spec.parse(spec.Distribution, {"randint": [1, 2.5]})
    with pytest.raises(BadInput, match=r"^grid=\[\] must be a non-empty list$"):
        spec.parse(spec.Distribution, {"grid": []})


def test_stop_criteria_reached_is_the_trainables_rule():
    stop = spec.StopCriteria(timesteps=100, reward=1.0)
    assert stop.reached(env_steps=100, iterations=1, return_mean=None)
    assert stop.reached(env_steps=0, iterations=1, return_mean=1.0)
    assert not stop.reached(env_steps=99, iterations=1, return_mean=0.5)


def test_default_of():
    assert spec.default_of("evaluation.interval") == spec.DEFAULT_EVAL_INTERVAL
    assert spec.default_of("storage_path") == "ray_results"
    assert spec.default_of("scheduler").type == "fifo"


def test_bonus_flags_fill_the_config_field_bonus(tmp_path):
    run = train_spec("soft_q", "--env", "CartPole-v1", "--set", "lr=1e-3", "--bonus", "count",
                     "--bonus-config", "beta=0.2", "hash=exact", "--stop-iters", "1")
    assert run.config == {"lr": 1e-3, "bonus": {"type": "count", "beta": 0.2, "hash": "exact"}}
