"""Training the encoder-decoder Transformer: teacher-forced cross-entropy, padding ignored.

A target ``y_1 .. y_n`` becomes two rows of ids: the decoder's input
``<s> y_1 .. y_n`` and the targets ``y_1 .. y_n </s>``, the same tokens shifted by one
(:func:`shift_targets`). One forward pass scores every target position at once, each
seeing the true tokens before it (*teacher forcing*) and, through the causal mask, none
after it. The rows of a batch have different lengths and are padded; the loss
(:func:`translation_loss`) is the mean cross-entropy over the real target tokens only,
so a padded position adds nothing to the loss or to its gradient.

:func:`seq2seq_step` is the taught step; :func:`train_seq2seq` runs it with
:func:`aigc_lessons.train.fit` on batches drawn afresh from the task
(:class:`TranslationBatches`), with the learning-rate schedule and the optimizer of the
GPT (:func:`aigc_lessons.train.gpt.learning_rate`, :func:`~aigc_lessons.train.gpt.gpt_optimizer`),
and measures the validation loss and exact-match accuracy every ``eval_every`` steps.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..core import get_device, seed_everything
from ..family import Option, check_settings
from ..text.translation_task import CharTokenizer
from .gpt import GPT_RULES, check_schedule, gpt_optimizer, train_on_schedule
from .loop import History


@dataclass
class Seq2SeqConfig:
    """Settings of :func:`train_seq2seq`; every setting with a range is checked (:data:`SEQ2SEQ_RULES`).

    ``steps`` optimizer steps of ``batch_size`` fresh examples, a validation measurement
    every ``eval_every`` (``steps`` must be a multiple of it) on ``eval_examples`` fixed
    validation examples. The learning rate rises linearly to ``lr`` over ``warmup_steps``,
    then falls along a cosine to ``min_lr``; ``label_smoothing`` as in Vaswani et al. (0.1).
    """

    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    beta2: float = 0.98
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    eval_every: int = 500
    eval_examples: int = 1000
    seed: int = 0
    log_every: int = 50

    def __post_init__(self) -> None:
        check_settings(asdict(self), SEQ2SEQ_RULES)
        check_schedule(self)

    def to_dict(self) -> dict:
        return asdict(self)


# the GPT's optimizer and schedule settings, with validation examples instead of tokens
SEQ2SEQ_RULES = {**{name: rule for name, rule in GPT_RULES.items() if name != "eval_tokens"},
                 "label_smoothing": Option(0.0, minimum=0, below=1),
                 "eval_examples": Option(1, minimum=1)}


def shift_targets(targets: list[str], tokenizer: CharTokenizer, length: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's input ``<s> y`` and its targets ``y </s>``, each ``(B, length)``, padded.

    Example:
        >>> tokenizer = CharTokenizer("0123456789")
        >>> target_in, target_out = shift_targets(["42"], tokenizer, 4)
        >>> target_in.tolist(), target_out.tolist()
        ([[1, 7, 5, 0]], [[7, 5, 2, 0]])
    """
    return (tokenizer.batch(targets, length, start=True),
            tokenizer.batch(targets, length, end=True))


