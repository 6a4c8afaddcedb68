"""Helpers of the learner glue tests: in-process learners (no Ray) and real replay batches.

A learner is built from its algorithm config and a real env's spaces
(`config.build_learner(env=...)`, then `learner.build()`); a batch holds the
columns rlfrontier.replay's `sample` returns for n_step=1, built from steps of
the real env.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rlfrontier import offpolicy, replay

MID = DEFAULT_MODULE_ID


@contextlib.contextmanager
def single_torch_thread():
    """One intra-op thread: on a shared 2-core machine torch's default thread
    pool makes a tiny update about 20x slower (150 vs 7 ms measured here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_learner(config, env: gym.Env):
    """The config's learner, built in this process for `env`'s spaces."""
    learner = config.build_learner(env=env)
    learner.build()
    return learner


def env_transitions(env: gym.Env, num_steps: int, *, gamma: float, seed: int) -> dict[str, np.ndarray]:
    """`num_steps` one-step transitions of `env` under uniformly random actions.

    Returns the replay columns OBS, ACTIONS, REWARDS, NEXT_OBS and DISCOUNTS
    (gamma * (1 - terminated); a truncated step keeps its bootstrap) as the
    buffer returns them for n_step=1, WEIGHTS drawn in [0.5, 1.5] (so that a
    test sees whether they are applied) and INDEXES distinct buffer slots.
    """
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list] = {k: [] for k in (replay.OBS, replay.ACTIONS, replay.REWARDS, replay.NEXT_OBS,
                                             replay.DISCOUNTS)}
    for _ in range(num_steps):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows[replay.OBS].append(obs)
        rows[replay.ACTIONS].append(action)
        rows[replay.REWARDS].append(reward)
        rows[replay.NEXT_OBS].append(next_obs)
        rows[replay.DISCOUNTS].append(0.0 if terminated else gamma)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    batch = {
        replay.OBS: np.asarray(rows[replay.OBS], dtype=np.float32),
        replay.ACTIONS: np.asarray(rows[replay.ACTIONS], dtype=np.int64),
        replay.REWARDS: np.asarray(rows[replay.REWARDS], dtype=np.float32),
        replay.NEXT_OBS: np.asarray(rows[replay.NEXT_OBS], dtype=np.float32),
        replay.DISCOUNTS: np.asarray(rows[replay.DISCOUNTS], dtype=np.float32),
        replay.WEIGHTS: rng.uniform(0.5, 1.5, num_steps).astype(np.float32),
        replay.INDEXES: rng.permutation(10 * num_steps)[:num_steps].astype(np.int64),
    }
    return batch


def multi_agent(batch: dict[str, np.ndarray]) -> MultiAgentBatch:
    """What replay_training_step hands `learner_group.update(batch=...)`."""
    return MultiAgentBatch({MID: SampleBatch(dict(batch))}, env_steps=len(batch[replay.OBS]))


def tensors(batch: dict[str, np.ndarray]) -> dict[str, dict[str, torch.Tensor]]:
    """The batch as the learner's `_update` sees it: {module_id: {column: tensor}}."""
    return {MID: {k: torch.as_tensor(v) for k, v in batch.items()}}


def update(learner, batch: dict[str, np.ndarray], **kwargs) -> dict:
    """One `learner.update` on `batch` (one minibatch unless minibatch_size is given)."""
    return learner.update(batch=multi_agent(batch), **kwargs)


def loss_and_priorities(learner, batch: dict[str, np.ndarray], config=None):
    """The learner's loss on `batch` at the current weights, and the (indexes, TD errors) it logs.

    Goes through `module.forward_train` and `compute_loss_for_module` (with
    `config`, default the learner's own), then reduces the learner's metrics
    and pops the priority inputs as the training step does.
    """
    learner.metrics.reduce()  # drop what earlier calls logged
    tb = tensors(batch)
    fwd_out = learner.module.forward_train(tb)
    loss = learner.compute_loss_for_module(
        module_id=MID,
        config=config if config is not None else learner.config.get_config_for_module(MID),
        batch=tb[MID],
        fwd_out=fwd_out[MID],
    )
    results = learner.metrics.reduce()
    indexes, td_error = offpolicy.pop_priority_inputs([results])
    return loss, indexes, td_error, results


def peek(results: dict, key: str) -> Any:
    """A module metric of reduced learner results, as a Python/numpy value."""
    value = results[MID][key].peek()
    return value.item() if hasattr(value, "item") else value


def module_of(learner):
    return learner.module[MID].unwrapped()


def snapshot(net: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of `net` (weights at this moment)."""
    return copy.deepcopy(net).requires_grad_(False)


def params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
