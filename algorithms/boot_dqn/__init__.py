from rlfrontier.algorithms.boot_dqn.boot_dqn import BootDQN, BootDQNConfig

__all__ = ["BootDQN", "BootDQNConfig"]
