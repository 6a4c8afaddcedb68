"""Bootstrapped DQN with randomised prior functions as an RLlib algorithm.

BootDQNConfig().environment("rlfrontier/DeepSea-v0", env_config={"size": 10})
builds like any RLlib config. K Q-heads (one batched ensemble network, each
with a fixed random prior) learn from one replay buffer; every stored
transition carries a Bernoulli(mask_prob) mask per head (the bootstrap), and
every episode acts greedily with one head drawn when it starts (posterior
sampling, through the BootstrapHeadPicker env-to-module connector, with a
random stream of its own on each EnvRunner: BootDQNEnvRunner).
Evaluation acts with the heads' majority vote.

With num_heads=1, prior_scale=0, mask_prob=1 and an epsilon schedule this is
plain double DQN with epsilon-greedy exploration: the baseline the papers beat
on deep-exploration tasks, run by the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rlfrontier import bonuses, offpolicy, replay, rewards, seeding
from rlfrontier.algorithms.boot_dqn.connectors import BootstrapHeadPicker, head_picker_seed
from rlfrontier.algorithms.boot_dqn.env_runner import BootDQNEnvRunner
from rlfrontier.validation import BadInput, check_choice, check_range

# Replay column: the bootstrap masks, [N, K] in {0, 1}.
BOOTSTRAP_MASK = "bootstrap_mask"


class BootDQNConfig(bonuses.BonusFields, rewards.RewardTransformFields, offpolicy.ReplayConfig):
    """Configuration of bootstrapped DQN; every field is set through `training()`.

    Fields (defaults after bsuite's deep-sea agent, Osband et al. 2018/2020, but for
    prior_scale: 10 against bsuite's 3, for torch's smaller initial weights; README, DeepSea):
        num_heads: K, the ensemble size.
        prior_scale: beta, the weight of each head's fixed random prior (0: none).
        prior_fan_in: the fan_in the prior's first layer is drawn for, uniform in
            +-1/sqrt(prior_fan_in); None: the observation's width (torch's Linear).
            On a one-hot observation one input is non-zero, so with None the
            prior's spread at a state falls as 1/sqrt(width): 1/N on DeepSea's
            N^2 cells. A fixed value keeps it across sizes: 100 is DeepSea-10's
            width, where prior_scale 10 was chosen (README, DeepSea).
        zero_bias_init: every layer of the heads and of their priors starts
            with zero biases (as bsuite's agent), not torch's uniform ones.
        mask_prob: probability that a head trains on a transition (1: no bootstrap).
        epsilon: epsilon-dithering on top of the head's greedy action, fixed or
            [[env_step, value], ...] (0 by default: posterior sampling alone).
        hidden_sizes: hidden layers of each head (and of its prior).
        tau, target_update_interval: target sync (gradient updates between syncs).
        huber_delta: Huber threshold of the TD loss (None: squared error).
        double_q: each head's target takes the action of its online head at s'
            (double DQN, default); False: the max of its target head, as
            bsuite's agent, one ensemble pass less per update.
        env_runner_cls: BootDQNEnvRunner (or a subclass): it gives each
            EnvRunner's head picker its own stream of the run's seed.
        reward_transform: rewrites rewards at replay time (rlfrontier.rewards).
        and the replay fields of offpolicy.ReplayConfig.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or BootDQN)
        self.num_heads = 10
        self.prior_scale = 10.0
        self.prior_fan_in: int | None = None
        self.zero_bias_init = True
        self.mask_prob = 0.5
        self.epsilon: float | list = 0.0
        self.hidden_sizes = [64, 64]
        self.tau = 1.0
        self.target_update_interval = 4
        self.huber_delta = 1.0
        self.double_q = True
        self.replay_capacity = 10_000
        self.training_intensity = 128.0
        self.num_steps_sampled_before_learning_starts = 500
        self.lr = 1e-3
        self.gamma = 0.99
        self.grad_clip = 10.0
        self.train_batch_size_per_learner = 128
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 4
        self.rollout_fragment_length = 25
        self.min_sample_timesteps_per_iteration = 1000
        self.evaluation_config = {"explore": False}
        self.env_runner_cls = BootDQNEnvRunner

    def training(
        self,
        *,
        num_heads: int = NotProvided,
        prior_scale: float = NotProvided,
        prior_fan_in: int | None = NotProvided,
        zero_bias_init: bool = NotProvided,
        mask_prob: float = NotProvided,
        epsilon: float | list = NotProvided,
        hidden_sizes: list[int] = NotProvided,
        tau: float = NotProvided,
        target_update_interval: int = NotProvided,
        huber_delta: float | None = NotProvided,
        double_q: bool = NotProvided,
        **kwargs,
    ) -> "BootDQNConfig":
        return super().training(
            num_heads=num_heads, prior_scale=prior_scale, prior_fan_in=prior_fan_in, zero_bias_init=zero_bias_init, mask_prob=mask_prob, epsilon=epsilon,
            hidden_sizes=hidden_sizes, tau=tau, target_update_interval=target_update_interval,
            huber_delta=huber_delta, double_q=double_q, **kwargs,
        )

    def validate(self) -> None:
        check_range("num_heads", self.num_heads, 1, None, integer=True)
        check_range("prior_scale", self.prior_scale, 0.0, None)
        if self.prior_fan_in is not None:
            check_range("prior_fan_in", self.prior_fan_in, 1, None, integer=True)
        check_range("mask_prob", self.mask_prob, 0.0, 1.0, low_open=True)
        check_range("tau", self.tau, 0.0, 1.0, low_open=True)
        check_range("target_update_interval", self.target_update_interval, 1, None, integer=True)
        if self.huber_delta is not None:
            check_range("huber_delta", self.huber_delta, 0.0, None, low_open=True)
        if not isinstance(self.hidden_sizes, (list, tuple)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in self.hidden_sizes
        ):
            raise BadInput(f"hidden_sizes={self.hidden_sizes!r} must be a list of positive integers")
        _check_epsilon(self.epsilon)
        check_choice("double_q", self.double_q, (True, False))
        check_choice("zero_bias_init", self.zero_bias_init, (True, False))
        if not (isinstance(self.env_runner_cls, type) and issubclass(self.env_runner_cls, BootDQNEnvRunner)):
            raise BadInput(
                f"env_runner_cls={self.env_runner_cls!r} must be BootDQNEnvRunner or a subclass: "
                "it gives each EnvRunner's head picker its own random stream"
            )
        super().validate()

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {
            "num_heads": self.num_heads,
            "prior_scale": self.prior_scale,
            "prior_fan_in": self.prior_fan_in,
            "zero_bias_init": self.zero_bias_init,
            "epsilon": self.epsilon,
            "hidden_sizes": list(self.hidden_sizes),
        }

    def build_env_to_module_connector(self, env=None, spaces=None, device=None):
        pipeline = super().build_env_to_module_connector(env=env, spaces=spaces, device=device)
        # The local EnvRunner's stream until BootDQNEnvRunner, which knows its
        # worker index, reseeds it.
        seed = head_picker_seed(self.seed, worker_index=0, in_evaluation=self.in_evaluation)
        pipeline.prepend(BootstrapHeadPicker(num_heads=self.num_heads, seed=seed))
        return pipeline

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_rl_module import BootDQNTorchRLModule

        return RLModuleSpec(module_class=BootDQNTorchRLModule)

    def get_default_learner_class(self):
        from rlfrontier.algorithms.boot_dqn.torch.boot_dqn_torch_learner import BootDQNTorchLearner

        return BootDQNTorchLearner


