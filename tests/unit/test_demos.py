"""Demonstrations: Parquet round trip, the manifest, checks against a run's env, scripted experts, --demos plumbing."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlfrontier import cli, configure, demos, envs, registry, spec
from rlfrontier.validation import BadInput

CARTPOLE = "CartPole-v1"
GRIDWORLD = "rlfrontier/GridWorld-v0"


def _stepped(env_id: str, env_config: dict, *, episodes: int, seed: int, policy) -> list[dict[str, np.ndarray]]:
    """What a scripted expert's record must hold, stepped here by hand."""
    env = gym.make(env_id, **env_config)
    out = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        rows = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminated", "truncated")}
        done = False
        while not done:
            action = policy(obs, info, len(rows["action"]))
            next_obs, reward, terminated, truncated, info = env.step(action)
            for key, value in zip(rows, (obs, action, reward, next_obs, terminated, truncated)):
                rows[key].append(value)
            obs, done = next_obs, terminated or truncated
        out.append({k: np.asarray(v) for k, v in rows.items()})
    env.close()
    return out


def _record(out: Path, env_id: str = CARTPOLE, **kwargs) -> dict:
    kwargs = {"episodes": 3, "scripted": "cartpole", **kwargs}
    return demos.record(out=out, env_id=env_id, **kwargs)


def test_scripted_record_round_trips_through_parquet(tmp_path):
    env_config = {"max_episode_steps": 60}
    manifest = _record(tmp_path / "d", env_config=env_config, seed=7)
    expected = _stepped(CARTPOLE, env_config, episodes=3, seed=7, policy=lambda o, i, t: demos.cartpole_action(o))

    loaded = demos.load(tmp_path / "d")
    episodes = loaded.episodes()
    assert len(episodes) == 3 and loaded.num_transitions == 180
    for index, (got, want) in enumerate(zip(episodes, expected)):
        np.testing.assert_array_equal(got["episode"], np.full(60, index))
        np.testing.assert_array_equal(got["t"], np.arange(60))
        np.testing.assert_array_equal(got["obs"], want["obs"].astype(np.float32))
        np.testing.assert_array_equal(got["next_obs"], want["next_obs"].astype(np.float32))
        np.testing.assert_array_equal(got["action"], want["action"])
        np.testing.assert_array_equal(got["reward"], want["reward"])
        np.testing.assert_array_equal(got["terminated"], want["terminated"])
        np.testing.assert_array_equal(got["truncated"], want["truncated"])
    rows = loaded.transitions()
    assert rows["obs"].shape == (180, 4) and rows["obs"].dtype == np.float32
    assert rows["action"].dtype == np.int64 and rows["reward"].dtype == np.float64
    assert rows["terminated"].dtype == bool and rows["truncated"].sum() == 3

    assert loaded.manifest == json.loads((tmp_path / "d" / demos.MANIFEST_FILE).read_text())
    assert manifest["path"] == str((tmp_path / "d").resolve())
    m = loaded.manifest
    assert (m["format"], m["version"], m["env"], m["env_config"], m["source"]) == (
        demos.FORMAT, demos.FORMAT_VERSION, CARTPOLE, env_config, "scripted:cartpole")
    assert (m["episodes"], m["transitions"], m["seed"], m["returns"]) == (3, 180, 7, [60.0] * 3)
    assert demos.FORMAT_VERSION == 2 and m[demos.ACTION_UNITS] == demos.ENV_UNITS == "env"
    assert (m["return_mean"], m["return_std"]) == (60.0, 0.0)
    space = gym.make(CARTPOLE).observation_space
    assert m["observation_space"] == {"type": "Box", "repr": repr(space), "shape": [4], "dtype": "float32"}
    assert m["action_space"] == {"type": "Discrete", "repr": "Discrete(2)", "n": 2, "start": 0}
    assert datetime.datetime.fromisoformat(m["created"]).tzinfo is not None


