#!/usr/bin/env python
"""The `imitation` library's GAIL on the fixed-horizon CartPole, for benchmarks/imitation_gail.py.

Runs in `.venv-imitation` (`make imitation-env`: imitation 1.0.1, gymnasium
0.29, stable-baselines3, CPU torch, pyarrow), as a subprocess of the
benchmark; it imports neither ray nor rlfrontier. Two commands, from
gail_runner.py (its docstring has the JSON lines and the evaluation):

    gail_cartpole.py train --demos DIR --seed S --budget N --eval-seeds A,B,... --target T [--full-budget]
    gail_cartpole.py rollout --seed S --horizon H --actions 0,1,1,0,...

`train` reads the demonstrations the project recorded (`rlfrontier demos
record --scripted cartpole --env rlfrontier/CartPoleFixedHorizon-v0`) and
trains GAIL on fixed_cartpole.FixedHorizonCartPole (our env, written again
for gymnasium 0.29; its docstring states the equivalence) with the settings
of imitation's own CartPole example, identical in v1.0.1's docs/algorithms/gail.rst and
docs/tutorials/3_train_gail.ipynb (HumanCompatibleAI/imitation, tag v1.0.1):

- 8 envs in one vectorised env (`make_vec_env(..., n_envs=8)` there; a
  DummyVecEnv of 8 here);
- generator: stable-baselines3 PPO, MlpPolicy, batch_size 64, ent_coef 0.0,
  learning_rate 4e-4, gamma 0.95, n_epochs 5, the rest SB3's defaults
  (n_steps 2048 per env, so one GAIL round samples 8 x 2048 = 16,384 env
  steps; gae_lambda 0.95, clip_range 0.2);
- discriminator: BasicRewardNet (state and action; two hidden layers of 32)
  with a RunningNorm input layer;
- GAIL(demo_batch_size=1024, gen_replay_buffer_capacity=512,
  n_disc_updates_per_round=8); the docs' comment: "Train for 800_000 steps to
  match expert" (the tutorial trains 200,000; the sacred config
  `seals_cartpole` in scripts/config/train_adversarial.py uses 1.4e6).

Differences from that example: the task is our CartPoleFixedHorizon (theirs
is seals/CartPole-v0, also 500 steps without termination, but its state runs
off unbounded and its reward is its own), the demonstrations are our 20
scripted-expert episodes (theirs: 60 episodes of a PPO expert from the
HuggingFace hub), and the seed is the benchmark's.

After every round the greedy policy plays one episode per --eval-seeds seed
on fresh FixedHorizonCartPole envs (gail_runner.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixed_cartpole import DEFAULT_HORIZON, FixedHorizonCartPole  # noqa: E402
from gail_runner import SideTask, main  # noqa: E402

N_ENVS = 8
PPO_KWARGS = {"batch_size": 64, "ent_coef": 0.0, "learning_rate": 4e-4, "gamma": 0.95, "n_epochs": 5}
GAIL_KWARGS = {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 512, "n_disc_updates_per_round": 8}


def _reward_net(venv):
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm

    return BasicRewardNet(observation_space=venv.observation_space, action_space=venv.action_space,
                          normalize_input_layer=RunningNorm)


TASK = SideTask(name="FixedHorizonCartPole", make_env=lambda horizon: FixedHorizonCartPole(horizon=horizon),
                horizon=DEFAULT_HORIZON, n_envs=N_ENVS, ppo_kwargs=PPO_KWARGS, policy=lambda: "MlpPolicy",
                make_reward_net=_reward_net, reward_net="BasicRewardNet(normalize_input_layer=RunningNorm)",
                gail_kwargs=GAIL_KWARGS)


if __name__ == "__main__":
    sys.exit(main(TASK, __doc__))
