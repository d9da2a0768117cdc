"""The server's settings and the limits every request is held to.

One dataclass, :class:`ServeSettings`, holds what ``aigc-lessons serve`` takes on the command
line: where to listen, which shipped models to load, how large a batch may grow, how many
requests may wait, how long one may take, and the per-request limits (images per request,
prompt length, new tokens, seed range). Every value is checked against its range when the
settings are made (the ranges are :class:`aigc_lessons.family.Option` rules, as for training
settings), so a bad setting fails before a port is opened or a model is read.

Example:
    >>> settings = ServeSettings(port=0, max_count=16)
    >>> settings.max_count
    16
    >>> ServeSettings(max_queue=0)
    Traceback (most recent call last):
    ...
    ValueError: max_queue must be an integer >= 1 and <= 100000, got 0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..family import Option

# Every digit generator the book ships, and the text models (loaded when their weights exist).
DIGIT_MODELS = ("cgan_mnist", "cgan_dcgan_mnist", "cvae_mnist", "vae_mnist", "ddpm_mnist")
TEXT_MODEL = "gpt_shakespeare"
TRANSLATION_MODEL = "seq2seq_numbers"
ALL_MODELS = (*DIGIT_MODELS, TEXT_MODEL, TRANSLATION_MODEL)

# Seeds travel through JSON and JavaScript, whose numbers are exact only up to 2**53.
MAX_SEED = 2**53 - 1

RULES: dict[str, Option] = {
    "port": Option(8000, minimum=0, maximum=65535),
    "max_batch_images": Option(256, minimum=1, maximum=65536),
    "batch_wait_ms": Option(1.0, minimum=0, maximum=1000),
    "max_queue": Option(64, minimum=1, maximum=100_000),
    "timeout_s": Option(10.0, above=0, maximum=3600),
    "max_count": Option(64, minimum=1, maximum=4096),
    "max_count_diffusion": Option(16, minimum=1, maximum=1024),
    "max_prompt_chars": Option(128, minimum=1, maximum=100_000),
    "max_new_tokens": Option(300, minimum=1, maximum=100_000),
    "max_words_chars": Option(76, minimum=1, maximum=10_000),
    "threads": Option(1, minimum=1, maximum=1024),
}


@dataclass(frozen=True)
class ServeSettings:
    """What the server loads, how it batches and queues, and the limits of one request.

    ``max_batch_images``: the most images one forward pass computes (requests are joined until
    it is reached); ``batching=False`` runs every request on its own (the baseline the load test
    compares against). ``batch_wait_ms``: how long the batcher waits for more requests once it
    has one (0: take only what is already queued). ``max_queue``: requests admitted per model
    (waiting or running); one more is answered 429 at once. ``timeout_s``: a request not
    answered by then gets 504. The ``max_*`` limits bound one request (422 beyond them).
    ``threads``: torch threads per model worker; 1 by default, because the event loop and the
    PNG encoding need a core too (on 2 cores, two torch threads that spin-wait for a core the
    server is using made a 64-image pass 15 times slower in our measurement).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[str, ...] = ALL_MODELS
    device: str = "cpu"
    batching: bool = True
    max_batch_images: int = 256
    batch_wait_ms: float = 1.0
    max_queue: int = 64
    timeout_s: float = 10.0
    max_count: int = 64
    max_count_diffusion: int = 16
    max_prompt_chars: int = 128
    max_new_tokens: int = 300
    max_words_chars: int = 76
    threads: int = 1
    log_requests: bool = True
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        values = asdict(self)
        for name, rule in RULES.items():
            value = values[name]
            if rule.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # 10 seconds is as good as 10.0
                object.__setattr__(self, name, value)
            rule.check(name, value)
        models = tuple(self.models)
        object.__setattr__(self, "models", models)
        unknown = [name for name in models if name not in ALL_MODELS]
        if unknown or not models:
            raise ValueError(f"models must be a non-empty list from {', '.join(ALL_MODELS)}; "
                             f"got {', '.join(unknown) or 'none'}")
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be an address such as 127.0.0.1, got {self.host!r}")

    def public(self) -> dict:
        """The limits a client may want to know (``GET /v1/models`` reports them)."""
        keys = ("batching", "max_batch_images", "max_queue", "timeout_s", "max_count",
                "max_count_diffusion", "max_prompt_chars", "max_new_tokens", "max_words_chars")
        return {key: getattr(self, key) for key in keys} | {"max_seed": MAX_SEED}
