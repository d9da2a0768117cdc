"""The sequence-to-sequence family: an encoder-decoder Transformer that reads number words.

``seq2seq_numbers``: a :class:`~aigc_lessons.models.Seq2SeqTransformer` (2 encoder and 2
decoder blocks, 4 heads, 64 channels) trained on
:class:`~aigc_lessons.text.translation_task.NumberTranslationTask`: English number words
from zero to 999,999, spelled with optional words, hyphens, commas, the "nineteen
hundred" reading and typos, translated into digits. Every training batch is drawn
afresh from the training values; the test values (10% of each length) are never seen.

The card records the validation curve, the training time, and on a fixed set of test
examples: exact match, BLEU over digits (each digit one token) and chrF, for greedy
decoding and for beam search, with the exact match by number of digits and with and
without a typo. The size was chosen for the time limit (10 minutes on 2 CPU cores).

Retrain with ``python -m aigc_lessons.recipes seq2seq_numbers``.
"""

from __future__ import annotations

import time

import torch

from .. import pretrained
from ..core import Budget
from ..family import Family, Recipe, RecipeResult
from ..models.seq2seq import Seq2SeqTransformer
from ..text.metrics import bleu, chrf
from ..text.translation_task import (
    SOURCE_CHARACTERS,
    TARGET_CHARACTERS,
    CharTokenizer,
    NumberTranslationTask,
    number_to_words,
)
from ..train.seq2seq import Seq2SeqConfig, evaluate_translation, train_seq2seq

# The full setting of the shipped weights (what they were trained with) and what fast mode changes.
SEQ2SEQ_NUMBERS = {"encoder_layers": 2, "decoder_layers": 2, "heads": 4, "embed_dim": 64,
                   "dropout": 0.0, "source_length": 76, "target_length": 8,
                   "steps": 1000, "batch_size": 64, "lr": 2e-3, "min_lr": 1e-4,
                   "warmup_steps": 100, "weight_decay": 0.01, "label_smoothing": 0.0,
                   "eval_every": 250, "eval_examples": 500, "seed": 0,
                   "task_seed": 0, "typo_rate": 0.3, "test_examples": 1000, "beam_width": 4,
                   "length_penalty": 1.0}
FAST = {"embed_dim": 32, "steps": 40, "batch_size": 16, "warmup_steps": 5, "eval_every": 20,
        "eval_examples": 50, "test_examples": 40}

MODEL_KEYS = ("encoder_layers", "decoder_layers", "heads", "embed_dim", "dropout",
              "source_length", "target_length")
CONFIG_KEYS = ("steps", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay",
               "label_smoothing", "eval_every", "eval_examples", "seed")


def number_task(setting: dict | None = None) -> NumberTranslationTask:
    """The task of the shipped model (its seed and typo rate from ``setting``, default the full)."""
    setting = setting or SEQ2SEQ_NUMBERS
    return NumberTranslationTask(typo_rate=setting["typo_rate"], seed=setting["task_seed"])


def number_tokenizers() -> tuple[CharTokenizer, CharTokenizer]:
    """The source (words) and target (digits) tokenizers."""
    return CharTokenizer(SOURCE_CHARACTERS), CharTokenizer(TARGET_CHARACTERS)


def load_number_translator(name: str = "seq2seq_numbers", device: str | torch.device = "cpu"
                           ) -> tuple[Seq2SeqTransformer, CharTokenizer, CharTokenizer]:
    """The shipped model (checked against its SHA-256) and its two tokenizers.

    Example:
        >>> model, words, digits = load_number_translator()  # doctest: +SKIP
        >>> source = words.batch(["forty-two"], model.source_length)  # doctest: +SKIP
        >>> digits.decode(model.greedy_decode(source)[0])  # doctest: +SKIP
        '42'
    """
    return (pretrained.load(name, device=device), *number_tokenizers())


def spaced_digits(text: str) -> str:
    """``"342"`` -> ``"3 4 2"``: each digit one BLEU token (a number is one word otherwise)."""
    return " ".join(text)


def beam_translations(model: Seq2SeqTransformer, pairs, source_tokenizer: CharTokenizer,
                      target_tokenizer: CharTokenizer, beam_width: int = 4,
                      length_penalty: float = 1.0) -> list[str]:
    """The best beam-search translation of each pair's words, as text."""
    device = next(model.parameters()).device
    source = source_tokenizer.batch([words for words, _ in pairs], model.source_length).to(device)
    return [target_tokenizer.decode(model.beam_search(row, beam_width, length_penalty)[0][0])
            for row in source]


def score_translations(predictions: list[str], pairs) -> dict:
    """Exact match (fraction), BLEU over digits and chrF (0..100) of ``predictions``."""
    references = [digits for _, digits in pairs]
    exact = sum(p == r for p, r in zip(predictions, references)) / len(pairs)
    return {"exact_match": round(exact, 4),
            "bleu": round(bleu([spaced_digits(p) for p in predictions],
                               [spaced_digits(r) for r in references]), 2),
            "chrf": round(chrf(predictions, references), 2)}