def test_parquet_columns_have_the_documented_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _record(tmp_path / "d", episodes=1, env_config={"max_episode_steps": 5})
    schema = pq.read_table(tmp_path / "d" / demos.DATA_FILE).schema
    assert schema.names == list(demos.COLUMNS)
    types = {name: schema.field(name).type for name in schema.names}
    assert types["episode"] == types["t"] == types["action"] == pa.int64()
    assert types["reward"] == pa.float64() and types["terminated"] == types["truncated"] == pa.bool_()
    assert pa.types.is_list(types["obs"]) and types["obs"].value_type == pa.float32() == types["next_obs"].value_type


def test_same_seed_same_record_other_seed_other_record(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        _record(tmp_path / name, episodes=2, seed=seed, env_config={"max_episode_steps": 20})
    a, b, c = (demos.load(tmp_path / n).transitions()["obs"] for n in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_box_actions_are_float_lists(tmp_path):
    """A Box action space (from a checkpoint's policy) is stored as list<float32> and loaded as (N, *shape)."""
    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    episode = demos._episode([np.zeros(3)] * 4, [np.array([0.5])] * 3, [1.0] * 3, terminated=False, truncated=True,
                             act_space=space)
    manifest = {"format": demos.FORMAT, "version": demos.FORMAT_VERSION, "env": "Pendulum-v1", "env_config": {},
                "source": "x", "episodes": 1, "transitions": 3, "seed": 0,
                "observation_space": {"type": "Box", "repr": "b", "shape": [3], "dtype": "float32"},
                "action_space": demos.describe_space(space), demos.ACTION_UNITS: demos.ENV_UNITS}
    demos.write(tmp_path / "d", [episode], manifest)
    rows = demos.load(tmp_path / "d").transitions()
    assert rows["action"].shape == (3, 1) and rows["action"].dtype == np.float32
    np.testing.assert_array_equal(rows["action"], np.full((3, 1), 0.5, np.float32))
    np.testing.assert_array_equal(rows["truncated"], [False, False, True])


@pytest.mark.parametrize("seed", range(20))
def test_cartpole_controller_balances_for_500_steps(seed):
    env = gym.make(CARTPOLE)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(demos.cartpole_action(obs))
        total += reward
        done = terminated or truncated
    assert total == 500.0 and truncated and not terminated


def test_pendulum_expert_records_box_actions_and_swings_up(tmp_path):
    """The scripted Pendulum-v1 expert: Box actions round-trip, and every episode ends upright."""
    manifest = _record(tmp_path / "d", env_id="Pendulum-v1", scripted="pendulum", seed=3)
    expected = _stepped("Pendulum-v1", {}, episodes=3, seed=3, policy=lambda o, i, t: demos.pendulum_action(o))
    episodes = demos.load(tmp_path / "d").episodes()
    assert manifest["source"] == "scripted:pendulum" and len(episodes) == 3
    for got, want in zip(episodes, expected):
        assert got["action"].shape == (200, 1) and got["action"].dtype == np.float32
        np.testing.assert_array_equal(got["action"], want["action"].reshape(200, 1))
        np.testing.assert_array_equal(got["reward"], want["reward"])
        cos, sin = got["next_obs"][-1, :2]
        assert abs(np.arctan2(sin, cos)) < 1e-3  # upright at the last step, whatever the start
        assert got["reward"][-20:].min() > -1e-3  # and held there
    assert np.all(np.abs(np.concatenate([e["action"] for e in episodes])) <= 2.0)


def test_pendulum_expert_refuses_other_envs(tmp_path):
    with pytest.raises(BadInput, match="--scripted pendulum: CartPole-v1 is not gymnasium's Pendulum"):
        _record(tmp_path / "d", scripted="pendulum")
    assert not (tmp_path / "d").exists()


def test_optimal_expert_takes_the_optimal_policys_actions(tmp_path):
    from rlfrontier.tabular import TabularMDP, one_hot_policy, optimal_policy, policy_value

    manifest = demos.record(out=tmp_path / "d", env_id=GRIDWORLD, scripted="optimal", episodes=200, seed=1)
    envs.register_envs()
    mdp = TabularMDP.from_env(gym.make(GRIDWORLD))
    policy = optimal_policy(mdp)
    for episode in demos.load(tmp_path / "d").episodes():
        states = episode["obs"].argmax(axis=1)
        np.testing.assert_array_equal(episode["action"], policy[episode["t"], states])
        assert len(episode["t"]) == mdp.horizon and episode["truncated"][-1]
        np.testing.assert_array_equal(episode["reward"], mdp.reward[states])
    best = policy_value(mdp, one_hot_policy(policy, mdp.num_actions))
    stderr = manifest["return_std"] / np.sqrt(200)
    assert abs(manifest["return_mean"] - best) < 4 * stderr + 1e-9, (manifest["return_mean"], best)


@pytest.mark.parametrize(
    "name, env_id, needle",
    [
        ("nope", CARTPOLE, "--scripted 'nope' is not a scripted expert: choose one of cartpole, optimal"),
        ("optimal", CARTPOLE, "--scripted optimal: CartPole-v1 is not a tabular world"),
        ("cartpole", GRIDWORLD, f"--scripted cartpole: {GRIDWORLD} has Box(0.0, 1.0, (64,), float32)"),
        ("cartpole", "Acrobot-v1", "not CartPole's observation"),
    ],
)
def test_an_expert_that_does_not_exist_or_fit_is_bad_input(tmp_path, name, env_id, needle):
    with pytest.raises(BadInput) as err:
        demos.record(out=tmp_path / "d", env_id=env_id, scripted=name, episodes=1)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "d").exists(), "bad input must not write anything"


def test_record_needs_exactly_one_source(tmp_path):
    for kwargs in ({}, {"scripted": "cartpole", "checkpoint": "x"}):
        with pytest.raises(BadInput, match="CHECKPOINT or --scripted"):
            demos.record(out=tmp_path / "d", env_id=CARTPOLE, episodes=1, **kwargs)


def test_bad_checkpoint_is_the_evaluate_message(tmp_path):
    with pytest.raises(BadInput, match=r"checkpoint '.*nope' does not exist"):
        demos.record(out=tmp_path / "d", env_id=CARTPOLE, episodes=1, checkpoint=str(tmp_path / "nope"))
    assert not (tmp_path / "d").exists()


def test_re_record_is_refused_without_overwrite_and_keeps_other_files(tmp_path):
    out = tmp_path / "d"
    _record(out, episodes=1, env_config={"max_episode_steps": 10})
    (out / "notes.txt").write_text("mine")
    before = (out / demos.MANIFEST_FILE).read_text()
    with pytest.raises(BadInput, match=r"--out .*d: already holds demonstrations \(manifest.json\); pass --overwrite"):
        _record(out, episodes=2, env_config={"max_episode_steps": 10})
    assert (out / demos.MANIFEST_FILE).read_text() == before
    _record(out, episodes=2, env_config={"max_episode_steps": 10}, overwrite=True)
    assert demos.load(out).num_episodes == 2
    assert sorted(p.name for p in out.iterdir()) == [demos.MANIFEST_FILE, "notes.txt", demos.DATA_FILE]


def test_out_with_foreign_parquet_files_or_a_file_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "other.parquet").write_bytes(b"")
    with pytest.raises(BadInput, match=r"holds other Parquet files \(other.parquet\)"):
        _record(tmp_path / "d", episodes=1)
    (tmp_path / "f").write_text("")
    with pytest.raises(BadInput, match="is a file, not a folder"):
        _record(tmp_path / "f", episodes=1)


