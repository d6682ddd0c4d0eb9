"""The one way se_edge draws a figure: matplotlib without a display, written atomically as a PNG."""
from __future__ import annotations

from pathlib import Path


def subplots(*args, **kwargs):
    """matplotlib's `plt.subplots` on the Agg backend (no display needed; matplotlib imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save(fig, path: str | Path) -> str:
    """Lay `fig` out, write it to `path` as a PNG (atomically, with the user's umask) and close it."""
    import matplotlib.pyplot as plt

    from se_edge.io import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return str(path)