def exact_match_by_group(predictions: list[str], pairs) -> dict:
    """Exact match by number of digits and by whether the words hold a typo."""
    groups: dict[str, list[bool]] = {}
    for prediction, (words, digits) in zip(predictions, pairs):
        right = prediction == digits
        groups.setdefault(f"{len(digits)} digits", []).append(right)
        clean = words in _spellings(int(digits))
        groups.setdefault("no typo" if clean else "typo", []).append(right)
    return {name: {"examples": len(values), "exact_match": round(sum(values) / len(values), 4)}
            for name, values in sorted(groups.items())}


def _spellings(value: int) -> set[str]:
    """Every spelling of ``value`` the task writes without a typo."""
    flags = (False, True)
    return {number_to_words(value, hyphen=h, use_and=a, comma=c, a_hundred=o, in_hundreds=i)
            for h in flags for a in flags for c in flags for o in flags for i in flags}


def seq2seq_numbers(budget: Budget, device: torch.device, progress: bool = True) -> RecipeResult:
    """The number translator; full: 1,000 steps of 64 fresh examples."""
    setting = {**SEQ2SEQ_NUMBERS, **FAST} if budget.fast else dict(SEQ2SEQ_NUMBERS)
    task = number_task(setting)
    words, digits = number_tokenizers()
    kwargs = {key: setting[key] for key in MODEL_KEYS} | {
        "source_vocab_size": len(words), "target_vocab_size": len(digits),
        "pad_id": CharTokenizer.PAD, "start_id": CharTokenizer.START, "end_id": CharTokenizer.END}
    torch.manual_seed(setting["seed"])
    model = Seq2SeqTransformer(**kwargs)
    config = Seq2SeqConfig(**{key: setting[key] for key in CONFIG_KEYS})
    started = time.perf_counter()
    history = train_seq2seq(model, task, words, digits, config, device=device, progress=progress)
    seconds = round(time.perf_counter() - started, 1)
    curve = [row for row in history.rows if "val_nats" in row]

    started = time.perf_counter()
    test = task.examples("test", setting["test_examples"])
    greedy = evaluate_translation(model, test, words, digits)
    beam = beam_translations(model, test, words, digits, setting["beam_width"],
                             setting["length_penalty"])
    evaluation_seconds = round(time.perf_counter() - started, 1)
    failures = [{"words": source, "digits": target, "greedy": prediction}
                for (source, target), prediction in zip(test, greedy["predictions"])
                if prediction != target]
    card = {
        "description": (f"Encoder-decoder Transformer: {setting['encoder_layers']} encoder and "
                        f"{setting['decoder_layers']} decoder pre-norm blocks, {setting['heads']} "
                        f"heads, {setting['embed_dim']} channels, learned position embeddings; "
                        f"{sum(p.numel() for p in model.parameters())} parameters"),
        "data": (f"NumberTranslationTask(seed={setting['task_seed']}, typo_rate="
                 f"{setting['typo_rate']}): English number words (0 to 999,999) to digits; "
                 f"{len(task.values('train'))} training, {len(task.values('validation'))} "
                 f"validation and {len(task.values('test'))} test values, disjoint"),
        "training": {**config.to_dict(), "optimizer": "AdamW (weight decay on matrices only), "
                     "linear warm-up then cosine decay, gradient norm clipped at 1",
                     "examples_seen": config.steps * config.batch_size},
        "training_seconds": seconds,
        "train_seconds_without_evaluation": round(curve[-1]["train_seconds"], 1),
        "validation_curve": [{"step": row["step"], "nats": round(row["val_nats"], 4),
                              "exact_match": round(row["val_exact_match"], 4),
                              "train_seconds": round(row["train_seconds"], 1)} for row in curve],
        "metrics": {
            "test_examples": len(test),
            "test_nats_per_token": round(greedy["nats"], 4),
            "greedy": score_translations(greedy["predictions"], test),
            "beam": score_translations(beam, test),
            "beam_width": setting["beam_width"], "length_penalty": setting["length_penalty"],
            "greedy_by_group": exact_match_by_group(greedy["predictions"], test),
            "beam_differs_from_greedy": sum(b != g for b, g in zip(beam, greedy["predictions"])),
            "bleu_tokens": "each digit one token (sacrebleu-compatible corpus BLEU, 13a)",
            "evaluation_seconds": evaluation_seconds,
        },
        "failures": failures[:20],
    }
    return RecipeResult(model, kwargs, card)


FAMILIES = (
    Family("seq2seq", "encoder-decoder Transformer on number words (Sequences and text)",
           classes=(Seq2SeqTransformer,),
           recipes={"seq2seq_numbers": Recipe(seq2seq_numbers, SEQ2SEQ_NUMBERS, FAST)}),
)
