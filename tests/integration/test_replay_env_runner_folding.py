"""N-step folding on real EnvRunner chunks matches n-step returns of the reassembled episodes.

A real RLlib SingleAgentEnvRunner (built from a SoftQConfig) samples CartPole with three
vector envs, episodes truncated at 20 steps (gymnasium TimeLimit through env_config) or
terminated when the pole falls, four steps per env per sample() so that episodes cross
chunk boundaries and interleave in the ring, with autoreset. After every add, every
stored window is folded and checked against n-step returns computed here from the
episodes reassembled by id and step.
"""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rlfrontier import replay
from rlfrontier.algorithms.soft_q import SoftQConfig

GAMMA = 0.9
MAX_EPISODE_STEPS = 20
NUM_SAMPLES = 60


def sample_chunks(seed: int) -> list[list]:
    config = (
        SoftQConfig()
        .environment("CartPole-v1", env_config={"max_episode_steps": MAX_EPISODE_STEPS})
        .env_runners(num_envs_per_env_runner=3, rollout_fragment_length=4)
        .debugging(seed=seed)
    )
    runner = SingleAgentEnvRunner(config=config)
    try:
        return [runner.sample() for _ in range(NUM_SAMPLES)]
    finally:
        runner.stop()


class Episodes:
    """Full episodes reassembled from chunks by episode id and step, independently of replay.py."""

    def __init__(self):
        self.obs: dict[str, list[np.ndarray]] = {}
        self.rewards: dict[str, list[float]] = {}
        self.actions: dict[str, list[int]] = {}
        self.terminated: dict[str, bool] = {}
        self.truncated: dict[str, bool] = {}
        self.step_of_obs: dict[bytes, tuple[str, int]] = {}

    def extend(self, chunk) -> None:
        eid = chunk.id_
        obs = [np.asarray(o) for o in chunk.get_observations()]
        if eid not in self.obs:
            assert chunk.t_started == 0
            self.obs[eid], self.rewards[eid], self.actions[eid] = [obs[0]], [], []
        assert chunk.t_started == len(self.rewards[eid]), "chunks arrive in step order"
        np.testing.assert_array_equal(obs[0], self.obs[eid][-1])
        start = len(self.rewards[eid])
        for i, o in enumerate(obs[:-1]):
            key = o.tobytes()
            assert key not in self.step_of_obs or self.step_of_obs[key] == (eid, start + i)
            self.step_of_obs[key] = (eid, start + i)
        self.obs[eid].extend(obs[1:])
        self.rewards[eid].extend(float(r) for r in chunk.get_rewards())
        self.actions[eid].extend(int(a) for a in chunk.get_actions())
        self.terminated[eid] = bool(chunk.is_terminated)
        self.truncated[eid] = bool(chunk.is_truncated)

    def expected_window(self, eid: str, t: int, *, n_step: int, stored: set) -> dict:
        k = 1
        while k < n_step and (eid, t + k) in stored:
            k += 1
        end = t + k
        terminal = self.terminated[eid] and end == len(self.rewards[eid])
        return {
            replay.REWARDS: sum(GAMMA**j * self.rewards[eid][t + j] for j in range(k)),
            replay.NEXT_OBS: self.obs[eid][end],
            replay.DISCOUNTS: 0.0 if terminal else GAMMA**k,
            replay.ACTIONS: self.actions[eid][t],
            # (s_{t+j}, gamma^j) inside the window, (None, 0) outside.
            "intermediate": [(self.obs[eid][t + j], GAMMA**j) if j < k else (None, 0.0) for j in range(1, n_step)],
        }


@pytest.mark.parametrize("seed", [0, 1])
def test_folded_samples_match_n_step_returns_of_reassembled_episodes(seed):
    samples = sample_chunks(seed)
    cases = [(n_step, capacity) for n_step in (1, 3, 5) for capacity in (10_000, 37)]
    buffers = {
        case: replay.TransitionReplayBuffer(capacity=case[1], n_step=case[0], gamma=GAMMA) for case in cases
    }
    episodes = Episodes()
    checked = 0
    for chunks in samples:
        for chunk in chunks:
            episodes.extend(chunk)
        rows = replay.transitions_from_episodes(chunks)
        for (n_step, capacity), buffer in buffers.items():
            buffer.add(rows)
            batch = buffer.fold(np.arange(len(buffer)))
            steps = [episodes.step_of_obs[o.tobytes()] for o in batch[replay.OBS]]
            stored = set(steps)
            for row, (eid, t) in enumerate(steps):
                expected = episodes.expected_window(eid, t, n_step=n_step, stored=stored)
                assert batch[replay.REWARDS][row] == pytest.approx(expected[replay.REWARDS], rel=1e-5, abs=1e-5)
                assert batch[replay.DISCOUNTS][row] == pytest.approx(expected[replay.DISCOUNTS], rel=1e-6)
                assert batch[replay.ACTIONS][row] == expected[replay.ACTIONS]
                np.testing.assert_array_equal(batch[replay.NEXT_OBS][row], expected[replay.NEXT_OBS])
                for j, (obs, discount) in enumerate(expected["intermediate"]):
                    assert batch[replay.INTERMEDIATE_DISCOUNTS][row, j] == pytest.approx(discount, rel=1e-6)
                    if obs is not None:
                        np.testing.assert_array_equal(batch[replay.INTERMEDIATE_OBS][row, j], obs)
                checked += 1
    # The run exercised what the folding must handle.
    assert any(episodes.terminated.values()) and any(episodes.truncated.values())
    crossing = [eid for eid, r in episodes.rewards.items() if len(r) > 4]
    assert crossing, "some episodes span several chunks"
    assert checked > 10_000
