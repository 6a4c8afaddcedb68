from rlfrontier.algorithms.pearl.pearl import PEARL, PEARLConfig

__all__ = ["PEARL", "PEARLConfig"]
