"""Recipe for the music chapter's pretrained melody model.

``music_lstm_bach``: :class:`~aigc_lessons.models.music.MelodyLSTM` (embedding 48,
two LSTM layers of 128 units, dropout 0.2) trained on the soprano lines of the
Bach chorales in music21's corpus, transposed to C major / A minor, 16th-note
grid. Whole melodies are split by a hash of their tokens into training (90%) and
validation (10%). The card records the validation cross-entropy next to n-gram
baselines (orders 1, 2, 4, 8) fitted on the same training melodies, and statistics
of sampled melodies (total-variation distances of pitch-class, interval and
duration histograms to the validation melodies, copying check) at several
temperatures. Retrain with::

    python -m aigc_lessons.recipes music_lstm_bach
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .. import music
from ..core import Budget
from ..family import Family, Recipe, RecipeResult
from ..models.music import MelodyLSTM

SAMPLES = 200          # melodies drawn per setting for the statistics
MAX_STEPS = 400        # tokens per sampled melody at most (100 beats)
TEMPERATURES = (0.5, 0.8, 1.0, 1.2, 1.5)
NGRAM_ORDERS = (1, 2, 4, 8)
NGRAM_ALPHA = 0.01     # chosen on a split of the *training* melodies (0.001, 0.01, 0.1, 1 tried)

# The full setting of the shipped weights (what they were trained with) and what fast mode changes.
MUSIC_LSTM_BACH = {"epochs": 80, "batch_size": 16, "lr": 3e-3, "seed": 0, "chorales": None}
FAST = {"epochs": 2, "chorales": 30}


def _rounded(values: dict, digits: int = 4) -> dict:
    return {key: round(float(value), digits) for key, value in values.items()}


def evaluate_melody_models(model, train: list[np.ndarray], validation: list[np.ndarray], samples: int = SAMPLES,
                           temperatures=TEMPERATURES, seed: int = 0) -> dict:
    """Validation cross-entropy of ``model`` and of n-gram baselines, and statistics of their samples."""
    results: dict = {"cross_entropy_nats_per_token": {}, "perplexity": {}}
    baselines = {f"{order}-gram": music.NGramModel(order=order, alpha=NGRAM_ALPHA).fit(train) for order in NGRAM_ORDERS}
    scored = {"lstm": music.model_log_likelihoods(model, validation)}
    scored.update({name: ngram.log_likelihood(validation) for name, ngram in baselines.items()})
    for name, (total, count) in scored.items():
        cross_entropy, perplexity = music.cross_entropy_and_perplexity(total, count)
        results["cross_entropy_nats_per_token"][name] = round(cross_entropy, 4)
        results["perplexity"][name] = round(perplexity, 3)
    results["validation_tokens"] = scored["lstm"][1]

    index = music.note_ngram_index(train, longest=32)

    def describe(melodies, copying: bool = True):
        stats = music.melody_statistics(melodies, validation)
        if copying:  # the longest run of pitches also found in a training melody (meaningless for training itself)
            stats["median_longest_run_in_training_notes"] = float(np.median(
                [music.longest_shared_run(m, index) for m in melodies]))
        return _rounded(stats, 3)

    # the floor: real melodies the model never saw. Their histograms differ from the
    # validation set's only because both are finite samples of Bach's style.
    statistics = {"training_melodies": describe(train, copying=False), "validation_melodies": describe(validation)}
    for name in baselines:
        statistics[f"{name}_T1.0"] = describe(baselines[name].sample(samples, MAX_STEPS, 1.0, seed=seed))
    for temperature in temperatures:
        melodies = music.sample_melodies(model, samples, MAX_STEPS, temperature, seed=seed)
        statistics[f"lstm_T{temperature}"] = describe(melodies)
        statistics[f"lstm_T{temperature}"]["ended_with_end_token"] = round(
            float(np.mean([m[-1] == music.END for m in melodies])), 3)
    results["sample_statistics"] = statistics
    return results


def music_lstm_bach(budget: Budget, device: torch.device, progress: bool = True):
    """MelodyLSTM on the Bach chorale soprano lines; full: whole corpus, 80 epochs; fast: 30 chorales, 2 epochs."""
    setting = {**MUSIC_LSTM_BACH, **FAST} if budget.fast else dict(MUSIC_LSTM_BACH)
    corpus = music.load_chorale_melodies(limit=setting["chorales"])
    train, validation = music.split_melodies(corpus.melodies)
    kwargs = {"vocab_size": music.VOCAB_SIZE, "embed_dim": 48, "hidden": 128, "layers": 2, "dropout": 0.2}
    config = {"epochs": setting["epochs"], "batch_size": setting["batch_size"], "lr": setting["lr"],
              "seed": setting["seed"], "optimizer": "Adam, cosine decay to 0, gradient norm clipped at 1"}
    torch.manual_seed(config["seed"])
    model = MelodyLSTM(**kwargs).to(device)
    started = time.perf_counter()
    history = music.train_melody_model(model, train, config["epochs"], config["batch_size"], config["lr"],
                                       config["seed"], validation=validation, progress=progress)
    seconds = time.perf_counter() - started
    evaluation = evaluate_melody_models(model, train, validation, samples=budget.pick(full=SAMPLES, fast=10),
                                        temperatures=budget.pick(full=TEMPERATURES, fast=(1.0,)))
    card = {
        "description": "MelodyLSTM: token embedding 48 -> 2-layer LSTM (128) -> next-token logits over 36 tokens "
                       "(<start>, <end>, rest, hold, MIDI 55..86).",
        "data": (f"soprano lines of {len(corpus.names) + corpus.duplicates} music21 Bach chorales "
                 f"({corpus.duplicates} duplicate melodies dropped, {len(corpus.skipped)} files skipped), "
                 f"transposed to C major / A minor, 16th-note grid; {len(train)} training and "
                 f"{len(validation)} validation melodies (split by a hash of each melody); "
                 f"music21 {music.music21_version()}"),
        "parse_seconds": round(corpus.parse_seconds, 1),
        "training": config,
        "training_seconds": round(seconds, 1),
        "final_train_loss": round(history.series("loss")[-1], 4),
        "validation_curve": [round(v, 4) for v in history.series("val_cross_entropy")],
        "metrics": evaluation,
    }
    return RecipeResult(model, kwargs, card)


FAMILIES = (
    Family("music", "melody LSTM on the Bach chorales (music chapter)", classes=(MelodyLSTM,),
           recipes={"music_lstm_bach": Recipe(music_lstm_bach, MUSIC_LSTM_BACH, FAST)}),
)
