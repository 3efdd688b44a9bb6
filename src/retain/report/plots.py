"""Matplotlib figures for continual-learning runs (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from retain.metrics import RunResult  # noqa: E402


def plot_matrix(result: RunResult, title: str, path: Path) -> Path:
    """Heatmap of the accuracy matrix: row i = after experience i, column j = tested on j."""
    R = np.asarray(result.accuracy_matrix)
    T = R.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * T, 0.8 + 0.6 * T))
    cmap = "viridis" if result.higher_is_better else "viridis_r"
    im = ax.imshow(R, cmap=cmap, vmin=0 if result.higher_is_better else None,
                   vmax=1 if result.higher_is_better else None)
    if T <= 12:
        for i in range(T):
            for j in range(T):
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="w" if (R[i, j] < 0.5) == result.higher_is_better else "k")
    ax.set_xlabel("tested on experience")
    ax.set_ylabel("after training experience")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=result.metric)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(results: dict[str, RunResult], path: Path) -> Path:
    """Average score over the experiences seen so far, after each experience, per strategy."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, r in results.items():
        R = np.asarray(r.accuracy_matrix)
        seen = [R[i, : i + 1].mean() for i in range(R.shape[0])]
        ax.plot(range(1, len(seen) + 1), seen, marker="o", label=name)
    first = next(iter(results.values()))
    ax.set_xlabel("experiences trained")
    ax.set_ylabel(f"mean {first.metric} on experiences seen")
    if first.higher_is_better:
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gap(result: RunResult, title: str, path: Path) -> Path:
    """The per-step curve of ``eval_every``: the score on each seen experience against the
    training step, with the experience boundaries; the dips after them are the stability
    gap."""
    C = np.asarray(result.curve)
    steps = np.asarray(result.curve_steps)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for j in range(C.shape[1]):
        ax.plot(steps, C[:, j], lw=1.2, label=f"experience {j}")
    ends = [s for s, i, n in zip(steps, result.curve_training,
                                 [*result.curve_training[1:], None], strict=True) if n != i]
    for end in ends[:-1]:
        ax.axvline(end, color="grey", lw=0.6, ls="--")
    ax.set_xlabel("training step")
    ax.set_ylabel(result.metric)
    if result.higher_is_better:
        ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
