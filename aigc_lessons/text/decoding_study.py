"""The decoding chapter's comparison of rules, and its record in the full setting.

The chapter (``book/text/decoding.ipynb``) runs the comparison in fast mode; the full
setting (8 prompts, 5 samples of 400 characters per rule, past the model's context) takes
minutes, so its table is stored::

    python -m aigc_lessons.text.decoding_study        # writes book/text/decoding_full.json

* :data:`PROMPTS` and :data:`STRATEGIES`: what every rule continues, and the rules.
* :func:`held_out_pairs`: passages of the held-out plays cut like the continuations,
  the target row of the table.
* :func:`decoding_study`: the whole table for a setting (:data:`FULL_SETTING` or
  :data:`FAST_SETTING`).
* :func:`decoding_claims`: the statements the chapter makes about the table, each
  with whether the table bears it out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

from .sample_quality import MEASURES, compare_strategies, measure_continuations, words

PROMPTS = ("ROMEO:\n", "JULIET:\nO ", "KING HENRY:\nMy lords, ", "First Citizen:\nWe are ",
           "HAMLET:\nTo be, or not ", "PORTIA:\nThe quality ", "FALSTAFF:\nI ", "LEAR:\nBlow, ")
STRATEGIES = {
    "greedy": {"greedy": True},
    "beam 4": {"beam_width": 4},
    "temperature 0.5": {"temperature": 0.5},
    "temperature 0.8": {"temperature": 0.8},
    "temperature 1.0": {"temperature": 1.0},
    "temperature 1.3": {"temperature": 1.3},
    "top-k 10": {"top_k": 10},
    "top-p 0.9": {"top_p": 0.9},
}
FULL_SETTING = {"prompts": 8, "new_characters": 400, "samples": 5, "judge_characters": None, "seed": 0}
FAST_SETTING = {"prompts": 4, "new_characters": 100, "samples": 2, "judge_characters": 1_500_000, "seed": 0}
HELD_OUT_PROMPT = 20  # characters of a held-out passage that play the prompt
RECORD = Path(__file__).resolve().parents[2] / "book" / "text" / "decoding_full.json"


def held_out_pairs(validation_text: str, count: int, new_characters: int) -> list[tuple[str, str]]:
    """``count`` passages spread evenly over the held-out plays, as ``(prompt, continuation)`` pairs.

    Each prompt is :data:`HELD_OUT_PROMPT` characters and each continuation
    ``new_characters``, the length of the generated ones.
    """
    if count < 1 or new_characters < 1:
        raise ValueError(f"count and new_characters must be positive, got {count} and {new_characters}")
    starts = torch.linspace(0, len(validation_text) - 1000, count).long()
    passages = [validation_text[start:start + HELD_OUT_PROMPT + new_characters] for start in starts.tolist()]
    return [(passage[:HELD_OUT_PROMPT], passage[HELD_OUT_PROMPT:]) for passage in passages]


def decoding_study(setting: dict | None = None, device: str | torch.device = "cpu") -> dict:
    """Every rule of :data:`STRATEGIES` and the held-out text, measured in ``setting``.

    Returns ``{"setting", "rows": {name: {measure: value}}, "first_continuations",
    "seconds", ...}``; ``rows["held-out text"]`` is the target.
    """
    from ..recipes.gpt import load_char_gpt
    from .corpus import load_shakespeare, split_text
    from .ngram import CharNGramModel

    setting = {**FULL_SETTING, **(setting or {})}
    started = time.perf_counter()
    model, vocab = load_char_gpt(device=device)
    train_text, validation_text = split_text(load_shakespeare())
    vocabulary = set(words(train_text))
    judge_text = train_text[:setting["judge_characters"]] if setting["judge_characters"] else train_text
    judge = CharNGramModel(order=5, vocab_size=len(vocab)).fit(vocab.encode(judge_text))
    prompts = list(PROMPTS[:setting["prompts"]])
    reference = measure_continuations(
        held_out_pairs(validation_text, len(prompts) * setting["samples"], setting["new_characters"]),
        model, vocab, judge, vocabulary)
    rows, texts = compare_strategies(model, vocab, prompts, STRATEGIES, setting["new_characters"],
                                     setting["samples"], judge, vocabulary, seed=setting["seed"])
    rows["held-out text"] = reference
    return {"setting": setting, "measures": list(MEASURES),
            "judge": f"5-gram Kneser-Ney on {len(judge_text):,} training characters",
            "rows": {name: {key: round(value, 4) for key, value in row.items()} for name, row in rows.items()},
            "first_continuations": {name: pairs[0][1] for name, pairs in texts.items()},
            "seconds": round(time.perf_counter() - started, 1)}


def decoding_claims(rows: dict[str, dict[str, float]]) -> dict[str, bool]:
    """The chapter's statements about a table of :func:`decoding_study`, each with whether it holds."""
    human, greedy, beam, nucleus = rows["held-out text"], rows["greedy"], rows["beam 4"], rows["top-p 0.9"]
    hot, cool, plain = rows["temperature 1.3"], rows["temperature 0.5"], rows["temperature 1.0"]
    maximisers = (greedy, beam)
    return {
        "greedy and beam search repeat more than real text and than top-p 0.9":
            all(row["repetition"] > max(human["repetition"], nucleus["repetition"]) + 0.05 for row in maximisers),
        "greedy and beam search are less varied (distinct-2) than top-p 0.9":
            all(row["distinct_2"] < nucleus["distinct_2"] - 0.05 for row in maximisers),
        "greedy and beam search are far more probable to the model than real text":
            all(row["gpt_nats"] < human["gpt_nats"] - 0.3 for row in maximisers),
        "greedy repeats more than twice as much as real text": greedy["repetition"] > 2 * human["repetition"] + 0.1,
        "beam search finds the most probable text of all rows":
            beam["gpt_nats"] < greedy["gpt_nats"] and beam["gpt_nats"] == min(r["gpt_nats"] for r in rows.values()),
        "temperature 1.3 invents more words than 0.5": hot["known_words"] < cool["known_words"],
        "temperature 1.3 scores worse with the judge than real text": hot["judge_nats"] > human["judge_nats"],
        "temperature 1.3 is more varied and repeats no more than 0.5":
            hot["distinct_2"] > cool["distinct_2"] and hot["repetition"] <= cool["repetition"],
        "top-k 10 and top-p 0.9 beat plain sampling on the judge and on real words":
            all(rows[name]["judge_nats"] < plain["judge_nats"] and rows[name]["known_words"] > plain["known_words"]
                for name in ("top-k 10", "top-p 0.9")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The decoding chapter's table in the full setting.")
    parser.add_argument("--out", type=Path, default=RECORD, help=f"where to write the record (default {RECORD})")
    parser.add_argument("--fast", action="store_true", help="the chapter's fast setting (to check that it runs)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_file():
        parser.error(f"--out {args.out} exists and is not a file")
    record = decoding_study(FAST_SETTING if args.fast else FULL_SETTING)
    from ..pretrained import describe_machine

    record.update(command="python -m aigc_lessons.text.decoding_study" + (" --fast" if args.fast else ""),
                  date=datetime.date.today().isoformat(), machine=describe_machine(),
                  claims=decoding_claims(record["rows"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    failed = [claim for claim, holds in record["claims"].items() if not holds]
    print(f"wrote {args.out} in {record['seconds']:.0f} s; claims not borne out: {failed or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
