"""What the project's off-policy algorithms share: replay settings and the replay training step.

`ReplayConfig` holds the replay fields (capacity, prioritisation, replay ratio,
n-step, warm-up) and checks them; `replay_training_step` is the training step
of an algorithm that learns from a `rlfrontier.replay.TransitionReplayBuffer`:
sample episode chunks from the EnvRunners, add their one-step transitions,
run `training_intensity * sampled / batch` SGD updates in one learner-group
call (one minibatch per update) on n-step transitions the buffer folds when
sampling, then sync the EnvRunners. Algorithms add per-transition columns
(e.g. bootstrap masks) through a hook. `DemoReplayFields` adds
demonstrations kept in replay (DQfD): `make_replay_buffer` then builds a
`rlfrontier.replay.DemoReplayBuffer`, and `pretrain_on_demos` runs DQfD's
updates on demonstrations alone before acting. `TargetSyncLearner` is the learner
base: gradient updates counted, target networks synced by them, and
learner-only modules (rlfrontier.modules) trained on the policy's minibatches.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, ClassVar

import numpy as np

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from ray.rllib.utils.numpy import convert_to_numpy

from rlfrontier import modules, replay, seeding
from rlfrontier.validation import check_choice, check_range

# Result keys, defined once here.
REPLAY_BUFFER_SIZE = "replay_buffer_size"
NUM_UPDATES_THIS_STEP = "num_sgd_updates"
PRIORITIZED_REPLAY_BETA = "prioritized_replay_beta"
DEMO_PRETRAIN_UPDATES = "demo_pretrain_updates"
# The range an algorithm's Q-values must stay in for the rewards seen so far,
# and the learner metric compared with it (the progress line warns outside it).
Q_LOWER_BOUND = "q_value_lower_bound"
Q_UPPER_BOUND = "q_value_upper_bound"
Q_MEAN = "q_mean"
# Per-sample learner outputs for priority updates (popped before reporting).
TD_ERROR = "td_error"
TD_INDEXES = "td_error_buffer_indexes"

# The keywords of RLlib's own `training()`; any other keyword is a field of ours.
_RLLIB_TRAINING_KEYWORDS = frozenset(inspect.signature(AlgorithmConfig.training).parameters) - {"self"}


class ReplayConfig(AlgorithmConfig):
    """Replay settings of an off-policy algorithm; set through `training()`.

    Fields:
        n_step: return horizon of the backup.
        replay_capacity: transitions kept in the replay buffer.
        prioritized_replay, prioritized_replay_alpha, prioritized_replay_beta,
        prioritized_replay_eps: proportional prioritised replay (Schaul et al. 2016).
        prioritized_replay_beta_annealing_timesteps: env steps over which the
            importance-sampling exponent rises linearly from
            prioritized_replay_beta to 1 (Schaul et al. 2016, section 3.4).
        training_intensity: replayed transitions per sampled transition, i.e.
            SGD updates per env step = training_intensity / global batch size.
        num_steps_sampled_before_learning_starts: warm-up env steps.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.n_step = 1
        self.replay_capacity = 50_000
        self.prioritized_replay = False
        self.prioritized_replay_alpha = 0.6
        self.prioritized_replay_beta = 0.4
        self.prioritized_replay_eps = 1e-6
        self.prioritized_replay_beta_annealing_timesteps = 100_000
        self.training_intensity = 64.0
        self.num_steps_sampled_before_learning_starts = 1000

    def training(self, **kwargs) -> "ReplayConfig":
        """RLlib's `training()` plus our fields: the replay ones and a subclass's own.

        A keyword RLlib's `training()` does not take is one of our fields when
        the config has an attribute of that name (set in `__init__`), else a TypeError.
        """
        own = {k: kwargs.pop(k) for k in list(kwargs) if k not in _RLLIB_TRAINING_KEYWORDS}
        unknown = sorted(k for k in own if not hasattr(self, k) or k.startswith("_"))
        if unknown:
            raise TypeError(f"training() got unexpected keyword argument(s): {', '.join(unknown)}")
        super().training(**kwargs)
        for name, value in own.items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        check_range("gamma", self.gamma, 0.0, 1.0)
        if not isinstance(self.lr, (list, tuple)):  # RLlib also takes an lr schedule
            check_range("lr", self.lr, 0.0, None, low_open=True)
        check_range("n_step", self.n_step, 1, None, integer=True)
        check_range("replay_capacity", self.replay_capacity, 1, None, integer=True)
        check_range("prioritized_replay_alpha", self.prioritized_replay_alpha, 0.0, None)
        check_range("prioritized_replay_beta", self.prioritized_replay_beta, 0.0, 1.0)
        check_range("prioritized_replay_eps", self.prioritized_replay_eps, 0.0, None, low_open=True)
        check_range(
            "prioritized_replay_beta_annealing_timesteps",
            self.prioritized_replay_beta_annealing_timesteps, 1, None, integer=True,
        )
        check_range("training_intensity", self.training_intensity, 0.0, None, low_open=True)
        check_range(
            "num_steps_sampled_before_learning_starts",
            self.num_steps_sampled_before_learning_starts, 0, None, integer=True,
        )
        check_range("train_batch_size_per_learner", self.train_batch_size_per_learner, 1, None, integer=True)
        check_choice("prioritized_replay", self.prioritized_replay, (True, False))
        super().validate()


