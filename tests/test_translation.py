"""Tests of the image-to-image translation chapters: domain builders, networks, training steps, checks, weights."""

from __future__ import annotations

import pytest
import torch

from aigc_lessons.image_tasks import (
    edge_map,
    ink,
    paired_skeletons,
    skeleton,
    sobel_magnitude,
    thicken,
    thin,
    unpaired_stroke_domains,
)
from aigc_lessons.models.translation import CycleGenerators, PatchDiscriminator, UNetGenerator, receptive_field
from aigc_lessons.train.translation import (
    CycleGanConfig,
    Pix2PixConfig,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    pix2pix_step,
    train_cyclegan,
    train_pix2pix,
    translate,
)

TRANSLATION_ENTRIES = ("pix2pix_skeleton_mnist", "l1_skeleton_mnist", "cyclegan_stroke_mnist")


def _strokes(count: int = 6, seed: int = 0) -> torch.Tensor:
    """Random MNIST-like images: a few bright 3-pixel-wide bars on black, values in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(count, 1, 28, 28)
    for index in range(count):
        row, col = torch.randint(4, 20, (2,), generator=generator).tolist()
        images[index, 0, row:row + 3, 4:24] = 1.0
        images[index, 0, 4:24, col:col + 3] = 0.8
    return images


# --------------------------------------------------------------------------- domain builders


def test_dilation_only_adds_ink_and_erosion_only_removes_it():
    images = torch.rand(5, 1, 28, 28) * (torch.rand(5, 1, 28, 28) > 0.7)
    thick, thinner = thicken(images), thin(images)
    assert torch.all(thick >= images), "dilation (a max filter) must never remove ink"
    assert torch.all(thinner <= images), "erosion (a min filter) must never add ink"
    assert torch.all(ink(thick) >= ink(images)) and torch.all(ink(thinner) <= ink(images))


def test_dilation_known_answer_on_a_single_pixel():
    dot = torch.zeros(1, 1, 7, 7)
    dot[0, 0, 3, 3] = 1.0
    assert thicken(dot).sum() == 9 and thicken(dot, size=5).sum() == 25
    assert torch.equal(thin(thicken(dot)), dot), "erosion after dilation (a closing) must return a single dot"
    corner = torch.zeros(1, 1, 5, 5)
    corner[0, 0, 0, 0] = 1.0
    assert thicken(corner).sum() == 4, "at the corner only a 2x2 block fits in the image"


def test_sobel_and_edges_known_answers():
    flat = torch.full((1, 1, 6, 6), 0.7)
    assert sobel_magnitude(flat)[0, 0, 2:4, 2:4].abs().max() < 1e-6, "a flat region has no gradient"
    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1.0
    assert float(sobel_magnitude(step)[0, 0, 2, 2]) == pytest.approx(4.0), "Sobel response to a unit step is 4"
    edges = edge_map(step)
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    assert edges[0, 0, 2, 0] == 0 and edges[0, 0, 2, 2] == 1 and edges[0, 0, 2, 3] == 1


def test_skeleton_is_thin_binary_and_inside_the_digit():
    images = _strokes()
    lines = skeleton(images)
    assert lines.shape == images.shape and set(lines.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(lines <= (images > 0.5).float()), "the skeleton must lie inside the binarized digit"
    assert torch.all(ink(lines) < 0.6 * ink((images > 0.5).float())), "a skeleton of 3-pixel strokes keeps < 60% of them"
    assert torch.all(ink(lines) > 0), "every digit keeps a skeleton"


def test_paired_skeletons_are_aligned():
    images, labels = _strokes(4), torch.tensor([1, 2, 3, 4])
    pairs = paired_skeletons(images, labels)
    assert len(pairs) == 4 and torch.equal(pairs.targets, images) and torch.equal(pairs.labels, labels)
    assert torch.equal(pairs.inputs, skeleton(images))


def test_unpaired_domains_are_disjoint_halves():
    images, labels = torch.rand(11, 1, 28, 28), torch.arange(11) % 10
    domains = unpaired_stroke_domains(images, labels, seed=3)
    a, b = set(domains.indices_a.tolist()), set(domains.indices_b.tolist())
    assert len(a) == len(b) == 5 and not a & b, "the two domains must come from disjoint sets of digits"
    assert torch.equal(domains.domain_a, images[domains.indices_a])
    assert torch.equal(domains.domain_b, thicken(images[domains.indices_b])), "domain B is the thickened half"
    assert torch.equal(domains.labels_b, labels[domains.indices_b])
    again = unpaired_stroke_domains(images, labels, seed=3)
    assert torch.equal(again.indices_a, domains.indices_a), "the split must be reproducible from its seed"


@pytest.mark.parametrize("bad, match", [
    (torch.rand(2, 28, 28), r"\(N, 1, H, W\)"),
    (torch.rand(2, 1, 28, 28) * 2 - 1, r"\[0, 1\]"),
])
def test_builders_reject_bad_images(bad, match):
    for function in (thicken, thin, skeleton, edge_map):
        with pytest.raises(ValueError, match=match):
            function(bad)


def test_builders_reject_bad_settings():
    with pytest.raises(ValueError, match="odd"):
        thicken(torch.rand(1, 1, 28, 28), size=2)
    with pytest.raises(ValueError, match="threshold"):
        edge_map(torch.rand(1, 1, 28, 28), threshold=0)
    with pytest.raises(ValueError, match="labels"):
        unpaired_stroke_domains(torch.rand(4, 1, 28, 28), torch.arange(3))
    with pytest.raises(ValueError, match="at least 2"):
        unpaired_stroke_domains(torch.rand(1, 1, 28, 28), torch.arange(1))


# --------------------------------------------------------------------------- networks


def test_unet_shapes_range_and_skip_sizes():
    generator = UNetGenerator(channels=8)
    sizes = {}
    for name in ("encode28", "encode14", "encode7", "up14", "up28"):
        getattr(generator, name).register_forward_hook(
            lambda module, inputs, output, name=name: sizes.__setitem__(name, tuple(output.shape[1:])))
    out = generator(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    assert sizes == {"encode28": (8, 28, 28), "encode14": (16, 14, 14), "encode7": (32, 7, 7),
                     "up14": (16, 14, 14), "up28": (8, 28, 28)}, sizes
    # each up-sampled map matches the encoder map it is concatenated with
    assert sizes["up14"] == sizes["encode14"] and sizes["up28"] == sizes["encode28"]


def test_unet_skips_carry_fine_detail():
    """Zeroing the 28x28 skip must change the output: the decoder really uses it."""
    torch.manual_seed(0)
    generator = UNetGenerator(channels=8).eval()
    x = torch.rand(2, 1, 28, 28)
    normal = generator(x)
    generator.encode28.register_forward_hook(lambda module, inputs, output: output * 0)
    assert not torch.allclose(generator(x), normal)


def test_patch_discriminator_map_and_receptive_field():
    discriminator = PatchDiscriminator(in_channels=2, channels=8)
    logits = discriminator(torch.rand(4, 2, 28, 28))
    assert logits.shape == (4, 7, 7), "one logit per patch position, 7x7 for a 28x28 image"
    assert discriminator.receptive_field() == 18
    assert receptive_field([(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]) == 70, "pix2pix's 70x70 PatchGAN"


def test_receptive_field_matches_the_gradient():
    """Measure the field: the centre logit's gradient is non-zero on exactly an 18x18 block of the input."""
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(in_channels=1, channels=8)
    image = torch.rand(1, 1, 28, 28, requires_grad=True)
    discriminator(image)[0, 3, 3].backward()
    rows, cols = (image.grad[0, 0].abs() > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 18 and int(cols.max() - cols.min() + 1) == 18
    corner = torch.rand(1, 1, 28, 28, requires_grad=True)
    discriminator(corner)[0, 0, 0].backward()
    rows, _ = (corner.grad[0, 0].abs() > 0).nonzero(as_tuple=True)
    assert int(rows.max()) + 1 < 18, "a corner patch is cut by the border (zero padding)"


def test_networks_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
        UNetGenerator()(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"\(batch, 2, 28, 28\)"):
        PatchDiscriminator(in_channels=2)(torch.rand(2, 1, 28, 28))


def test_cycle_generators_round_trip_shape():
    pair = CycleGenerators(channels=4)
    assert pair(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


# --------------------------------------------------------------------------- losses and training


def test_least_squares_losses_known_values():
    assert least_squares_discriminator_loss(torch.ones(5), torch.zeros(5)) == 0
    assert least_squares_discriminator_loss(torch.zeros(5), torch.ones(5)) == pytest.approx(1.0)
    assert least_squares_generator_loss(torch.ones(3, 7, 7)) == 0
    assert least_squares_generator_loss(torch.zeros(3, 7, 7)) == pytest.approx(1.0)


def test_pix2pix_training_reduces_the_l1_error():
    torch.manual_seed(0)
    targets = _strokes(32)
    inputs = skeleton(targets)
    generator, discriminator = UNetGenerator(channels=8), PatchDiscriminator(in_channels=2, channels=8)
    before = float((translate(generator, inputs) - targets).abs().mean())
    history = train_pix2pix(generator, discriminator, inputs, targets,
                            Pix2PixConfig(epochs=15, batch_size=16, log_every=2, lr=3e-3), device="cpu", progress=False)
    after = float((translate(generator, inputs) - targets).abs().mean())
    assert after < 0.85 * before, f"L1 error went from {before:.3f} to {after:.3f}: pix2pix does not learn"
    assert {"loss_d", "loss_g", "l1", "loss_g_adversarial"} <= set(history.rows[-1])


def test_l1_only_step_has_no_discriminator():
    generator = UNetGenerator(channels=4)
    optimizer = torch.optim.Adam(generator.parameters())
    x = torch.rand(2, 1, 28, 28)
    losses = pix2pix_step(generator, None, optimizer, None, x, x, adversarial=False)
    assert set(losses) == {"loss_g", "l1"} and torch.equal(losses["loss_g"], losses["l1"])


def test_train_pix2pix_rejects_bad_inputs():
    generator = UNetGenerator(channels=4)
    with pytest.raises(ValueError, match="same shape"):
        train_pix2pix(generator, None, torch.rand(4, 1, 28, 28), torch.rand(3, 1, 28, 28),
                      Pix2PixConfig(adversarial=False), device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_pix2pix(generator, None, torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28),
                      Pix2PixConfig(adversarial=False), device="cpu", progress=False)
    with pytest.raises(ValueError, match="needs a discriminator"):
        train_pix2pix(generator, None, torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28),
                      Pix2PixConfig(), device="cpu", progress=False)


def test_cyclegan_training_reduces_the_cycle_loss():
    torch.manual_seed(0)
    images = _strokes(32)
    domains = unpaired_stroke_domains(images, torch.zeros(32, dtype=torch.long))
    history = train_cyclegan(CycleGenerators(channels=8), PatchDiscriminator(channels=8), PatchDiscriminator(channels=8),
                             domains.domain_a, domains.domain_b,
                             CycleGanConfig(epochs=8, batch_size=8, log_every=2, lr=3e-3), device="cpu", progress=False)
    cycle = history.series("cycle")
    assert cycle[-1] < 0.85 * cycle[0], f"cycle loss went from {cycle[0]:.3f} to {cycle[-1]:.3f}: CycleGAN does not learn"


def test_train_cyclegan_rejects_wrong_range():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_cyclegan(CycleGenerators(channels=4), PatchDiscriminator(channels=4), PatchDiscriminator(channels=4),
                       torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28), device="cpu", progress=False)


