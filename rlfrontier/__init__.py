"""rllib-frontier: deep RL beyond reward maximisation on Ray RLlib, Tune and MLflow."""

__version__ = "0.1.0"
