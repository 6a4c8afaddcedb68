"""K Q-heads with randomised priors, batched as one ensemble network."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlfrontier.algorithms.boot_dqn import losses
from rlfrontier.algorithms.boot_dqn.connectors import BOOTSTRAP_HEAD

# fwd_out keys, defined once beside their owner.
Q_VALUES = "q_values"  # [K, B, A]
# Optional training-batch column: the scaled prior prior_scale * p_k(obs), [B, K, A], when the
# learner already has it (BootDQNTorchLearner's PriorMemo); absent, the module computes it.
PRIOR_Q = "prior_q"
# Optional training-batch columns (BootDQNTorchLearner, see its head_rows): each head's own rows of the
# batch, [K, M] long, and 1.0 where such a row is one the head's bootstrap mask keeps, 0.0 where padding.
HEAD_ROWS = "head_rows"
HEAD_KEEP = "head_keep"

DEFAULT_MODEL_CONFIG = {"num_heads": 10, "hidden_sizes": [64, 64], "prior_scale": 10.0, "prior_fan_in": None,
                        "zero_bias_init": True, "epsilon": 0.0}


class OneHotRows(NamedTuple):
    """A batch of one-hot rows, [B, width], by the column of each row's 1 (see one_hot_rows).

    Shared by the heads (index [B], present [1, B, 1]) or, after select_rows,
    each head's own rows (index [K, M], present [K, M, 1]).
    """

    index: torch.Tensor  # [B] (or [K, M]) long: the column of the row's 1 (0 for an all-zero row)
    present: torch.Tensor | None  # [1, B, 1] (or [K, M, 1]): 1.0 where the row has its 1, 0.0 where all zero; None: no zero row


def select_rows(x: torch.Tensor | OneHotRows, rows: torch.Tensor) -> torch.Tensor | OneHotRows:
    """Each head's own rows of a shared input: x, [B, in] or OneHotRows of B rows; rows, [K, M] long.

    Returns [K, M, in] (head k's m-th row is x[rows[k, m]]), or OneHotRows with
    index [K, M]: the networks then compute head k on its rows only.
    """
    if isinstance(x, OneHotRows):
        present = None if x.present is None else x.present.reshape(-1)[rows].unsqueeze(-1)
        return OneHotRows(x.index[rows], present)
    return torch.index_select(x, 0, rows.reshape(-1)).view(*rows.shape, x.shape[-1])


def select_head_rows(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """values, [K, B, D] (every head on every row), at each head's own rows, [K, M] -> [K, M, D]."""
    num_heads, width, depth = values.shape
    # Row rows[k, m] of head k is row k * B + rows[k, m] of the flattened values: one index_select
    # (8x faster here than gather with an expanded index).
    flat = (rows + torch.arange(num_heads, device=rows.device).unsqueeze(1) * width).reshape(-1)
    return torch.index_select(values.reshape(num_heads * width, depth), 0, flat).view(*rows.shape, depth)


def one_hot_rows(x: torch.Tensor) -> OneHotRows | None:
    """x, [B, width], as OneHotRows when every row is one-hot or all zero; None otherwise.

    Tabular observations (DeepSea's one-hot cell, all zero after the last
    step) are such rows, and for them the first layer of every head is a row
    gather (EnsembleLinear), so its cost no longer grows with the observation's
    width (N^2 on DeepSea), and the result is the matmul's exactly (it adds
    only exact zeros). The test is exact and uses float reductions only
    (comparisons to bool tensors and argmax cost ten times more here): entries
    >= 0, the row's maximum 1 (or 0), and the count of its non-zero entries,
    the sum of their signs (exact integers), 1 (or 0). CPU tensors without a
    gradient only: the test reads its answer on the host, a free read on a CPU
    and a sync on a GPU, where the dense matmul is cheap anyway.
    """
    if x.dim() != 2 or x.device.type != "cpu" or x.requires_grad or x.shape[0] == 0 or x.shape[1] >= 1 << 24:
        return None
    if float(x.amin()) < 0:
        return None
    high = x.amax(dim=1)
    if not bool(((high == 0) | (high == 1)).all()) or not torch.equal(torch.sign(x).sum(dim=1), high):
        return None
    # The one non-zero entry is 1, so x @ [0, 1, ..., width - 1] is its column exactly (an integer < 2^24).
    index = (x @ torch.arange(x.shape[1], dtype=x.dtype)).long()
    present = None if float(high.amin()) == 1 else high.view(1, -1, 1)
    return OneHotRows(index, present)


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul.

    Each head is initialised like torch.nn.Linear (uniform in +-1/sqrt(fan_in)),
    fan_in being in_dim unless given.
    """

    def __init__(self, num_heads: int, in_dim: int, out_dim: int, fan_in: int | None = None):
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in or in_dim)
        self.weight = nn.Parameter(torch.empty(num_heads, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_heads, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor | OneHotRows) -> torch.Tensor:
        """x: [B, in] (shared by the heads), [K, B, in] (each head its own rows), or OneHotRows of width in
        (index [B] shared, or [K, M] each head's own); returns [K, B, out] (or [K, M, out])."""
        if isinstance(x, OneHotRows):
            # x @ W_k is row `index` of W_k (0 for an all-zero row): a gather, not a matmul over `in`.
            if x.index.dim() == 1:
                picked = torch.index_select(self.weight, 1, x.index)  # 7x faster than weight[:, index] here
            else:  # each head's own rows, [K, M]: row index[k, m] of W_k
                picked = select_head_rows(self.weight, x.index)
            return (picked if x.present is None else picked * x.present) + self.bias
        if x.dim() == 2:  # a broadcast view, no copy; baddbmm beat einsum here
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """K MLPs with ReLU between layers; input_fan_in: the fan_in the first layer is initialised for (None: in_dim)."""

    def __init__(self, num_heads: int, in_dim: int, hidden_sizes: list[int], out_dim: int,
                 input_fan_in: int | None = None):
        super().__init__()
        sizes = [in_dim, *hidden_sizes, out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(num_heads, a, b, fan_in=input_fan_in if i == 0 else None)
                                    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def epsilon_at(schedule: float | list, t: int | None) -> float:
    """A fixed epsilon, or piecewise-linear [[t0, eps0], [t1, eps1], ...] in env steps."""
    if not isinstance(schedule, (list, tuple)):
        return float(schedule)
    ts, values = zip(*schedule)
    return float(np.interp(t if t is not None else ts[-1], ts, values))


class BootDQNTorchRLModule(TorchRLModule, QNetAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Q_k(s, .) = f_k(s, .) + prior_scale * p_k(s, .) for k < K heads.

    f is trained; p is a fixed random network of the same shape (no gradient,
    but part of the state, so EnvRunners and checkpoints hold the same prior).
    Exploring, each row acts greedily with its episode's head (the batch
    column BOOTSTRAP_HEAD, set once per episode by the env-to-module connector;
    a random head when absent), with optional epsilon-dithering on top (off by
    default; one head with epsilon is plain DQN, the baseline). In inference the
    heads vote (losses.vote).

    model_config keys: num_heads (int), hidden_sizes (list[int]), prior_scale
    (float >= 0), prior_fan_in (int or None: the fan_in the prior's first
    layer is drawn for, BootDQNConfig), zero_bias_init (bool: every layer's
    bias starts at 0), epsilon (float, or [[env_step, value], ...]).
    """

    def setup(self):
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"boot_dqn needs a Discrete action space, got {self.action_space}")
        cfg = {**DEFAULT_MODEL_CONFIG, **(self.model_config or {})}
        obs_dim = int(math.prod(self.observation_space.shape))
        self.num_heads = int(cfg["num_heads"])
        self.num_actions = int(self.action_space.n)
        hidden = list(cfg["hidden_sizes"])
        self.prior_scale = float(cfg["prior_scale"])
        self.epsilon = cfg["epsilon"]
        self.qf = EnsembleMLP(self.num_heads, obs_dim, hidden, self.num_actions)
        self.prior = EnsembleMLP(self.num_heads, obs_dim, hidden, self.num_actions,
                                 input_fan_in=cfg["prior_fan_in"]).requires_grad_(False)
        if cfg["zero_bias_init"]:
            # Zero biases at the start, as bsuite's Sonnet MLPs: the heads' and the priors' outputs are then all
            # state-dependent. With torch's uniform biases the bias path dominates a wide one-hot input's (N^2
            # cells, first weights ~1/N), so every head starts with a near-constant preference for one action
            # label in every cell, trained part and prior alike.
            with torch.no_grad():
                for net in (self.qf, self.prior):
                    for layer in net.layers:
                        layer.bias.zero_()

    def _flat_obs(self, obs: torch.Tensor) -> torch.Tensor | OneHotRows:
        """The networks' input: flat float rows, or OneHotRows when every row is one-hot (or all zero)."""
        x = obs.reshape(obs.shape[0], -1).float()
        rows = one_hot_rows(x)
        return x if rows is None else rows

    def _with_prior(self, net: nn.Module, x: torch.Tensor | OneHotRows,
                    prior: torch.Tensor | None = None) -> torch.Tensor:
        """net(x) plus the prior (computed from x unless given); x: the networks' input (_flat_obs)."""
        q = net(x)
        if prior is None:
            prior = self._prior(x)
        # Outside no_grad: the gradient flows into net.
        return q if prior is None else q + prior

    def prior_q(self, obs: torch.Tensor) -> torch.Tensor | None:
        """The fixed part of every head, prior_scale * p_k(obs), [K, B, A]; None without a prior."""
        return self._prior(self._flat_obs(obs))

    @torch.no_grad()
    def _prior(self, x: torch.Tensor | OneHotRows) -> torch.Tensor | None:
        """prior_q of the networks' input x (_flat_obs), so that it is prepared once for every pass."""
        if not self.prior_scale:
            return None
        return self.prior_scale * self.prior(x)

    def q_all(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values of every head, [K, B, A]."""
        return self._with_prior(self.qf, self._flat_obs(obs))

    # Acting -----------------------------------------------------------------
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: losses.vote(self.q_all(batch[Columns.OBS]))}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        q = self.q_all(batch[Columns.OBS])
        rows = torch.arange(q.shape[1], device=q.device)
        heads = batch.get(BOOTSTRAP_HEAD)
        if heads is None:
            heads = torch.randint(self.num_heads, (q.shape[1],), device=q.device)
        actions = q[heads.long().reshape(-1), rows].argmax(dim=-1)
        epsilon = epsilon_at(self.epsilon, kwargs.get("t"))
        if epsilon > 0:
            dither = torch.rand(actions.shape, device=q.device) < epsilon
            actions = torch.where(dither, torch.randint_like(actions, self.num_actions), actions)
        return {Columns.ACTIONS: actions}

    # Training ---------------------------------------------------------------
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """Q_VALUES, [K, B, A]; [K, M, A] on each head's own rows when the batch has HEAD_ROWS."""
        prior = batch.get(PRIOR_Q)
        if prior is not None:
            prior = prior.transpose(0, 1)  # [B, K, A] -> [K, B, A]
        x, prior = self._rows_of(self._flat_obs(batch[Columns.OBS]), prior, batch.get(HEAD_ROWS))
        return {Q_VALUES: self._with_prior(self.qf, x, prior)}

    @staticmethod
    def _rows_of(x: torch.Tensor | OneHotRows, prior: torch.Tensor | None, rows: torch.Tensor | None):
        """The input and the given prior ([K, B, A] or None) at each head's rows (all rows when None)."""
        if rows is None:
            return x, prior
        return select_rows(x, rows), None if prior is None else select_head_rows(prior, rows)

    # QNetAPI ------------------------------------------------------------------
    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_VALUES: self.q_all(batch[Columns.OBS])}

    # TargetNetworkAPI -----------------------------------------------------------
    def make_target_networks(self) -> None:
        self.target_qf = make_target_network(self.qf)

    def get_target_network_pairs(self):
        return [(self.qf, self.target_qf)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Target Q-values of every head at batch[OBS] (pass next observations), [K, B, A]."""
        return {Q_VALUES: self._with_prior(self.target_qf, self._flat_obs(batch[Columns.OBS]))}

    @torch.no_grad()
    def online_and_target_q(
        self, obs: torch.Tensor, prior: torch.Tensor | None = None, *, online: bool = True,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(online, target) Q-values of every head at `obs`, [K, B, A] each, no gradient.

        What a double-Q target needs at the next observations, with the prior
        (shared by both) computed once, or taken from `prior` ([K, B, A]) when
        given. online=False skips the online pass (a max-Q target needs only
        the target) and returns None in its place. rows ([K, M], HEAD_ROWS):
        each head at its own rows only, [K, M, A] each.
        """
        x, prior = self._rows_of(self._flat_obs(obs), prior, rows)
        target = self.target_qf(x)
        q_online = self.qf(x) if online else None
        if prior is None:
            prior = self._prior(x)
        if prior is not None:
            target = target + prior
            q_online = None if q_online is None else q_online + prior
        return q_online, target

    # InferenceOnlyAPI ---------------------------------------------------------
    def get_non_inference_attributes(self) -> list[str]:
        return ["target_qf"]
