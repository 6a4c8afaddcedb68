"""Several modules per algorithm: a policy module plus learner-only modules.

A learner-only module (later an RND predictor, a GAIL discriminator, a reward
net, a context encoder) lives in the Learner's MultiRLModule beside the policy
module, under its own ModuleID, and is absent from the EnvRunners. It brings

- its own loss: RLlib's `SelfSupervisedLossAPI`. `Learner.compute_losses`
  (ray 2.60, core/learner/learner.py) calls `compute_self_supervised_loss` for
  such a module and the learner's `compute_loss_for_module` for the others; the
  losses of all modules are summed into one backward pass (TorchLearner), and
  every optimizer steps on its own parameters;
- its own optimizer(s): `OwnOptimizersAPI` below. RLlib has no module-side
  optimizer hook, and the learner's `configure_optimizers_for_module` is
  written for the policy module (TorchLearner calls it for every torch module:
  its `rl_module_is_compatible` is `isinstance(module, nn.Module)`, so the
  learner's `rl_module_required_apis()` are not checked). `configure_optimizers`
  hands each module to the right one and refuses a module that fits neither.

A user attaches one with RLlib's own mechanism, a MultiRLModuleSpec whose
extra specs are `learner_only=True`; `add_learner_only_modules` writes it:

    config = add_learner_only_modules(
        SoftQConfig().environment("CartPole-v1"),
        {"next_obs": RLModuleSpec(module_class=NextObsPredictor, model_config={"hidden_sizes": [64]})},
    )
    # Its own learning rate (else the policy's): RLlib's per-module overrides.
    config.multi_agent(algorithm_config_overrides_per_module={"next_obs": SoftQConfig.overrides(lr=3e-3)})

The replay learners (offpolicy.TargetSyncLearner) train every learner-only
module on the policy module's replayed minibatch (`share_policy_batch`: the
same tensors, no copy), unless the batch carries the module's own rows.

Found in ray 2.60: `RLModuleSpec.build()` does not pass `learner_only` to the
module, so every built module says `learner_only=False`; which modules are
learner-only is read from the config (`learner_only_module_ids`). A module's
model_config is the config's `model_config` updated by its spec's own, and
its `grad_clip` and `lr` are the policy's unless overridden per module.
"""

from __future__ import annotations

import abc
import copy
import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import gymnasium as gym
import torch
from torch import nn

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import SelfSupervisedLossAPI
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.typing import ModuleID

from rlfrontier import replay
from rlfrontier.torch_utils import register_fused_adam
from rlfrontier.validation import BadInput

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.core.learner.learner import Learner

# NextObsPredictor's fwd_out and metric keys, defined once beside their owner.
PREDICTED_DELTA = "predicted_obs_delta"
NEXT_OBS_LOSS = "next_obs_loss"


class OwnOptimizersAPI(abc.ABC):
    """An RLModule that registers its own optimizer(s) with the Learner.

    The counterpart of RLlib's SelfSupervisedLossAPI (its own loss): a
    learner-only module implements both, and the project's learners then
    neither compute its loss nor configure its optimizer.
    """

    @abc.abstractmethod
    def configure_optimizers(self, *, learner: "Learner", module_id: ModuleID, config: "AlgorithmConfig") -> None:
        """Registers the module's optimizer(s) via `learner.register_optimizer(module_id=module_id, ...)`.

        Args:
            learner: the Learner that trains this module.
            module_id: this module's ID in the learner's MultiRLModule.
            config: the AlgorithmConfig for `module_id` (RLlib's per-module
                overrides applied, e.g. its own `lr`).
        """