def test_out_parents_are_created(tmp_path):
    _record(tmp_path / "a" / "b" / "c", episodes=1, env_config={"max_episode_steps": 5})
    assert demos.load(tmp_path / "a" / "b" / "c").num_transitions == 5


@pytest.mark.parametrize("episodes", [0, -1])
def test_episodes_out_of_range(tmp_path, episodes):
    with pytest.raises(BadInput, match=f"--episodes={episodes} is out of range"):
        _record(tmp_path / "d", episodes=episodes)


# check: a run's demonstrations against its env --------------------------------------------


@pytest.fixture
def recorded(tmp_path) -> Path:
    _record(tmp_path / "demos", episodes=2, env_config={"max_episode_steps": 10})
    return tmp_path / "demos"


def _spaces(env_id: str = CARTPOLE, **env_config):
    return envs.check_env(env_id, env_config)


def test_check_accepts_the_env_it_was_recorded_on(recorded):
    loaded = demos.check(recorded, CARTPOLE, {"max_episode_steps": 10}, *_spaces())
    assert loaded.num_episodes == 2 and loaded.path == recorded.resolve()


@pytest.mark.parametrize(
    "args, needle",
    [
        ((GRIDWORLD, {"max_episode_steps": 10}, *_spaces(GRIDWORLD)), f"recorded on CartPole-v1, not {GRIDWORLD}"),
        ((CARTPOLE, {}, *_spaces()), "recorded with env_config {'max_episode_steps': 10}, not {}"),
        ((CARTPOLE, {"max_episode_steps": 10}, gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2)),
         "recorded with observation space Box([-4.8"),
        ((CARTPOLE, {"max_episode_steps": 10}, _spaces()[0], gym.spaces.Discrete(3)),
         "recorded with action space Discrete(2), not Discrete(3)"),
    ],
)
def test_check_names_folder_and_mismatch(recorded, args, needle):
    with pytest.raises(BadInput) as err:
        demos.check(recorded, *args)
    assert str(err.value).startswith(f"--demos {recorded}: ") and needle in str(err.value)