def translation_loss(model: nn.Module, source: torch.Tensor, target_in: torch.Tensor,
                     target_out: torch.Tensor, pad_id: int = CharTokenizer.PAD,
                     label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy (nats) of the non-padding ``target_out`` tokens under teacher forcing."""
    logits = model(source, target_in)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target_out.reshape(-1),
                           ignore_index=pad_id, label_smoothing=label_smoothing)


def seq2seq_step(model: nn.Module, optimizer: torch.optim.Optimizer, source: torch.Tensor,
                 target_in: torch.Tensor, target_out: torch.Tensor, grad_clip: float = 1.0,
                 label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """One optimizer step on the teacher-forced loss of a batch, the gradient norm clipped."""
    loss = translation_loss(model, source, target_in, target_out, model.pad_id, label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"loss": loss.detach()}


def encode_pairs(pairs: list[tuple[str, str]], source_tokenizer: CharTokenizer,
                 target_tokenizer: CharTokenizer, source_length: int, target_length: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(source, target_in, target_out)`` tensors of ``(words, digits)`` pairs."""
    source = source_tokenizer.batch([words for words, _ in pairs], source_length)
    return (source, *shift_targets([digits for _, digits in pairs], target_tokenizer,
                                   target_length))


class TranslationBatches:
    """``steps_per_epoch`` batches of ``batch_size`` training pairs drawn afresh from the task.

    The pairs come from a ``random.Random`` seeded by ``seed`` and the epoch, so a run is
    reproducible and ``set_epoch`` continues the same sequence (the interface of
    :class:`aigc_lessons.data.TensorBatches` that :func:`~aigc_lessons.train.fit` uses).
    """

    def __init__(self, task, source_tokenizer: CharTokenizer, target_tokenizer: CharTokenizer,
                 source_length: int, target_length: int, batch_size: int, steps_per_epoch: int,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.task, self.tokenizers = task, (source_tokenizer, target_tokenizer)
        self.lengths, self.batch_size = (source_length, target_length), batch_size
        self.steps_per_epoch, self.seed, self.epoch, self.device = steps_per_epoch, seed, 0, device

    def __len__(self) -> int:
        return self.steps_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        for _ in range(self.steps_per_epoch):
            pairs = self.task.sample("train", self.batch_size, rng)
            yield tuple(t.to(self.device) for t in encode_pairs(pairs, *self.tokenizers,
                                                                 *self.lengths))


@torch.no_grad()
def evaluate_translation(model: nn.Module, pairs: list[tuple[str, str]],
                         source_tokenizer: CharTokenizer, target_tokenizer: CharTokenizer,
                         batch_size: int = 500) -> dict:
    """Teacher-forced loss (nats per target token) and greedy exact match on ``pairs``.

    Returns ``{"nats": ..., "exact_match": ..., "predictions": [...]}``, the predictions
    decoded to text in the order of ``pairs``.

    Example:
        >>> from aigc_lessons.models.seq2seq import Seq2SeqTransformer
        >>> from aigc_lessons.text.translation_task import SOURCE_CHARACTERS, TARGET_CHARACTERS
        >>> words, digits = CharTokenizer(SOURCE_CHARACTERS), CharTokenizer(TARGET_CHARACTERS)
        >>> model = Seq2SeqTransformer(len(words), len(digits), 12, 4, embed_dim=16)
        >>> result = evaluate_translation(model, [("forty-two", "42")], words, digits)
        >>> 0 <= result["exact_match"] <= 1
        True
    """
    if not pairs:
        raise ValueError("pairs is empty: pass at least one (words, digits) pair")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count, predictions = 0.0, 0, []
    for first in range(0, len(pairs), batch_size):
        chunk = pairs[first:first + batch_size]
        source, target_in, target_out = (t.to(device) for t in encode_pairs(
            chunk, source_tokenizer, target_tokenizer, model.source_length, model.target_length))
        logits = model(source, target_in).float()
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       target_out.reshape(-1), ignore_index=model.pad_id,
                                       reduction="sum"))
        count += int((target_out != model.pad_id).sum())
        predictions += [target_tokenizer.decode(ids) for ids in model.greedy_decode(source)]
    model.train(was_training)
    exact = sum(p == digits for p, (_, digits) in zip(predictions, pairs)) / len(pairs)
    return {"nats": total / count, "exact_match": exact, "predictions": predictions}


def train_seq2seq(model: nn.Module, task, source_tokenizer: CharTokenizer,
                  target_tokenizer: CharTokenizer, config: Seq2SeqConfig | None = None, *,
                  device: str | torch.device = "auto", progress: bool = True) -> History:
    """Train a :class:`~aigc_lessons.models.Seq2SeqTransformer` on a translation task.

    ``task`` has ``sample(split, count, rng)`` and ``examples(split, count)``
    (:class:`~aigc_lessons.text.translation_task.NumberTranslationTask`). Returns ``fit``'s
    history: the training ``loss`` every ``log_every`` steps and one row every
    ``eval_every`` steps with ``val_nats``, ``val_exact_match`` and ``train_seconds``
    (time spent training so far, evaluation excluded).

    Example:
        >>> from aigc_lessons.models.seq2seq import Seq2SeqTransformer
        >>> from aigc_lessons.text.translation_task import (NumberTranslationTask,
        ...     SOURCE_CHARACTERS, TARGET_CHARACTERS)
        >>> words, digits = CharTokenizer(SOURCE_CHARACTERS), CharTokenizer(TARGET_CHARACTERS)
        >>> task = NumberTranslationTask(max_value=99)
        >>> model = Seq2SeqTransformer(len(words), len(digits), 24, 4, embed_dim=16)
        >>> config = Seq2SeqConfig(steps=4, batch_size=8, eval_every=2, eval_examples=10)
        >>> history = train_seq2seq(model, task, words, digits, config, device="cpu",
        ...                         progress=False)
        >>> len(history.series("val_exact_match"))
        2
    """
    config = config or Seq2SeqConfig()
    device = get_device(device)
    seed_everything(config.seed)
    model.to(device).train()
    optimizer = gpt_optimizer(model, config)
    batches = TranslationBatches(task, source_tokenizer, target_tokenizer, model.source_length,
                                 model.target_length, config.batch_size, config.eval_every,
                                 config.seed, device)
    validation = task.examples("validation", config.eval_examples)

    def validate() -> dict:
        result = evaluate_translation(model, validation, source_tokenizer, target_tokenizer)
        return {"val_nats": result["nats"], "val_exact_match": result["exact_match"]}

    history = train_on_schedule(
        optimizer, batches, config,
        lambda batch: seq2seq_step(model, optimizer, *batch, grad_clip=config.grad_clip,
                                   label_smoothing=config.label_smoothing),
        validate, desc="seq2seq", progress=progress)
    model.eval()
    return history
