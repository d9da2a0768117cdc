"""The 2-D GAN lab: a ring of Gaussians, mode-coverage metrics and a small trainer.

A mixture of Gaussians on a ring is the standard test bed for mode collapse
(Metz et al., 2017; Srivastava et al., 2017; Gulrajani et al., 2017): the
modes are known, so we can count how many of them a generator reaches and
how many of its samples land close to one.

* :func:`ring_centers`, :func:`ring_mixture`: the data;
* :func:`mode_coverage`: modes covered and the share of high-quality samples;
* :func:`train_toy_gan`: trains :class:`~aigc_lessons.models.GeneratorToy` and
  :class:`~aigc_lessons.models.DiscriminatorToy` with the standard
  (non-saturating) GAN loss or with WGAN-GP, through :func:`aigc_lessons.train.fit`;
* :func:`compare_on_seeds`: the same training for several variants and seeds,
  for side-by-side comparisons.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .core import get_device, seed_everything
from .data import TensorBatches
from .losses import (
    critic_loss_wasserstein,
    discriminator_loss,
    generator_loss_nonsaturating,
    generator_loss_wasserstein,
    gradient_penalty,
)
from .train import History, fit

VARIANTS = ("standard", "minibatch-std", "wgan-gp")

LOSSES = ("standard", "wgan-gp")


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The ``modes`` centres, evenly spaced on a circle of ``radius``, shape ``(modes, 2)``.

    Example:
        >>> (ring_centers(4, radius=1.0).round(decimals=3) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
        [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]
    """
    if modes < 1:
        raise ValueError(f"modes must be a positive number, got {modes}")
    angles = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring_mixture(
    n: int,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` points from an equal-weight mixture of ``modes`` Gaussians ``N(c_k, std^2 I)`` on a ring.

    Example:
        >>> points = ring_mixture(1000, generator=torch.Generator().manual_seed(0))
        >>> points.shape, round(points.norm(dim=1).mean().item(), 1)
        (torch.Size([1000, 2]), 2.0)
    """
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    which = torch.randint(0, modes, (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator)
    return ring_centers(modes, radius)[which] + std * noise


@dataclass
class ModeCoverage:
    """How a set of samples covers the modes of a mixture.

    ``counts[k]`` is the number of high-quality samples nearest mode ``k``.
    """

    modes_covered: int
    high_quality: float
    counts: list[int]
    num_samples: int

    def __str__(self) -> str:
        return f"{self.modes_covered}/{len(self.counts)} modes covered, {self.high_quality:.0%} high-quality samples"


def mode_coverage(
    samples: torch.Tensor,
    centers: torch.Tensor,
    std: float,
    threshold: float = 3.0,
    min_share: float = 0.02,
) -> ModeCoverage:
    """Count covered modes and the share of high-quality samples.

    A sample is *high quality* when it lies within ``threshold * std`` of its
    nearest centre (the kind of measure reported for 2-D mixtures by
    Srivastava et al., 2017; the thresholds here are the book's). A mode is *covered* when at least ``min_share`` of all samples are
    high-quality samples nearest to it; with 8 equal modes a perfect generator
    puts 12.5% on each, so the default 2% ignores a few stray points but counts
    any mode that the generator really reaches.

    Example:
        >>> centers = ring_centers(8)
        >>> print(mode_coverage(centers.repeat(10, 1), centers, std=0.05))
        8/8 modes covered, 100% high-quality samples
        >>> print(mode_coverage(centers[:1].repeat(80, 1), centers, std=0.05))
        1/8 modes covered, 100% high-quality samples
    """
    if samples.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples must have shape (n, {centers.shape[1]}) like the centres, got {tuple(samples.shape)}"
        )
    if len(samples) == 0:
        raise ValueError("mode_coverage needs at least one sample")
    samples = samples.detach().float().cpu()
    distances = torch.cdist(samples, centers.float().cpu())
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= threshold * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = int((counts >= min_share * len(samples)).sum())
    return ModeCoverage(covered, float(good.float().mean()), counts.tolist(), len(samples))


@dataclass
class Toy2dConfig:
    """Settings of :func:`train_toy_gan`.

    ``steps`` counts generator updates; each is preceded by ``critic_steps``
    discriminator updates on fresh mini-batches. The defaults are the
    standard GAN of the 2-D lab; :meth:`wgan_gp` gives the WGAN-GP setting of
    Gulrajani et al. (2017): five critic steps, penalty weight 10, Adam with
    ``betas=(0.5, 0.9)`` (learning rate 1e-3 as for the plain GAN).
    """

    loss: str = "standard"
    steps: int = 3000
    batch_size: int = 256
    lr_generator: float = 1e-3
    lr_discriminator: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    critic_steps: int = 1
    gp_weight: float = 10.0
    snapshot_every: int = 500
    seed: int = 0
    log_every: int = 100
    data: dict = field(default_factory=lambda: {"modes": 8, "radius": 2.0, "std": 0.05})

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.steps % self.snapshot_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of snapshot_every ({self.snapshot_every})")

    @classmethod
    def wgan_gp(cls, **overrides) -> "Toy2dConfig":
        """The WGAN-GP setting (five critic steps per generator step, penalty weight 10).

        Example:
            >>> Toy2dConfig.wgan_gp(steps=1000).critic_steps
            5
        """
        # The authors' code uses Adam(1e-4, betas=(0.5, 0.9)); we keep the plain GAN's 1e-3 so that a
        # comparison with it differs only in the loss, the penalty and the number of critic steps.
        settings = {"loss": "wgan-gp", "critic_steps": 5, "gp_weight": 10.0, "betas": (0.5, 0.9),
                    "lr_generator": 1e-3, "lr_discriminator": 1e-3}
        settings.update(overrides)
        return cls(**settings)

    def to_dict(self) -> dict:
        return asdict(self)


def train_toy_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    config: Toy2dConfig | None = None,
    *,
    device: str | torch.device = "auto",
    fixed_noise: torch.Tensor | None = None,
    progress: bool = True,
) -> History:
    """Train a GAN on the ring mixture of ``config.data``; return its :class:`~aigc_lessons.train.History`.

    Every ``config.snapshot_every`` generator steps (and at step 0), the
    generator maps ``fixed_noise`` (default: 1000 seeded vectors) to points,
    stored on the CPU in ``history.snapshots`` as ``(step, points)``.

    Example:
        >>> from aigc_lessons.models import GeneratorToy, DiscriminatorToy
        >>> h = train_toy_gan(GeneratorToy(), DiscriminatorToy(), Toy2dConfig(steps=20, snapshot_every=10),
        ...                   device="cpu", progress=False)
        >>> [step for step, _ in h.snapshots], tuple(h.snapshots[-1][1].shape)
        ([0, 10, 20], (1000, 2))
    """
    config = config or Toy2dConfig()
    device = get_device(device)
    seed_everything(config.seed)
    generator.to(device).train()
    discriminator.to(device).train()
    latent_dim = generator.latent_dim
    if fixed_noise is None:
        fixed_noise = torch.randn(1000, latent_dim, generator=torch.Generator().manual_seed(config.seed + 12345))
    fixed_noise = fixed_noise.to(device)

    # One "epoch" of fit = the mini-batches between two snapshots. The data are
    # a fixed sample from the mixture, reshuffled every epoch.
    batches_per_epoch = config.snapshot_every * config.critic_steps
    data = ring_mixture(batches_per_epoch * config.batch_size, **config.data,
                        generator=torch.Generator().manual_seed(config.seed))
    batches = TensorBatches(data.to(device), batch_size=config.batch_size, seed=config.seed)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas)
    history = History()
    calls = 0
    last_g = torch.zeros((), device=device)

    def step(batch):
        nonlocal calls, last_g
        real = batch[0]
        z = torch.randn(real.shape[0], latent_dim, device=device)
        fake = generator(z)
        losses = {}
        if config.loss == "standard":
            loss_d = discriminator_loss(discriminator(real), discriminator(fake.detach()))
        else:
            distance = -critic_loss_wasserstein(discriminator(real), discriminator(fake.detach()))
            penalty = gradient_penalty(discriminator, real, fake)
            loss_d = -distance + config.gp_weight * penalty
            losses.update(wasserstein_estimate=distance.detach(), penalty=penalty.detach())
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        calls += 1
        if calls % config.critic_steps == 0:
            scores = discriminator(fake)
            loss_g = generator_loss_nonsaturating(scores) if config.loss == "standard" else generator_loss_wasserstein(scores)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            last_g = loss_g.detach()
        losses.update(loss_d=loss_d.detach(), loss_g=last_g)
        return losses

    def snapshot(epoch: int) -> None:
        generator.eval()
        with torch.no_grad():
            history.snapshots.append((epoch * config.snapshot_every, generator(fixed_noise).cpu()))
        generator.train()

    snapshot(0)
    return fit(step, batches, config.steps // config.snapshot_every, log_every=config.log_every * config.critic_steps,
               on_epoch_end=snapshot, history=history, progress=progress, desc=f"2-D GAN ({config.loss})")


def compare_on_seeds(
    seeds: list[int] | tuple[int, ...],
    variants: tuple[str, ...] = ("standard", "minibatch-std"),
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    **config_overrides,
) -> dict[tuple[str, int], History]:
    """Train each variant on each seed; return ``{(variant, seed): history}``.

    Variants: ``"standard"`` (non-saturating GAN), ``"minibatch-std"`` (the same
    GAN, with the minibatch standard deviation feature in the discriminator)
    and ``"wgan-gp"`` (:meth:`Toy2dConfig.wgan_gp`). For one seed, every variant
    starts from the same generator weights, data and fixed noise, so that
    differences come from the variant, not from luck. ``config_overrides`` go
    to :class:`Toy2dConfig` (for example ``steps=1000``).

    Example:
        >>> runs = compare_on_seeds([0], steps=10, snapshot_every=10, device="cpu", progress=False)
        >>> sorted(runs)
        [('minibatch-std', 0), ('standard', 0)]
    """
    from .models import DiscriminatorToy, GeneratorToy

    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    runs = {}
    for seed in seeds:
        for variant in variants:
            if variant == "wgan-gp":
                config = Toy2dConfig.wgan_gp(seed=seed, **config_overrides)
            else:
                config = Toy2dConfig(seed=seed, **config_overrides)
            seed_everything(seed)  # the generator is built first, so its weights depend on the seed only
            generator = GeneratorToy()
            discriminator = DiscriminatorToy(minibatch_std=variant == "minibatch-std")
            runs[(variant, seed)] = train_toy_gan(generator, discriminator, config, device=device, progress=progress)
    return runs


def plot_snapshot_grid(
    runs: dict[tuple[str, int], History],
    seed: int,
    variants: tuple[str, ...] | None = None,
    data_points: int = 1000,
    std: float = 0.05,
):
    """One row per variant, one column per snapshot: generated points (colour) over data (grey).

    The title of each panel gives the step and :func:`mode_coverage`. Returns the figure.
    """
    import matplotlib.pyplot as plt

    variants = variants or tuple(dict.fromkeys(v for v, s in runs if s == seed))
    steps = [step for step, _ in runs[(variants[0], seed)].snapshots]
    centers = ring_centers()
    data = ring_mixture(data_points, std=std, generator=torch.Generator().manual_seed(seed))
    fig, axes = plt.subplots(len(variants), len(steps), figsize=(2.1 * len(steps), 2.6 * len(variants)),
                             squeeze=False, sharex=True, sharey=True)
    for row, variant in enumerate(variants):
        for col, (step, points) in enumerate(runs[(variant, seed)].snapshots):
            ax = axes[row, col]
            ax.scatter(data[:, 0], data[:, 1], s=2, color="0.75")
            ax.scatter(points[:, 0], points[:, 1], s=2, color=f"C{row}", alpha=0.5)
            coverage = mode_coverage(points, centers, std)
            ax.set_title(f"step {step}\n{coverage.modes_covered}/8 modes, {coverage.high_quality:.0%} HQ", fontsize=8)
            ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
            ax.tick_params(labelsize=6)
        axes[row, 0].set_ylabel(f"{variant}\n$x_2$", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("$x_1$", fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the 2-D diffusion lab
#
# The DDPM chapter's lab: data from a Gaussian mixture, whose noised versions are Gaussian
# mixtures too, so the exact score of q(x_t) is known and a learned noise predictor can be
# measured against it. If x_0 comes from component k, N(mu_k, Sigma_k), then
# x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps comes from N(sqrt(abar) mu_k, abar Sigma_k + (1 - abar) I).


@dataclass(frozen=True)
class GaussianMixture:
    """A mixture of Gaussians in ``d`` dimensions: ``means (K, d)``, ``covariances (K, d, d)``, ``weights (K,)``.

    Example:
        >>> mixture = GaussianMixture(torch.zeros(1, 2), torch.eye(2)[None], torch.ones(1))
        >>> mixture.score(torch.tensor([[1.0, -2.0]]))  # a standard normal: the score is -x
        tensor([[-1.,  2.]], dtype=torch.float64)
    """

    means: torch.Tensor
    covariances: torch.Tensor
    weights: torch.Tensor

    def __post_init__(self) -> None:
        count, dim = self.means.shape
        if self.covariances.shape != (count, dim, dim) or self.weights.shape != (count,):
            raise ValueError(f"a mixture of {count} components in {dim}-D needs covariances ({count}, {dim}, {dim}) "
                             f"and weights ({count},), got {tuple(self.covariances.shape)} and "
                             f"{tuple(self.weights.shape)}")
        if bool((self.weights < 0).any()) or not math.isclose(float(self.weights.sum()), 1.0, abs_tol=1e-6):
            raise ValueError(f"the weights must be >= 0 and sum to 1, got {self.weights.tolist()}")

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` points ``(n, d)`` (float32): a component by its weight, then a Gaussian draw."""
        which = torch.multinomial(self.weights.double(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        factors = torch.linalg.cholesky(self.covariances.double())
        return (self.means.double()[which] + (factors[which] @ noise[:, :, None])[:, :, 0]).float()

    def noised(self, alpha_bar: float | torch.Tensor) -> "GaussianMixture":
        """The mixture that ``x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps`` follows when ``x_0`` follows this one.

        Example:
            >>> mixture = GaussianMixture(torch.ones(1, 2), 0.25 * torch.eye(2)[None], torch.ones(1))
            >>> noised = mixture.noised(0.36)
            >>> noised.means.tolist(), noised.covariances[0].diagonal().tolist()
            ([[0.6, 0.6]], [0.73, 0.73])
        """
        abar = torch.as_tensor(alpha_bar, dtype=torch.float64)
        identity = torch.eye(self.means.shape[1], dtype=torch.float64)
        return GaussianMixture(abar.sqrt() * self.means.double(),
                               abar * self.covariances.double() + (1 - abar) * identity, self.weights.double())

    def _component_terms(self, x: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor):
        """Per point and component: log w_k + log N(x; m, C) and C^{-1} (x - m). ``means`` (n|1, K, d)."""
        difference = x.double()[:, None, :] - means
        precision = torch.linalg.inv(covariances)
        solved = (precision @ difference[..., None])[..., 0]
        _, log_det = torch.linalg.slogdet(covariances)
        dim = x.shape[1]
        log_normal = -0.5 * ((difference * solved).sum(-1) + log_det + dim * math.log(2 * math.pi))
        return self.weights.double().log() + log_normal, solved

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x) for points ``(n, d)``, shape ``(n,)`` (float64)."""
        log_terms, _ = self._component_terms(x, self.means.double()[None], self.covariances.double()[None])
        return torch.logsumexp(log_terms, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """grad_x log q(x) = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k)), r_k the responsibilities; ``(n, d)``."""
        log_terms, solved = self._component_terms(x, self.means.double()[None], self.covariances.double()[None])
        responsibilities = torch.softmax(log_terms, dim=1)
        return -(responsibilities[..., None] * solved).sum(dim=1)

    def noised_score(self, x: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
        """The score of the noised mixture at each point, with its own ``alpha_bars[i]``; ``(n, d)``.

        Example:
            >>> mixture = lab_mixture()
            >>> x, abar = torch.randn(4, 2), torch.full((4,), 0.3)
            >>> torch.allclose(mixture.noised_score(x, abar), mixture.noised(0.3).score(x))
            True
        """
        abar = alpha_bars.double().view(-1, 1, 1)
        identity = torch.eye(self.means.shape[1], dtype=torch.float64)
        means = abar.sqrt() * self.means.double()[None]
        covariances = abar[..., None] * self.covariances.double()[None] + (1 - abar[..., None]) * identity
        log_terms, solved = self._component_terms(x, means, covariances)
        responsibilities = torch.softmax(log_terms, dim=1)
        return -(responsibilities[..., None] * solved).sum(dim=1)

    def mahalanobis_to_nearest(self, x: torch.Tensor) -> torch.Tensor:
        """For each point, the smallest Mahalanobis distance to a component, ``(n,)``."""
        difference = x.double()[:, None, :] - self.means.double()[None]
        solved = (torch.linalg.inv(self.covariances.double())[None] @ difference[..., None])[..., 0]
        return (difference * solved).sum(-1).clamp(min=0).sqrt().min(dim=1).values


def _covariance(major: float, minor: float, angle_degrees: float) -> torch.Tensor:
    """A 2 x 2 covariance with standard deviations ``major`` and ``minor``, the major axis at ``angle``."""
    angle = math.radians(angle_degrees)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                            dtype=torch.float64)
    return rotation @ torch.diag(torch.tensor([major**2, minor**2], dtype=torch.float64)) @ rotation.T


def lab_mixture() -> GaussianMixture:
    """The lab's data: five Gaussians of unequal weight and shape, within about [-3, 3]^2.

    Example:
        >>> mixture = lab_mixture()
        >>> tuple(mixture.means.shape), round(float(mixture.weights.sum()), 6)
        ((5, 2), 1.0)
    """
    means = torch.tensor([[-2.0, 1.5], [0.0, 2.2], [2.0, 1.2], [-1.2, -1.6], [1.6, -1.4]], dtype=torch.float64)
    covariances = torch.stack([_covariance(0.35, 0.12, 60), _covariance(0.25, 0.25, 0), _covariance(0.4, 0.1, -45),
                               _covariance(0.5, 0.15, 15), _covariance(0.2, 0.2, 0)])
    weights = torch.tensor([0.3, 0.1, 0.2, 0.25, 0.15], dtype=torch.float64)
    return GaussianMixture(means, covariances, weights)


def exact_noise(mixture: GaussianMixture, x: torch.Tensor, steps: torch.Tensor, schedule) -> torch.Tensor:
    """The best possible noise prediction E[eps | x_t] = -sqrt(1 - abar_t) * score of q(x_t), float32.

    ``steps`` are the integer steps ``0 .. T-1`` of ``schedule`` (a
    :class:`~aigc_lessons.models.diffusion.NoiseSchedule`), one per point.
    """
    alpha_bars = schedule.alpha_bars.double()[steps.cpu()]
    score = mixture.noised_score(x.cpu(), alpha_bars)
    return (-(1 - alpha_bars).sqrt()[:, None] * score).float().to(x.device)


class ExactMixtureNoise(nn.Module):
    """A "network" that returns :func:`exact_noise`: plugged into a sampler, it shows the sampler alone.

    Example:
        >>> from aigc_lessons.models.diffusion import NoiseSchedule
        >>> exact = ExactMixtureNoise(lab_mixture(), NoiseSchedule.linear(100))
        >>> exact(torch.zeros(3, 2), torch.tensor([0, 50, 99])).shape
        torch.Size([3, 2])
    """

    num_classes = None

    def __init__(self, mixture: GaussianMixture, schedule) -> None:
        super().__init__()
        self.mixture, self.schedule = mixture, schedule

    def forward(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        return exact_noise(self.mixture, x, steps, self.schedule)


def train_point_diffusion(model: nn.Module, points: torch.Tensor, schedule, steps: int = 3000,
                          batch_size: int = 256, lr: float = 2e-3, seed: int = 0, log_every: int = 100,
                          progress: bool = True, device: str | torch.device = "cpu") -> History:
    """Train a noise predictor on ``points (n, d)`` with DDPM's simple loss for about ``steps`` Adam steps.

    Each step is :func:`~aigc_lessons.train.diffusion.noise_prediction_loss` on a mini-batch
    (a random step t per point, noise added in closed form, mean squared error of the
    predicted noise); the learning rate decays as a cosine to zero; the loop is
    :func:`~aigc_lessons.train.fit`, over whole passes through ``points``.

    Example:
        >>> from aigc_lessons.models.diffusion import NoiseSchedule, PointNoisePredictor
        >>> model = PointNoisePredictor(hidden=16, layers=1)
        >>> points = lab_mixture().sample(64, torch.Generator().manual_seed(0))
        >>> history = train_point_diffusion(model, points, NoiseSchedule.linear(100), steps=4,
        ...                                 batch_size=32, log_every=1, progress=False)
        >>> len(history.series("loss"))
        4
    """
    from .train.diffusion import noise_prediction_loss

    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"steps and batch_size must be >= 1 and lr > 0, got {steps}, {batch_size}, {lr}")
    device = get_device(device)
    seed_everything(seed)
    model.to(device).train()
    batches = TensorBatches(points.float().to(device), batch_size=batch_size, seed=seed, drop_last=True)
    if len(batches) == 0:
        raise ValueError(f"need at least batch_size = {batch_size} points, got {len(points)}")
    epochs = max(1, math.ceil(steps / len(batches)))
    total = epochs * len(batches)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: 0.5 * (1 + math.cos(math.pi * n / total)))
    noise = torch.Generator().manual_seed(seed)

    def step(batch):
        loss = noise_prediction_loss(model, batch[0], schedule, generator=noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": loss.detach()}

    history = fit(step, batches, epochs, log_every=log_every, progress=progress, desc="2-D diffusion")
    model.eval()
    return history


def score_error_by_step(model: nn.Module, mixture: GaussianMixture, schedule, steps: list[int],
                        count: int = 2000, seed: int = 0) -> list[dict]:
    """How far the learned noise prediction is from the exact one, step by step.

    For each step t, ``count`` points x_t are drawn from q(x_t) (data noised in closed form) and
    the row holds ``error`` = E||eps_theta(x_t, t) - eps*(x_t, t)||^2 (eps* = :func:`exact_noise`),
    ``floor`` = E||eps - eps*(x_t, t)||^2 (the smallest value the simple loss can reach at t)
    and ``loss`` = E||eps - eps_theta(x_t, t)||^2 (what training sees), all per point, summed
    over the coordinates. The identity loss = floor + error holds up to sampling noise.
    """
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    rows = []
    for t in steps:
        x0 = mixture.sample(count, generator)
        eps = torch.randn(x0.shape, generator=generator)
        abar = float(schedule.alpha_bars[t])
        x_t = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps
        index = torch.full((count,), t, dtype=torch.long)
        best = exact_noise(mixture, x_t, index, schedule)
        with torch.no_grad():
            learned = model(x_t.to(device), index.to(device)).float().cpu()
        rows.append({"step": t, "error": float(((learned - best) ** 2).sum(1).mean()),
                     "floor": float(((eps - best) ** 2).sum(1).mean()),
                     "loss": float(((eps - learned) ** 2).sum(1).mean())})
    return rows


def histogram_distance(samples: torch.Tensor, mixture: GaussianMixture, bins: int = 32,
                       limit: float = 4.0) -> float:
    """Total variation between the samples' 2-D histogram and the mixture's mass in the same cells.

    The square ``[-limit, limit]^2`` is cut into ``bins x bins`` cells; the mixture's mass of a
    cell is its density at the cell's centre times the cell's area (renormalised over the
    square), and samples outside the square count as mass in no cell. 0 = the same
    histogram, 1 = no overlap; a finite sample of the mixture itself is above 0 (compare
    with :func:`histogram_distance` of ``mixture.sample(len(samples))``).

    Example:
        >>> mixture = lab_mixture()
        >>> histogram_distance(mixture.sample(20000, torch.Generator().manual_seed(0)), mixture) < 0.1
        True
    """
    if samples.dim() != 2 or samples.shape[1] != 2:
        raise ValueError(f"histogram_distance compares 2-D points (n, 2), got shape {tuple(samples.shape)}")
    edges = torch.linspace(-limit, limit, bins + 1, dtype=torch.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), dim=-1).reshape(-1, 2)
    mass = mixture.log_density(grid).exp()
    mass = mass / mass.sum()
    points = samples.detach().double().cpu()
    inside = (points.abs() < limit).all(dim=1)
    cells = ((points[inside] + limit) / (2 * limit) * bins).long().clamp(0, bins - 1)
    counts = torch.bincount(cells[:, 0] * bins + cells[:, 1], minlength=bins * bins).double()
    return float(0.5 * (counts / len(points) - mass).abs().sum() + 0.5 * (1 - inside.double().mean()))


def near_mode_share(samples: torch.Tensor, mixture: GaussianMixture, threshold: float = 3.0) -> float:
    """The share of samples within Mahalanobis distance ``threshold`` of some component of the mixture.

    For samples of the mixture itself it is at least ``1 - exp(-threshold^2 / 2)`` (98.9% for 3).

    Example:
        >>> mixture = lab_mixture()
        >>> near_mode_share(mixture.means.float(), mixture)
        1.0
    """
    return float((mixture.mahalanobis_to_nearest(samples) <= threshold).double().mean())
