"""Plotting helpers: image grids, loss curves and sample snapshots over training.

Every function draws on a matplotlib ``Axes`` (created when not given) and
returns it, so notebooks can combine, caption and label figures.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid


def image_grid(
    images: torch.Tensor,
    nrow: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
    padding: int = 2,
) -> torch.Tensor:
    """Tile ``(N, C, H, W)`` images into one ``(H', W')`` or ``(H', W', 3)`` array in ``[0, 1]``.

    Example:
        >>> image_grid(torch.zeros(4, 1, 28, 28), nrow=2).shape
        torch.Size([62, 62])
    """
    if images.dim() != 4:
        raise ValueError(f"image_grid expects (N, C, H, W) images, got shape {tuple(images.shape)}")
    low, high = value_range
    scaled = ((images.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    grid = make_grid(scaled, nrow=nrow, padding=padding, pad_value=1.0)
    return grid[0] if images.shape[1] == 1 else grid.permute(1, 2, 0)


def show_images(
    images: torch.Tensor,
    nrow: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Show a grid of images (no axis ticks: pixels have no units)."""
    if ax is None:
        size = min(8.0, 0.9 * nrow)
        _, ax = plt.subplots(figsize=(size, size * max(1, len(images) // nrow) / nrow + 0.3))
    ax.imshow(image_grid(images, nrow, value_range), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_losses(
    history,
    keys: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Axes:
    """Plot loss curves from a ``History`` (x: training step, y: loss)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    keys = keys or sorted({k for row in history.rows for k in row if k not in ("epoch", "step")})
    for key in keys:
        steps = [row["step"] for row in history.rows if key in row]
        ax.plot(steps, history.series(key), label=key)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (mean over logging interval)")
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def show_snapshots(
    snapshots: Sequence[tuple[int, torch.Tensor]],
    count: int = 16,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> plt.Figure:
    """One row per snapshot: the same fixed noise decoded after each listed epoch."""
    fig, axes = plt.subplots(len(snapshots), 1, figsize=(count * 0.55, 0.75 * len(snapshots) + 0.3), squeeze=False)
    for ax, (epoch, images) in zip(axes[:, 0], snapshots):
        ax.imshow(image_grid(images[:count], nrow=count, value_range=value_range), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"epoch {epoch}", rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig
