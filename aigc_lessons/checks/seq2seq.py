"""Checks for the sequence-to-sequence chapter's coding exercises (``book/text/seq2seq.ipynb``)."""

from __future__ import annotations

import math

from . import call_learner, describe_mismatch, report

PAD, START, END = 0, 1, 2  # the special ids of aigc_lessons.text.translation_task.CharTokenizer


def _as_list(value) -> list | None:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def check_shift_targets(learner_fn, exercise: str = "seq2seq-ex-1"):
    """Check ``learner_fn(ids, length)`` -> ``(target_in, target_out)``, two lists of ``length`` ids.

    ``target_in`` is ``<s>`` (1) then ``ids``, ``target_out`` is ``ids`` then ``</s>`` (2), both
    padded with ``<pad>`` (0) to ``length``.
    """
    cases = {"the digits of 42": ([7, 5], 5), "a target that fills the length": ([3, 4, 5], 4),
             "one digit": ([9], 3)}
    problems, passed = [], 0
    for label, (ids, length) in cases.items():
        value, problem = call_learner(learner_fn, label, list(ids), length,
                                      returns="a pair (target_in, target_out)")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            problems.append(f"{label}: return a pair (target_in, target_out), got "
                            f"{type(value).__name__}")
            continue
        target_in, target_out = (_as_list(v) for v in value)
        if target_in is None or target_out is None:
            problems.append(f"{label}: target_in and target_out must be lists of integer ids")
            continue
        expected_in = ([START] + ids + [PAD] * length)[:length]
        expected_out = (ids + [END] + [PAD] * length)[:length]
        if (target_in, target_out) == (expected_out, expected_in):
            problems.append(f"{label}: target_in and target_out are swapped: the decoder reads "
                            f"<s> first and is trained to write </s> last")
        elif len(target_in) != length or len(target_out) != length:
            problems.append(f"{label}: both lists must have length {length} (pad with {PAD}), got "
                            f"{len(target_in)} and {len(target_out)}")
        elif target_in != expected_in:
            hint = (" (target_in must not hold the end token)" if END in target_in else
                    " (target_in starts with the start token 1)")
            problems.append(f"{label}: target_in is {target_in}, expected {expected_in}{hint}")
        elif target_out != expected_out:
            hint = (" (target_out must not start with the start token)" if target_out[:1] ==
                    [START] else " (target_out is the target followed by the end token 2)")
            problems.append(f"{label}: target_out is {target_out}, expected {expected_out}{hint}")
        else:
            passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_normalised_score(learner_fn, exercise: str = "seq2seq-ex-2"):
    """Check ``learner_fn(token_log_probs, alpha)`` = ``sum(token_log_probs) / L ** alpha``.

    ``token_log_probs``: the log-probabilities of the tokens a hypothesis wrote, its end
    token included, so ``L = len(token_log_probs)``.
    """
    cases = {"three tokens, alpha = 1": ([-0.1, -0.5, -0.2], 1.0),
             "five tokens, alpha = 0.6": ([-0.3, -0.1, -0.05, -0.9, -0.2], 0.6),
             "two tokens, alpha = 0 (no normalisation)": ([-1.0, -0.25], 0.0)}
    problems, passed = [], 0
    for label, (log_probs, alpha) in cases.items():
        value, problem = call_learner(learner_fn, label, list(log_probs), alpha,
                                      returns="a number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        total, length = sum(log_probs), len(log_probs)
        expected = total / length ** alpha
        mismatch = describe_mismatch(label, value, expected)
        if mismatch:
            hint = ""
            if math.isclose(value, total, rel_tol=1e-6):
                hint = " (that is the raw log-probability: divide by L ** alpha)"
            elif length > 1 and math.isclose(value, total / (length - 1) ** alpha, rel_tol=1e-6):
                hint = " (L counts every token written, the end token included)"
            elif math.isclose(value, total / length, rel_tol=1e-6):
                hint = " (the length is raised to the power alpha)"
            elif math.isclose(value, math.exp(total) / length ** alpha, rel_tol=1e-6):
                hint = " (the score is a sum of log-probabilities, not a probability)"
            problems.append(mismatch + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