# --------------------------------------------------------------------------- checks and pretrained weights


def test_translation_checks_accept_reference_and_reject_wrong_answers():
    from torch.nn import functional as F

    from aigc_lessons.checks.translation import check_cycle_loss, check_pix2pix_generator_loss

    def reference(logits, outputs, targets, l1_weight):
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) + l1_weight * (outputs - targets).abs().mean()

    assert check_pix2pix_generator_loss(reference).passed
    wrong_target = check_pix2pix_generator_loss(
        lambda l, o, t, w: F.binary_cross_entropy_with_logits(l, torch.zeros_like(l)) + w * (o - t).abs().mean())
    assert not wrong_target.passed and any("target 1" in m for m in wrong_target.messages)
    assert check_pix2pix_generator_loss(lambda *args: None).status == "not attempted"

    assert check_cycle_loss(lambda a, b, G, F_: (F_(G(a)) - a).abs().mean() + (G(F_(b)) - b).abs().mean()).passed
    one_way = check_cycle_loss(lambda a, b, G, F_: (F_(G(a)) - a).abs().mean())
    assert not one_way.passed and any("B -> A -> B" in m for m in one_way.messages)


@pytest.mark.parametrize("name", TRANSLATION_ENTRIES)
def test_pretrained_translation_entries_load_and_state_their_scores(name, mnist_available):
    from aigc_lessons import pretrained

    if not pretrained.exists(name):
        pytest.skip(f"{name} not trained yet (python -m aigc_lessons.recipes {name})")
    model = pretrained.load(name)
    record = pretrained.card(name)
    metrics = record["card"]["metrics"]
    assert metrics["test_images"] == 10_000, "the card's scores must be on the whole test set"
    x = torch.rand(2, 1, 28, 28)
    if name.startswith("cyclegan"):
        assert isinstance(model, CycleGenerators)
        assert model.a_to_b(x).shape == (2, 1, 28, 28)
        assert 0 <= metrics["cycle_l1_a"] < metrics["untranslated_a_vs_thick_truth"]["l1"]
    else:
        assert isinstance(model, UNetGenerator) and model(x).shape == (2, 1, 28, 28)
        assert metrics["l1"] < metrics["input_as_output"]["l1"], "the generator must beat copying its input"
    assert record["bytes"] < 700_000, f"{name} takes {record['bytes']} bytes; the chapters' share is 2.5 MB in all"


@pytest.mark.slow
def test_translation_recipes_run_in_fast_mode(mnist_available):
    from aigc_lessons.core import Budget
    from aigc_lessons.recipes import RECIPES

    for name in TRANSLATION_ENTRIES:
        result = RECIPES[name](Budget(fast=True), torch.device("cpu"), progress=False)
        assert result.card["metrics"]["test_images"] == 500
