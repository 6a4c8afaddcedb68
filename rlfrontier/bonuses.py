"""Exploration bonuses: intrinsic rewards added to the extrinsic ones at replay time.

A `Bonus` sees every new one-step transition once, on the Algorithm (the
driver), when the transitions go into replay (`observe`), and gives each
replayed transition its intrinsic reward (`intrinsic`), computed anew every
time the transition is replayed. The replay-time seam is
`rlfrontier.rewards.ReplayRewardHook`: the learner trains on

    r' = T(r) + b(s, a, s')

where T is the run's reward transform (identity without one) and b the bonus,
before the n-step fold, so an n-step return sums the bonuses of its steps.

Because the driver sees every transition of every EnvRunner, a bonus's
statistics (the counts of `count`) are one table for the whole run, however
many EnvRunners and learners it has; `get_state`/`set_state` put them in the
Algorithm's checkpoint (`BonusState`).

Configured by the config field `bonus`, a mapping with a `type`
(`--bonus count --bonus-config beta=0.05`, or a `bonus:` section in a tune
file, whose fields can be searched as `bonus.beta`). Kinds are registered in
`BONUSES`; the registry says which algorithms can take which kinds.

- `count`: the pseudo-count bonus beta / sqrt(n(phi(s'))) of Tang et al. 2017
  (#Exploration, eq. 1), n counting the visits to the cell of the next
  observation s'. phi is the observation itself for discrete observations
  (exact counts) and SimHash for continuous ones: the signs of k fixed
  Gaussian projections of the flat observation (Tang et al. 2017, section 2.2;
  Charikar 2002), so nearby observations share a cell more often than far ones.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

import gymnasium as gym
import numpy as np

from ray.rllib.algorithms.algorithm_config import NotProvided

from rlfrontier import replay

# The config field, the result key of the bonus metrics and the Algorithm state key.
FIELD = "bonus"
RESULTS = "bonus"
STATE = "exploration_bonus"
# Metric names under RESULTS.
INTRINSIC_MEAN = "intrinsic_reward_mean"
CELLS = "cells_visited"
# The per-transition column a count bonus stores: the cell of the next observation.
CELL = "bonus_cell"
# Hashes of the count bonus.
EXACT, SIMHASH, GRID, AUTO = "exact", "simhash", "grid", "auto"
# auto picks the grid for bounded boxes of at most this many dimensions.
GRID_MAX_DIMS = 4


class Bonus:
    """An intrinsic reward for replayed transitions; subclasses set `kind`.

    Columns are replay's (rlfrontier.replay): OBS, ACTIONS, REWARDS, NEXT_OBS,
    TERMINATEDS with a leading shape L ([N] when observing, [B, n] for a
    replayed window), plus what `observe` returned, stored per transition.
    """

    kind: ClassVar[str]
    # Per-transition columns `observe` stores for the bonus's own use (not sent to learners).
    private_columns: ClassVar[tuple[str, ...]] = ()
    # Whether the learners need replay.STEP_NEXT_OBS in n-step batches.
    needs_step_next_obs: ClassVar[bool] = False

    @classmethod
    def module_spec(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Learner-only modules the bonus trains beside the policy ({module_id: RLModuleSpec}; none by default)."""
        return {}

    def attach(self, learner_group) -> None:
        """Called once, when the Algorithm's learners exist."""

    def before_update(self, learner_group) -> None:
        """Called before each learner update (e.g. to write statistics into the learners' modules)."""

    def after_update(self, learner_group) -> None:
        """Called after each learner update and after a restore (e.g. to fetch the trained module's weights)."""

    def observe(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Takes N new transitions into the bonus's statistics; returns per-transition columns to store ([N, ...])."""
        return {}

    def intrinsic(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The intrinsic reward of each transition, shape L."""
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        """Figures for the result's RESULTS section (beside the intrinsic mean the hook logs)."""
        return {}

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        pass

    def rebind(self, buffer) -> None:
        """After `set_state` on a running Algorithm (e.g. a PBT exploit): make what `observe`
        stored in `buffer` (rlfrontier.replay.TransitionReplayBuffer) agree with the restored state."""


def _positive(kind: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"bonus {kind} {key}={value!r} must be a positive number")
    return float(value)


def bounded_box(space: gym.Space | None) -> bool:
    """A Box with finite bounds in every dimension (what the grid hash needs)."""
    return (isinstance(space, gym.spaces.Box) and bool(np.all(np.isfinite(space.low)))
            and bool(np.all(np.isfinite(space.high))))


def is_discrete_space(space: gym.Space) -> bool:
    """Observations an exact count suits: discrete spaces and integer boxes."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return True
    return isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.integer)


class CountBonus(Bonus):
    """beta / sqrt(n(phi(s'))), n the visits to the next observation's cell so far (Tang et al. 2017).

    Settings:
        beta: the bonus of a cell visited once.
        hash: "exact" (every distinct observation its own cell), "simhash"
            (k sign bits of a fixed Gaussian projection), "grid" (`bins`
            equal bins per dimension between the observation space's bounds),
            or "auto": exact for discrete and integer observations, grid for
            bounded boxes of at most 4 dimensions, simhash for the others.
        bits: k, the SimHash code length (Tang et al. use 64-256 on their tasks;
            more bits, finer cells).
        bins: bins per dimension of the grid.

    Why the grid for small boxes: SimHash's hyperplanes all pass through the
    origin, so in d dimensions its cells are cones around it; in 2 dimensions
    64 bits make at most 128 angular sectors, and nearby states at different
    distances share one. On MountainCar-v0 (position, velocity) a 64-bit
    SimHash met 5 cells in 18,000 env steps; 20 x 20 bins met 228 in 10,000.

    The cell of each new transition is computed once, when it is observed,
    and stored beside it in replay; a replayed transition's bonus then reads
    its cell's count at replay time, so it falls as the cell is revisited.
    """

    kind = "count"
    private_columns = (CELL,)

    def __init__(self, *, beta: float = 0.1, hash: str = AUTO, bits: int = 64, bins: int = 20,
                 observation_space: gym.Space | None = None, seed: int | None = None):
        # seed: of the SimHash projection, derived by the caller (seeding.BONUS).
        self.beta = _positive(self.kind, "beta", beta)
        if hash not in (EXACT, SIMHASH, GRID, AUTO):
            raise ValueError(
                f"bonus count hash={hash!r} is unknown: choose one of {AUTO}, {EXACT}, {SIMHASH}, {GRID}")
        for key, value in (("bits", bits), ("bins", bins)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
                raise ValueError(f"bonus count {key}={value!r} must be an integer in [1, 1024]")
        if hash == AUTO:
            if observation_space is not None and is_discrete_space(observation_space):
                hash = EXACT
            elif bounded_box(observation_space) and int(np.prod(observation_space.shape)) <= GRID_MAX_DIMS:
                hash = GRID
            else:
                hash = SIMHASH
        if hash == GRID and not bounded_box(observation_space):
            raise ValueError(f"bonus count hash='grid' needs observations in a Box with finite bounds, "
                             f"got {observation_space}")
        self.hash = hash
        self.bins = bins
        if hash == GRID:
            self._low = np.asarray(observation_space.low, dtype=np.float64).reshape(-1)
            self._width = np.asarray(observation_space.high, dtype=np.float64).reshape(-1) - self._low
        self.bits = bits
        self._seed = seed
        self._projection: np.ndarray | None = None  # [obs_dim, bits], drawn on first use
        self._ids: dict[bytes, int] = {}
        self._counts = np.zeros(1024, dtype=np.int64)

    # phi: observations to cell keys ---------------------------------------------------------
    def _flat(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        return obs.reshape(obs.shape[0], -1) if obs.ndim > 1 else obs.reshape(-1, 1)

    def codes(self, obs: np.ndarray) -> np.ndarray:
        """Each observation's cell key as a row of bytes, [N, bytes] uint8."""
        flat = self._flat(obs)
        if self.hash == EXACT:
            return np.ascontiguousarray(flat).view(np.uint8).reshape(flat.shape[0], -1)
        if self.hash == GRID:
            scaled = (flat.astype(np.float64) - self._low) / np.where(self._width > 0, self._width, 1.0)
            index = np.clip(np.floor(np.nan_to_num(scaled * self.bins, nan=-1.0)), -1, self.bins - 1)
            # Out-of-bounds values fall in the end bins; a nan has its own bin (-1) in its dimension.
            index = np.where(np.isnan(scaled), -1, np.maximum(index, 0)).astype(np.int16)
            return np.ascontiguousarray(index).view(np.uint8).reshape(flat.shape[0], -1)
        if self._projection is None:
            rng = np.random.default_rng(self._seed)  # the run's seeding.BONUS stream
            self._projection = rng.standard_normal((flat.shape[1], self.bits)).astype(np.float32)
        return np.packbits(flat.astype(np.float32) @ self._projection > 0, axis=1)

    def cells(self, obs: np.ndarray, *, add: bool) -> np.ndarray:
        """Cell ids of observations, [N] int64; unseen cells get new ids when `add`, else -1."""
        codes = self.codes(obs)
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).reshape(-1)
        unique, inverse = np.unique(rows, return_inverse=True)
        ids = np.empty(len(unique), dtype=np.int64)
        for i, key in enumerate(unique):
            key = key.tobytes()
            cell = self._ids.get(key)
            if cell is None and add:
                cell = self._ids[key] = len(self._ids)
            ids[i] = -1 if cell is None else cell
        return ids[inverse.reshape(-1)]

    # The Bonus API ----------------------------------------------------------------------------
    def _grow(self) -> None:
        if len(self._ids) > len(self._counts):
            grown = np.zeros(max(2 * len(self._counts), len(self._ids)), dtype=np.int64)
            grown[: len(self._counts)] = self._counts
            self._counts = grown

    def observe(self, columns):
        cells = self.cells(columns[replay.NEXT_OBS], add=True)
        self._grow()
        np.add.at(self._counts, cells, 1)
        return {CELL: cells}

    def rebind(self, buffer) -> None:
        # Cell ids are positions in this table: recompute the stored ones against the restored table
        # (a cell the restored run never saw gets an id with count 0, read as 1 at replay).
        stored, slots = buffer.column(CELL), buffer.stored_slots()
        if stored is None or len(slots) == 0:
            return
        stored[slots] = self.cells(buffer.column(replay.NEXT_OBS)[slots], add=True)
        self._grow()

    def counts(self, cells: np.ndarray) -> np.ndarray:
        """n of each cell id (at least 1: a replayed transition was observed)."""
        return np.maximum(self._counts[np.asarray(cells, dtype=np.int64)], 1)

    def intrinsic(self, columns):
        cells = columns.get(CELL)
        if cells is None:  # transitions from elsewhere: hash them now (unseen cells count as 1)
            next_obs = np.asarray(columns[replay.NEXT_OBS])
            lead = np.asarray(columns[replay.REWARDS]).shape
            found = self.cells(next_obs.reshape(-1, *next_obs.shape[len(lead):]), add=False)
            n = np.where(found >= 0, self.counts(np.maximum(found, 0)), 1).reshape(lead)
        else:
            n = self.counts(cells)
        return (self.beta / np.sqrt(n)).astype(np.float32)

    def metrics(self):
        return {CELLS: float(len(self._ids))}

    def get_state(self):
        keys = sorted(self._ids, key=self._ids.get)
        return {
            "kind": self.kind,
            "hash": self.hash,
            "bits": self.bits,
            "bins": self.bins,
            # The grid's bounds (a grid over another box gives the same keys to other cells).
            "grid_low": getattr(self, "_low", None),
            "grid_width": getattr(self, "_width", None),
            "keys": keys,
            "counts": self._counts[: len(keys)].copy(),
            "projection": self._projection,
        }

    def set_state(self, state):
        # The hash and the setting that shapes its cells must match.
        shape_key = {GRID: "bins", SIMHASH: "bits"}.get(self.hash)
        mine = {"hash": self.hash, **({shape_key: getattr(self, shape_key)} if shape_key else {})}
        saved = {key: state.get(key) for key in mine}
        if saved != mine:
            def text(d):
                return ", ".join(f"{k}={v!r}" for k, v in d.items())
            raise ValueError(f"bonus count state was saved with {text(saved)}; this run has {text(mine)}")
        if self.hash == GRID and state.get("grid_low") is not None and not (
                np.array_equal(state["grid_low"], self._low) and np.array_equal(state["grid_width"], self._width)):
            raise ValueError(f"bonus count state was saved with a grid over [{state['grid_low']}, "
                             f"{np.asarray(state['grid_low']) + np.asarray(state['grid_width'])}]; this run's grid "
                             f"is over [{self._low}, {self._low + self._width}]")
        keys = list(state["keys"])
        self._ids = {key: i for i, key in enumerate(keys)}
        self._counts = np.zeros(max(1024, 2 * len(keys)), dtype=np.int64)
        self._counts[: len(keys)] = np.asarray(state["counts"], dtype=np.int64)
        self._projection = state.get("projection")

    def visits(self, obs: np.ndarray) -> np.ndarray:
        """n(phi(s)) of each observation (0 for a cell never visited): for tests and inspection."""
        found = self.cells(obs, add=False)
        return np.where(found >= 0, self._counts[np.maximum(found, 0)], 0)


class RunningMeanStd:
    """Running mean and variance of a stream of arrays (Chan et al.'s parallel update), per feature."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 0.0

    def update(self, x: np.ndarray, *, max_count: float | None = None) -> None:
        """Merges the rows of x; `max_count` caps the weight of the statistics so far (None: no cap).

        With the cap, the old statistics weigh at most max_count rows, so they
        forget geometrically: about the last max_count rows count.
        """
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return
        if max_count is not None:
            self.count = min(self.count, float(max_count))
        batch_mean, batch_var, n = x.mean(axis=0), x.var(axis=0), len(x)
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total

    def get_state(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.mean, self.var = np.asarray(state["mean"]), np.asarray(state["var"])
        self.count = float(state["count"])


class RNDBonus(Bonus):
    """Random network distillation (Burda et al. 2018): beta * ||f^(s') - f(s')||^2 / std(intrinsic return).

    The target f and predictor f^ are `rlfrontier.rnd.RNDModule`, a
    learner-only module trained on the replayed next observations. The
    Algorithm keeps a copy of it, refreshed from the learners after every
    update (`after_update`), so a replayed transition's bonus comes from the
    current predictor. The observation normaliser (running mean and variance
    of every next observation, from the warm-up on) and the intrinsic-return
    normaliser live here, on the Algorithm: one for all EnvRunners; the
    former is written into every learner's module before each update.

    The intrinsic return that scales the bonus is Burda et al.'s forward
    filter, R <- gamma * R + i, non-episodic as theirs (never reset at an
    episode's end), run over the stream of transitions in the order the
    Algorithm receives them (EnvRunner chunk after chunk, where theirs runs
    per env); its running standard deviation divides the raw errors, so the
    bonus's scale does not depend on the episodes' length.

    Settings: beta (the bonus coefficient), gamma (of the intrinsic return),
    hidden_sizes, embedding_dim, lr (the predictor's), obs_clip, return_window.

    return_window (None: the paper's lifetime statistics): the intrinsic-
    return normaliser weighs its statistics so far as at most this many
    transitions, so it forgets the early ones geometrically. Why: with the
    lifetime statistics the standard deviation stays that of the first
    transitions, when every error is the untrained predictor's. On DeepSea N =
    20 (one-hot observations) the predictor then fits visited cells to errors
    ~1e-5 and novel cells sit at ~1e-3, while the lifetime std falls only from
    0.44 to 0.07 over 10,000 episodes: the bonus of a never-visited cell was
    ~0.001-0.004 with beta 1, below soft_q's temperature (0.05) and of the
    order of a right move's cost (0.0005), so it steered nothing (seed 0: all
    episodes bad to 3,016). With return_window=1000 the std fell to its floor
    (1e-4) within ~20 iterations, novel cells got bonuses ~1-5, and soft_q +
    rnd (beta 1) solved N = 20 by bsuite's criterion on seeds 0, 1, 2 at
    1,888, 8,392 and 2,968 episodes (lifetime statistics, beta 1: seed 0 not
    within 10,000, seed 2 all bad to 10,032). Once at the floor the bonus is
    beta * error / 1e-4, a fixed rescaling: the lifetime statistics with beta
    2000 instead solved the same seeds at 920, 864 and 816.
    """

    kind = "rnd"
    needs_step_next_obs = True

    def __init__(self, *, beta: float = 1.0, gamma: float = 0.99, hidden_sizes: list[int] | None = None,
                 embedding_dim: int = 32, lr: float = 1e-3, obs_clip: float = 5.0,
                 return_window: int | None = None,
                 observation_space: gym.Space | None = None, seed: int | None = None):
        from rlfrontier import rnd

        self.beta = _positive(self.kind, "beta", beta)
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 <= gamma < 1:
            raise ValueError(f"bonus rnd gamma={gamma!r} must be a number in [0, 1)")
        self.gamma = float(gamma)
        hidden_sizes = rnd.DEFAULTS["hidden_sizes"] if hidden_sizes is None else hidden_sizes
        if not isinstance(hidden_sizes, (list, tuple)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden_sizes
        ):
            raise ValueError(f"bonus rnd hidden_sizes={hidden_sizes!r} must be a list of positive integers")
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"bonus rnd embedding_dim={embedding_dim!r} must be a positive integer")
        self.model_config = {"hidden_sizes": list(hidden_sizes), "embedding_dim": embedding_dim,
                             "lr": _positive(self.kind, "lr", lr), "obs_clip": _positive(self.kind, "obs_clip", obs_clip)}
        if return_window is not None and (isinstance(return_window, bool) or not isinstance(return_window, int)
                                          or return_window < 1):
            raise ValueError(f"bonus rnd return_window={return_window!r} must be a positive integer or None")
        self.return_window = return_window
        self.observation_space = observation_space
        self._seed = seed
        self.obs_stats: RunningMeanStd | None = None
        self.return_stats = RunningMeanStd()
        self._running_return = 0.0
        self._module = None  # the Algorithm's copy of the learners' RNDModule
        self.last_loss: float | None = None

    # The module beside the policy ------------------------------------------------------------
    @classmethod
    def module_spec(cls, settings: Mapping[str, Any]):
        """The learner-only RLModuleSpec (spaces: the policy's) for these settings."""
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec

        from rlfrontier import rnd

        bonus = cls(**settings)
        return {rnd.MODULE_ID: RLModuleSpec(module_class=rnd.RNDModule, model_config=bonus.model_config,
                                            learner_only=True)}

    def attach(self, learner_group) -> None:
        """Builds the Algorithm's copy of the learners' module (same target, same predictor)."""
        from rlfrontier import rnd

        if self.observation_space is None:
            raise ValueError("bonus rnd needs the env's observation space")
        self._module = rnd.RNDModule(observation_space=self.observation_space, action_space=None,
                                     model_config=self.model_config)
        self._module.eval()
        self.obs_stats = RunningMeanStd((self._module.obs_dim,))
        self.after_update(learner_group)

    def before_update(self, learner_group) -> None:
        from rlfrontier import rnd

        mean, var = self.obs_stats.mean.astype(np.float32), self.obs_stats.var.astype(np.float32)
        self._module.set_obs_stats(mean, var)

        def write(learner):
            learner.module[rnd.MODULE_ID].unwrapped().set_obs_stats(mean, var)

        learner_group.foreach_learner(write)

    def after_update(self, learner_group) -> None:
        from rlfrontier import rnd

        import torch

        weights = learner_group.get_weights(module_ids=[rnd.MODULE_ID])[rnd.MODULE_ID]
        # Strict: a copy that silently kept some random weights would give wrong bonuses.
        self._module.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()}, strict=True)

    # The Bonus API --------------------------------------------------------------------------
    def _errors(self, next_obs: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.as_tensor(np.asarray(next_obs, dtype=np.float32).reshape(len(next_obs), -1))
            return self._module.errors(x).numpy()

    def observe(self, columns):
        next_obs = np.asarray(columns[replay.NEXT_OBS], dtype=np.float32)
        flat = next_obs.reshape(len(next_obs), -1)
        self.obs_stats.update(flat)
        self._module.set_obs_stats(self.obs_stats.mean.astype(np.float32), self.obs_stats.var.astype(np.float32))
        errors = self._errors(flat)
        returns = np.empty(len(flat))
        running = self._running_return
        for i, error in enumerate(errors.tolist()):
            running = self.gamma * running + error
            returns[i] = running
        self._running_return = running
        self.return_stats.update(returns, max_count=self.return_window)
        return {}

    def intrinsic(self, columns):
        next_obs = np.asarray(columns[replay.NEXT_OBS])
        lead = np.asarray(columns[replay.REWARDS]).shape
        flat = next_obs.reshape(int(np.prod(lead)), -1)
        slots = columns.get(replay.INDEXES)
        if slots is not None:  # a slot recurs across overlapping n-step windows: one forward pass per slot
            unique, first, inverse = np.unique(np.asarray(slots).reshape(-1), return_index=True, return_inverse=True)
            errors = self._errors(flat[first])[inverse.reshape(-1)].reshape(lead)
        else:
            errors = self._errors(flat).reshape(lead)
        return (self.beta * errors / np.sqrt(self.return_stats.var + 1e-8)).astype(np.float32)

    def metrics(self):
        return {"intrinsic_return_std": float(np.sqrt(self.return_stats.var))}

    def get_state(self):
        return {"kind": self.kind,
                "obs_stats": None if self.obs_stats is None else self.obs_stats.get_state(),
                "return_stats": self.return_stats.get_state(),
                "running_return": self._running_return}

    def set_state(self, state):
        if state.get("obs_stats") is not None and self.obs_stats is not None:
            self.obs_stats.set_state(state["obs_stats"])
        self.return_stats.set_state(state["return_stats"])
        self._running_return = float(state.get("running_return", 0.0))


BONUSES: dict[str, type[Bonus]] = {cls.kind: cls for cls in (CountBonus, RNDBonus)}


def settings_of(kind: str, kinds: Mapping[str, type[Bonus]] | None = None) -> list[str]:
    """The settings a user may give a kind (what its constructor takes, less what the runtime supplies).

    `kinds`: an algorithm's own classes for the kinds (default BONUSES; PPO's rnd takes more settings).
    """
    import inspect

    return [p for p in inspect.signature((kinds or BONUSES)[kind].__init__).parameters
            if p not in ("self", "observation_space", "seed")]


def kind_of(spec: Any) -> str:
    """The kind a `bonus` mapping names; ValueError naming a bad one."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"bonus must be a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in BONUSES:
        raise ValueError(f"bonus type {kind!r} is unknown: choose one of {', '.join(sorted(BONUSES))}")
    return kind


def build(spec: Mapping[str, Any] | None, *, observation_space: gym.Space | None = None,
          seed: int | None = None, kinds: Mapping[str, type[Bonus]] | None = None) -> Bonus | None:
    """The bonus a `bonus` mapping describes (None: none); ValueError naming the bad kind, key or value.

    `kinds`: an algorithm's own classes for the kinds (default BONUSES).
    """
    if spec is None:
        return None
    kind = kind_of(spec)
    kinds = kinds or BONUSES
    params = {k: v for k, v in spec.items() if k != "type"}
    allowed = settings_of(kind, kinds)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"bonus {kind} has no setting {', '.join(map(repr, unknown))}: it takes {', '.join(allowed)}"
        )
    return kinds[kind](**params, observation_space=observation_space, seed=seed)


class BonusFields:
    """Config mixin: the `bonus` field, checked by `validate()`.

    Put it before the AlgorithmConfig base: `class C(BonusFields, SomeConfig)`.
    An algorithm whose bonuses take other settings names its own classes in
    `bonus_kinds` (None: BONUSES).
    """

    bonus_kinds: ClassVar[Mapping[str, type[Bonus]] | None] = None

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.bonus: dict[str, Any] | None = None

    def training(self, *, bonus=NotProvided, **kwargs):
        if bonus is not NotProvided:
            self.bonus = bonus
        return super().training(**kwargs)

    def validate(self) -> None:
        build(self.bonus, kinds=self.bonus_kinds)  # ValueError names the bad part
        super().validate()

    def bonus_module_specs(self) -> dict[str, Any]:
        """The learner-only modules of the configured bonus ({} without one)."""
        if not self.bonus:
            return {}
        settings = {k: v for k, v in self.bonus.items() if k != "type"}
        return (self.bonus_kinds or BONUSES)[kind_of(self.bonus)].module_spec(settings)

    def get_multi_rl_module_spec(self, *, inference_only: bool = False, **kwargs):
        from rlfrontier.modules import add_beside_policy

        spec = super().get_multi_rl_module_spec(inference_only=inference_only, **kwargs)
        extra = self.bonus_module_specs()
        return add_beside_policy(spec, extra, inference_only=inference_only,
                                 owner=f"bonus {self.bonus.get('type')}" if extra else "")


def env_observation_space(algo) -> gym.Space | None:
    """One env's observation space, as the EnvRunners report it (what replayed observations are)."""
    from ray.rllib.env import INPUT_ENV_SINGLE_SPACES

    spaces = getattr(algo, "spaces", None) or {}
    return spaces[INPUT_ENV_SINGLE_SPACES][0] if INPUT_ENV_SINGLE_SPACES in spaces else None


class BonusState:
    """Algorithm mixin: the bonus's statistics in the Algorithm's state, hence its checkpoints.

    `class A(BonusState, Algorithm)`; the algorithm keeps its replay hook
    (rlfrontier.rewards.ReplayRewardHook) as `self._reward_hook` and its
    buffer as `self.replay_buffer`. A checkpoint of another kind of bonus is
    refused (ValueError naming both); one without a bonus state leaves the
    bonus fresh (fine-tuning from a run without one), and a bonus state is
    ignored by a run without a bonus.
    """

    def _bonus(self) -> Bonus | None:
        hook = getattr(self, "_reward_hook", None)
        return None if hook is None else hook.bonus

    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        bonus = self._bonus()
        if bonus is not None and self._check_component(STATE, components, not_components):
            state[STATE] = bonus.get_state()
        return state

    def set_state(self, state) -> None:
        super().set_state({k: v for k, v in state.items() if k != STATE})
        bonus = self._bonus()
        if bonus is None or STATE not in state:
            return
        saved_kind = state[STATE].get("kind")
        if saved_kind != bonus.kind:
            raise ValueError(f"the checkpoint's exploration bonus is {saved_kind!r}; this run's is {bonus.kind!r}")
        bonus.set_state(state[STATE])
        bonus.after_update(self.learner_group)  # the learners' restored modules
        buffer = getattr(self, "replay_buffer", None)
        if buffer is not None and len(buffer):
            bonus.rebind(buffer)
