"""Run every benchmark and write ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/run.py                  # everything (about 30 minutes on 2 CPU cores)
    .venv/bin/python benchmarks/run.py --quick          # tiny budgets: proves each benchmark runs
    .venv/bin/python benchmarks/run.py --only throughput import
    .venv/bin/python benchmarks/run.py --only notebooks --add   # rerun one section, keep the rest

Benchmarks are measurements, not tests: the figures live in RESULTS.md, written
by the run itself with the date and the machine. The test suite runs this file
with ``--quick`` once to prove that every benchmark still works.

What is compared (see the README in this folder):

- *throughput*: the package's trainers (data as tensors on the device,
  ``TensorBatches``, one host sync per logging step) against a reference loop
  in the style of the source articles' MNIST project (torchvision ``MNIST``
  dataset, ``ToTensor``/``Normalize`` transforms, a ``DataLoader`` with batch
  64, ``loss.item()`` on every step), for the same model and the same number
  of training images;
- *time to quality*: wall-clock time until the VAE reaches a stated test
  negative ELBO;
- *diffusion*: training images/s of ``ddpm_mnist``'s network (float32 and bfloat16) and
  sampling images/s of the shipped model per number of DDIM steps;
- *diffusion-quality*: training time until ``ddpm_mnist``'s recipe reaches 95% class accuracy;
- *serving*: ``aigc-lessons serve`` under load on 127.0.0.1 (``benchmarks/load_test.py``):
  latency percentiles and images/s of the cGAN, with and without batching, and overload;
- *distributed*: one process against ``torchrun`` with 2 gloo processes, the same global batch;
- *privacy*: DP-SGD (Opacus) training time and accuracy per target ε;
- *private-generators*: DP-SGD's conditional VAE against DP-MERF, time and train-on-synthetic accuracy;
- *robustness*: FGSM adversarial training with a random start, images/s and time to PGD-20 >= 85%;
- *notebooks*: time of every notebook in the table of contents in fast mode;
- *import*: ``import aigc_lessons`` and ``aigc-lessons --help``;
- *gpu*: eager float32, automatic mixed precision and ``torch.compile`` (only
  when CUDA is available);
- *grading*: ``aigc-lessons grade`` on 30 submissions of one chapter, two at a
  time (the classroom target: at most 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
sys.path.insert(0, str(ROOT))

from aigc_lessons.core import cpu_bfloat16_units, get_device, seed_everything  # noqa: E402
from aigc_lessons.data import load_mnist, verify_mnist  # noqa: E402


@dataclass
class Section:
    """One benchmark's results: a title, a note on the method, and a Markdown table."""

    title: str
    note: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", self.note, "", "| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The reference: a training loop as the source articles' MNIST project writes it.
# ---------------------------------------------------------------------------------------------

def torchvision_mnist_root(work: Path) -> Path:
    """Copy the verified MNIST archives into ``work/MNIST/raw``, where torchvision looks for them.

    A private copy, because the shared data folder may be read-only and torchvision
    extracts the archives next to themselves.
    """
    raw = work / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in verify_mnist().values():
        shutil.copy(path, raw / path.name)
    return work


def reference_loader(root: Path, batch_size: int, value_range: tuple[float, float]):
    """A torchvision MNIST ``DataLoader`` with per-image transforms, as in most tutorials."""
    from torchvision import datasets, transforms

    steps = [transforms.ToTensor()]
    if value_range == (-1, 1):
        steps.append(transforms.Normalize((0.5,), (0.5,)))
    dataset = datasets.MNIST(root, train=True, download=True, transform=transforms.Compose(steps))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


