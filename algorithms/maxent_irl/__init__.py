from rlfrontier.algorithms.maxent_irl.maxent_irl import MaxEntIRL, MaxEntIRLConfig

__all__ = ["MaxEntIRL", "MaxEntIRLConfig"]
