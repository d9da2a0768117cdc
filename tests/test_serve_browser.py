"""The server's web page in headless Chromium: it loads, a click draws digits, an error is shown.

A real server (``aigc-lessons serve`` in a subprocess on a free 127.0.0.1 port) serves the page;
Chromium and ChromeDriver are found as for the book's browser test (``scripts/site_check.py``;
``bash scripts/ensure_browser.sh`` installs them). Without them the tests skip with the reason,
or fail with ``AIGC_LESSONS_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os

import pytest

from scripts import site_check

pytestmark = pytest.mark.browser

REQUIRE = os.environ.get("AIGC_LESSONS_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def browser():
    try:
        session = site_check.start_browser()
    except site_check.BrowserUnavailable as error:
        if REQUIRE:
            pytest.fail(f"no headless browser: {error} (AIGC_LESSONS_REQUIRE_BROWSER=1)")
        pytest.skip(f"no headless browser: {error}")
    yield session
    site_check.stop_browser(session)


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("fastapi")
    from aigc_lessons.serve.process import ServerProcess

    with ServerProcess(["--models", "cgan_mnist", "vae_mnist", "gpt_shakespeare"], start_timeout_s=90) as running:
        yield running


def _wait(browser, condition, seconds: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(lambda driver: condition(driver))


def _page(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    return By


def test_the_page_loads_and_lists_the_models(browser, server) -> None:
    By = _page(browser, server)
    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert options == ["cgan_mnist", "vae_mnist"], options
    assert "ready" in browser.find_element(By.ID, "status").text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_a_click_draws_the_digits(browser, server) -> None:
    By = _page(browser, server)
    browser.find_element(By.ID, "digit").send_keys("7")
    browser.find_element(By.ID, "generate").click()
    _wait(browser, lambda d: d.execute_script(
        "const i = document.getElementById('digits-image'); return !i.hidden && i.complete && i.naturalWidth > 0;"))
    width = browser.execute_script("return document.getElementById('digits-image').naturalWidth")
    assert width == 8 * 30 - 2, width  # 16 images in 8 columns of 28 pixels and 2-pixel gaps
    assert "seed 0" in browser.find_element(By.ID, "digits-caption").text
    assert not browser.find_element(By.ID, "digits-error").is_displayed()


def test_an_invalid_input_shows_the_servers_error(browser, server) -> None:
    By = _page(browser, server)
    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("abc")
    browser.find_element(By.ID, "generate").click()
    error = browser.find_element(By.ID, "digits-error")
    _wait(browser, lambda d: error.is_displayed())
    assert error.text.startswith("422") and "seed" in error.text, error.text

    count = browser.find_element(By.ID, "count")
    seed.clear()
    count.clear()
    count.send_keys("5000")
    browser.find_element(By.ID, "generate").click()
    _wait(browser, lambda d: "count" in error.text)
    assert "less than or equal to 64" in error.text, error.text


def test_a_prompt_writes_text_and_a_bad_prompt_shows_the_error(browser, server) -> None:
    By = _page(browser, server)
    tokens = browser.find_element(By.ID, "max-new-tokens")
    tokens.clear()
    tokens.send_keys("40")
    browser.find_element(By.ID, "write").click()
    output = browser.find_element(By.ID, "text-output")
    _wait(browser, lambda d: len(output.text) > len("ROMEO:"))
    assert output.text.startswith("ROMEO:")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("Hello € world")
    browser.find_element(By.ID, "write").click()
    error = browser.find_element(By.ID, "text-error")
    _wait(browser, lambda d: error.is_displayed())
    assert error.text.startswith("422") and "€" in error.text, error.text
