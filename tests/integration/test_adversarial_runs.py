"""gail and airl in real runs: the discriminator trains and is logged, its reward reaches PPO.

From the command line (`rlfrontier train gail|airl --demos DIR`), tracked in
the default SQLite store: the discriminator's metrics are in MLflow every
iteration, what PPO's learner saw is the imitation reward the driver computed
(not the env's), and the evaluation hook reports the return against the
demonstrations'. Through the Python API: each of the two updates of an
iteration moves only its own module, and the driver's copy of the
discriminator is the learners'.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
)

from rlfrontier import demos
from rlfrontier.algorithms.adversarial import AIRLConfig, GAILConfig
from rlfrontier.algorithms.adversarial.adversarial import (
    EXPERT_RETURN_RATIO,
    IMITATION_REWARD_MEAN,
    policy_transitions,
)
from rlfrontier.algorithms.adversarial.torch import discriminator as disc
from rlfrontier.rewards import REWARD_EXTRINSIC_MEAN, REWARD_TRANSFORMED_MEAN
from tests.conftest import cli, last_json
from tests.integration.test_bonus_runs import history

pytestmark = pytest.mark.integration

# Small iterations (500 env steps, 10 SGD steps, 2 discriminator steps): two of them take a few seconds.
SMALL = ["--set", "train_batch_size_per_learner=500", "--set", "minibatch_size=100", "--set", "num_epochs=2",
         "--set", "disc_updates=2", "--set", "disc_minibatch_size=64"]


@pytest.fixture(scope="module")
def cartpole_demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "cartpole"
    demos.record(out=out, env_id="CartPole-v1", episodes=2, scripted="cartpole")
    return out


@pytest.mark.parametrize("algo", ["gail", "airl"])
def test_the_discriminator_trains_is_logged_and_its_reward_reaches_ppo(algo, cartpole_demos, tmp_path):
    proc = cli("train", algo, "--env", "CartPole-v1", "--demos", str(cartpole_demos), "--seed", "3",
                   "--stop-iters", "2", "--eval-interval", "2", "--eval-episodes", "2", *SMALL, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    assert summary["iterations"] == 2
    # The hook: the greedy evaluation return over the demonstrations' (the scripted expert's 500).
    assert summary["metrics"][EXPERT_RETURN_RATIO] == pytest.approx(summary["eval_return_mean"] / 500.0)
    assert np.isfinite(summary["metrics"][IMITATION_REWARD_MEAN])

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = summary["mlflow_run_id"]
    for key in (disc.DISC_LOSS, disc.DISC_ACCURACY_EXPERT, disc.DISC_ACCURACY_POLICY):
        values = history(client, run_id, f"learners/{disc.MODULE_ID}/{key}")
        assert len(values) == 2 and all(np.isfinite(v) for v in values.values()), key
        if key != disc.DISC_LOSS:
            assert all(0.0 <= v <= 1.0 for v in values.values()), key
    policy = f"learners/{DEFAULT_MODULE_ID}/"
    imitation = history(client, run_id, policy + IMITATION_REWARD_MEAN)
    seen = history(client, run_id, policy + REWARD_TRANSFORMED_MEAN)
    extrinsic = history(client, run_id, policy + REWARD_EXTRINSIC_MEAN)
    assert len(imitation) == 2 and imitation.keys() == seen.keys() == extrinsic.keys()
    for step in imitation:
        # PPO learnt from the driver's imitation reward, not from CartPole's reward of 1 per step.
        assert seen[step] == pytest.approx(imitation[step], abs=1e-5), step
        assert extrinsic[step] == 1.0 and seen[step] != pytest.approx(1.0), step
    if algo == "gail":
        assert all(v > 0 for v in imitation.values())  # -log(1 - D) > 0
        # The checkpoint's policy plays without its learner-only discriminator.
        played = cli("evaluate", summary["checkpoint"], "--episodes", "2", "--json", cwd=tmp_path)
        assert played.returncode == 0, played.stderr[-2000:]
        assert last_json(played.stdout)["algo"] == "gail" and len(last_json(played.stdout)["returns"]) == 2
        check_gail_reward(summary["checkpoint"], cartpole_demos)
    else:
        # The learned reward, as a reward transform for a fresh policy (rewards.build's lazy "airl" kind).
        check_learned_reward(summary["checkpoint"], cartpole_demos, tmp_path)


def demo_columns(folder, n: int = 50) -> dict[str, np.ndarray]:
    """The first `n` demonstrated transitions as one-step replay columns (reward 1)."""
    from rlfrontier import replay

    rows = demos.load(str(folder), where="--demos").transitions()
    return {replay.OBS: rows[demos.OBS][:n], replay.ACTIONS: rows[demos.ACTION][:n],
            replay.NEXT_OBS: rows[demos.NEXT_OBS][:n], replay.TERMINATEDS: rows[demos.TERMINATED][:n],
            replay.REWARDS: np.ones(n, np.float32)}


def check_gail_reward(checkpoint: str, folder) -> None:
    """GAIL's discriminator reward as a transform is -log(1 - D) of the checkpoint's discriminator; an airl
    transform refuses the checkpoint."""
    import torch

    from rlfrontier import replay, rewards

    columns = demo_columns(folder)
    transform = rewards.build({"type": "gail", "checkpoint": checkpoint})
    got = transform.rewrite(columns)
    with torch.no_grad():
        logits = transform.module.logits_expert_is_high(
            obs=torch.tensor(columns[replay.OBS]), actions=torch.tensor(columns[replay.ACTIONS]),
            next_obs=None, terminateds=None).numpy()
    np.testing.assert_allclose(got, -np.log1p(-1.0 / (1.0 + np.exp(-logits.astype(np.float64)))), rtol=1e-4)
    with pytest.raises(ValueError, match="holds a GAILDiscriminator, not airl's discriminator"):
        rewards.build({"type": "airl", "checkpoint": checkpoint})


def check_learned_reward(checkpoint: str, folder, cwd) -> None:
    """g(s) ignores the action; f is g plus the shaping gamma (1 - done) h(s') - h(s), of the airl run's gamma:
    a run with another gamma is refused f, before Ray starts (exit 2, one line)."""
    from rlfrontier import replay, rewards

    columns = demo_columns(folder)
    g = rewards.build({"type": "airl", "checkpoint": checkpoint}).rewrite(columns)
    flipped = rewards.build({"type": "airl", "checkpoint": checkpoint, "part": "g"}).rewrite(
        {**columns, replay.ACTIONS: 1 - columns[replay.ACTIONS]})
    np.testing.assert_array_equal(g, flipped)
    transform = rewards.build({"type": "airl", "checkpoint": checkpoint, "part": "f"})
    f = transform.rewrite(columns)
    module = transform.module
    import torch

    with torch.no_grad():
        h = module.potential(torch.as_tensor(columns[replay.OBS])).numpy()
        next_h = module.potential(torch.as_tensor(columns[replay.NEXT_OBS])).numpy()
    done = columns[replay.TERMINATEDS].astype(np.float32)
    np.testing.assert_allclose(f, g + module.gamma * (1 - done) * next_h - h, rtol=1e-5, atol=1e-5)
    assert g.shape == (50,) and np.isfinite(g).all() and not np.allclose(f, g)

    assert module.gamma == pytest.approx(0.99)
    transform = f"reward_transform={{type: airl, checkpoint: '{checkpoint}', part: f}}"
    proc = cli("train", "ppo", "--env", "CartPole-v1", "--set", transform, "--set", "gamma=0.9", "--stop-iters", "1",
               cwd=cwd, ray=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert (f"checkpoint='{checkpoint}': part 'f' holds the shaping gamma h(s') - h(s) of the airl run's "
            "gamma=0.99, this run has gamma=0.9: set gamma=0.99, or take part 'g' (no shaping)") in lines[0]


@pytest.mark.parametrize("algo", ["gail", "airl"])
def test_without_demos_it_exits_2_with_one_line(algo, tmp_path):
    proc = cli("train", algo, "--env", "CartPole-v1", "--stop-iters", "2", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--demos" in lines[0] and algo in lines[0], proc.stderr


def _weights(algo, module_id):
    return {k: np.array(v, copy=True) for k, v in algo.learner_group.get_weights(module_ids=[module_id])[module_id].items()}


def _moved(before, after) -> bool:
    return any(not np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("config_class", [GAILConfig, AIRLConfig], ids=["gail", "airl"])
def test_each_update_moves_only_its_own_module(config_class, cartpole_demos, local_ray):
    config = (config_class().environment("CartPole-v1").env_runners(num_env_runners=0)
              .training(demos=str(cartpole_demos), train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1,
                        disc_updates=2, disc_minibatch_size=50)
              .debugging(seed=4))
    algo = config.build_algo()
    try:
        policy_before, disc_before = _weights(algo, DEFAULT_MODULE_ID), _weights(algo, disc.MODULE_ID)
        episodes = algo.env_runner.sample(num_timesteps=200, random_actions=False)
        algo.update_discriminator(policy_transitions(episodes))
        policy_mid, disc_mid = _weights(algo, DEFAULT_MODULE_ID), _weights(algo, disc.MODULE_ID)
        assert _moved(disc_before, disc_mid) and not _moved(policy_before, policy_mid)
        copy = {k: v.numpy() for k, v in algo._discriminator.state_dict().items()}
        assert not _moved(disc_mid, copy), "the driver's copy is the learners' discriminator"

        algo.train()  # the discriminator, then PPO: both move
        policy_trained, disc_trained = _weights(algo, DEFAULT_MODULE_ID), _weights(algo, disc.MODULE_ID)
        assert _moved(policy_mid, policy_trained) and _moved(disc_mid, disc_trained)

        # After a PPO update (its Adam has momentum, its KL is in the metrics) a discriminator-only update
        # still leaves the policy and PPO's KL coefficient alone.
        learner = algo.learner_group._learner
        kl_coeff = learner.curr_kl_coeffs_per_module[DEFAULT_MODULE_ID].item()
        algo.update_discriminator(policy_transitions(episodes))
        assert not _moved(policy_trained, _weights(algo, DEFAULT_MODULE_ID))
        assert learner.curr_kl_coeffs_per_module[DEFAULT_MODULE_ID].item() == kl_coeff
    finally:
        algo.stop()


@pytest.mark.parametrize("config_class", [GAILConfig, AIRLConfig], ids=["gail", "airl"])
def test_env_steps_trained_are_ppos_alone_not_the_discriminators_rows(config_class, cartpole_demos, local_ray):
    """The discriminator's rows (a policy step already in PPO's batch beside an expert step of no env of this
    run) are module steps trained, not env steps trained: after one iteration those are what PPO's update
    counted (RLlib's MiniBatchCyclicIterator counts its batch's env steps once per minibatch)."""
    config = (config_class().environment("CartPole-v1").env_runners(num_env_runners=0)
              .training(demos=str(cartpole_demos), train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1,
                        disc_updates=2, disc_minibatch_size=50)
              .debugging(seed=5))
    algo = config.build_algo()
    update, calls = algo.learner_group.update, []

    def counted(**kwargs):
        results = update(**kwargs)
        calls.append(("discriminator" if kwargs.get("batch") is not None else "ppo", results))
        return results

    algo.learner_group.update = counted
    try:
        result = algo.train()
    finally:
        algo.stop()

    def env_steps(results) -> float:
        return sum(r[ALL_MODULES][NUM_ENV_STEPS_TRAINED].peek() for r in results)

    assert [kind for kind, _ in calls] == ["discriminator", "ppo"]
    (_, discriminator), (_, ppo) = calls
    learners = result[LEARNER_RESULTS]
    assert env_steps(discriminator) == 0
    assert learners[ALL_MODULES][NUM_ENV_STEPS_TRAINED] == env_steps(ppo) >= result[ENV_RUNNER_RESULTS][
        NUM_ENV_STEPS_SAMPLED] == 200
    assert learners[ALL_MODULES][NUM_ENV_STEPS_TRAINED_LIFETIME] == env_steps(ppo)
    # Its rows still count as the discriminator's module steps: 2 updates of 50 rows.
    assert learners[disc.MODULE_ID][NUM_MODULE_STEPS_TRAINED] == 2 * 50


def test_two_learners_keep_one_discriminator_normaliser_included(cartpole_demos, local_ray):
    """Regression: DDP averages gradients but not buffers; each learner once kept its own shard's
    observation statistics (disc.RunningNorm), so the learners' discriminators drifted apart."""
    config = (AIRLConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
              .learners(num_learners=2, num_cpus_per_learner=0.5)
              .training(demos=str(cartpole_demos), train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1,
                        disc_updates=2, disc_minibatch_size=50)
              .debugging(seed=1))
    algo = config.build_algo()
    try:
        for _ in range(2):
            algo.train()

        def weights(learner):
            module = learner.module[disc.MODULE_ID].unwrapped()
            return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}

        first, second = [ref.get() for ref in algo.learner_group.foreach_learner(weights)]
        assert first["obs_norm.count"] > 0
        for key in first:
            np.testing.assert_allclose(first[key], second[key], rtol=1e-6, atol=1e-7, err_msg=key)
        copy = {k: v.numpy() for k, v in algo._discriminator.state_dict().items()}
        for key in first:
            np.testing.assert_allclose(copy[key], first[key], rtol=1e-6, atol=1e-7, err_msg=key)
    finally:
        algo.stop()