def reference_gan_epoch(generator, discriminator, loader, images_wanted: int, device) -> tuple[int, float]:
    """Tutorial-style GAN loop: labels built per step, ``.item()`` per step. Returns (images, seconds)."""
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    losses_d, losses_g, seen = [], [], 0
    started = time.perf_counter()
    while seen < images_wanted:
        for real, _ in loader:
            real = real.to(device)
            batch = real.size(0)
            ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
            fake = generator(torch.randn(batch, generator.latent_dim, device=device))
            loss_d = (F.binary_cross_entropy_with_logits(discriminator(real), ones)
                      + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            losses_d.append(loss_d.item())
            losses_g.append(loss_g.item())
            seen += batch
            if seen >= images_wanted:
                break
    return seen, time.perf_counter() - started


def reference_vae_epoch(model, loader, images_wanted: int, device) -> tuple[int, float]:
    """Tutorial-style VAE loop (the PyTorch example's): BCE + KL, ``.item()`` per step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seen, total = 0, 0.0
    started = time.perf_counter()
    while seen < images_wanted:
        for x, _ in loader:
            x = x.to(device)
            mu, logvar = model.encode(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = model.decode(z)
            bce = F.binary_cross_entropy_with_logits(logits.flatten(1), x.flatten(1), reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (bce + kl) / x.size(0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            seen += x.size(0)
            if seen >= images_wanted:
                break
    return seen, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------

def _gan_pair(kind: str):
    from aigc_lessons import models

    if kind == "gan_mlp":
        return models.GeneratorMLP(latent_dim=100), models.DiscriminatorMLP()
    return models.MODEL_CLASSES["GeneratorDCGAN"](), models.MODEL_CLASSES["DiscriminatorDCGAN"]()


def _throughput_row(name, precision, batch, rates, load_seconds, reference_rate=None) -> list[str]:
    rate = statistics.median(rates)
    ratio = f"{rate / reference_rate:.2f}×" if reference_rate else "1.00× (reference)"
    return [name, precision, str(batch), f"{rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
            f"{load_seconds:.1f}", ratio]


def _package_rate(family: str, images: torch.Tensor, precision: str, batch: int, device) -> float:
    """Images per second of one epoch of the package trainer over ``images``."""
    from aigc_lessons import models
    from aigc_lessons.train import GanConfig, VaeConfig, train_gan, train_vae

    if family == "vae":
        config = VaeConfig(epochs=1, batch_size=batch, precision=precision)
        history = train_vae(models.VAE(), images, config, device=device, progress=False)
    else:
        generator, discriminator = _gan_pair(family)
        config = GanConfig(epochs=1, batch_size=batch, precision=precision)
        history = train_gan(generator, discriminator, images, config, device=device, progress=False)
    return len(images) / history.seconds


def bench_throughput(quick: bool, device) -> Section:
    from aigc_lessons import models

    images_per_round, rounds = (1_024, 1) if quick else (20_000, 3)
    package_settings = [("fp32", 64), ("fp32", 128), ("bf16", 64), ("bf16", 128)]
    section = Section(
        "Training throughput",
        f"Same model, same number of training images ({images_per_round:,} per round), on `{device}`. "
        f"{rounds} round(s): each round runs the reference and then every package setting once, so that a "
        "slow spell of a shared machine hits all of them; the table gives the median images/s over the rounds, "
        "the slowest and fastest round, and the ratio of medians. "
        "*Reference*: torchvision `MNIST` + `ToTensor`/`Normalize` + `DataLoader(batch_size=64, shuffle=True)`, "
        "`loss.item()` every step (the source project's style). *Package*: `load_mnist` tensors on the device, "
        "`TensorBatches`, the package trainer (`log_every=50`), in float32 and with `precision=\"bf16\"` "
        "(bfloat16 autocast for the forward passes; faster only on hardware with bfloat16 units, see the "
        "machine line above). Times exclude the one-time data load, shown in its own column "
        "(decoding MNIST once into tensors; for the reference, building the dataset).",
        ["model / loop", "precision", "batch", "images/s (median)", "slowest–fastest round", "data setup s",
         "vs reference"],
    )
    families = ["gan_mlp", "vae"]
    if "GeneratorDCGAN" in models.MODEL_CLASSES:
        families.insert(1, "dcgan")
    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as work:
        root = torchvision_mnist_root(Path(work))
        for family in families:
            value_range = (0, 1) if family == "vae" else (-1, 1)
            started = time.perf_counter()
            loader = reference_loader(root, 64, value_range)
            reference_load = time.perf_counter() - started
            started = time.perf_counter()
            data = load_mnist("train", value_range=value_range, device=device, subset=images_per_round)
            package_load = time.perf_counter() - started
            reference_rates: list[float] = []
            package_rates: dict[tuple[str, int], list[float]] = {setting: [] for setting in package_settings}
            for round_index in range(rounds):
                seed_everything(round_index)
                if family == "vae":
                    seen, seconds = reference_vae_epoch(models.VAE().to(device), loader, images_per_round, device)
                else:
                    generator, discriminator = (m.to(device) for m in _gan_pair(family))
                    seen, seconds = reference_gan_epoch(generator, discriminator, loader, images_per_round, device)
                reference_rates.append(seen / seconds)
                for precision, batch in package_settings:
                    seed_everything(round_index)
                    package_rates[precision, batch].append(
                        _package_rate(family, data.images, precision, batch, device))
            reference_rate = statistics.median(reference_rates)
            section.rows.append(_throughput_row(f"{family}: reference loop", "fp32", 64, reference_rates,
                                                reference_load))
            for (precision, batch), rates in package_rates.items():
                section.rows.append(_throughput_row(f"{family}: package trainer", precision, batch, rates,
                                                    package_load, reference_rate))
    return section


def bench_time_to_quality(quick: bool, device) -> Section:
    from aigc_lessons.models import VAE
    from aigc_lessons.train import VaeConfig, binarize, evaluate_vae, train_vae

    target = 200.0 if quick else 105.0
    limit_seconds = 60 if quick else 900
    train = load_mnist("train", value_range=(0, 1), device=device, subset=4_096 if quick else None)
    test = load_mnist("test", value_range=(0, 1), device=device, subset=1_000 if quick else None)
    test_images = binarize(test.images, seed=0)
    seed_everything(0)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as train_vae makes it
    elapsed, epoch, value = 0.0, 0, float("inf")
    while value > target and elapsed < limit_seconds:
        history = train_vae(model, train.images, VaeConfig(epochs=1), device=device, progress=False,
                            optimizer=optimizer)
        elapsed += history.seconds
        epoch += 1
        value = evaluate_vae(model, test_images)["negative_elbo"]
    reached = f"{elapsed:.0f}" if value <= target else f"not reached in {elapsed:.0f}"
    section = Section(
        "Time to quality",
        f"Wall-clock training time (evaluation excluded) until the PyTorch example's VAE (784-400-20, the VAE chapter's baseline; "
        f"Bernoulli decoder, dynamic binarisation, batch 128, Adam 1e-3) reaches a test negative ELBO of "
        f"{target:.0f} nats on {len(test):,} binarised test digits, on `{device}`, evaluated after every epoch.",
        ["model", "target", "epochs", "seconds", "value reached"],
    )
    section.rows.append(["VAE (latent 20)", f"≤ {target:.0f} nats", str(epoch), reached, f"{value:.1f} nats"])
    section.rows.append(_cgan_time_to_accuracy(quick, device, "fp32"))
    section.rows.append(_cgan_time_to_accuracy(quick, device, "bf16"))
    section.note += (
        " The convolutional conditional GAN (`cgan_dcgan_mnist`'s networks and settings: batch 128, Adam 2e-4, "
        "β₁ 0.5), in float32 and with bfloat16 autocast (`precision=\"bf16\"`, same seed), "
        "is trained one epoch at a time until the reference classifier labels "
        f"{'90' if quick else '95'}% of its samples as the requested digit "
        f"({'50' if quick else '1,000'} samples per digit, fixed noise), checked after every epoch.")
    return section


def _cgan_time_to_accuracy(quick: bool, device, precision: str) -> list[str]:
    """Train the convolutional cGAN epoch by epoch until its samples reach the target class accuracy."""
    from aigc_lessons import pretrained
    from aigc_lessons.models import ConditionalDiscriminatorDCGAN, ConditionalGeneratorDCGAN
    from aigc_lessons.train import CganConfig, conditional_class_accuracy, sample_images, train_cgan

    target, per_class, max_epochs = (0.90, 50, 2) if quick else (0.95, 1_000, 10)
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=2_048 if quick else None)
    judge = pretrained.load("classifier_mnist", device=device)
    seed_everything(0)
    generator = ConditionalGeneratorDCGAN(latent_dim=64, num_classes=10, embed_dim=16, channels=32)
    discriminator = ConditionalDiscriminatorDCGAN(channels=32)
    optimizers = tuple(torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)  # as train_cgan
                       for m in (generator, discriminator))

    def judged_samples(labels):  # the judge reads [0, 1]; the generator writes [-1, 1]
        noise = torch.randn(len(labels), 64, generator=torch.Generator().manual_seed(2)).to(device)
        return (sample_images(generator, noise, labels.to(device)) + 1) / 2

    elapsed, epoch, accuracy, history = 0.0, 0, 0.0, None
    while accuracy < target and epoch < max_epochs:
        config = CganConfig(epochs=epoch + 1, precision=precision)
        history = train_cgan(generator, discriminator, train.images, train.labels, config,
                             device=device, progress=False, start_epoch=epoch, history=history,
                             optimizers=optimizers)
        elapsed = history.seconds  # the history carries the training time across calls
        epoch += 1
        accuracy, _ = conditional_class_accuracy(judge, judged_samples, per_class=per_class, device=device)
    reached = f"{elapsed:.0f}" if accuracy >= target else f"not reached in {elapsed:.0f}"
    name = "convolutional cGAN" + (", bf16" if precision == "bf16" else "")
    return [name, f"≥ {target:.0%} class accuracy", str(epoch), reached, f"{accuracy:.1%} accuracy"]


def bench_notebooks(quick: bool) -> Section:
    import nbformat
    from nbclient import NotebookClient

    from aigc_lessons.classroom import toc_notebooks  # the package's reading of _toc.yml (not the tests')

    paths = toc_notebooks(ROOT)[:1] if quick else toc_notebooks(ROOT)
    section = Section(
        "Book execution (fast mode)",
        "Each notebook of `_toc.yml` executed once with `AIGC_LESSONS_FAST=1` by nbclient, one after another, "
        "in its own kernel (kernel start-up included).",
        ["notebook", "seconds"],
    )
    os.environ["AIGC_LESSONS_FAST"] = "1"
    total = 0.0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - started
        total += seconds
        section.rows.append([str(path.relative_to(ROOT)), f"{seconds:.1f}"])
    section.rows.append(["**total**", f"**{total:.1f}** ({total / 60:.1f} min)"])
    return section


def _diffusion_model():
    """A fresh network of ``ddpm_mnist``'s size (the kwargs on its card)."""
    from aigc_lessons import pretrained
    from aigc_lessons.models import DiffusionModel

    return DiffusionModel(**pretrained.card("ddpm_mnist")["model"]["kwargs"])


def bench_diffusion_speed(quick: bool, device) -> Section:
    """Training images/s of ``ddpm_mnist``'s network in fp32 and bf16; sampling images/s per number of DDIM steps."""
    from aigc_lessons import pretrained
    from aigc_lessons.recipes import full_setting
    from aigc_lessons.train.diffusion import DiffusionConfig, train_diffusion

    # bf16 is emulated (about 10x slower) on CPUs without bfloat16 units: a short epoch keeps the run in minutes.
    images_per_round, rounds = (256, 1) if quick else (1_024, 2)
    sample_count, step_counts = (20, [2, 5]) if quick else (200, [5, 10, 25, 50])
    batch = full_setting("ddpm_mnist")["batch_size"]
    data = load_mnist("train", value_range=(-1, 1), device=device, subset=images_per_round)
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for round_index in range(rounds):  # alternate the precisions, so that a slow spell hits both
        for precision in rates:
            seed_everything(round_index)
            config = DiffusionConfig(epochs=1, batch_size=batch, warmup_steps=1, precision=precision)
            history, _ = train_diffusion(_diffusion_model(), data.images, config, labels=data.labels,
                                         device=device, progress=False)
            rates[precision].append(images_per_round / history.seconds)
    section = Section(
        "Diffusion: training and sampling speed",
        f"*Training*: one epoch over {images_per_round:,} digits of a fresh network of `ddpm_mnist`'s size "
        f"(`train_diffusion`, batch {batch}, class labels, EMA on), in float32 and with bfloat16 autocast, "
        f"{rounds} round(s) alternating the two; median images/s. *Sampling*: the shipped `ddpm_mnist`, "
        f"{sample_count} digits per setting (labels 0-9 in turn, one batch), DDIM with eta = 0 and the card's "
        "guidance weight (two network calls per step on the batch, conditional and unconditional), "
        f"on `{device}`.",
        ["task", "setting", "images/s", "seconds per 1,000 images"],
    )
    for precision, values in rates.items():
        rate = statistics.median(values)
        section.rows.append(["training", precision, f"{rate:.0f}", f"{1000 / rate:.1f}"])
    model = pretrained.load("ddpm_mnist", device=device).eval()
    labels = (torch.arange(sample_count) % 10).to(device)
    for steps in step_counts:
        started = time.perf_counter()
        model.sample(sample_count, labels, sampling_steps=steps, generator=torch.Generator().manual_seed(0))
        seconds = time.perf_counter() - started
        section.rows.append(["sampling", f"{steps} DDIM steps, guidance {model.guidance:g}",
                             f"{sample_count / seconds:.1f}", f"{1000 * seconds / sample_count:.0f}"])
    return section


def bench_diffusion_quality(quick: bool, device) -> Section:
    """Train ``ddpm_mnist``'s recipe epoch by epoch until its EMA model's samples reach 95% class accuracy."""
    from aigc_lessons import pretrained
    from aigc_lessons.data import TensorBatches
    from aigc_lessons.recipes import full_setting
    from aigc_lessons.recipes.diffusion import CONFIG_KEYS
    from aigc_lessons.train import conditional_class_accuracy, fit
    from aigc_lessons.train.diffusion import DiffusionConfig, diffusion_training

    target, per_class, subset = (0.5, 5, 1_024) if quick else (0.95, 100, None)
    setting = full_setting("ddpm_mnist")
    max_epochs = 1 if quick else setting["epochs"]
    config = DiffusionConfig(**{key: setting[key] for key in CONFIG_KEYS})
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=subset)
    judge = pretrained.load("classifier_mnist", device=device)
    seed_everything(config.seed)
    model = _diffusion_model().to(device).train()
    _, ema, step = diffusion_training(model, config, conditional=True)
    batches = TensorBatches(train.images, train.labels, batch_size=config.batch_size, seed=config.seed)
    elapsed, epoch, accuracy, rows = 0.0, 0, 0.0, []
    while accuracy < target and epoch < max_epochs:
        history = fit(step, batches, 1, log_every=config.log_every, progress=False, desc="diffusion")
        elapsed += history.seconds
        epoch += 1
        averaged = ema.module  # the EMA weights, sampled in place as the command line's trainer does

        def judged_samples(labels):  # the judge reads [0, 1]; samples are in [-1, 1]
            return (averaged.sample(len(labels), labels, generator=torch.Generator().manual_seed(0)) + 1) / 2

        accuracy, _ = conditional_class_accuracy(judge, judged_samples, per_class=per_class, device=device)
        rows.append([str(epoch), f"{elapsed:.0f}", f"{accuracy:.1%}"])
    section = Section(
        "Diffusion: time to class accuracy",
        f"`ddpm_mnist`'s recipe (its full setting: batch {config.batch_size}, Adam {config.lr:g} with "
        f"{config.warmup_steps} warm-up steps, EMA {config.ema_decay:g}, label dropout {config.label_dropout:g}) "
        f"trained from scratch one epoch at a time on {len(train):,} digits, on `{device}`; after every epoch "
        f"the EMA weights draw {per_class} samples per digit with the card's sampler (DDIM, "
        f"{model.sampling_steps} steps, guidance {model.guidance:g}) and the reference classifier reads them. "
        f"Training time only (sampling and judging excluded); the run stops at {target:.0%} class accuracy "
        f"or after {max_epochs} epoch(s).",
        ["epoch", "training seconds", "class accuracy"],
        rows,
    )
    return section