def _check_epsilon(epsilon) -> None:
    if isinstance(epsilon, (list, tuple)):
        points = [p for p in epsilon if isinstance(p, (list, tuple)) and len(p) == 2]
        if not points or len(points) != len(epsilon):
            raise BadInput(f"epsilon={epsilon!r} must be a number or [[env_step, value], ...]")
        steps = [p[0] for p in points]
        if steps != sorted(steps):
            raise BadInput(f"epsilon={epsilon!r}: env steps must increase")
        for _, value in points:
            check_range("epsilon", value, 0.0, 1.0)
    else:
        check_range("epsilon", epsilon, 0.0, 1.0)


class BootDQN(bonuses.BonusState, Algorithm):
    """Bootstrapped DQN: the project's replay step, plus a bootstrap mask per transition and head."""

    @classmethod
    def get_default_config(cls) -> BootDQNConfig:
        return BootDQNConfig()

    def setup(self, config) -> None:
        super().setup(config)
        self.replay_buffer = offpolicy.make_replay_buffer(self.config)
        self._update_credit = 0.0
        # A stream of its own: the replay sampler draws from seeding.REPLAY.
        self._mask_rng = seeding.rng(self.config.seed, seeding.BOOTSTRAP_MASKS)
        self._reward_hook = rewards.attach_replay_hook(self)

    def _bootstrap_masks(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        num_transitions = len(columns[replay.OBS])
        masks = self._mask_rng.random((num_transitions, self.config.num_heads)) < self.config.mask_prob
        return {BOOTSTRAP_MASK: masks.astype(np.float32)}

    def training_step(self) -> None:
        offpolicy.replay_training_step(self, extra_columns=self._bootstrap_masks, reward_hook=self._reward_hook)
        if self._reward_hook is not None:
            self._reward_hook.log(self.metrics)
