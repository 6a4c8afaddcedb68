from rlfrontier.algorithms.bc.bc import BC, BCConfig

__all__ = ["BC", "BCConfig"]
