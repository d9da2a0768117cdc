"""The benchmarks run (on tiny budgets); their figures live in benchmarks/RESULTS.md, not in tests."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.book_build import ROOT

_spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
benchmarks = importlib.util.module_from_spec(_spec)
sys.modules["benchmarks_run"] = benchmarks  # dataclasses look their module up there
_spec.loader.exec_module(benchmarks)


def test_quick_benchmarks_write_a_results_table(tmp_path, mnist_available):
    out = tmp_path / "RESULTS.md"
    only = ["throughput", "quality", "notebooks", "import"]  # gpu runs only where CUDA is available
    assert benchmarks.main(["--quick", "--only", *only, "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for heading in ("## Training throughput", "## Time to quality", "## Book execution (fast mode)", "## Import time",
                    "- CPU:", "- GPU:", "*Measured "):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith("| gan_mlp: ")]
    assert len(rows) == 5, rows  # the reference loop, then the trainer in fp32 and bf16 at batch 64 and 128
    assert "1.00× (reference)" in rows[0]
    assert [row.split(" | ")[1:3] for row in rows[1:]] == [["fp32", "64"], ["fp32", "128"], ["bf16", "64"],
                                                            ["bf16", "128"]]
    assert "bfloat16 units:" in text
    assert sum(line.startswith("| convolutional cGAN") for line in text.splitlines()) == 2  # fp32 and bf16


def test_quick_diffusion_benchmarks_write_their_sections(tmp_path, mnist_available):
    out = tmp_path / "RESULTS.md"
    assert benchmarks.main(["--quick", "--only", "diffusion", "diffusion-quality", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    rows = [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| training") or
            line.startswith("| sampling")]
    assert rows == [["| training", "fp32"], ["| training", "bf16"], ["| sampling", "2 DDIM steps, guidance 1"],
                    ["| sampling", "5 DDIM steps, guidance 1"]]
    assert "## Diffusion: time to class accuracy" in text and "\n| 1 | " in text  # one epoch in quick mode


def test_section_renders_a_markdown_table():
    section = benchmarks.Section("Title", "How.", ["a", "b"], [["1", "2"]])
    assert section.markdown() == "## Title\n\nHow.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"



def test_add_replaces_only_the_sections_it_runs(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# Benchmark results\n\n- CPU: old\n\n## Kept section\n\nkept text\n\n## Import time\n\nold numbers\n",
                   encoding="utf-8")
    assert benchmarks.main(["--quick", "--only", "import", "--add", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "## Kept section\n\nkept text" in text
    assert "old numbers" not in text and text.count("## Import time") == 1
    assert "- CPU: old" not in text  # the machine header describes the machine of the latest run


def test_quick_text_benchmark_writes_its_section(tmp_path):
    from aigc_lessons import pretrained

    if not pretrained.exists("gpt_shakespeare"):
        pytest.skip("gpt_shakespeare weights not trained yet")
    out = tmp_path / "RESULTS.md"
    assert benchmarks.main(["--quick", "--only", "text", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "## Text: GPT training and generation speed" in text
    assert "| training | bf16 |" in text and "key-value cache" in text and "no cache" in text
