"""The project's figures' shared frame: matplotlib without a display, one size, one finish."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def figure(path: Path, *, title: str, xlabel: str, ylabel: str):
    """Yields the axes of a 6 x 4 inch figure; on exit labels it, adds grid and legend and writes `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