# Config side -------------------------------------------------------------------------
def add_learner_only_modules(config: "AlgorithmConfig", specs: Mapping[ModuleID, RLModuleSpec]) -> "AlgorithmConfig":
    """Adds learner-only modules beside the config's policy module (DEFAULT_MODULE_ID); returns `config`.

    The policy module keeps the spec the config has (the algorithm's default
    when none is set); the new specs are copied with `learner_only=True`, so
    EnvRunners and `evaluate` never build them. Spaces left None are the
    policy module's.

    Args:
        config: an unfrozen AlgorithmConfig of a single-agent algorithm.
        specs: {module_id: RLModuleSpec}; each module class implements
            SelfSupervisedLossAPI and OwnOptimizersAPI.

    Raises:
        BadInput: a module ID that is the policy's or already taken, or a
            module class without the two APIs.
    """
    current = config._rl_module_spec  # what the user set through rl_module(), or None
    if isinstance(current, MultiRLModuleSpec):
        multi = copy.deepcopy(current)
    else:
        policy = copy.deepcopy(current) if current is not None else RLModuleSpec()
        multi = MultiRLModuleSpec(rl_module_specs={DEFAULT_MODULE_ID: policy})
    for module_id, spec in specs.items():
        if module_id in multi.rl_module_specs:
            raise BadInput(f"learner-only module id {module_id!r} is already taken")
        check_learner_only_class(module_id, spec.module_class)
        spec = copy.deepcopy(spec)
        spec.learner_only = True
        multi.add_modules({module_id: spec})
    return config.rl_module(rl_module_spec=multi)


def add_beside_policy(spec: MultiRLModuleSpec, specs: Mapping[ModuleID, RLModuleSpec], *, inference_only: bool,
                      owner: str) -> MultiRLModuleSpec:
    """A config's MultiRLModuleSpec with an algorithm's own learner-only modules beside the policy module.

    For an AlgorithmConfig's `get_multi_rl_module_spec`: `specs` are added
    (their spaces, where None, the policy module's) unless the spec is for
    EnvRunners (`inference_only`), which never build them. `owner` names what
    needs them in the ValueError for a module id the config already uses. The
    config names their ids in `own_learner_only_module_ids()`, so that
    `learner_only_module_ids` (weight syncs, the learners' sharing) sees them.
    """
    taken = sorted(set(specs) & set(spec.rl_module_specs))
    if taken:
        raise ValueError(f"{owner} needs the module id(s) {taken}, which the config's rl_module_spec already uses")
    if specs and not inference_only:
        policy = spec.rl_module_specs[DEFAULT_MODULE_ID]
        for module_spec in specs.values():
            module_spec.observation_space = module_spec.observation_space or policy.observation_space
            module_spec.action_space = module_spec.action_space or policy.action_space
        spec.add_modules(dict(specs))
    return spec


def check_learner_only_class(module_id: ModuleID, module_class: type | None) -> None:
    """BadInput unless `module_class` brings its own loss and optimizer."""
    missing = [
        api.__name__ for api in (SelfSupervisedLossAPI, OwnOptimizersAPI)
        if not (isinstance(module_class, type) and issubclass(module_class, api))
    ]
    if missing:
        name = getattr(module_class, "__name__", repr(module_class))
        raise BadInput(
            f"learner-only module {module_id!r} ({name}) must implement {' and '.join(missing)}: "
            "the algorithm's learner only computes its policy module's loss and optimizer"
        )


def learner_only_module_ids(config: "AlgorithmConfig") -> frozenset[ModuleID]:
    """The IDs of the config's learner-only modules (none without a MultiRLModuleSpec)."""
    spec = config._rl_module_spec
    ids = set()
    if isinstance(spec, MultiRLModuleSpec):
        ids = {mid for mid, s in spec.rl_module_specs.items() if s.learner_only}
    # An exploration bonus's modules (rlfrontier.bonuses.BonusFields), added when the spec is made.
    bonus_specs = getattr(config, "bonus_module_specs", None)
    # An algorithm's own (gcl's reward, the adversarial discriminators), added by `add_beside_policy`.
    own = getattr(config, "own_learner_only_module_ids", None)
    return frozenset(ids | set(bonus_specs() if bonus_specs is not None else ()) | set(own() if own else ()))


