"""Seeds for every random purpose of a run, derived from the run's one seed.

One seed per run is what a user sets; each consumer of randomness (the replay
sampler, the bootstrap masks, each EnvRunner's head picker, an env's hidden
mapping) gets its own independent stream from it, so that no two purposes
share a stream and no two EnvRunners draw the same sequence.
"""

from __future__ import annotations

import zlib

import numpy as np

# Purposes, named once here.
REPLAY = "replay"
BOOTSTRAP_MASKS = "bootstrap_masks"
HEAD_PICKER = "head_picker"
ENV_MAPPING = "env_mapping"
BONUS = "exploration_bonus"


def derive_seed(seed: int | None, purpose: str, index: int = 0) -> int | None:
    """A 32-bit seed for `purpose` (and e.g. an EnvRunner `index`) from the run's `seed`.

    None stays None (fresh OS entropy for every purpose). Different purposes or
    indexes give independent streams (numpy SeedSequence spawn keys).
    """
    if seed is None:
        return None
    key = zlib.crc32(purpose.encode())
    return int(np.random.SeedSequence(entropy=int(seed), spawn_key=(key, int(index))).generate_state(1)[0])


def rng(seed: int | None, purpose: str, index: int = 0) -> np.random.Generator:
    """A numpy Generator of its own for `purpose`."""
    return np.random.default_rng(derive_seed(seed, purpose, index))