def _break(folder: Path, how: str) -> None:
    manifest = folder / demos.MANIFEST_FILE
    if how == "no manifest":
        manifest.unlink()
    elif how == "manifest not json":
        manifest.write_text("{not json")
    elif how == "manifest lacks keys":
        manifest.write_text(json.dumps({"format": demos.FORMAT, "version": 1}))
    elif how == "other format":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": "other"}))
    elif how == "newer version":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "version": 99}))
    elif how == "no parquet":
        (folder / demos.DATA_FILE).unlink()
    elif how == "parquet garbage":
        (folder / demos.DATA_FILE).write_bytes(b"not parquet")
    elif how == "count differs":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "transitions": 7}))


BROKEN = {
    "no manifest": "holds no manifest.json",
    "manifest not json": "manifest.json is malformed",
    "manifest lacks keys": "manifest.json is malformed: it lacks env, env_config",
    "other format": "is not an rlfrontier-demos manifest",
    "newer version": "format version 99",
    "no parquet": "no transitions.parquet",
    "parquet garbage": "transitions.parquet cannot be read",
    "count differs": "holds 20 transitions, its manifest says 7",
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_malformed_folders_are_bad_input_naming_the_folder(recorded, how):
    _break(recorded, how)
    with pytest.raises(BadInput) as err:
        demos.check(recorded, CARTPOLE, {"max_episode_steps": 10}, *_spaces())
    message = str(err.value)
    assert message.startswith(f"--demos {recorded}: ") and BROKEN[how] in message and "\n" not in message


def test_a_missing_folder_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match=f"^--demos {tmp_path / 'nope'}: does not exist$"):
        demos.check(tmp_path / "nope", CARTPOLE, {}, *_spaces())
    (tmp_path / "file").write_text("")
    with pytest.raises(BadInput, match="is not a folder"):
        demos.load(tmp_path / "file")


def test_show_checks_the_row_count(recorded):
    assert demos.show(recorded)["episodes"] == 2
    table = demos.manifest_table(demos.show(recorded), path=recorded)
    assert "scripted:cartpole" in table and "Discrete(2)" in table
    _break(recorded, "count differs")
    with pytest.raises(BadInput, match="^demos show .*: transitions.parquet holds 20 transitions"):
        demos.show(recorded)


