"""Behavioural cloning into another algorithm's RLModule: pretrain on demonstrations, then fine-tune.

`rlfrontier train bc --env CartPole-v1 --demos DIR` trains the module that
`module_of` (soft_q by default for Discrete actions, ppo for Box) builds for
that env, by maximum likelihood of the demonstrated actions under the
module's own action distribution (losses.negative_log_likelihood). Its
checkpoint then starts that algorithm's run:
`rlfrontier train soft_q --env CartPole-v1 --restore BC_CHECKPOINT` loads the
module's weights only (rlfrontier.runs refuses a module built for another
algorithm).

One training iteration is `updates_per_iteration` gradient updates, each on
`train_batch_size_per_learner` transitions drawn uniformly with replacement
from the demonstrations (loaded into memory once), in a single learner-group
call. No env step is sampled for training; evaluation runs the module greedy
on EnvRunners as for any algorithm.

The logits are what the module's training pass gives as action-distribution
inputs; a module whose training pass gives none (soft_q's gives Q-values)
is asked its generic forward pass, the one it acts with (soft_q: Q / alpha,
so the clone is its Boltzmann policy and the greedy action its argmax).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json

import numpy as np

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from rlfrontier import envs
from rlfrontier.validation import BadInput, check_range

# Metric keys, defined once beside their owner.
BC_LOSS = "bc_loss"  # the negative log-likelihood of the demonstrated actions
ACTION_ACCURACY = "action_accuracy"  # Discrete actions only

# The algorithms whose modules bc trains (checked: their acting logits and their fine-tuning from a clone).
MODULE_ALGORITHMS = ("soft_q", "ppo")
DEFAULT_MODULE_OF = {"Discrete": "soft_q", "Box": "ppo"}


@functools.lru_cache(maxsize=8)
def _action_space(env_id: str, env_config_json: str):
    return envs.check_env(env_id, json.loads(env_config_json))[1]


class BCConfig(AlgorithmConfig):
    """Configuration of behavioural cloning; every field is set through `training()`.

    Fields:
        module_of: the algorithm whose RLModule is trained (one of MODULE_ALGORITHMS;
            None: soft_q for Discrete actions, ppo for Box). Its config for the same
            env gives the module class and model_config; this config's own
            model_config settings override that one's (keep them for fine-tuning).
        demos: a demonstrations folder (rlfrontier.demos), set by `--demos`.
        updates_per_iteration: gradient updates per training iteration.
        and RLlib's lr and train_batch_size_per_learner (transitions per update).
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or BC)
        self.module_of = None
        self.demos = None
        self.updates_per_iteration = 100
        self.lr = 1e-3
        self.train_batch_size_per_learner = 256
        self.num_env_runners = 0
        self.min_sample_timesteps_per_iteration = 0
        self.min_time_s_per_iteration = None
        self.evaluation_config = {"explore": False}

    def training(
        self,
        *,
        module_of: str | None = NotProvided,
        demos: str | None = NotProvided,
        updates_per_iteration: int = NotProvided,
        **kwargs,
    ) -> "BCConfig":
        super().training(**kwargs)
        for name, value in (("module_of", module_of), ("demos", demos),
                            ("updates_per_iteration", updates_per_iteration)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    @property
    def module_algorithm(self) -> str:
        """The algorithm whose module this run trains: `module_of`, else the default for the env's actions."""
        if self.module_of is not None:
            return self.module_of
        return DEFAULT_MODULE_OF.get(type(self._env_action_space()).__name__, DEFAULT_MODULE_OF["Discrete"])

    def _env_action_space(self):
        return _action_space(self.env, json.dumps(dict(self.env_config or {}), sort_keys=True, default=str))

    def validate(self) -> None:
        from rlfrontier import registry

        check_range("updates_per_iteration", self.updates_per_iteration, 1, None, integer=True)
        if not self.demos:
            raise BadInput("bc needs demonstrations (--demos DIR)")
        if self.module_of is not None and self.module_of not in MODULE_ALGORITHMS:
            known = isinstance(self.module_of, str) and self.module_of in registry.ALGORITHMS
            what = "an algorithm bc can train" if known else "an algorithm"
            raise BadInput(f"module_of={self.module_of!r} is not {what}: choose one of {', '.join(MODULE_ALGORITHMS)}")
        name, action_space = self.module_algorithm, self._env_action_space()
        takes = registry.get_algorithm(name).action_spaces
        if type(action_space).__name__ not in takes:
            raise BadInput(f"module_of={name!r}: {name} takes {' or '.join(takes)} action spaces; "
                           f"{self.env} has {action_space}")
        super().validate()

    def module_config(self) -> AlgorithmConfig:
        """The config of the algorithm whose module this run trains, on the same env."""
        from rlfrontier import registry

        return registry.get_algorithm(self.module_algorithm).make_config().environment(
            self.env, env_config=self.env_config
        )

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        other = self.module_config()
        spec = copy.deepcopy(other.rl_module_spec)
        own = self._model_config if isinstance(self._model_config, dict) else dataclasses.asdict(self._model_config)
        # The RLModuleSpec's model_config wins over this config's (AlgorithmConfig.get_multi_rl_module_spec).
        spec.model_config = other.model_config | own
        return spec

    def get_default_learner_class(self):
        from rlfrontier.algorithms.bc.torch.bc_torch_learner import BCTorchLearner

        return BCTorchLearner


class BC(Algorithm):
    """One learner-group call of `updates_per_iteration` minibatches per training step (module docstring)."""

    @classmethod
    def get_default_config(cls) -> BCConfig:
        return BCConfig()

    def setup(self, config) -> None:
        from rlfrontier import demos

        # The command line's check (rlfrontier.configure), also for a config built in Python: demonstrations
        # of another env, env_config or spaces are refused before the Learner or an EnvRunner is built.
        columns = demos.check_config(self.config.demos, self.config).transitions()
        if not len(columns[demos.OBS]):
            raise BadInput(f"--demos {self.config.demos}: holds no transition")
        super().setup(config)
        # Fitted in the units of the module's own actions ([-1, 1] for a bounded Box under RLlib's
        # normalize_actions), which the EnvRunner maps back to the env's.
        self._obs = columns[demos.OBS]
        self._actions = demos.module_actions(columns[demos.ACTION], self.config._env_action_space(),
                                             normalize_actions=self.config.normalize_actions)
        self._rng = np.random.default_rng(self.config.seed)

    def training_step(self) -> None:
        cfg = self.config
        size = cfg.updates_per_iteration * cfg.train_batch_size_per_learner * max(cfg.num_learners, 1)
        rows = self._rng.integers(len(self._obs), size=size)
        batch = MultiAgentBatch(
            {DEFAULT_MODULE_ID: SampleBatch({Columns.OBS: self._obs[rows], Columns.ACTIONS: self._actions[rows]})},
            env_steps=size,
        )
        results = self.learner_group.update(
            batch=batch,
            minibatch_size=cfg.train_batch_size_per_learner,
            num_epochs=1,
            shuffle_batch_per_epoch=False,  # drawn at random already
            timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 0},
        )
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
