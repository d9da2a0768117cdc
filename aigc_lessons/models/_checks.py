"""Input checks shared by the models: clear errors at the public boundary."""

from __future__ import annotations

import torch


def check_latent(z: torch.Tensor, latent_dim: int, who: str) -> None:
    """Raise a clear error unless ``z`` has shape ``(B, latent_dim)``."""
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(
            f"{who} expects noise of shape (batch, {latent_dim}), got {tuple(z.shape)}. "
            f"Draw it with torch.randn(batch, {latent_dim})."
        )


def check_images(images: torch.Tensor, image_shape: tuple[int, ...], who: str) -> None:
    """Raise a clear error unless ``images`` has shape ``(B, *image_shape)``."""
    if images.dim() != len(image_shape) + 1 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{who} expects images of shape (batch, {', '.join(map(str, image_shape))}), "
            f"got {tuple(images.shape)}."
        )


def check_labels(labels: torch.Tensor, batch: int, num_classes: int, who: str) -> None:
    """Raise a clear error unless ``labels`` are ``batch`` integers in ``[0, num_classes)``."""
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(f"{who} expects labels of shape ({batch},), got {tuple(labels.shape)}.")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"{who} expects integer class labels, got dtype {labels.dtype}.")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{who} got label values in [{int(labels.min())}, {int(labels.max())}]; "
            f"labels must be class indices in [0, {num_classes - 1}]."
        )