# Format versions: version 1 did not say the actions' units --------------------------------------------------
def _pendulum_folder(out: Path, *, version: int, source: str, **extra) -> Path:
    """A one-episode Pendulum-v1 folder with a hand-written manifest of `version` (torques of 1.5: the env's units)."""
    obs_space, act_space = _spaces("Pendulum-v1")
    episode = demos._episode([np.zeros(3)] * 4, [np.array([1.5])] * 3, [-1.0] * 3, terminated=False,
                             truncated=True, act_space=act_space)
    manifest = {"format": demos.FORMAT, "version": version, "env": "Pendulum-v1", "env_config": {}, "source": source,
                "episodes": 1, "transitions": 3, "seed": 0, "return_mean": -3.0, "return_std": 0.0,
                "returns": [-3.0], "observation_space": demos.describe_space(obs_space),
                "action_space": demos.describe_space(act_space), **extra}
    demos.write(out, [episode], manifest)
    return out


def test_a_version_1_box_recording_from_a_checkpoint_is_refused_in_one_line_saying_what_to_do(tmp_path):
    """Before the units fix a checkpoint's Box actions were recorded in the module's units ([-1, 1] under
    normalize_actions), and version 1 does not say which units a folder holds."""
    folder = _pendulum_folder(tmp_path / "old", version=1, source="/runs/sac/checkpoint_000009")
    for read in (demos.read_manifest, demos.load, demos.show,
                 lambda path: demos.check(path, "Pendulum-v1", {}, *_spaces("Pendulum-v1"))):
        with pytest.raises(BadInput) as err:
            read(folder)
        message = str(err.value)
        assert "\n" not in message and str(folder) in message, message
        assert "format version 1 Box actions recorded from a checkpoint (/runs/sac/checkpoint_000009)" in message
        assert "normalised [-1, 1] actions" in message and "record them again" in message
        assert "rlfrontier demos record CHECKPOINT --env Pendulum-v1" in message and "format 2" in message


def test_version_1_discrete_and_scripted_recordings_still_load(tmp_path, recorded):
    scripted = _pendulum_folder(tmp_path / "scripted", version=1, source="scripted:pendulum")
    np.testing.assert_array_equal(demos.load(scripted).transitions()[demos.ACTION], np.full((3, 1), 1.5, np.float32))
    assert "Box(-2.0, 2.0, (1,), float32), in the env's units" in demos.manifest_table(demos.show(scripted),
                                                                                     path=scripted)
    # A Discrete action is an index, the same whatever the units: a version-1 recording from a checkpoint loads.
    manifest = json.loads((recorded / demos.MANIFEST_FILE).read_text())
    manifest = {k: v for k, v in manifest.items() if k != demos.ACTION_UNITS}
    (recorded / demos.MANIFEST_FILE).write_text(json.dumps({**manifest, "version": 1, "source": "/runs/ppo/ck"}))
    assert demos.check(recorded, CARTPOLE, {"max_episode_steps": 10}, *_spaces()).num_transitions == 20
    table = demos.manifest_table(demos.show(recorded), path=recorded)
    rows = dict(line.split(None, 1) for line in table.splitlines())
    assert (rows["actions"], rows["format"]) == ("Discrete(2)", "rlfrontier-demos 1")


def test_version_2_says_its_actions_are_the_envs(tmp_path):
    folder = _pendulum_folder(tmp_path / "new", version=2, source="/runs/sac/checkpoint_000009",
                              **{demos.ACTION_UNITS: demos.ENV_UNITS})
    assert demos.load(folder).num_transitions == 3
    table = demos.manifest_table(demos.show(folder), path=folder)
    assert "in the env's units" in table and "rlfrontier-demos 2" in table
    for units in (None, "module"):
        extra = {} if units is None else {demos.ACTION_UNITS: units}
        bad = _pendulum_folder(tmp_path / f"bad-{units}", version=2, source="scripted:pendulum", **extra)
        with pytest.raises(BadInput, match=f"manifest.json is malformed: action_units is {units!r}, not 'env'"):
            demos.load(bad)


