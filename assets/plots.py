"""Pictures for asset metadata (matplotlib, Agg backend), returned as PNG bytes."""

import io
from typing import Mapping, Sequence



def line_plot_png(series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, title: str, log_y: bool = False) -> bytes:
    # imported here: matplotlib costs ~0.5 s at start-up, and only the stages that draw need it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