class DemoReplayFields:
    """Config mixin: demonstrations kept in replay beside the agent's data (DQfD, Hester et al. 2018).

    Put it before the ReplayConfig base: `class C(DemoReplayFields, ReplayConfig)`.
    The algorithm's loss decides what to do with the rows marked
    `replay.IS_DEMO` (soft_q: a supervised term on them).

    Fields:
        demos: a demonstrations folder (rlfrontier.demos), set by `--demos`;
            None: no demonstrations, and none of the fields below matters.
        demo_fraction: the share of every minibatch drawn from the
            demonstrations when replay is uniform (prioritized_replay off).
        demo_priority_bonus: DQfD's eps_d, added to a demonstration's replay
            priority when replay is prioritised (it then sets the share).
        demo_pretrain_updates: gradient updates on demonstrations alone
            before the first env step (DQfD's pre-training phase).
    """

    # Whether `demos` go into replay (DQfD). An algorithm that reads them for
    # something else (gcl: its reward's demonstrations) sets False.
    demos_in_replay: ClassVar[bool] = True

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.demos: str | None = None
        # A quarter of each minibatch: the expert's 10,000 CartPole steps
        # stay in every update without crowding out the agent's own data.
        self.demo_fraction = 0.25
        self.demo_priority_bonus = 1.0  # the paper's eps_d
        self.demo_pretrain_updates = 1000

    def validate(self) -> None:
        if self.demos is not None and not isinstance(self.demos, str):
            raise ValueError(f"demos must be a folder path or None, got {self.demos!r}")
        check_range("demo_fraction", self.demo_fraction, 0.0, 1.0)
        check_range("demo_priority_bonus", self.demo_priority_bonus, 0.0, None)
        check_range("demo_pretrain_updates", self.demo_pretrain_updates, 0, None, integer=True)
        super().validate()


def make_replay_buffer(config: ReplayConfig) -> replay.TransitionReplayBuffer | replay.DemoReplayBuffer:
    """The buffer for `config`, sampling from the run's own replay stream (seeding.REPLAY).

    With demonstrations (`config.demos`, DemoReplayFields) a DemoReplayBuffer
    that holds them beside the agent's buffer, read from the folder: they are
    not part of any checkpoint (the replay buffer is not), so a restored run
    reads them again from `config.demos`.
    """
    buffer = replay.TransitionReplayBuffer(
        capacity=config.replay_capacity,
        n_step=config.n_step,
        gamma=config.gamma,
        prioritized=config.prioritized_replay,
        alpha=config.prioritized_replay_alpha,
        epsilon=config.prioritized_replay_eps,
        seed=seeding.rng(config.seed, seeding.REPLAY),
    )
    if not getattr(config, "demos", None) or not getattr(config, "demos_in_replay", True):
        return buffer
    return replay.DemoReplayBuffer(
        agent=buffer,
        demo_columns=demo_rows(config.demos),
        demo_fraction=config.demo_fraction,
        priority_bonus=config.demo_priority_bonus,
        minibatch_size=config.train_batch_size_per_learner,
    )


