from rlfrontier.algorithms.gcl.gcl import GCL, GCLConfig

__all__ = ["GCL", "GCLConfig"]
