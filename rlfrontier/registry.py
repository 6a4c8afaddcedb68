"""What `rlfrontier algos` lists and `rlfrontier train ALGO` builds.

Each entry returns a fresh AlgorithmConfig with the project's defaults. RLlib's
own DQN, SAC and PPO are here as baselines, with the settings RLlib tunes them
to for CartPole (rllib/tuned_examples in the Ray repository).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rlfrontier.validation import BadInput


@dataclass(frozen=True)
class AlgoSpec:
    name: str
    summary: str
    source: str  # "rlfrontier" or "rllib" (a baseline)
    action_spaces: tuple[str, ...]
    make_config: Callable[[], AlgorithmConfig]
    # Metrics under learners/default_policy that `train --json` reports in "metrics".
    reported_metrics: tuple[str, ...] = ()


def _soft_q() -> AlgorithmConfig:
    from rlfrontier.algorithms.soft_q import SoftQConfig

    return SoftQConfig()


def _boot_dqn() -> AlgorithmConfig:
    from rlfrontier.algorithms.boot_dqn import BootDQNConfig

    return BootDQNConfig()


def _dqn() -> AlgorithmConfig:
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    # RLlib's tuned_examples/dqn/cartpole_dqn.py (new API stack).
    return (
        DQNConfig()
        .training(
            lr=0.0005,
            train_batch_size_per_learner=32,
            replay_buffer_config={
                "type": "PrioritizedEpisodeReplayBuffer",
                "capacity": 50000,
                "alpha": 0.6,
                "beta": 0.4,
            },
            n_step=(2, 5),
            double_q=True,
            num_atoms=1,
            noisy=False,
            dueling=True,
            epsilon=[(0, 1.0), (10000, 0.02)],
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[256],
                fcnet_activation="tanh",
                fcnet_bias_initializer="zeros_",
                head_fcnet_bias_initializer="zeros_",
                head_fcnet_hiddens=[256],
            )
        )
    )


def _sac() -> AlgorithmConfig:
    from ray.rllib.algorithms.sac import SACConfig

    return SACConfig()


def _ppo() -> AlgorithmConfig:
    from ray.rllib.algorithms.ppo import PPOConfig

    # RLlib's tuned_examples/ppo/cartpole_ppo.py.
    return PPOConfig().training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)


ALGORITHMS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec(
            "soft_q",
            "Soft Q-learning: soft Bellman backup, Boltzmann policy, fixed or learnt temperature",
            "rlfrontier",
            ("Discrete",),
            _soft_q,
            ("alpha", "policy_entropy", "q_mean", "qf_loss"),
        ),
        AlgoSpec(
            "boot_dqn",
            "Bootstrapped DQN with randomised priors: K Q-heads, one sampled per episode (posterior sampling)",
            "rlfrontier",
            ("Discrete",),
            _boot_dqn,
            ("qf_loss", "q_mean", "head_disagreement"),
        ),
        AlgoSpec("dqn", "RLlib DQN (baseline; tuned CartPole settings)", "rllib", ("Discrete",), _dqn),
        AlgoSpec("sac", "RLlib SAC (baseline)", "rllib", ("Box", "Discrete"), _sac),
        AlgoSpec("ppo", "RLlib PPO (baseline; tuned CartPole settings)", "rllib", ("Box", "Discrete"), _ppo),
    )
}


def get_algorithm(name: str) -> AlgoSpec:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise BadInput(
            f"unknown algorithm {name!r}: choose one of {', '.join(sorted(ALGORITHMS))}"
        ) from None
