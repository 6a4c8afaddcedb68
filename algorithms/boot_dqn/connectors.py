"""Per-episode posterior sampling: which Q-head an episode acts with."""

from __future__ import annotations

from typing import Any

import numpy as np

from ray.rllib.connectors.connector_v2 import ConnectorV2

from rlfrontier import seeding

# Batch column and episode custom_data key.
BOOTSTRAP_HEAD = "bootstrap_head"

# Evaluation EnvRunners number their head-picker streams from here, so that no
# evaluation EnvRunner draws the sequence of the training EnvRunner with its index.
EVALUATION_STREAM_OFFSET = 1 << 20


def head_picker_seed(seed: int | None, *, worker_index: int | None, in_evaluation: bool) -> int | None:
    """The head-picker seed of one EnvRunner: its own stream of the run's `seed`.

    Args:
        seed: the run's seed (config.seed); None gives fresh entropy.
        worker_index: the EnvRunner's index (0 or None: the local one).
        in_evaluation: whether it is an evaluation EnvRunner.
    """
    index = int(worker_index or 0) + (EVALUATION_STREAM_OFFSET if in_evaluation else 0)
    return seeding.derive_seed(seed, seeding.HEAD_PICKER, index)


class BootstrapHeadPicker(ConnectorV2):
    """Env-to-module piece: draws a head uniformly when an episode starts, keeps it to the end.

    The head lives in the episode's custom_data, which RLlib carries across
    the chunks of an episode that spans several `sample()` calls, and goes to
    the RLModule as the batch column BOOTSTRAP_HEAD. One head per episode is
    what makes the exploration deep: a whole episode follows one plausible
    value function instead of dithering step by step.

    Each EnvRunner needs a stream of its own (else all draw the same heads):
    the connector factory does not learn its EnvRunner's index, so
    BootDQNEnvRunner calls `reseed` once it is built.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, num_heads: int,
                 seed: int | None = None, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.num_heads = int(num_heads)
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Starts the head draws over from `seed` (see head_picker_seed)."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, explore=None, shared_data=None,
                 **kwargs) -> Any:
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=True):
            head = episode.custom_data.get(BOOTSTRAP_HEAD)
            if head is None:
                head = int(self._rng.integers(self.num_heads))
                episode.custom_data[BOOTSTRAP_HEAD] = head
            self.add_batch_item(batch, BOOTSTRAP_HEAD, head, single_agent_episode=episode)
        return batch
