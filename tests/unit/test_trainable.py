"""The trainable's result keys: unknown values (None, NaN) stay absent, not reported."""

from __future__ import annotations

import numpy as np

from rlfrontier import trainable as T


def test_unknown_is_none_or_nan_of_any_float_type():
    for value in (None, float("nan"), np.float32("nan"), np.float64("nan")):
        assert T._unknown(value)
    for value in (0.0, 500.0, np.float32(1.5), 3, "text"):
        assert not T._unknown(value)


def test_eval_return_skips_an_evaluation_without_episodes():
    assert T._eval_return({}) is None
    assert T._eval_return({"evaluation": {"env_runners": {"episode_return_mean": np.float64("nan")}}}) is None
    assert T._eval_return({"evaluation": {"env_runners": {"episode_return_mean": np.float32(212.5)}}}) == 212.5


def test_summarize_counts_throughput_of_this_run_only():
    result = {"training_iteration": 4, "env_runners": {"num_env_steps_sampled_lifetime": 5000,
                                                        "episode_return_mean": float("nan")}}
    summary = T.summarize(result, wall_s=2.0, last_eval=None, steps_at_start=1000)
    assert summary[T.ENV_STEPS] == 5000 and summary[T.ITERATIONS] == 4
    assert summary[T.ENV_STEPS_PER_S] == 2000.0
    assert T._unknown(summary[T.EPISODE_RETURN_MEAN]) and summary[T.EVAL_RETURN_MEAN] is None


def test_train_help_states_the_defaults_that_the_run_spec_applies():
    from rlfrontier import spec
    from rlfrontier.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    assert f"(0: none; default {spec.DEFAULT_EVAL_INTERVAL})" in text
    assert f"run side by side (default {spec.DEFAULT_EVAL_EPISODES})" in text
    run = spec.RunSpec(algo="soft_q", env="CartPole-v1", stop={"iterations": 1})
    assert (run.evaluation.interval, run.evaluation.episodes) == (spec.DEFAULT_EVAL_INTERVAL, spec.DEFAULT_EVAL_EPISODES)
    assert f"(default {run.checkpoint_every})" in text and f"default {run.storage_path})" in text


def test_train_loop_gives_a_search_trial_its_seed_and_settings(monkeypatch):
    """A trial's own seed reaches the config, the env's hidden parameters and the checkpoint meta;
    dotted settings merge into mappings (flat in Tune's config, nested in the AlgorithmConfig)."""
    from rlfrontier.configure import build_config
    from rlfrontier.envs import with_run_seed
    from rlfrontier.spec import StopCriteria

    _, base, _ = build_config(algo="boot_dqn", env="rlfrontier/DeepSea-v0", env_config={"size": 4}, seed=0,
                              evaluation_interval=0)
    built = {}

    class Stop(RuntimeError):
        pass

    def build_algo(config):
        built["config"] = config
        raise Stop  # what train_loop did before building is all this test looks at

    monkeypatch.setattr(type(base), "build_algo", build_algo)
    meta = {"algo": "boot_dqn", "env": "rlfrontier/DeepSea-v0", "env_config": {"size": 4}}
    try:
        T.train_loop({"seed": 7, "lr": 1e-3, "evaluation_config.explore": True}, base_config=base,
                     stop=StopCriteria(iterations=1), meta=meta)
    except Stop:
        pass
    config = built["config"]
    assert config.seed == 7 and config.lr == 1e-3
    assert config.env_config == with_run_seed("rlfrontier/DeepSea-v0", {"size": 4}, 7)
    assert config.evaluation_config["explore"] is True
    assert base.seed == 0, "the base config is not changed"
