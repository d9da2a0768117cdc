"""The generator server: endpoints, errors, limits, batching, determinism, overload, a real process.

Most tests drive the app in-process (FastAPI's TestClient, which runs the app's startup and
shutdown); the last ones start ``aigc-lessons serve`` as a real uvicorn process on a free
127.0.0.1 port (``ServerProcess``), which stops itself at the end of the test.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from aigc_lessons.serve.app import create_app  # noqa: E402
from aigc_lessons.serve.batching import DynamicBatcher, Overloaded  # noqa: E402
from aigc_lessons.serve.limits import ServeSettings  # noqa: E402
from aigc_lessons.serve.models import load_models  # noqa: E402

MODELS = ("cgan_mnist", "cgan_dcgan_mnist", "cvae_mnist", "vae_mnist", "ddpm_mnist", "gpt_shakespeare",
          "seq2seq_numbers")


@pytest.fixture(scope="module")
def served():
    return load_models(MODELS)


def _client(served, **settings) -> TestClient:
    return TestClient(create_app(ServeSettings(models=MODELS, **settings), served=served))


@pytest.fixture(scope="module")
def client(served):
    with _client(served) as client:
        _wait_ready(client)
        yield client


def _wait_ready(client, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/v1/ready").status_code != 200:
        assert time.monotonic() < deadline, "the app did not become ready"
        time.sleep(0.05)


def _png_pixels(content: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(content)))


def test_digits_png_has_the_grid_shape_and_headers(client) -> None:
    response = client.get("/v1/digits", params={"digit": 3, "count": 10, "seed": 4, "columns": 5})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert _png_pixels(response.content).shape == (2 * 30 - 2, 5 * 30 - 2)  # 28-pixel images, 2-pixel gaps
    assert response.headers["x-seed"] == "4" and len(response.headers["x-model-sha256"]) == 64
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("model", ["cgan_mnist", "cgan_dcgan_mnist", "cvae_mnist", "vae_mnist", "ddpm_mnist"])
def test_every_digit_model_answers_json_in_range(client, model) -> None:
    params = {"model": model, "count": 2, "seed": 0, "format": "json"}
    body = client.get("/v1/digits", params=params).json()
    pixels = np.array(body["images"])
    assert pixels.shape == (2, 28, 28) and pixels.min() >= 0 and pixels.max() <= 255 and pixels.std() > 5
    assert body["labels"] == (None if model == "vae_mnist" else [0, 1])


def test_the_cgan_draws_the_requested_digit(client) -> None:
    """The reference classifier reads the requested class in most images (the card's accuracy is 0.89)."""
    import torch

    from aigc_lessons import pretrained

    judge = pretrained.load("classifier_mnist")
    body = client.get("/v1/digits", params={"digit": 7, "count": 64, "seed": 1, "format": "json"}).json()
    images = torch.tensor(body["images"], dtype=torch.float32)[:, None] / 255
    with torch.no_grad():
        predicted = judge(images).argmax(1)
    assert (predicted == 7).float().mean() > 0.7, predicted.tolist()


def test_a_seed_gives_the_same_images_and_another_seed_others(client) -> None:
    first = client.get("/v1/digits", params={"count": 8, "seed": 11}).content
    assert client.get("/v1/digits", params={"count": 8, "seed": 11}).content == first
    assert client.get("/v1/digits", params={"count": 8, "seed": 12}).content != first
    unseeded = client.get("/v1/digits", params={"count": 8})
    again = client.get("/v1/digits", params={"count": 8, "seed": unseeded.headers["x-seed"]})
    assert again.content == unseeded.content, "the X-Seed header must reproduce an unseeded request"


def test_a_request_batched_with_others_gets_what_it_gets_alone(served) -> None:
    """Eight concurrent requests share one forward pass, and each gets exactly its alone-result."""
    import httpx

    async def scenario():
        app = create_app(ServeSettings(models=("cgan_mnist", "ddpm_mnist"), batch_wait_ms=50), served=served)
        async with app.router.lifespan_context(app):
            while not app.state.server.ready:
                await asyncio.sleep(0.01)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                results = {}
                for model, requests, count in (("cgan_mnist", 6, 3), ("ddpm_mnist", 3, 1)):
                    params = [{"model": model, "count": count, "seed": s, "digit": s % 10, "format": "json"}
                              for s in range(requests)]
                    alone = [(await http.get("/v1/digits", params=p)) for p in params]
                    together = await asyncio.gather(*(http.get("/v1/digits", params=p) for p in params))
                    results[model] = alone, together
                return results

    for model, (alone, together) in asyncio.run(scenario()).items():
        count = alone[0].json()["count"]
        assert all(r.headers["x-batch-images"] == str(count) for r in alone)
        assert max(int(r.headers["x-batch-images"]) for r in together) > count, f"{model}: nothing was batched"
        for single, batched in zip(alone, together):
            assert single.json()["images"] == batched.json()["images"], f"{model}: batching changed an output"


@pytest.mark.parametrize("params, status, words", [
    ({"count": 1000}, 422, "count"),
    ({"count": 0}, 422, "count"),
    ({"seed": "abc"}, 422, "seed"),
    ({"seed": -1}, 422, "seed"),
    ({"seed": 2**60}, 422, "seed"),
    ({"digit": 10}, 422, "digit"),
    ({"format": "gif"}, 422, "format"),
    ({"model": "nope"}, 404, "no digit model named 'nope'"),
    ({"model": "../weights/cgan_mnist"}, 404, "no digit model"),
    ({"model": "vae_mnist", "digit": 3}, 422, "unconditional"),
    ({"model": "ddpm_mnist", "count": 17}, 422, "at most 16"),
])
def test_invalid_digit_requests_get_clear_errors(client, params, status, words) -> None:
    response = client.get("/v1/digits", params=params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and words in error["message"], error


def test_text_is_seeded_and_validated(client) -> None:
    request = {"prompt": "ROMEO:\n", "max_new_tokens": 30, "seed": 5, "temperature": 0.8, "top_k": 20}
    first = client.post("/v1/text", json=request)
    assert first.status_code == 200 and len(first.json()["text"]) == 30
    assert client.post("/v1/text", json=request).json()["text"] == first.json()["text"]
    cases = [({"prompt": "x" * 500}, "at most 128 characters"), ({"prompt": "hello €"}, "no character"),
             ({"prompt": "hi", "max_new_tokens": 100_000}, "max_new_tokens"), ({"prompt": ""}, "prompt"),
             ({"prompt": "hi", "temperature": 0}, "temperature"), ({"prompt": "hi", "top_p": 2}, "top_p")]
    for body, words in cases:
        response = client.post("/v1/text", json=body)
        assert response.status_code == 422 and words in response.json()["error"]["message"], (body, response.text)


def test_translate_and_its_errors(client) -> None:
    assert client.post("/v1/translate", json={"words": "three hundred and five"}).json()["digits"] == "305"
    assert client.post("/v1/translate", json={"words": "12 apples"}).status_code == 422


def test_a_large_body_is_refused_before_it_is_read(client) -> None:
    response = client.post("/v1/text", content=b"{" + b" " * 70_000 + b"}",
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_service_endpoints_and_the_page(client) -> None:
    assert client.get("/v1/health").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert {m["name"] for m in models["models"]} == set(MODELS)
    assert all(len(m["sha256"]) == 64 for m in models["models"]) and models["limits"]["max_count"] == 64
    spec = client.get("/v1/openapi.json").json()
    assert {"/v1/digits", "/v1/text", "/v1/health", "/v1/ready"} <= set(spec["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "https://" not in page.text
    for path in ("/static/app.js", "/static/style.css", "/docs", "/static/docs.js"):
        assert client.get(path).status_code == 200, path
    # Only the named files are served: nothing else under static/ or beside it.
    for path in ("/static/../app.py", "/static/index.html/../../limits.py", "/static/nothing.js"):
        assert client.get(path).status_code == 404, path


def test_not_ready_answers_503_and_ready_after_loading(served) -> None:
    app = create_app(ServeSettings(models=("cgan_mnist",)))  # loads in a thread at startup
    with TestClient(app) as client:
        first = client.get("/v1/digits", params={"count": 1})
        assert first.status_code in (200, 503)
        if first.status_code == 503:
            assert first.headers["retry-after"] == "1" and first.json()["error"]["code"] == "not_ready"
        _wait_ready(client)
        assert client.get("/v1/digits", params={"count": 1}).status_code == 200


def test_one_json_log_line_per_request(served, caplog) -> None:
    with _client(served) as client:
        _wait_ready(client)
        with caplog.at_level(logging.INFO, logger="aigc_lessons.serve"):
            client.get("/v1/digits", params={"count": 4, "seed": 1})
            client.get("/v1/digits", params={"count": 4000})
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "aigc_lessons.serve"]
    requests = [r for r in records if r.get("event") == "request" and r["path"] == "/v1/digits"]
    assert [r["status"] for r in requests] == [200, 422]
    assert requests[0]["batch_images"] == 4 and requests[0]["latency_ms"] > 0 and requests[0]["method"] == "GET"


def test_the_batcher_refuses_beyond_its_queue_and_recovers() -> None:
    async def scenario():
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow(items):
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(5)
            return items

        batcher = DynamicBatcher(slow, max_items=4, max_pending=3)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await batcher.submit(99)
        gate.set()
        done = await asyncio.gather(*tasks)
        after = await batcher.submit(7)
        await batcher.close()
        return done, after, batcher.stats

    done, after, stats = asyncio.run(scenario())
    assert done == [0, 1, 2] and after == 7 and stats.rejected == 1


def test_the_batcher_splits_at_max_items_and_skips_abandoned_requests() -> None:
    async def scenario():
        seen = []

        def record(items):
            seen.append(list(items))
            time.sleep(0.05)
            return items

        batcher = DynamicBatcher(record, max_items=5, max_pending=100, size=lambda item: item)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.01)  # the worker is busy with [1]; the next ones queue up
        gone = asyncio.create_task(asyncio.wait_for(batcher.submit(100), 0.001))
        rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 2)]
        results = await asyncio.gather(first, *rest)
        with pytest.raises(asyncio.TimeoutError):
            await gone
        await batcher.close()
        return seen, results

    seen, results = asyncio.run(scenario())
    assert results == [1, 2, 3, 2]
    assert all(sum(batch) <= 5 for batch in seen if 100 not in batch), seen
    assert [1] in seen and [2, 3] in seen and [2] in seen, seen


def test_a_slow_request_times_out_with_504(served) -> None:
    with _client(served, timeout_s=0.001) as client:
        _wait_ready(client)
        response = client.get("/v1/digits", params={"model": "ddpm_mnist", "count": 16, "seed": 0})
    assert response.status_code == 504 and "timeout" in response.json()["error"]["message"]


def test_settings_check_their_ranges() -> None:
    for bad in ({"max_queue": 0}, {"timeout_s": 0}, {"port": 70000}, {"models": ("nope",)}, {"threads": 0},
                {"max_count": 0}):
        with pytest.raises(ValueError):
            ServeSettings(**bad)


# --------------------------------------------------------------------------- a real server process


def test_a_real_server_on_a_free_port_serves_overload_and_recovers() -> None:
    """``aigc-lessons serve`` in its own process: answers, refuses a burst with 429, then recovers."""
    import httpx

    from aigc_lessons.serve.process import ServerProcess

    with ServerProcess(["--models", "cgan_mnist", "--max-queue", "2", "--timeout", "10"],
                       start_timeout_s=60) as server:
        assert httpx.get(server.url + "/v1/health", timeout=5).status_code == 200

        async def burst():
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as http:
                return await asyncio.gather(*(http.get("/v1/digits", params={"count": 64, "seed": i})
                                              for i in range(24)))

        answers = asyncio.run(burst())
        statuses = [r.status_code for r in answers]
        assert set(statuses) <= {200, 429} and statuses.count(429) > 0 and statuses.count(200) > 0, statuses
        refused = next(r for r in answers if r.status_code == 429)
        assert refused.headers["retry-after"] == "1" and refused.json()["error"]["code"] == "overloaded"
        assert server.process.poll() is None, "the server died under overload"
        after = httpx.get(server.url + "/v1/digits", params={"count": 4, "seed": 0}, timeout=10)
        assert after.status_code == 200
        log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "verified" for line in lines), log[-2000:]
    assert any(line.get("status") == 429 for line in lines if line.get("event") == "request")


@pytest.mark.timeout(60)
def test_the_command_refuses_weights_that_fail_their_sha256(tmp_path, monkeypatch) -> None:
    from aigc_lessons import cli, pretrained

    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".json", ".safetensors"):
        (weights / f"cgan_mnist{suffix}").write_bytes((pretrained.WEIGHTS_DIR / f"cgan_mnist{suffix}").read_bytes())
    with open(weights / "cgan_mnist.safetensors", "r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"\x00" * 8)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(pretrained.verify, "__defaults__", (weights,))
    monkeypatch.setattr(pretrained.card, "__defaults__", (weights,))
    monkeypatch.setattr(pretrained.available, "__defaults__", (weights,))
    assert cli.main(["serve", "--models", "cgan_mnist", "--port", "0"]) == 1
