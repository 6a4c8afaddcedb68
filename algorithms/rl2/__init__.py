from rlfrontier.algorithms.rl2.rl2 import RL2, RL2Config, RL2EnvRunner

__all__ = ["RL2", "RL2Config", "RL2EnvRunner"]
