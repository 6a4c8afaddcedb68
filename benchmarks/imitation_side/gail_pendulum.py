#!/usr/bin/env python
"""The `imitation` library's GAIL on Pendulum-v1, for benchmarks/imitation_gail.py --env Pendulum-v1.

Runs in `.venv-imitation` (`make imitation-env`: imitation 1.0.1, gymnasium
0.29, stable-baselines3, CPU torch, pyarrow), as a subprocess of the
benchmark; it imports neither ray nor rlfrontier. Two commands, from
gail_runner.py (its docstring has the JSON lines and the evaluation):

    gail_pendulum.py train --demos DIR --seed S --budget N --eval-seeds A,B,... --target T [--full-budget]
    gail_pendulum.py rollout --seed S --horizon H --actions 0.5,-2,1.25,...

`train` reads the demonstrations the project recorded (`rlfrontier demos
record --scripted pendulum --env Pendulum-v1`: torques in [-2, 2]) and trains
GAIL on gymnasium 0.29's own Pendulum-v1 (`gymnasium.make("Pendulum-v1")`,
200 steps). That env needs no rewrite: gymnasium 0.29.1's and 1.2.2's
classic_control/pendulum.py differ only in documentation, type hints and
rendering (the same reset: theta uniform in [-pi, pi] and theta_dot in
[-1, 1] from the seeded generator; the same step: torque clipped to +-2,
reward -(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2), g 10, m 1,
l 1, dt 0.05, theta_dot clipped to +-8; never terminated), both registered
with max_episode_steps 200; tests/unit/test_imitation_gail_bench.py checks a
rollout step for step against the project's venv.

imitation documents no GAIL example for a continuous-action task; its one
Pendulum setting for GAIL is its sacred script's: `python -m
imitation.scripts.train_adversarial gail with pendulum` (imitation 1.0.1,
src/imitation/scripts/config/train_adversarial.py, named config `pendulum`,
which sets only the env), so the run takes that script's defaults:

- environment (scripts/ingredients/environment.py): 8 envs (num_vec 8; a
  SubprocVecEnv there, a DummyVecEnv of 8 here: the same steps, one process);
- generator (scripts/ingredients/rl.py, its config hook: "defaults
  equivalent to sb3.PPO default hyperparameters"): stable-baselines3 PPO,
  rl batch_size 2048, so n_steps = 2048 / 8 = 256 per env and one GAIL round
  samples 2,048 env steps; learning_rate 3e-4, batch_size 64, n_epochs 10,
  ent_coef 0.0, the rest SB3's defaults (gamma 0.99, gae_lambda 0.95,
  clip_range 0.2); policy FeedForward32Policy (scripts/ingredients/policy.py;
  imitation.policies.base: hidden layers of 32, 32);
- discriminator (scripts/ingredients/reward.py, its config hook):
  BasicRewardNet with a RunningNorm input layer, wrapped in
  NormalizedRewardNet with a RunningNorm output layer (which GAIL's training
  reward, the discriminator's logit, does not pass through);
- GAIL (train_adversarial.py `defaults` and `aliases_default_gen_batch_size`):
  demo_batch_size 1024, n_disc_updates_per_round 4,
  gen_replay_buffer_capacity 2048 (= the rl batch size: "equivalent to not
  using a replay buffer at all"); total_timesteps 1e6, the benchmark's
  default budget for this side (488 whole rounds: 999,424 env steps).

Not used: scripts/config/train_rl.py's `pendulum` (rl batch_size 4096, gamma
0.9, learning_rate 1e-3, 2e5 steps) tunes the RL expert, not GAIL's
generator, and train_adversarial.py does not copy it for Pendulum; the
benchmarking/ folder's tuned GAIL settings are for the seals MuJoCo tasks
only. Differences from the script: the demonstrations are our 20
scripted-expert episodes (its own come from a HuggingFace expert), the seed
is the benchmark's, and the greedy evaluation is the benchmark's.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gail_runner import SideTask, main  # noqa: E402

ENV_ID = "Pendulum-v1"
HORIZON = 200  # gymnasium's max_episode_steps for Pendulum-v1 (0.29 and 1.2)
N_ENVS = 8
RL_BATCH_SIZE = 2048  # env steps per round, over all envs
PPO_KWARGS = {"n_steps": RL_BATCH_SIZE // N_ENVS, "learning_rate": 3e-4, "batch_size": 64, "n_epochs": 10,
              "ent_coef": 0.0}
GAIL_KWARGS = {"demo_batch_size": 1024, "gen_replay_buffer_capacity": RL_BATCH_SIZE, "n_disc_updates_per_round": 4}


def make_env(horizon: int = HORIZON):
    import gymnasium as gym

    return gym.make(ENV_ID, max_episode_steps=horizon)


def _policy():
    from imitation.policies.base import FeedForward32Policy

    return FeedForward32Policy


def _reward_net(venv):
    from imitation.rewards.reward_nets import BasicRewardNet, NormalizedRewardNet
    from imitation.util.networks import RunningNorm

    net = BasicRewardNet(observation_space=venv.observation_space, action_space=venv.action_space,
                         normalize_input_layer=RunningNorm)
    return NormalizedRewardNet(net, RunningNorm)


TASK = SideTask(name=ENV_ID, make_env=make_env, horizon=HORIZON, n_envs=N_ENVS, ppo_kwargs=PPO_KWARGS,
                policy=_policy, make_reward_net=_reward_net,
                reward_net="NormalizedRewardNet(BasicRewardNet(normalize_input_layer=RunningNorm), RunningNorm)",
                gail_kwargs=GAIL_KWARGS, notes={"source": "imitation.scripts.train_adversarial gail with pendulum"})


if __name__ == "__main__":
    sys.exit(main(TASK, __doc__))