# Learner side ------------------------------------------------------------------------
def configure_optimizers(learner: "Learner", *, policy_apis: Iterable[type]) -> None:
    """Registers every module's optimizers: its own (OwnOptimizersAPI) or the learner's.

    A module with all of `policy_apis` gets `learner.configure_optimizers_for_module`;
    a module of OwnOptimizersAPI configures its own. Any other module would be
    trained by a loss and an optimizer written for another module (or by none):
    TypeError, naming it.
    """
    policy_apis = tuple(policy_apis)
    for module_id in learner.module.keys():
        module = learner.module[module_id].unwrapped()
        config = learner.config.get_config_for_module(module_id)
        if isinstance(module, OwnOptimizersAPI):
            if not isinstance(module, SelfSupervisedLossAPI):
                raise TypeError(f"module {module_id!r} ({type(module).__name__}) has its own optimizer "
                                "but no loss: implement SelfSupervisedLossAPI")
            module.configure_optimizers(learner=learner, module_id=module_id, config=config)
        elif all(isinstance(module, api) for api in policy_apis):
            learner.configure_optimizers_for_module(module_id=module_id, config=config)
        else:
            raise TypeError(
                f"module {module_id!r} ({type(module).__name__}) gets no optimizer from {type(learner).__name__}: "
                f"it implements neither {', '.join(api.__name__ for api in policy_apis)} (a policy module) "
                "nor SelfSupervisedLossAPI and OwnOptimizersAPI (a learner-only module)"
            )


def share_policy_batch(batch: dict[ModuleID, Any], module_ids: Iterable[ModuleID]) -> dict[ModuleID, Any]:
    """The learner's minibatch with the policy module's rows under each of `module_ids` too.

    The same tensors (no copy, on any device); a module whose own rows the
    batch already carries keeps them. Returns a new dict, so the caller's
    MultiAgentBatch (whose module keys RLlib counts as trained steps) is untouched.
    """
    shared = batch[DEFAULT_MODULE_ID]
    return {**{mid: shared for mid in module_ids}, **batch}


# A toy learner-only module --------------------------------------------------------------
def next_obs_mse(*, predicted_delta: torch.Tensor, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Mean squared error of a predicted observation change, mean over [B, obs_dim].

    L = mean((f(s, a) - (s' - s))^2): the forward-model loss of ICM (Pathak
    et al. 2017, eq. 5) on raw observations instead of learnt features.
    """
    return (predicted_delta - (next_obs - obs)).pow(2).mean()


class NextObsPredictor(TorchRLModule, SelfSupervisedLossAPI, OwnOptimizersAPI):
    """A learner-only forward model: predicts the replayed transition's NEXT_OBS from (OBS, ACTIONS).

    Learns s' - s with an MLP on the flat observation and the one-hot action
    (a Box action: its flat values). With n_step > 1 NEXT_OBS is the
    observation n steps on (or where the episode ended). Trained by
    `next_obs_mse` with one fused Adam at the module's `lr`.

    model_config keys: hidden_sizes (list[int], default [64, 64]).
    """

    def setup(self):
        self._obs_dim = int(math.prod(self.observation_space.shape))
        if isinstance(self.action_space, gym.spaces.Discrete):
            self._num_actions = int(self.action_space.n)
            action_dim = self._num_actions
        else:
            self._num_actions = None
            action_dim = int(math.prod(self.action_space.shape))
        sizes = [self._obs_dim + action_dim, *(self.model_config or {}).get("hidden_sizes", [64, 64])]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], self._obs_dim))
        self.net = nn.Sequential(*layers)

    def _flat(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(obs.shape[0], -1).float()

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        actions = batch[Columns.ACTIONS]
        if self._num_actions is not None:
            actions = nn.functional.one_hot(actions.long(), self._num_actions).float()
        else:
            actions = actions.reshape(actions.shape[0], -1).float()
        return {PREDICTED_DELTA: self.net(torch.cat([self._flat(batch[Columns.OBS]), actions], dim=-1))}

    def compute_self_supervised_loss(self, *, learner, module_id, config, batch, fwd_out, **kwargs) -> torch.Tensor:
        loss = next_obs_mse(
            predicted_delta=fwd_out[PREDICTED_DELTA],
            obs=self._flat(batch[replay.OBS]),
            next_obs=self._flat(batch[replay.NEXT_OBS]),
        )
        learner.metrics.log_value((module_id, NEXT_OBS_LOSS), loss.detach(), window=1)
        return loss

    def configure_optimizers(self, *, learner, module_id, config) -> None:
        register_fused_adam(learner, module_id, "next_obs", list(self.parameters()), config.lr)