def test_a_recorded_box_folder_is_version_2_in_the_envs_units(tmp_path):
    manifest = _record(tmp_path / "d", env_id="Pendulum-v1", scripted="pendulum", episodes=1)
    assert (manifest["version"], manifest[demos.ACTION_UNITS]) == (2, "env")
    assert demos.show(tmp_path / "d")[demos.ACTION_UNITS] == "env"


# check_config: the command line's check, against an AlgorithmConfig built in Python -------------------------
def test_check_config_is_check_against_a_configs_env_env_config_and_spaces(recorded):
    from ray.rllib.algorithms.ppo import PPOConfig

    good = PPOConfig().environment(CARTPOLE, env_config={"max_episode_steps": 10})
    assert demos.check_config(recorded, good).num_episodes == 2
    cases = [
        (PPOConfig().environment("Acrobot-v1", env_config={"max_episode_steps": 10}),
         "recorded on CartPole-v1, not Acrobot-v1"),
        (PPOConfig().environment(CARTPOLE), "recorded with env_config {'max_episode_steps': 10}, not {}"),
        (PPOConfig().environment(gym.envs.classic_control.CartPoleEnv, env_config={"max_episode_steps": 10}),
         "recorded on CartPole-v1, not <class 'gymnasium.envs.classic_control.cartpole.CartPoleEnv'>"),
    ]
    for config, needle in cases:
        with pytest.raises(BadInput) as err:
            demos.check_config(recorded, config)
        assert str(err.value) == f"--demos {recorded}: {needle}"


# --demos: from the command line and a tune file to the AlgorithmConfig ----------------------


class _DemosConfig:
    """A soft_q config with the `demos` field an imitation algorithm declares."""

    @staticmethod
    def make():
        from rlfrontier.algorithms.soft_q.soft_q import SoftQConfig

        config = SoftQConfig()
        config.demos = None
        return config


@pytest.fixture
def imitator(monkeypatch):
    entry = registry.AlgoSpec("imitator", "takes demos", "rlfrontier", ("Discrete",), _DemosConfig.make,
                              accepts=(registry.DEMONSTRATIONS,))
    monkeypatch.setitem(registry.ALGORITHMS, "imitator", entry)
    return entry


def _train_run(*argv: str) -> spec.RunSpec:
    args = cli.build_parser().parse_args(["train", *argv])
    data, _ = cli._spec_input(args)
    return spec.parse(spec.RunSpec, data, origin=spec.Origin(flags=cli.spec_flags(args)))


def test_train_demos_flag_reaches_the_algorithm_config(imitator, recorded):
    run = _train_run("imitator", "--env", CARTPOLE, "--env-config", "max_episode_steps=10", "--demos",
                     str(recorded), "--stop-iters", "1")
    assert run.demos == str(recorded)
    _, config = configure.algorithm_config(run, seed=0)
    assert config.demos == str(recorded.resolve())


def test_train_demos_of_another_env_names_the_flag(imitator, recorded):
    run = _train_run("imitator", "--env", CARTPOLE, "--demos", str(recorded), "--stop-iters", "1")
    with pytest.raises(BadInput, match=rf"^--demos {recorded}: recorded with env_config"):
        configure.algorithm_config(run, seed=0)


def test_an_algorithm_without_demonstrations_refuses_them(recorded):
    run = _train_run("boot_dqn", "--env", CARTPOLE, "--demos", str(recorded), "--stop-iters", "1")
    with pytest.raises(BadInput, match=rf"^--demos {recorded}: boot_dqn does not learn from demonstrations$"):
        configure.algorithm_config(run, seed=0)


