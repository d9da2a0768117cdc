"""Tests for the math-foundations exercise checks (aigc_lessons.checks.foundations).

Each check must pass a correct solution, give partial or no credit to a wrong one with a message that
names the mistake, mark the untouched placeholder (a function returning None) as not attempted, and
survive a learner's function that raises.
"""

from __future__ import annotations

import torch

from aigc_lessons.checks.foundations import check_adam_step, check_js_divergence, check_kl_discrete


def kl_correct(p, q):
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum()


def js_correct(p, q):
    middle = 0.5 * (p + q)
    return 0.5 * kl_correct(p, middle) + 0.5 * kl_correct(q, middle)


def adam_correct(param, grad, m, v, step, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


def placeholder(*args, **kwargs):
    return None


def raises(*args, **kwargs):
    raise ValueError("boom")


def test_kl_check_passes_a_correct_solution():
    result = check_kl_discrete(kl_correct)
    assert result.passed and result.status == "passed", str(result)


def test_kl_check_names_swapped_arguments():
    result = check_kl_discrete(lambda p, q: kl_correct(q, p))
    assert not result.passed
    assert any("swapped" in message for message in result.messages), str(result)


def test_kl_check_names_bits_instead_of_nats():
    result = check_kl_discrete(lambda p, q: kl_correct(p, q) / torch.log(torch.tensor(2.0)))
    assert not result.passed
    assert any("bits" in message for message in result.messages), str(result)


def test_kl_check_catches_nan_from_zero_probabilities():
    result = check_kl_discrete(lambda p, q: (p * torch.log(p / q)).sum())  # 0 * log 0 = nan
    assert not result.passed and 0 < result.score < 1, "some cases pass, the zero-probability case must fail"
    assert any("0 log 0" in message or "0 * log 0" in message for message in result.messages), str(result)


def test_kl_check_rejects_per_outcome_terms_instead_of_a_sum():
    result = check_kl_discrete(lambda p, q: torch.special.xlogy(p, p) - torch.special.xlogy(p, q))
    assert not result.passed
    assert any("shape" in message for message in result.messages), str(result)


def test_kl_check_accepts_a_plain_number():
    assert check_kl_discrete(lambda p, q: kl_correct(p, q).item()).passed


def test_js_check_passes_a_correct_solution_and_fails_kl():
    assert check_js_divergence(js_correct).passed
    wrong = check_js_divergence(kl_correct)
    assert not wrong.passed and wrong.score < 1


def test_js_reference_cases_have_the_known_values():
    # disjoint supports give log 2; identical distributions give 0
    p, q = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.5, 0.5])
    assert torch.isclose(js_correct(p, q), torch.log(torch.tensor(2.0)))
    assert js_correct(p, p) == 0


def test_adam_check_passes_a_correct_solution():
    result = check_adam_step(adam_correct)
    assert result.passed, str(result)


def test_adam_check_points_at_missing_bias_correction():
    def adam_without_correction(param, grad, m, v, step, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        return param - lr * m / (v.sqrt() + eps), m, v

    result = check_adam_step(adam_without_correction)
    assert not result.passed
    assert any("1 - beta1**step" in message for message in result.messages), str(result)


def test_adam_check_reports_a_wrong_return_type():
    result = check_adam_step(lambda param, grad, m, v, step, *args: param)
    assert not result.passed
    assert any("tuple" in message for message in result.messages), str(result)


def test_placeholders_are_not_attempted_and_exceptions_are_reported():
    for check in (check_kl_discrete, check_js_divergence, check_adam_step):
        untouched = check(placeholder)
        assert untouched.status == "not attempted" and untouched.score == 0, str(untouched)
        crashed = check(raises)
        assert not crashed.passed and any("ValueError" in message for message in crashed.messages), str(crashed)


def test_checks_record_to_the_grade_log(tmp_path, monkeypatch):
    log = tmp_path / "grades.jsonl"
    monkeypatch.setenv("AIGC_LESSONS_GRADE_LOG", str(log))
    check_kl_discrete(kl_correct)
    check_js_divergence(placeholder)
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and '"math-ex-2"' in lines[0] and '"not attempted"' in lines[1]
