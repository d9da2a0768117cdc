"""Serving the book's models: a FastAPI app with dynamic batching, limits and a web page.

``aigc-lessons serve`` (or ``python -m aigc_lessons.serve``) starts it; the chapter
``book/building/serving.ipynb`` explains each part, and ``benchmarks/load_test.py`` measures it.

* :mod:`.limits`: :class:`ServeSettings`, the settings and per-request limits, range-checked;
* :mod:`.models`: the shipped models loaded through :mod:`aigc_lessons.pretrained` (safetensors
  only, SHA-256 verified) and sampled per request seed;
* :mod:`.batching`: :class:`DynamicBatcher`, a bounded queue that joins requests into batches;
* :mod:`.app`: :func:`create_app`, the endpoints, errors, JSON logs and the static page;
* :mod:`.process`: :func:`free_port` and :class:`ServerProcess`, a server in a subprocess on a
  free loopback port (the tests, the load test and the chapter start it so).

Nothing heavy is imported here: ``import aigc_lessons.serve`` is fast, the submodules import
FastAPI and torch.
"""