def test_demos_cannot_be_set_as_a_plain_setting(imitator, recorded):
    run = _train_run("imitator", "--env", CARTPOLE, "--set", f"demos={recorded}", "--stop-iters", "1")
    with pytest.raises(BadInput, match="set 'demos' with its own flag or key"):
        configure.algorithm_config(run, seed=0)


def test_a_tune_files_demos_key_fills_the_run(imitator, recorded, tmp_path):
    search = tmp_path / "search.yaml"
    search.write_text(f"algo: imitator\nenv: {CARTPOLE}\nenv_config: {{max_episode_steps: 10}}\n"
                      f"demos: {recorded}\nstop: {{iterations: 1}}\n")
    run = spec.load_file(search)
    assert run.demos == str(recorded)
    assert configure.algorithm_config(run, seed=0)[1].demos == str(recorded.resolve())
    search.write_text(search.read_text().replace("max_episode_steps: 10", "max_episode_steps: 11"))
    with pytest.raises(BadInput, match=rf"^{search}: demos {recorded}: recorded with env_config"):
        configure.algorithm_config(spec.load_file(search), seed=0)


def test_build_config_takes_demos(imitator, recorded):
    _, config, _ = configure.build_config(algo="imitator", env=CARTPOLE, seed=0,
                                          env_config={"max_episode_steps": 10}, demos=str(recorded))
    assert config.demos == str(recorded.resolve())


