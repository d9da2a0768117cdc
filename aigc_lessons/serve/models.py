"""The shipped models as the server uses them: loaded once, verified, sampled by seed.

Every model comes from :mod:`aigc_lessons.pretrained`, which reads only ``.safetensors``
files (tensors, never a pickle) and checks each file's SHA-256 against its model card before
reading it; the server calls :func:`verify_models` before it opens its port and refuses to
start on a mismatch. A model name from a request is only ever looked up in the dictionary of
loaded models: no file name is built from what a client sends.

A digit request is ``(count, digit, seed)``. Its noise is drawn from its own
``torch.Generator`` seeded with the request's seed, *before* it joins a batch; the batch then
runs the noise of several requests through one forward pass, and each request gets back the
rows it brought. The result therefore depends only on the request, not on who it was batched
with (``tests/test_serve.py`` checks it, byte for byte).

Example:
    >>> served = load_models(("cgan_mnist",))  # doctest: +SKIP
    >>> model = served.digits["cgan_mnist"]  # doctest: +SKIP
    >>> noise = model.draw_noise(4, seed=0)  # doctest: +SKIP
    >>> model.generate(noise, torch.tensor([3, 3, 3, 3])).shape  # doctest: +SKIP
    torch.Size([4, 28, 28])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import pretrained
from ..models import ConditionalGenerator, ConditionalGeneratorDCGAN, ConditionalVAE, DiffusionModel, VAE
from ..models.diffusion import sample_ddim
from .limits import DIGIT_MODELS, TEXT_MODEL, TRANSLATION_MODEL


@dataclass
class DigitModel:
    """A shipped digit generator: its noise shape, whether it takes a class, how it is run."""

    name: str
    module: nn.Module
    sha256: str
    conditional: bool
    noise_shape: tuple[int, ...]
    kind: str  # "gan", "vae", "cvae" or "diffusion": which of the four ways below samples it

    def draw_noise(self, count: int, seed: int) -> torch.Tensor:
        """The request's noise, ``(count, *noise_shape)``, from a generator seeded with ``seed``."""
        return torch.randn((count, *self.noise_shape), generator=torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [0, 1], ``(N, 28, 28)`` on the CPU, one per noise row (and label)."""
        device = next(self.module.parameters()).device
        noise = noise.to(device)
        labels = None if labels is None else labels.to(device)
        if self.kind == "gan":  # tanh generators: [-1, 1] -> [0, 1]
            images = (self.module(noise, labels) + 1) / 2
        elif self.kind == "cvae":
            images = self.module.sample(labels, z=noise)
        elif self.kind == "vae":
            images = self.module.mean_image(self.module.decode(noise))
        else:  # DDIM with eta = 0: the initial noise is the only randomness, so it is the seed's
            model = self.module
            images = (sample_ddim(model, model.schedule, len(noise), model.sampling_steps, 0.0, labels,
                                  model.guidance, None, device, initial_noise=noise) + 1) / 2
        return images.clamp(0, 1).view(-1, 28, 28).cpu()


@dataclass
class TextModel:
    """The character GPT and its vocabulary."""

    name: str
    module: nn.Module
    vocab: object
    sha256: str

    def generate(self, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None,
                 top_p: float | None, seed: int) -> str:
        """The prompt's continuation (the prompt not included), drawn with a generator seeded by ``seed``."""
        ids = self.vocab.encode(prompt)
        generator = torch.Generator(device=next(self.module.parameters()).device).manual_seed(seed)
        out = self.module.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                   generator=generator)
        return self.vocab.decode(out[len(ids):].tolist())


@dataclass
class Translator:
    """The number-words-to-digits transformer and its two tokenizers (greedy decoding)."""

    name: str
    module: nn.Module
    words: object
    digits: object
    sha256: str

    @torch.no_grad()
    def translate(self, texts: list[str]) -> list[str]:
        device = next(self.module.parameters()).device
        source = self.words.batch(texts, self.module.source_length).to(device)
        return [self.digits.decode(ids) for ids in self.module.greedy_decode(source)]


@dataclass
class ServedModels:
    """Everything the server loaded: digit models by name, the text model, the translator."""

    digits: dict[str, DigitModel] = field(default_factory=dict)
    text: TextModel | None = None
    translator: Translator | None = None
    load_seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> list[dict]:
        """One record per model: name, task, SHA-256, whether it takes a digit (``GET /v1/models``)."""
        rows = [{"name": m.name, "task": "digits", "kind": m.kind, "conditional": m.conditional,
                 "sha256": m.sha256, "load_seconds": self.load_seconds.get(m.name)}
                for m in self.digits.values()]
        for task, model in (("text", self.text), ("translate", self.translator)):
            if model is not None:
                rows.append({"name": model.name, "task": task, "sha256": model.sha256,
                             "load_seconds": self.load_seconds.get(model.name)})
        return rows


def _digit_kind(module: nn.Module) -> tuple[str, bool, tuple[int, ...]]:
    """How a shipped generator is sampled: (kind, takes a class, noise shape)."""
    if isinstance(module, (ConditionalGenerator, ConditionalGeneratorDCGAN)):
        return "gan", True, (module.latent_dim,)
    if isinstance(module, ConditionalVAE):
        return "cvae", True, (module.latent_dim,)
    if isinstance(module, VAE):
        return "vae", False, (module.latent_dim,)
    if isinstance(module, DiffusionModel):
        return "diffusion", module.num_classes is not None, (1, 28, 28)
    raise TypeError(f"the server does not know how to sample {type(module).__name__}")


def present(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names among ``names`` whose weights are shipped (the text models are optional)."""
    return tuple(name for name in names if pretrained.exists(name))


def verify_models(names: tuple[str, ...]) -> dict[str, str]:
    """Check each file's SHA-256 against its card; name → SHA-256, or :class:`PretrainedError`.

    Example:
        >>> len(verify_models(("cgan_mnist",))["cgan_mnist"])
        64
    """
    return {name: (pretrained.verify(name), pretrained.card(name)["sha256"])[1] for name in names}


def load_models(names: tuple[str, ...], device: str | torch.device = "cpu") -> ServedModels:
    """Load and verify the named shipped models (those whose weights exist) for serving."""
    served = ServedModels()
    for name in present(names):
        started = time.perf_counter()
        sha256 = pretrained.card(name)["sha256"]  # pretrained.load checks the file against it
        if name in DIGIT_MODELS:
            module = pretrained.load(name, device=device)
            kind, conditional, shape = _digit_kind(module)
            served.digits[name] = DigitModel(name, module, sha256, conditional, shape, kind)
        elif name == TEXT_MODEL:
            from ..recipes.gpt import load_char_gpt

            module, vocab = load_char_gpt(name, device=device)
            served.text = TextModel(name, module, vocab, sha256)
        elif name == TRANSLATION_MODEL:
            from ..recipes.seq2seq import load_number_translator

            module, words, digits = load_number_translator(name, device=device)
            served.translator = Translator(name, module, words, digits, sha256)
        served.load_seconds[name] = round(time.perf_counter() - started, 3)
    return served