def demo_rows(path: str) -> dict[str, np.ndarray]:
    """A demonstrations folder's transitions as replay's one-step rows, linked within each episode."""
    from rlfrontier import demos

    columns = demos.load(path, where="--demos").transitions()
    if len(columns[demos.OBS]) == 0:
        raise ValueError(f"--demos {path}: holds no transition")
    return {
        replay.OBS: columns[demos.OBS],
        replay.ACTIONS: columns[demos.ACTION],
        replay.REWARDS: columns[demos.REWARD].astype(np.float32),
        replay.NEXT_OBS: columns[demos.NEXT_OBS],
        replay.TERMINATEDS: columns[demos.TERMINATED].astype(bool),
        replay.EPISODE_IDS: columns[demos.EPISODE],
        replay.STEPS: columns[demos.STEP],
        replay.TRUNCATEDS: columns[demos.TRUNCATED].astype(bool),
    }


def annealed_beta(*, beta_start: float, annealing_timesteps: int, timesteps: int) -> float:
    """Importance-sampling exponent, linear from beta_start at 0 env steps to 1 at annealing_timesteps.

    Schaul et al. 2016, section 3.4: the bias of prioritised sampling matters
    most near convergence, so the correction becomes full by the end.
    """
    fraction = min(max(timesteps, 0) / annealing_timesteps, 1.0)
    return beta_start + fraction * (1.0 - beta_start)


def updates_due(
    *, credit: float, num_sampled: int, training_intensity: float, batch_size_per_learner: int, num_learners: int
) -> tuple[int, float]:
    """SGD updates to run now for `num_sampled` new env steps, and the credit left over.

    Each learner runs one update per minibatch of `batch_size_per_learner`, all
    learners at once, so an update replays batch_size_per_learner * max(num_learners, 1)
    transitions; `training_intensity` replayed transitions per sampled one makes
    num_sampled * training_intensity / (batch * learners) updates, whose
    fraction is carried to the next step.
    """
    credit += num_sampled * training_intensity / (batch_size_per_learner * max(num_learners, 1))
    num_updates = int(credit)
    return num_updates, credit - num_updates


def replay_training_step(
    algo,
    *,
    extra_columns: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
    reward_hook: replay.RewardHook | None = None,
    on_sampled: Callable[[list], None] | None = None,
) -> None:
    """One training step of `algo` (an Algorithm with `replay_buffer` and `_update_credit`).

    Args:
        algo: the algorithm; its config is a ReplayConfig.
        extra_columns: given the N new one-step transitions (replay's
            columns), per-transition columns to store with them ([N, ...]
            arrays), e.g. bootstrap masks; a sampled n-step transition carries
            those of its first step.
        reward_hook: rewrites the one-step rewards of each sampled window
            before folding (see TransitionReplayBuffer.fold); when it has an
            `on_add` (rewards.ReplayRewardHook: an exploration bonus), that
            sees every new transition once and returns columns to store too.
        on_sampled: called with the sampled episode chunks once they are in
            replay, before any update (gcl updates its reward there).
    """
    cfg = algo.config
    with algo.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
        episodes, env_runner_results = synchronous_parallel_sample(
            worker_set=algo.env_runner_group,
            concat=True,
            sample_timeout_s=cfg.sample_timeout_s,
            _uses_new_env_runners=True,
            _return_metrics=True,
        )
    algo.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)

    with algo.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
        columns = replay.transitions_from_episodes(episodes)
        num_sampled = 0
        if columns is not None:
            num_sampled = len(columns[replay.OBS])
            if extra_columns is not None:
                columns.update(extra_columns(columns))
            on_add = getattr(reward_hook, "on_add", None)
            if on_add is not None:
                columns.update(on_add(columns))
            algo.replay_buffer.add(columns)
    algo.metrics.log_value(REPLAY_BUFFER_SIZE, len(algo.replay_buffer), window=1)
    if on_sampled is not None:
        on_sampled(episodes)

    lifetime_steps = algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
    if lifetime_steps < cfg.num_steps_sampled_before_learning_starts:
        return

    num_updates, algo._update_credit = updates_due(
        credit=algo._update_credit,
        num_sampled=num_sampled,
        training_intensity=cfg.training_intensity,
        batch_size_per_learner=cfg.train_batch_size_per_learner,
        num_learners=cfg.num_learners,
    )
    if num_updates == 0:
        return
    algo.metrics.log_value(NUM_UPDATES_THIS_STEP, num_updates, reduce="sum")
    beta = annealed_beta(
        beta_start=cfg.prioritized_replay_beta,
        annealing_timesteps=cfg.prioritized_replay_beta_annealing_timesteps,
        timesteps=lifetime_steps,
    )
    if cfg.prioritized_replay:
        algo.metrics.log_value(PRIORITIZED_REPLAY_BETA, beta, window=1)

    with algo.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
        batch_size = cfg.train_batch_size_per_learner * max(cfg.num_learners, 1)
        # Rows come shuffled (see TransitionReplayBuffer.sample): every learner's
        # shard and every minibatch of it is drawn from the whole buffer.
        sampled = algo.replay_buffer.sample(num_updates * batch_size, beta=beta, reward_hook=reward_hook)
        train_batch = learner_batch(sampled, reward_hook=reward_hook)
    update_learners(algo, train_batch, lifetime_steps=lifetime_steps, reward_hook=reward_hook)