def test_cli_record_and_show_print_a_summary_and_the_manifest(tmp_path, capsys):
    out = tmp_path / "d"
    code = cli.main(["demos", "record", "--scripted", "cartpole", "--env", CARTPOLE, "--env-config",
                     "max_episode_steps=5", "--episodes", "2", "--out", str(out), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines[0] == (f"recorded 2 episodes (10 transitions) of {CARTPOLE} from scripted:cartpole: "
                                      f"return mean 5 ± 0 -> {out.resolve()}")
    manifest = json.loads(lines[-1])
    assert cli.main(["demos", "show", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == manifest


def test_cli_record_refuses_a_checkpoint_and_a_scripted_expert_together(tmp_path, capsys):
    code = cli.main(["demos", "record", "ckpt", "--scripted", "cartpole", "--env", CARTPOLE, "--episodes", "1",
                     "--out", str(tmp_path / "d")])
    assert code == 2 and "give CHECKPOINT 'ckpt' or --scripted cartpole, not both" in capsys.readouterr().err


def test_the_cartpole_expert_fits_the_fixed_horizon_cartpole(tmp_path):
    manifest = _record(tmp_path / "d", env_id="rlfrontier/CartPoleFixedHorizon-v0", env_config={"horizon": 1000})
    assert manifest["returns"] == [1000.0] * 3 and manifest["transitions"] == 3000


def test_maxent_irl_gets_optimal_gridworld_demos_through_its_config(tmp_path):
    demos.record(out=tmp_path / "d", env_id=GRIDWORLD, scripted="optimal", episodes=5)
    _, config, _ = configure.build_config(algo="maxent_irl", env=GRIDWORLD, seed=0, demos=str(tmp_path / "d"))
    assert config.demos == str((tmp_path / "d").resolve())
    with pytest.raises(BadInput, match=f"recorded on {GRIDWORLD}, not rlfrontier/ObjectWorld-v0"):
        configure.build_config(algo="maxent_irl", env="rlfrontier/ObjectWorld-v0", seed=0, demos=str(tmp_path / "d"))


# Action units: demonstrations hold the env's, RLlib's episodes the module's ---------------------------------
def test_box_actions_map_between_the_envs_units_and_the_modules_both_ways():
    space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32))
    env_units = np.array([[2.0, 0.0], [-2.0, 10.0], [1.0, 2.5]], np.float32)
    module = demos.module_actions(env_units, space, normalize_actions=True)
    np.testing.assert_allclose(module, [[1.0, -1.0], [-1.0, 1.0], [0.5, -0.5]], atol=1e-7)
    np.testing.assert_allclose(demos.env_actions(module, space, normalize_actions=True, clip_actions=False),
                               env_units, atol=1e-6)
    # RLlib clips after unsquashing: a module action outside [-1, 1] reaches the env at the bound.
    np.testing.assert_allclose(demos.env_actions(np.array([[3.0, -5.0]]), space, normalize_actions=True,
                                                 clip_actions=False), [[2.0, 0.0]])
    # Without normalize_actions the module acts in the env's units: clipped only if clip_actions.
    assert demos.module_actions(env_units, space, normalize_actions=False) is env_units
    np.testing.assert_array_equal(demos.env_actions(np.array([[3.0, 11.0]]), space, normalize_actions=False,
                                                    clip_actions=True), [[2.0, 10.0]])
    np.testing.assert_array_equal(demos.env_actions(np.array([[3.0, 11.0]]), space, normalize_actions=False,
                                                    clip_actions=False), [[3.0, 11.0]])


def test_flattened_rows_of_a_matrix_box_and_other_spaces():
    space = gym.spaces.Box(-4.0, 4.0, (2, 2), np.float32)
    flat = np.array([[4.0, -4.0, 0.0, 2.0]], np.float32)  # demos keep Box actions flattened
    np.testing.assert_allclose(demos.module_actions(flat, space, normalize_actions=True), [[1.0, -1.0, 0.0, 0.5]])
    discrete = np.array([0, 1, 1])
    assert demos.module_actions(discrete, gym.spaces.Discrete(2), normalize_actions=True) is discrete
    assert demos.env_actions(discrete, gym.spaces.Discrete(2), normalize_actions=True, clip_actions=True) is discrete
    unbounded = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    rows = np.array([[7.0]], np.float32)
    assert demos.module_actions(rows, unbounded, normalize_actions=True) is rows


def test_gail_and_airl_compare_demonstrated_box_actions_in_the_policys_units(tmp_path):
    from rlfrontier.algorithms.adversarial import adversarial
    from rlfrontier.algorithms.adversarial.torch import discriminator as disc

    _record(tmp_path / "d", env_id="Pendulum-v1", scripted="pendulum", episodes=1)
    torques = demos.load(tmp_path / "d").transitions()[demos.ACTION]
    space = gym.make("Pendulum-v1").action_space
    assert np.abs(torques).max() > 1.0  # the swing-up uses torques beyond 1 N m
    normalized, _ = adversarial.expert_transitions(str(tmp_path / "d"), space, normalize_actions=True)
    np.testing.assert_allclose(normalized[disc.EXPERT_ACTIONS], torques / 2.0, atol=1e-6)
    as_recorded, _ = adversarial.expert_transitions(str(tmp_path / "d"), space, normalize_actions=False)
    np.testing.assert_array_equal(as_recorded[disc.EXPERT_ACTIONS], torques)


def test_the_expert_return_ratio_rises_with_the_return_whatever_the_experts_sign():
    # Positive returns (CartPole): the plain quotient, as before.
    assert demos.expert_return_ratio(450.0, 500.0) == pytest.approx(0.9)
    assert demos.expert_return_ratio(500.0, 500.0) == 1.0
    # Negative returns (Pendulum, expert -137.5): a quotient would score a random policy's -1,060 as 7.7,
    # so that maximising it (a search's metric, the best checkpoint) picked the worst policy.
    expert = -137.5
    ratios = [demos.expert_return_ratio(r, expert) for r in (-1060.0, -241.7, -137.5, -100.0)]
    assert ratios == sorted(ratios) and ratios[2] == 1.0
    assert ratios[0] == pytest.approx(1 + (-1060.0 + 137.5) / 137.5)
    assert math.isnan(demos.expert_return_ratio(100.0, 0.0))
    assert math.isnan(demos.expert_return_ratio(float("nan"), 500.0))
