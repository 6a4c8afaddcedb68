from rlfrontier.algorithms.soft_q.soft_q import SoftQ, SoftQConfig

__all__ = ["SoftQ", "SoftQConfig"]