GRADE_CHAPTER = "book/foundations/math_foundations.ipynb"  # the shortest chapter with coding exercises


def _gpt_model():
    """A fresh network of ``gpt_shakespeare``'s size (the kwargs on its card)."""
    from aigc_lessons import pretrained
    from aigc_lessons.models import GPT

    return GPT(**pretrained.card("gpt_shakespeare")["model"]["kwargs"])


def bench_text_speed(quick: bool, device) -> Section:
    """Training tokens/s of ``gpt_shakespeare``'s network in fp32 and bf16; generation tokens/s with and without the key-value cache."""
    from aigc_lessons.recipes import full_setting
    from aigc_lessons.train.gpt import GptConfig, train_gpt

    setting = full_setting("gpt_shakespeare")
    steps, rounds = (4, 1) if quick else (10, 2)  # bf16 is emulated (about 10x slower) without bfloat16 units
    batch, context = setting["batch_size"], setting["context_length"]
    text = torch.randint(0, 75, (200_000,), generator=torch.Generator().manual_seed(0))
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for round_index in range(rounds):  # alternate the precisions, so that a slow spell hits both
        for precision in rates:
            seed_everything(round_index)
            config = GptConfig(steps=steps, eval_every=steps, batch_size=batch, warmup_steps=1,
                               precision=precision)
            history = train_gpt(_gpt_model(), text, config, device=device, progress=False)
            rates[precision].append(steps * batch * context / history.seconds)
    section = Section(
        "Text: GPT training and generation speed",
        f"*Training*: {steps} steps of batches of {batch} random blocks of {context} tokens (`train_gpt`, "
        f"AdamW) on a fresh network of `gpt_shakespeare`'s size, in float32 and with bfloat16 autocast, "
        f"{rounds} round(s) alternating the two; median tokens/s. *Generation*: the same network (random "
        "weights: speed does not depend on them) samples one sequence from a one-character prompt, "
        "with the key-value cache (each step feeds one new token) and without it (each step feeds "
        "the whole sequence so far); within the context, and past it, where the window slides "
        f"and the cache is rebuilt every step; on `{device}`.",
        ["task", "setting", "tokens/s", "ratio"],
    )
    for precision, values in rates.items():
        ratio = statistics.median(values) / statistics.median(rates["fp32"])
        section.rows.append(["training", precision, f"{statistics.median(values):,.0f}", f"{ratio:.2f}"])
    model = _gpt_model().to(device).eval()
    lengths = {"within the context": context - 1, "past the context": 2 * context} if not quick \
        else {"within the context": 16}
    for where, length in lengths.items():
        timings = {}
        for use_cache in (True, False, True, False):  # twice each, alternating; the best of two
            started = time.perf_counter()
            model.generate([0], length, generator=torch.Generator().manual_seed(0), use_cache=use_cache)
            rate = length / (time.perf_counter() - started)
            timings[use_cache] = max(timings.get(use_cache, 0.0), rate)
        for use_cache in (True, False):
            section.rows.append([f"generation, {length} tokens {where}",
                                 "key-value cache" if use_cache else "no cache",
                                 f"{timings[use_cache]:,.0f}", f"{timings[use_cache] / timings[False]:.2f}"])
    return section


