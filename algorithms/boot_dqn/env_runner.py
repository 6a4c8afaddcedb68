"""The EnvRunner of bootstrapped DQN: RLlib's single-agent one, with its own head-picker stream."""

from __future__ import annotations

from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rlfrontier.algorithms.boot_dqn.connectors import BootstrapHeadPicker, head_picker_seed


class BootDQNEnvRunner(SingleAgentEnvRunner):
    """Seeds its BootstrapHeadPicker from the run's seed, its worker index and whether it evaluates.

    In RLlib 2.60 the env-to-module factory gets (env, spaces, device) and the
    connector's calls get episodes, module and metrics: none names the
    EnvRunner. The EnvRunner itself knows (`worker_index`,
    `config.in_evaluation`), so it hands the picker its stream once built.
    """

    def __init__(self, *, config, **kwargs):
        super().__init__(config=config, **kwargs)
        seed = head_picker_seed(self.config.seed, worker_index=self.worker_index,
                                in_evaluation=self.config.in_evaluation)
        for piece in self._env_to_module.connectors:
            if isinstance(piece, BootstrapHeadPicker):
                piece.reseed(seed)
