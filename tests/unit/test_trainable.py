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


def test_train_help_states_the_evaluation_budget_that_configure_applies():
    from rlfrontier import configure, runs
    from rlfrontier.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    assert f"(0: none; default {configure.DEFAULT_EVAL_INTERVAL})" in text
    assert f"run side by side (default {configure.DEFAULT_EVAL_EPISODES})" in text
    args = runs.TrainArgs(algo="soft_q", env="CartPole-v1", env_config={}, overrides={})
    assert (args.eval_interval, args.eval_episodes) == (configure.DEFAULT_EVAL_INTERVAL, configure.DEFAULT_EVAL_EPISODES)
