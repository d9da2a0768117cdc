"""How a generator is sampled for evaluation: ``sample_for_evaluation(count, generator)``.

Every generator class of the book has this method; it returns ``count`` images
in ``[0, 1]`` on the CPU and, for a conditional model, the labels it asked for
(``0, 1, ..., 9, 0, 1, ...``), drawing all its noise from ``generator`` (a
``torch.Generator``). :func:`aigc_lessons.metrics.sample_pretrained` and the
evaluation chapter's table use it, so a new family's generator needs no entry
in any table: the method is how the metrics recognise a generator.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def noise_to_unit_images(model: nn.Module, count: int, generator: torch.Generator | None, conditional: bool
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``z ~ N(0, I)`` (and labels ``i % 10``) through a tanh generator, rescaled from [-1, 1] to [0, 1]."""
    device = next(model.parameters()).device
    z = torch.randn(count, model.latent_dim, generator=generator).to(device)
    if conditional:
        labels = torch.arange(count) % 10
        return ((model(z, labels.to(device)).cpu() + 1) / 2).clamp(0, 1), labels
    return ((model(z).cpu() + 1) / 2).clamp(0, 1), None
