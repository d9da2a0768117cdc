"""Training the character GPT: next-token cross-entropy, random blocks of text, validation loss.

A language model is trained to predict every token from the ones before it. A batch is
``batch_size`` blocks of ``context_length + 1`` consecutive tokens cut at random places
from the training text; the inputs are the first ``context_length`` tokens of each
block and the targets the same tokens shifted by one, so one forward pass scores
``context_length`` predictions per block (the causal mask keeps each from seeing its
answer). The loss is their average cross-entropy, in nats per token;
``/ ln 2`` gives bits per token (per character for a character model).

:func:`gpt_step` is the taught step; :func:`train_gpt` runs it with
:func:`aigc_lessons.train.fit` (AdamW, a linear warm-up and a cosine decay of the
learning rate as in nanoGPT) and measures :func:`evaluate_loss` on the validation plays
every ``eval_every`` steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..core import check_precision, get_device, mixed_precision, seed_everything
from ..family import Option, check_settings
from .loop import History, fit


@dataclass
class GptConfig:
    """Settings of :func:`train_gpt`; every setting with a range is checked (:data:`GPT_RULES`).

    ``steps`` optimizer steps in all, a validation measurement every ``eval_every`` of them
    (``steps`` must be a multiple of it) on ``eval_tokens`` validation tokens (``None``: the
    whole validation text). The learning rate rises linearly to ``lr`` over
    ``warmup_steps``, then falls along a cosine to ``min_lr`` at the last step.
    ``precision="bf16"``: the forward pass in bfloat16 autocast.
    """

    steps: int = 5000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_every: int = 500
    eval_tokens: int | None = 65536
    seed: int = 0
    log_every: int = 50
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_settings(asdict(self), GPT_RULES)
        check_precision(self.precision)
        check_schedule(self)

    def to_dict(self) -> dict:
        return asdict(self)


GPT_RULES = {"steps": Option(1, minimum=1), "batch_size": Option(1, minimum=1),
             "lr": Option(1.0, above=0), "min_lr": Option(0.0, minimum=0),
             "warmup_steps": Option(0, minimum=0), "weight_decay": Option(0.0, minimum=0),
             "beta2": Option(0.99, minimum=0, below=1), "grad_clip": Option(1.0, above=0),
             "eval_every": Option(1, minimum=1),
             "eval_tokens": Option(None, minimum=1, none_ok=True, kind=int),
             "seed": Option(0, minimum=0), "log_every": Option(1, minimum=1)}


def check_schedule(config) -> None:
    """What the warm-up and cosine schedule needs beyond each setting's own range.

    Shared by every config trained with :func:`learning_rate` (``GptConfig``, ``Seq2SeqConfig``):
    the floor ``min_lr`` must not exceed ``lr``, and ``steps`` must be a multiple of
    ``eval_every`` so that the last step is evaluated.
    """
    if config.min_lr > config.lr:
        raise ValueError(f"min_lr ({config.min_lr}) must not exceed lr ({config.lr})")
    if config.steps % config.eval_every:
        raise ValueError(f"steps ({config.steps}) must be a multiple of eval_every "
                         f"({config.eval_every})")


def next_token_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) of ``targets[b, t]`` under ``model(inputs)[b, t]``, ``(B, T)``."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def gpt_step(model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
             targets: torch.Tensor, grad_clip: float = 1.0, precision: str = "fp32"
             ) -> dict[str, torch.Tensor]:
    """One optimizer step on the next-token loss of a batch, the gradient norm clipped."""
    with mixed_precision(inputs.device, precision):
        loss = next_token_loss(model, inputs, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"loss": loss.detach()}


def learning_rate(step: int, config: GptConfig) -> float:
    """The learning rate of step ``step`` (from 0): linear warm-up, then a cosine to ``min_lr``.

    Example:
        >>> config = GptConfig(steps=1000, eval_every=500, lr=1e-3, min_lr=1e-4, warmup_steps=100)
        >>> [round(learning_rate(s, config), 6) for s in (0, 99, 1000)]
        [1e-05, 0.001, 0.0001]
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def gpt_optimizer(model: nn.Module, config: GptConfig) -> torch.optim.AdamW:
    """AdamW; as in nanoGPT, weight decay on parameters with two or more dimensions only.

    Weight matrices and embeddings decay; biases and layer-norm scales do not.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.beta2))


def _check_ids(ids: torch.Tensor, vocab_size: int, block: int, what: str) -> torch.Tensor:
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape "
                         f"{tuple(ids.shape)}")
    if len(ids) < block + 1:
        raise ValueError(f"{what} has {len(ids)} tokens; it needs at least context_length + 1 = "
                         f"{block + 1}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{what} must hold ids in [0, {vocab_size}), got values from "
                         f"{int(ids.min())} to {int(ids.max())}")
    return ids


class RandomTextBlocks:
    """``steps_per_epoch`` batches ``(inputs, targets)`` of ``batch_size`` random blocks of a text.

    Each block starts at a position drawn uniformly from the text (so one "epoch" is not a
    pass over the text, only ``steps_per_epoch`` steps). The positions come from a generator
    seeded by ``seed`` and the epoch, like :class:`aigc_lessons.data.TensorBatches`, so a
    run is reproducible and ``set_epoch`` continues the same sequence.

    Example:
        >>> blocks = RandomTextBlocks(torch.arange(100), block_size=8, batch_size=4,
        ...                           steps_per_epoch=2)
        >>> inputs, targets = next(iter(blocks))
        >>> inputs.shape, bool((targets[:, :-1] == inputs[:, 1:]).all())
        (torch.Size([4, 8]), True)
    """

    def __init__(self, ids: torch.Tensor, block_size: int, batch_size: int, steps_per_epoch: int,
                 seed: int = 0) -> None:
        if len(ids) < block_size + 1:
            raise ValueError(f"the text has {len(ids)} tokens; a block needs {block_size + 1}")
        self.ids, self.block_size, self.batch_size = ids, block_size, batch_size
        self.steps_per_epoch, self.seed, self.epoch = steps_per_epoch, seed, 0
        self.offsets = torch.arange(block_size + 1, device=ids.device)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        for _ in range(self.steps_per_epoch):
            starts = torch.randint(0, len(self.ids) - self.block_size, (self.batch_size,),
                                   generator=generator)
            blocks = self.ids[starts.to(self.ids.device)[:, None] + self.offsets]  # (B, block + 1)
            yield blocks[:, :-1], blocks[:, 1:]


@torch.no_grad()
def evaluate_loss(model: nn.Module, ids, max_tokens: int | None = None,
                  batch_size: int = 32) -> dict:
    """Validation cross-entropy: ``{"nats": ..., "bits": ..., "tokens": ...}`` per predicted token.

    The text is cut into consecutive windows of ``context_length + 1`` tokens, each
    starting at the last token of the one before: as in a training block, the first
    ``context_length`` tokens are inputs and the last ``context_length`` targets, so every
    token (but the first) is scored exactly once. ``max_tokens`` keeps
    evenly spaced windows with about that many targets (a cheaper estimate during training);
    the tail shorter than a window (fewer than ``context_length`` tokens) is left out.

    Example:
        >>> from aigc_lessons.models import GPT
        >>> model = GPT(vocab_size=4, context_length=8, embed_dim=8, heads=2, layers=1)
        >>> result = evaluate_loss(model, torch.randint(0, 4, (100,)))
        >>> result["tokens"], abs(result["nats"] - math.log(4)) < 0.1
        (96, True)
    """
    block = model.context_length
    ids = _check_ids(ids, model.vocab_size, block, "the evaluation text")
    device = next(model.parameters()).device
    windows = (len(ids) - 1) // block
    starts = torch.arange(windows) * block
    if max_tokens is not None and max_tokens // block < windows:
        starts = starts[torch.linspace(0, windows - 1, max(1, max_tokens // block)).round().long()]
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    offsets = torch.arange(block + 1)
    for first in range(0, len(starts), batch_size):
        blocks = ids[starts[first : first + batch_size, None] + offsets].to(device)
        logits = model(blocks[:, :-1]).float()
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       blocks[:, 1:].reshape(-1), reduction="sum"))
        count += blocks[:, 1:].numel()
    model.train(was_training)
    nats = total / count
    return {"nats": nats, "bits": nats / math.log(2), "tokens": count}


def train_on_schedule(optimizer: torch.optim.Optimizer, batches, config, take_step: Callable[[tuple], dict],
                      validate: Callable[[], dict | None], *, desc: str, progress: bool) -> History:
    """The loop of the text models: the schedule's learning rate before every step, a validation after every epoch.

    ``config`` has ``steps``, ``eval_every``, ``log_every`` and the schedule's
    settings (:func:`learning_rate`); an epoch is ``eval_every`` steps. ``take_step(batch)``
    is one optimisation step returning its losses; ``validate()`` returns the numbers of
    the validation row (or ``None`` for no row), which gets ``epoch``, ``step`` and
    ``train_seconds`` (time spent training so far, the validations excluded).
    """
    history = History()
    updates, validation_seconds, started = 0, 0.0, time.perf_counter()

    def step(batch):
        nonlocal updates
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(updates, config)
        updates += 1
        return take_step(batch)

    def on_epoch_end(epoch: int) -> None:
        nonlocal validation_seconds
        validation_started = time.perf_counter()
        train_seconds = validation_started - started - validation_seconds
        numbers = validate()
        validation_seconds += time.perf_counter() - validation_started
        if numbers is not None:
            history.rows.append({"epoch": epoch, "step": updates, **numbers, "train_seconds": train_seconds})

    return fit(step, batches, config.steps // config.eval_every, log_every=config.log_every,
               on_epoch_end=on_epoch_end, history=history, progress=progress, desc=desc)


def train_gpt(model: nn.Module, train_ids, config: GptConfig | None = None, *, validation_ids=None,
              device: str | torch.device = "auto", progress: bool = True) -> History:
    """Train a :class:`~aigc_lessons.models.GPT` on a 1-D sequence of token ids.

    Returns ``fit``'s history: rows with the training ``loss`` every ``log_every`` steps and,
    with ``validation_ids``, one row every ``eval_every`` steps with ``val_nats``,
    ``val_bits`` and ``train_seconds`` (time spent training so far, evaluation excluded).

    Example:
        >>> from aigc_lessons.models import GPT
        >>> model = GPT(vocab_size=3, context_length=8, embed_dim=16, heads=2, layers=1)
        >>> ids = torch.tensor([0, 1, 2] * 20)
        >>> config = GptConfig(steps=20, eval_every=10, warmup_steps=2)
        >>> history = train_gpt(model, ids, config, validation_ids=ids, device="cpu",
        ...                     progress=False)
        >>> len(history.series("val_nats"))
        2
    """
    config = config or GptConfig()
    device = get_device(device)
    block = model.context_length
    train_ids = _check_ids(train_ids, model.vocab_size, block, "the training text")
    if validation_ids is not None:
        validation_ids = _check_ids(validation_ids, model.vocab_size, block, "the validation text")
    seed_everything(config.seed)
    model.to(device).train()
    optimizer = gpt_optimizer(model, config)
    batches = RandomTextBlocks(train_ids.to(device), block, config.batch_size, config.eval_every,
                               config.seed)

    def validate() -> dict | None:
        if validation_ids is None:
            return None
        result = evaluate_loss(model, validation_ids, config.eval_tokens)
        return {"val_nats": result["nats"], "val_bits": result["bits"]}

    history = train_on_schedule(
        optimizer, batches, config,
        lambda batch: gpt_step(model, optimizer, *batch, grad_clip=config.grad_clip,
                               precision=config.precision),
        validate, desc="GPT", progress=progress)
    model.eval()
    return history