def learner_batch(sampled: dict[str, np.ndarray], *, reward_hook: replay.RewardHook | None = None) -> MultiAgentBatch:
    """Replayed rows as the learner group's batch, without the reward hook's private columns."""
    for name in getattr(reward_hook, "private_columns", ()):
        sampled.pop(name, None)
    # Keyed by the policy module only: the learner hands every learner-only
    # module the same minibatch tensors (TargetSyncLearner._update), so the
    # arrays are not sliced, converted or shipped to learners once per module.
    return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(sampled)}, env_steps=len(sampled[replay.OBS]))


def update_learners(
    algo, train_batch: MultiAgentBatch, *, lifetime_steps: int, reward_hook: replay.RewardHook | None = None
) -> None:
    """One learner-group call on replayed rows (one SGD update per minibatch), priorities, weight sync."""
    cfg = algo.config
    with algo.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
        if hasattr(reward_hook, "before_update"):
            reward_hook.before_update(algo.learner_group)
        learner_results = algo.learner_group.update(
            batch=train_batch,
            minibatch_size=cfg.train_batch_size_per_learner,
            num_epochs=1,
            shuffle_batch_per_epoch=False,
            timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: lifetime_steps},
        )
        indexes, td_errors = pop_priority_inputs(learner_results)
        if cfg.prioritized_replay and td_errors is not None:
            algo.replay_buffer.update_priorities(indexes, td_errors)
        algo.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        if hasattr(reward_hook, "after_update"):
            reward_hook.after_update(algo.learner_group)

    with algo.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
        # EnvRunners hold no learner-only module: do not fetch and ship its weights.
        acting = set(learner_results[0].keys()) - {ALL_MODULES} - modules.learner_only_module_ids(cfg)
        algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=algo.learner_group,
            policies=acting,
            inference_only=True,
        )


# Updates per learner-group call while pre-training: priorities are refreshed between calls.
PRETRAIN_UPDATES_PER_CALL = 100


def pretrain_on_demos(algo, *, num_updates: int, reward_hook: replay.RewardHook | None = None) -> None:
    """DQfD's pre-training (Hester et al. 2018, section 3): `num_updates` SGD updates on demonstrations alone.

    Run before the first env step, so the agent starts acting with a policy
    that already imitates the expert and values its actions by the TD loss.
    The updates are the usual ones (TD loss, the algorithm's supervised
    term on IS_DEMO rows, prioritised weights and priority updates, target
    syncs), at the schedules' values for env step 0.
    """
    cfg = algo.config
    batch_size = cfg.train_batch_size_per_learner * max(cfg.num_learners, 1)
    done = 0
    while done < num_updates:
        chunk = min(PRETRAIN_UPDATES_PER_CALL, num_updates - done)
        with algo.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
            sampled = algo.replay_buffer.sample_demos(
                chunk * batch_size, beta=cfg.prioritized_replay_beta, reward_hook=reward_hook
            )
            train_batch = learner_batch(sampled, reward_hook=reward_hook)
        update_learners(algo, train_batch, lifetime_steps=0, reward_hook=reward_hook)
        done += chunk
    algo.metrics.log_value(DEMO_PRETRAIN_UPDATES, done, window=1)


