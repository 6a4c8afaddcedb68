from rlfrontier.algorithms.maml.maml import MAML, MAMLConfig

__all__ = ["MAML", "MAMLConfig"]