def _class_of_submissions(folder: Path, count: int) -> dict[str, int]:
    """``count`` submissions of GRADE_CHAPTER's student version: solved, half solved, and untouched, in turn."""
    import nbformat

    from aigc_lessons.classroom import build_student_version

    chapter = ROOT / GRADE_CHAPTER
    reference = {cell.get("id"): cell.source for cell in nbformat.read(chapter, as_version=4).cells}
    kinds = {"solved": 0, "half solved": 0, "untouched": 0}
    for number in range(count):
        student = build_student_version(chapter, source_name=GRADE_CHAPTER)
        kind = list(kinds)[number % 3]
        kinds[kind] += 1
        answers = [cell for cell in student.cells
                   if cell.cell_type == "code" and cell.metadata.get("aigc_lessons", {}).get("code_for")]
        for cell in answers[: {"solved": len(answers), "half solved": len(answers) // 2, "untouched": 0}[kind]]:
            cell.source = "\n".join(line for line in reference[cell["id"]].split("\n") if "SOLUTION" not in line)
        target = folder / f"student{number + 1:02d}" / chapter.name
        target.parent.mkdir(parents=True)
        nbformat.write(student, target)
    return kinds


def bench_grading(quick: bool) -> Section:
    """``aigc-lessons grade`` on a class: every submission in its own worker, kernel and hidden-case process."""
    from aigc_lessons.classroom import grade_course

    count, jobs = (3, 2) if quick else (30, 2)
    with tempfile.TemporaryDirectory(prefix="aigc-bench-grade-") as work:
        submissions = Path(work) / "submissions"
        kinds = _class_of_submissions(submissions, count)
        # the grader stops when a submission changes its files; in a working tree that is being edited
        # while the benchmark runs, watch the data and hidden cases only (the cost is the same)
        guard = os.environ.get("AIGC_LESSONS_GRADE_GUARD")
        os.environ["AIGC_LESSONS_GRADE_GUARD"] = os.pathsep.join(
            p for p in (os.environ.get("AIGC_LESSONS_DATA", ""), str(ROOT / "book" / "teaching" / "hidden")) if p)
        try:
            started = time.perf_counter()
            course = grade_course(submissions, Path(work) / "out" / "grades.csv", timeout=300, jobs=jobs,
                                  feedback=True, gradescope=Path(work) / "out" / "gradescope",
                                  canvas=Path(work) / "out" / "canvas.csv", quiet=True)
            seconds = time.perf_counter() - started
        finally:
            if guard is None:
                os.environ.pop("AIGC_LESSONS_GRADE_GUARD", None)
            else:
                os.environ["AIGC_LESSONS_GRADE_GUARD"] = guard
    per_run = sorted(grade.run.seconds for grade in course.grades)
    completed = sum(grade.run.status == "completed" for grade in course.grades)
    hidden_rows = sum(exercise.kind == "hidden" for grade in course.grades for exercise in grade.exercises)
    section = Section(
        "Classroom grading",
        f"`grade_course` (what `aigc-lessons grade --jobs {jobs}` runs) on {count} submissions of "
        f"`{GRADE_CHAPTER}`'s student version ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
        f"{jobs} at a time on {os.cpu_count()} core(s): each in its own worker process, kernel (fast mode, "
        "memory and CPU limits) and temporary folder, then the book's hidden cases in a process of their own; "
        "feedback pages, class summary, Gradescope and Canvas files included. Target: 30 submissions in at most "
        "10 minutes on 2 cores.",
        ["chapter", "submissions", "jobs", "seconds", "minutes", "median notebook run s", "completed",
         "hidden rows"],
    )
    section.note += (f" This run: {_cpu_name()}, {os.cpu_count()} cores visible; load average "
                     f"{os.getloadavg()[0]:.2f} at its end.")
    section.rows.append([GRADE_CHAPTER, str(count), str(jobs), f"{seconds:.0f}", f"{seconds / 60:.1f}",
                         f"{statistics.median(per_run):.1f}" if per_run else "", f"{completed}/{count}",
                         str(hidden_rows)])
    return section


def _best_of(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return min(times)


def bench_serving(quick: bool, device) -> Section:
    """``aigc-lessons serve`` under load on 127.0.0.1: latency percentiles and images/s, with and without batching."""
    from aigc_lessons.serve.loadtest import measure

    server_device = "cuda" if getattr(device, "type", str(device)) == "cuda" else "cpu"
    rows, overload = measure(quick, server_device, log=lambda line: None)
    statuses = ", ".join(f"{code}: {n}" for code, n in overload["statuses"].items())
    section = Section(
        "Serving: the cGAN behind HTTP",
        "`python benchmarks/load_test.py` (the same code): `aigc-lessons serve --models cgan_mnist` in its own "
        "process on a free 127.0.0.1 port, closed-loop clients on the same machine (a minimal asyncio HTTP/1.1 "
        "client), each scenario bounded in requests and seconds; server with one torch thread and a JSON log "
        f"line per request. Overload: {overload['clients']} clients against a queue of {overload['max_queue']}: "
        f"{overload['requests']} answers ({statuses}), server alive {overload['alive']}, a normal request "
        f"afterwards {overload['status_after']} in {overload['first_request_after_ms']} ms.",
        ["batching", "images/request", "clients", "requests", "failed", "p50 ms", "p95 ms", "p99 ms", "images/s"],
    )
    for row in rows:
        section.rows.append(["yes" if row.batching else "no", str(row.count), str(row.concurrency),
                             str(row.requests), str(row.failed), f"{row.percentile(50):.1f}",
                             f"{row.percentile(95):.1f}", f"{row.percentile(99):.1f}", f"{row.images_per_s:,.0f}"])
    return section


def bench_distributed(quick: bool, device) -> Section:
    """One process at batch 128 against ``torchrun`` with 2 gloo processes at batch 64 each (same global batch)."""
    import re
    import subprocess
    import tempfile

    from aigc_lessons.runs.distributed import run_torchrun

    subset = 1_024 if quick else 10_240
    section = Section(
        "Distributed training",
        f"`aigc-lessons train MODEL` on the CPU, {subset:,} images, 1 epoch, global batch 128: one process at "
        "`--batch-size 128` (with torch's default threads, and with one thread) against "
        "`torchrun --nproc_per_node 2` (gloo backend) at `--batch-size 64` per process, one thread each "
        "(torchrun's default). DistributedDataParallel averages the gradients of every step over the "
        "processes. *Training s* is the time of the epoch as the run reports it; *wall s* adds starting the "
        "processes, importing torch and loading the data. One round: on a machine shared with other jobs, "
        "the 2-thread single process is the most sensitive to them (its threads meet at every matrix product).",
        ["model", "processes x threads", "batch per process", "images/s", "training s", "wall s",
         "vs 1 process (default threads)"],
    )

    def run(model: str, processes: int, threads: int, folder: Path) -> tuple[float, float]:
        arguments = ["-m", "aigc_lessons.cli", "train", model, "--run-dir", str(folder), "--epochs", "1",
                     "--subset", str(subset), "--batch-size", str(128 // processes), "--device", "cpu",
                     "--no-progress", "--no-tensorboard"]
        environment = {"OMP_NUM_THREADS": str(threads)}
        if processes == 1:
            started = time.perf_counter()
            done = subprocess.run([sys.executable, *arguments], capture_output=True, text=True, check=True,
                                  timeout=1800, env={**os.environ, **environment})
            output, wall = done.stdout, time.perf_counter() - started
        else:
            done = run_torchrun(arguments, nproc=processes, timeout=1800, env=environment)
            output, wall = done.stdout, done.seconds
        return float(re.search(r"done: epochs \S+ in ([\d.]+) s", output).group(1)), wall

    images = subset // 128 * 128
    with tempfile.TemporaryDirectory(prefix="aigc-ddp-") as work:
        for model in ("gan_mlp", "vae"):
            reference = None
            for processes, threads in ((1, torch.get_num_threads()), (1, 1), (2, 1)):
                seconds, wall = run(model, processes, threads, Path(work) / f"{model}-{processes}-{threads}")
                rate = images / seconds
                reference = reference or rate
                section.rows.append([model, f"{processes} x {threads}", str(128 // processes), f"{rate:,.0f}",
                                     f"{seconds:.1f}", f"{wall:.1f}", f"{rate / reference:.2f}x"])
                print("| " + " | ".join(section.rows[-1]) + f" | load {os.getloadavg()[0]:.2f}", flush=True)
    return section


def bench_privacy(quick: bool, device) -> Section:
    """DP-SGD (Opacus) on the MNIST classifier: wall and CPU seconds and test accuracy per target ε.

    The setting is ``dp_classifier_mnist``'s full setting; quick mode trains one epoch on
    4,096 digits per ε instead (accuracy then says little; the times say what DP-SGD costs).
    """
    from aigc_lessons.privacy import DPConfig, train_dp_classifier
    from aigc_lessons.privacy.studies import NO_PRIVACY_LR
    from aigc_lessons.recipes import full_setting

    setting = full_setting("dp_classifier_mnist")
    setting["channels"] = tuple(setting["channels"])
    if quick:
        setting.update(epochs=1, subset=4096)
    epsilons = (3.0, None) if quick else (1.0, 3.0, 8.0, None)
    section = Section(
        "Privacy: DP-SGD training time and accuracy per ε",
        f"`train_dp_classifier` (Opacus, RDP accountant, δ = {setting['delta']:g}, Poisson sampling, "
        f"clipping norm {setting['max_grad_norm']}) on {setting['subset'] or 60000:,} training digits, "
        f"{setting['epochs']} epoch(s) of batch {setting['batch_size']}, SGD lr {setting['lr']}; "
        f"scored on the 10,000 test digits; `no privacy` is the same network and loop without "
        f"clipping or noise (SGD lr {NO_PRIVACY_LR}: the private step diverges unclipped), on `{device}`. Wall time depends on the machine's load (the load "
        f"average is in the last column); CPU time less so.",
        ["target ε", "accountant ε", "noise multiplier", "test accuracy", "wall s", "CPU s", "load (1 min)"],
    )
    for epsilon in epsilons:
        lr = setting["lr"] if epsilon is not None else NO_PRIVACY_LR  # lr 2.0 diverges unclipped
        run = train_dp_classifier(DPConfig(**{**setting, "target_epsilon": epsilon, "lr": lr}),
                                  device=device)
        section.rows.append([
            "no privacy" if epsilon is None else f"{epsilon:g}",
            "-" if run.epsilon is None else f"{run.epsilon:.2f}",
            f"{run.noise_multiplier:.3f}", f"{run.accuracy:.4f}", f"{run.seconds:.0f}",
            f"{run.cpu_seconds:.0f}", f"{os.getloadavg()[0]:.1f}",
        ])
    return section


def bench_private_generators(quick: bool, device) -> Section:
    """The two private generators in their full settings: seconds, ε, and train-on-synthetic accuracy.

    DP-SGD's conditional VAE (``dp_cvae_mnist``) against DP-MERF (``dp_merf_mnist``) at
    its ε and at ε = 1; quick mode uses the recipes' fast settings (the accuracies then
    say nothing).
    """
    from aigc_lessons.privacy import (DPGeneratorConfig, MerfConfig, synthetic_training_accuracy,
                                      train_dp_cvae, train_dp_merf)
    from aigc_lessons.recipes import RECIPES
    from aigc_lessons.recipes.privacy import generator_config

    section = Section(
        "Privacy: private generators",
        "Each generator trained from scratch in its recipe's full setting on the 60,000 training digits "
        "(δ = 1e-5), then scored as its card is: the augmentation chapter's classifier trained on "
        "10,000 of its samples only, tested on the 10,000 real test digits. DP-SGD's VAE pays noise at every "
        f"step; DP-MERF releases its random-feature means once, then trains without the data; on `{device}`.",
        ["generator", "method", "target ε", "ε", "noise σ", "steps", "wall s", "CPU s",
         "train-on-synthetic accuracy", "load (1 min)"],
    )
    runs = [("dp_cvae_mnist", DPGeneratorConfig, train_dp_cvae, None),
            ("dp_merf_mnist", MerfConfig, train_dp_merf, None),
            ("dp_merf_mnist", MerfConfig, train_dp_merf, 1.0)]
    for name, config_class, train, epsilon in runs:
        setting = RECIPES[name].setting(fast=quick)
        if epsilon is not None:
            setting["target_epsilon"] = epsilon
        config = generator_config(setting, config_class)
        run = train(config, device=device)
        utility = synthetic_training_accuracy(run.model, per_class=setting["synthetic_per_class"],
                                              steps=setting["classifier_steps"], seed=config.seed)
        section.rows.append([
            name, "DP-SGD (Opacus, RDP)" if name == "dp_cvae_mnist" else "one Gaussian release",
            f"{config.target_epsilon:g}", f"{run.epsilon:.2f}", f"{run.noise_multiplier:.3f}", str(run.steps),
            f"{run.seconds:.0f}", f"{run.cpu_seconds:.0f}", f"{utility['accuracy']:.1%}",
            f"{os.getloadavg()[0]:.1f}",
        ])
    return section


def bench_robustness(quick: bool, device) -> Section:
    """FGSM-RS adversarial training of ``robust_mnist``'s network: images/s and time to PGD-20 >= 85% (check batch)."""
    from aigc_lessons.models.robust_classifier import RobustMnistCNN
    from aigc_lessons.recipes import full_setting
    from aigc_lessons.recipes.robustness import model_kwargs, training_config, training_split
    from aigc_lessons.robustness import train_adversarial

    setting = full_setting("robust_mnist")
    if quick:
        setting.update(epochs=1, subset=5000)
    split = training_split(setting, device)
    count = len(split[0])
    torch.manual_seed(setting["seed"])
    started = time.perf_counter()
    result = train_adversarial(RobustMnistCNN(**model_kwargs(setting)).to(device), *split,
                               training_config(setting), progress=False)
    reached = next((row["seconds"] for row in result.epochs if row["check_pgd_accuracy"] >= 0.85), None)
    section = Section(
        "Adversarial training (FGSM-RS, robust_mnist)",
        f"`train_adversarial` in `robust_mnist`'s full setting: RobustMnistCNN (channels "
        f"{tuple(setting['channels'])}, {setting['hidden']} hidden units), ε = {setting['epsilon']}, step "
        f"{setting['step_ratio']} ε, a random start, {setting['epochs']} epochs; PGD-{setting['check_steps']} "
        f"on {setting['check_images']} held-out training digits after each epoch (early stop on it).",
        ["device", "images", "epochs run", "images/s", "best check PGD-20", "s to check PGD-20 >= 85%", "total s"])
    section.rows.append([str(device), str(count), str(len(result.epochs)), f"{result.images_per_second:.0f}",
                         f"{max(row['check_pgd_accuracy'] for row in result.epochs):.1%}",
                         "not reached" if reached is None else f"{reached:.0f}",
                         f"{time.perf_counter() - started:.0f}"])
    return section


def bench_import(quick: bool) -> Section:
    repeats = 1 if quick else 5
    python = sys.executable
    cli = str(Path(python).with_name("aigc-lessons"))
    baseline = _best_of([python, "-c", "pass"], repeats)
    section = Section(
        "Import time",
        f"Best of {repeats} fresh processes, wall clock, Python start-up included "
        f"(`python -c pass` alone: {baseline:.2f} s). Targets: import under 1 s, `--help` under 2 s.",
        ["command", "seconds"],
    )
    section.rows.append(["`python -c 'import aigc_lessons'`",
                         f"{_best_of([python, '-c', 'import aigc_lessons'], repeats):.2f}"])
    help_command = [cli, "--help"] if Path(cli).exists() else [python, "-m", "aigc_lessons.cli", "--help"]
    section.rows.append(["`aigc-lessons --help`", f"{_best_of(help_command, repeats):.2f}"])
    return section


def bench_gpu(quick: bool) -> Section | None:
    """Eager float32 vs bfloat16 autocast vs torch.compile, on the fully connected GAN and the DCGAN."""
    if not torch.cuda.is_available():
        return None
    from aigc_lessons.train import gan_step

    device = torch.device("cuda")
    steps, batch = (20, 256) if quick else (500, 256)
    data = load_mnist("train", value_range=(-1, 1), device=device).images
    section = Section(
        "GPU: eager, mixed precision, torch.compile",
        f"Batch {batch}, {steps} steps of `gan_step` after 20 warm-up steps (compilation happens there), "
        f"on {torch.cuda.get_device_name()}. Peak memory is PyTorch's allocator peak.",
        ["model", "mode", "images/s", "peak memory MiB"],
    )
    for family in ("gan_mlp", "dcgan"):
        for mode in ("eager fp32", "eager bf16", "torch.compile fp32"):
            seed_everything(0)
            generator, discriminator = (m.to(device) for m in _gan_pair(family))
            if mode.startswith("torch.compile"):
                generator, discriminator = torch.compile(generator), torch.compile(discriminator)
            opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
            opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
            torch.cuda.reset_peak_memory_stats()
            for index in range(steps + 20):
                if index == 20:
                    torch.cuda.synchronize()
                    started = time.perf_counter()
                real = data[torch.randint(len(data), (batch,), device=device)]
                gan_step(generator, discriminator, opt_g, opt_d, real, 100, precision=mode.split()[-1])
            torch.cuda.synchronize()
            rate = steps * batch / (time.perf_counter() - started)
            section.rows.append([family, mode, f"{rate:,.0f}", f"{torch.cuda.max_memory_allocated() / 2**20:.0f}"])
    return section


def _bfloat16_units() -> str:
    units = cpu_bfloat16_units()
    if units is None:
        return "unknown"
    return ", ".join(units) or "none (bf16 autocast is emulated and slower here)"


def _cpu_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def machine() -> str:
    cpu = _cpu_name()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (f"- CPU: {cpu}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}; "
            f"bfloat16 units: {_bfloat16_units()}\n"
            f"- GPU: {gpu}\n- Python {platform.python_version()}, torch {torch.__version__}")


BENCHMARKS = ["throughput", "quality", "diffusion", "diffusion-quality", "text", "serving", "distributed", "privacy", "private-generators", "robustness", "notebooks", "import", "gpu", "grading"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to check that every benchmark runs")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (Markdown)")
    parser.add_argument("--add", action="store_true",
                        help="replace only the sections run now in an existing results file, keep the others")
    args = parser.parse_args(argv)
    device = get_device("auto")
    header = machine()
    load = os.getloadavg()[0]
    sections: list[Section] = []
    runners = {
        "throughput": lambda: bench_throughput(args.quick, device),
        "quality": lambda: bench_time_to_quality(args.quick, device),
        "diffusion": lambda: bench_diffusion_speed(args.quick, device),
        "diffusion-quality": lambda: bench_diffusion_quality(args.quick, device),
        "text": lambda: bench_text_speed(args.quick, device),
        "serving": lambda: bench_serving(args.quick, device),
        "distributed": lambda: bench_distributed(args.quick, device),
        "privacy": lambda: bench_privacy(args.quick, device),
        "private-generators": lambda: bench_private_generators(args.quick, device),
        "robustness": lambda: bench_robustness(args.quick, device),
        "notebooks": lambda: bench_notebooks(args.quick),
        "import": lambda: bench_import(args.quick),
        "gpu": lambda: bench_gpu(args.quick),
        "grading": lambda: bench_grading(args.quick),
    }
    for name in args.only:
        print(f"== {name}", flush=True)
        section = runners[name]()
        if section is not None:
            sections.append(section)
            print(section.markdown(), flush=True)
    title = "# Benchmark results" + (" (quick run: tiny budgets, not representative)" if args.quick else "")
    command = ("python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    # Each section names its own machine: with --add, sections measured on different machines sit side by side.
    stamp = (f"*Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` on {_cpu_name()} "
             f"(bfloat16 units: {_bfloat16_units()}); load average {load:.2f} at the start.*")
    blocks = {section.title: section.markdown().replace("\n\n", f"\n\n{stamp}\n\n", 1) for section in sections}
    if args.add and args.out.exists():  # keep the other sections of the existing file
        kept = {block.split("\n", 1)[0]: "## " + block
                for block in args.out.read_text(encoding="utf-8").split("\n## ")[1:]}
        blocks = {**{title.removeprefix("## "): text for title, text in kept.items()}, **blocks}
    text = "\n".join([title, "", header, ""] + [block.rstrip("\n") + "\n" for block in blocks.values()])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
