"""--restore continues a run only on the checkpoint's own env and env_config; anything else fine-tunes."""

from __future__ import annotations

from rlfrontier.runs import same_env

META = {"algo": "soft_q", "env": "rlfrontier/RandomCartPole-v0",
        "env_config": {"length_range": [0.25, 1.0], "resample_on_reset": True}}


def test_the_same_env_and_settings_continue_the_run():
    assert same_env(META, env=META["env"], env_config={"resample_on_reset": True, "length_range": [0.25, 1.0]})
    assert same_env({"env": "CartPole-v1", "env_config": None}, env="CartPole-v1", env_config={})
    assert same_env({"env": "CartPole-v1"}, env="CartPole-v1", env_config=None)


def test_other_settings_of_the_same_env_id_are_another_env():
    # Shifted physics: fine-tuning, not a resume with the old optimiser state and step counters.
    assert not same_env(META, env=META["env"], env_config={"length_range": [1.5, 1.5]})
    assert not same_env(META, env=META["env"], env_config={})
    assert not same_env(META, env="CartPole-v1", env_config=META["env_config"])
