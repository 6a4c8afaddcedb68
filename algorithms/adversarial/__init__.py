from rlfrontier.algorithms.adversarial.adversarial import (
    AIRL,
    GAIL,
    AIRLConfig,
    Adversarial,
    AdversarialConfig,
    GAILConfig,
)

__all__ = ["AIRL", "AIRLConfig", "Adversarial", "AdversarialConfig", "GAIL", "GAILConfig"]
