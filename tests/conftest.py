"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from aigc_lessons.data import MnistDataError, verify_mnist


@pytest.fixture(scope="session")
def mnist_available() -> None:
    """Skip (with the reason) when MNIST is not found; the CI sets AIGC_LESSONS_DATA so it never skips there."""
    import os

    try:
        verify_mnist()
    except MnistDataError as error:
        if os.environ.get("AIGC_LESSONS_REQUIRE_DATA") == "1":
            raise
        pytest.skip(f"MNIST not available: {error}")


def pytest_configure(config):
    # Unit tests draw figures off-screen. Set through matplotlib, not MPLBACKEND:
    # the notebook kernels inherit this process's environment and must keep
    # Jupyter's inline backend, or the book's figures would vanish.
    import matplotlib

    matplotlib.use("Agg")
