"""rllib-frontier: deep RL beyond reward maximisation on Ray RLlib, Tune and MLflow."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# The top-level algorithms/ folder is installed as rlfrontier.algorithms
# (pyproject.toml, package-dir). When this package is imported straight from
# a source checkout instead - a Ray job whose working directory is the
# checkout puts it first on sys.path, ahead of the shipped wheel - the
# mapping is absent; point the subpackage search at the checkout's root so
# that rlfrontier.algorithms is that folder here too.
_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "algorithms").is_dir() and (_checkout / "algorithms" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 - the package's own __path__