def pop_priority_inputs(learner_results: list[dict]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Pops per-sample TD errors and their buffer indexes out of the results.

    With several learners each reports its own shard's pairs; they are matched
    by buffer index, so the order of the shards does not matter.
    """
    indexes, td_errors = [], []
    for result in learner_results:
        for module_results in result.values():
            if TD_ERROR not in module_results:
                continue
            # One array per minibatch (an item series).
            td_errors.extend(convert_to_numpy(module_results.pop(TD_ERROR).peek()))
            indexes.extend(convert_to_numpy(module_results.pop(TD_INDEXES).peek()))
    if not td_errors:
        return None, None
    return np.concatenate(indexes), np.concatenate(td_errors)


def log_priority_inputs(learner, module_id: str, td_error, indexes) -> None:
    """Called in a learner's loss: per-sample TD errors for the replay priorities."""
    learner.metrics.log_value((module_id, TD_ERROR), td_error, reduce="item_series")
    learner.metrics.log_value((module_id, TD_INDEXES), indexes, reduce="item_series")


# Learner side ---------------------------------------------------------------------
NUM_UPDATES = "num_gradient_updates"
NUM_TARGET_UPDATES = "num_target_updates"
NUM_UPDATES_STATE = "num_gradient_updates_done"  # key in the learner's state


def polyak_update(*, main_net, target_net, tau: float, pairs: "PolyakPairs | None" = None) -> None:
    """target <- tau * main + (1 - tau) * target, in place, for every parameter and float buffer.

    The same result as RLlib's `update_target_network`, which rebuilds both
    state dicts and reloads the target (~0.7 ms per update of soft_q's twin Q
    nets here, ~20% of a CartPole training step); one fused in-place lerp
    over all parameters takes ~0.03 ms. tau = 1 is an exact copy. `pairs`
    (PolyakPairs.of) skips the walks over both nets' submodules that collect
    the tensors, ~0.1 ms per pair and update on its own.
    """
    import torch

    pairs = pairs if pairs is not None else PolyakPairs.of(main_net, target_net)
    with torch.no_grad():
        if tau == 1.0:
            torch._foreach_copy_(pairs.targets, pairs.mains)
            for target, main in pairs.buffers:
                target.copy_(main)
            return
        if pairs.targets:
            torch._foreach_lerp_(pairs.targets, pairs.mains, tau)
        for target, main in pairs.buffers:
            if target.is_floating_point():
                target.lerp_(main, tau)
            else:
                target.copy_(main)


class PolyakPairs:
    """The (target, main) tensors of one target-network pair, collected once.

    Loading a state (set_state, a checkpoint, weights from another learner)
    copies into these same tensors, so the lists stay valid for the life of
    the two nets; `matches` tells whether they are still the nets the lists
    were taken from.
    """

    __slots__ = ("main_net", "target_net", "targets", "mains", "buffers")

    def __init__(self, main_net, target_net, targets, mains, buffers):
        self.main_net, self.target_net = main_net, target_net
        self.targets, self.mains, self.buffers = targets, mains, buffers

    @classmethod
    def of(cls, main_net, target_net) -> "PolyakPairs":
        targets, mains = list(target_net.parameters()), list(main_net.parameters())
        if len(targets) != len(mains):
            raise ValueError(f"target network has {len(targets)} parameters, main network {len(mains)}")
        buffers = [(t, m) for (_, t), (_, m) in zip(target_net.named_buffers(), main_net.named_buffers())]
        return cls(main_net, target_net, targets, mains, buffers)

    def matches(self, main_net, target_net) -> bool:
        return self.main_net is main_net and self.target_net is target_net


def sync_target_networks(learner, num_updates: int, *, log: bool = True) -> dict[str, int]:
    """After gradient update number `num_updates`: target sync every `target_update_interval`.

    RLlib's DQN counts its target period in sampled env steps, so the number of
    updates between syncs silently changes with the replay ratio; here the
    period is in gradient updates. With tau < 1 the sync is Polyak averaging.
    Only modules with targets (TargetNetworkAPI) sync and count; a learner-only
    module has none. Returns {module_id: target updates made (0 or 1)}; with
    `log`, also logs the update and target-update counts (a caller that makes
    many updates in a row may log their sums once instead).
    """
    cache = learner.__dict__.setdefault("_polyak_pairs", {})
    synced = {}
    for module_id, module in learner.module._rl_modules.items():
        module = module.unwrapped()
        if not isinstance(module, TargetNetworkAPI):
            continue
        config = learner.config.get_config_for_module(module_id)
        synced[module_id] = 0
        if num_updates % config.target_update_interval == 0:
            for i, (main_net, target_net) in enumerate(module.get_target_network_pairs()):
                pairs = cache.get((module_id, i))
                if pairs is None or not pairs.matches(main_net, target_net):
                    pairs = cache[(module_id, i)] = PolyakPairs.of(main_net, target_net)
                polyak_update(main_net=main_net, target_net=target_net, tau=config.tau, pairs=pairs)
            synced[module_id] = 1
        if log:
            log_update_counts(learner, module_id, updates=1, target_updates=synced[module_id])
    return synced


def log_update_counts(learner, module_id: str, *, updates: int, target_updates: int) -> None:
    if target_updates:
        learner.metrics.log_value((module_id, NUM_TARGET_UPDATES), target_updates, reduce="lifetime_sum")
    learner.metrics.log_value((module_id, NUM_UPDATES), updates, reduce="lifetime_sum")


class TargetSyncLearner(Learner):
    """A Learner that counts its gradient updates and syncs target networks by them.

    The shared base of the project's value-based learners (a runtime piece,
    like ReplayConfig; no algorithm's learner inherits another's). One call of
    `_update` is one SGD step; checkpoints keep the count.

    Beside the policy module (QNetAPI and TargetNetworkAPI, the algorithm's
    loss and optimizers) it trains learner-only modules (rlfrontier.modules):
    each brings its own loss and optimizers and learns from the policy
    module's minibatch.
    """

    def build(self) -> None:
        super().build()
        self.module.foreach_module(
            lambda mid, mod: mod.make_target_networks() if isinstance(mod, TargetNetworkAPI) else None
        )
        self._num_updates = 0
        # From the config: RLlib 2.60's RLModuleSpec.build() does not pass
        # `learner_only` on, so every built module says learner_only=False.
        self._learner_only_ids = tuple(sorted(modules.learner_only_module_ids(self.config)))

    def configure_optimizers(self) -> None:
        # TorchLearner would hand every torch module to the policy's
        # configure_optimizers_for_module (see rlfrontier.modules).
        modules.configure_optimizers(self, policy_apis=self.rl_module_required_apis())

    def _update(self, batch: dict[str, Any], **kwargs):
        if self._learner_only_ids and DEFAULT_MODULE_ID in batch:
            batch = modules.share_policy_batch(batch, self._learner_only_ids)
        result = super()._update(batch, **kwargs)
        self._num_updates += 1
        synced = sync_target_networks(self, self._num_updates, log=self._counts is None)
        if self._counts is not None:
            for module_id, n in synced.items():
                updates, targets = self._counts.get(module_id, (0, 0))
                self._counts[module_id] = (updates + 1, targets + n)
        return result

    _counts: dict[str, tuple[int, int]] | None = None  # update and target-update counts of a fast update() loop
    # False while the fast update() loop runs a minibatch other than its last:
    # see `metrics_due`.
    _metrics_due: bool = True
    # Modules whose gradients of the current step postprocess_gradients_for_module
    # found finite (by their global norm); apply_gradients then skips its own check.
    _finite_modules: frozenset | set = frozenset()

    @property
    def metrics_due(self) -> bool:
        """Whether this SGD step's window-1 metrics (losses, Q means, norms) reach the results.

        A metric logged with window=1 reports the value of the last step of a
        learner call, so the fast update() loop asks its losses to log them
        at the last minibatch only (measured ~0.1 ms of a ~1.4 ms soft_q
        update). Every other path (RLlib's loop, a single step) logs every
        step. Per-step series that are consumed whole (the replay-priority TD
        errors) are logged regardless.
        """
        return self._metrics_due

    def update(self, batch=None, batches=None, batch_refs=None, episodes=None, episodes_refs=None,
               data_iterators=None, training_data=None, *, timesteps=None, num_total_minibatches: int = 0,
               num_epochs: int = 1, minibatch_size: int | None = None, shuffle_batch_per_epoch: bool = False,
               _no_metrics_reduce: bool = False, **kwargs):
        """RLlib's Learner.update, with a plain loop for replay's case: one pass of in-order minibatches.

        Replay hands the learner `training_intensity * sampled / batch`
        minibatches in one call (offpolicy.update_learners: num_epochs 1, no
        shuffle, rows already drawn at random). RLlib's loop costs ~0.6 ms a
        minibatch beyond the SGD step itself here (~30% of a soft_q CartPole
        update): it re-slices the MultiAgentBatch through SampleBatch and
        concat_samples, and logs seven step counters and a Prometheus timer
        per minibatch. This loop slices the tensors once per minibatch, in
        the same order, calls the same `_update`, and logs the same counters
        once, with the sums over the call; the weights it produces are
        RLlib's to the bit (tests/unit/test_fast_update.py). Anything else
        (several epochs, shuffling, a ragged last minibatch, episodes,
        stateful modules, data iterators) goes through RLlib's own loop.
        """
        rllib_update = functools.partial(
            super().update, batch=batch, batches=batches, batch_refs=batch_refs, episodes=episodes,
            episodes_refs=episodes_refs, data_iterators=data_iterators, training_data=training_data,
            timesteps=timesteps, num_total_minibatches=num_total_minibatches, num_epochs=num_epochs,
            minibatch_size=minibatch_size, shuffle_batch_per_epoch=shuffle_batch_per_epoch,
            _no_metrics_reduce=_no_metrics_reduce, **kwargs)
        if training_data is None:
            if batch is None or any(x is not None for x in (batches, batch_refs, episodes, episodes_refs,
                                                             data_iterators)):
                return rllib_update()
            training_data = TrainingData(batch=batch)
        if (training_data.batch is None and training_data.batch_refs is None) or num_epochs != 1 or not minibatch_size:
            return rllib_update()
        training_data.validate()
        training_data.solve_refs()
        plan = self._plain_minibatch_plan(training_data, minibatch_size, num_total_minibatches)
        if plan is None:
            return rllib_update(training_data=training_data, batch=None, batch_refs=None)
        batch, count = plan

        self._check_is_built()
        self.before_gradient_based_update(timesteps=timesteps or {})
        self._weights_seq_no += 1
        columns = {mid: dict(module_batch) for mid, module_batch in batch.policy_batches.items()}
        self._counts = {}
        try:
            for i in range(count):
                rows = slice(i * minibatch_size, (i + 1) * minibatch_size)
                self._metrics_due = i == count - 1
                _, loss_per_module, _ = self._update(
                    {mid: {k: v[rows] for k, v in cols.items()} for mid, cols in columns.items()})
            counts = self._counts
        finally:
            self._counts = None
            self._metrics_due = True
        for module_id, (updates, target_updates) in counts.items():
            log_update_counts(self, module_id, updates=updates, target_updates=target_updates)
        self._log_steps_trained_once(batch, minibatch_size=minibatch_size, count=count)
        self._log_metrics(batch=batch)  # RLlib's Prometheus counters, once for the call
        for mid, loss in loss_per_module.items():
            self.metrics.log_value(key=(mid, self.TOTAL_LOSS_KEY), value=loss, window=1)
        self.after_gradient_based_update(timesteps=timesteps or {})
        if not _no_metrics_reduce:
            return self.metrics.reduce()

    def _plain_minibatch_plan(self, training_data, minibatch_size: int, num_total_minibatches: int):
        """(tensor MultiAgentBatch, number of minibatches) when the plain loop applies, else None."""
        import torch

        if training_data.batch is None:
            return None
        batch = self._make_batch_if_necessary(training_data=training_data)
        if not isinstance(batch, MultiAgentBatch) or not batch.policy_batches:
            return None
        sizes = set()
        for module_id, module_batch in batch.policy_batches.items():
            if (module_id not in self.module or not self.should_module_be_updated(module_id, batch)
                    or self.module[module_id].is_stateful() or module_batch.get("seq_lens") is not None):
                return None
            if not all(isinstance(column, torch.Tensor) for column in module_batch.values()):
                return None  # nested columns (dict observations): RLlib's slicing handles them
            sizes.add(len(module_batch))
        if len(sizes) != 1:
            return None
        size = sizes.pop()
        if size == 0 or size % minibatch_size:
            return None
        count = size // minibatch_size
        if num_total_minibatches not in (0, count):
            return None
        return batch, count

    def _log_steps_trained_once(self, batch: MultiAgentBatch, *, minibatch_size: int, count: int) -> None:
        """What RLlib's `_log_steps_trained_metrics` logs over `count` equal minibatches, in one call each."""
        from ray.rllib.utils.metrics import (
            MODULE_TRAIN_BATCH_SIZE_MEAN, NUM_ENV_STEPS_TRAINED, NUM_ENV_STEPS_TRAINED_LIFETIME,
            NUM_MODULE_STEPS_TRAINED, NUM_MODULE_STEPS_TRAINED_LIFETIME, WEIGHTS_SEQ_NO)

        total = minibatch_size * count
        for mid in batch.policy_batches:
            self.metrics.log_value((mid, WEIGHTS_SEQ_NO), self._weights_seq_no, window=1)
            self.metrics.log_value((mid, MODULE_TRAIN_BATCH_SIZE_MEAN), minibatch_size, reduce="mean")
            self.metrics.log_value((mid, NUM_MODULE_STEPS_TRAINED), total, reduce="sum")
            self.metrics.log_value((mid, NUM_MODULE_STEPS_TRAINED_LIFETIME), total, reduce="lifetime_sum",
                                   with_throughput=True)
            self.metrics.log_value((ALL_MODULES, NUM_MODULE_STEPS_TRAINED), total, reduce="sum",
                                   with_throughput=True)
            self.metrics.log_value((ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), total,
                                   reduce="lifetime_sum", with_throughput=True)
        # Each replayed row counts once. RLlib's loop logs the whole batch's
        # env_steps() at every minibatch (its minibatches keep the full batch's
        # count), i.e. `count` times as many.
        self.metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED), total, reduce="sum", with_throughput=True)
        self.metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), total, reduce="lifetime_sum",
                               with_throughput=True)

    def postprocess_gradients(self, gradients_dict):
        self._finite_modules = frozenset()  # this step's checks only
        return super().postprocess_gradients(gradients_dict)

    def postprocess_gradients_for_module(self, *, module_id, config=None, module_gradients_dict):
        """RLlib's clipping by global norm, with one fused norm instead of one per tensor.

        The same coefficient and the same logged norm
        (`gradients_{optimizer}_global_norm`) as RLlib's Learner; RLlib's own
        path runs for other clip modes and for non-finite gradients.
        """
        import torch

        from rlfrontier.torch_utils import clip_to_global_norm_, global_norm

        if config.grad_clip and config.grad_clip_by == "global_norm":
            groups = []
            for optimizer_name, optimizer in self.get_optimizers_for_module(module_id):
                grads = self.filter_param_dict_for_optimizer(param_dict=module_gradients_dict, optimizer=optimizer)
                norm = None if any(g is None for g in grads.values()) else global_norm(list(grads.values()))
                if norm is None or not torch.isfinite(norm):
                    groups = None
                    break
                groups.append((optimizer_name, grads, norm))
            if groups is not None:
                clipped = {}
                for optimizer_name, grads, norm in groups:
                    clip_to_global_norm_(list(grads.values()), norm, config.grad_clip)
                    if self.metrics_due:
                        self.metrics.log_value((module_id, f"gradients_{optimizer_name}_global_norm"), norm,
                                               window=1)
                    clipped.update(grads)
                # Every gradient of the module is finite (its norms are) and stays so
                # (scaled by a finite factor <= 1): apply_gradients need not check again.
                self._finite_modules = {*self._finite_modules, module_id}
                return clipped
        return super().postprocess_gradients_for_module(
            module_id=module_id, config=config, module_gradients_dict=module_gradients_dict)

    def apply_gradients(self, gradients_dict) -> None:
        """RLlib's TorchLearner.apply_gradients, with one fused finiteness check instead of two per tensor.

        RLlib checks `torch.isfinite(grad).all()` for every gradient before
        and again at every optimizer step: 2 x 12 small kernels and host syncs
        per soft_q update, ~13% of a CartPole training step here. One fused
        norm over all gradients tells whether any is nan/inf, and none is
        needed when postprocess_gradients_for_module's clipping norms already
        found every module's gradients finite this step; only on a nan/inf (or
        with torch LR schedulers or grad scalers, which this shortcut does not
        handle) does RLlib's own path run, with its warnings and nan_to_num.
        """
        import torch

        grads = list(gradients_dict.values())
        checked, self._finite_modules = self._finite_modules, frozenset()
        if (
            not grads
            or any(g is None for g in grads)
            or self._lr_scheduler_classes is not None
            or self._grad_scalers is not None
            or not (
                checked.issuperset(self._module_optimizers)
                or bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all())
            )
        ):
            return super().apply_gradients(gradients_dict)
        for pid, grad in gradients_dict.items():
            self._params[pid].grad = grad
        for module_id, optimizer_names in self._module_optimizers.items():
            for optimizer_name in optimizer_names:
                self.get_optimizer(module_id, optimizer_name).step()

    def get_state(self, *args, **kwargs):
        return {**super().get_state(*args, **kwargs), NUM_UPDATES_STATE: self._num_updates}

    def set_state(self, state) -> None:
        super().set_state(state)
        self._num_updates = state.get(NUM_UPDATES_STATE, self._num_updates)

    @classmethod
    def rl_module_required_apis(cls) -> list[type]:
        return [QNetAPI, TargetNetworkAPI]
