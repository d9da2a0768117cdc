"""A server in a subprocess on a free loopback port, started and stopped by its user.

The tests, ``benchmarks/load_test.py`` and the chapter need a real server (a real socket,
uvicorn, its own process) that starts on a port nobody else uses and always stops, even when
the code using it fails. :class:`ServerProcess` is that, as a context manager: it picks a free
port on 127.0.0.1, runs ``python -m aigc_lessons.serve`` with the given options, waits until
``GET /v1/ready`` answers 200 (or the process dies, or ``start_timeout_s`` passes), and at the
end stops the process (SIGTERM, then SIGKILL after a grace period).

Example:
    >>> with ServerProcess(["--models", "cgan_mnist"]) as server:  # doctest: +SKIP
    ...     httpx.get(server.url + "/v1/health").json()["status"]
    'ok'
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now (the OS picks it).

    Example:
        >>> 1024 <= free_port() <= 65535
        True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServerUnavailable(RuntimeError):
    """The server process exited or did not become ready in time; the message holds its log."""


class ServerProcess:
    """``python -m aigc_lessons.serve ARGS`` on a free 127.0.0.1 port, ready on enter, stopped on exit."""

    def __init__(self, args: list[str] | None = None, start_timeout_s: float = 90.0,
                 env: dict[str, str] | None = None, threads: int | None = None) -> None:
        self.args, self.start_timeout_s = list(args or []), start_timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        # The package is found from this checkout even where it is not installed.
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        if threads is not None:
            self.args += ["--threads", str(threads)]
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="aigc-serve-", suffix=".log", delete=False)

    def log(self) -> str:
        """What the server wrote so far (its JSON request lines and any error)."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def start(self) -> ServerProcess:
        """Start the server and wait until it is ready (the same as entering the ``with`` block)."""
        return self.__enter__()

    def __enter__(self) -> ServerProcess:
        import httpx

        atexit.register(self.stop)  # a notebook or test that fails half-way still stops its server

        command = [sys.executable, "-m", "aigc_lessons.serve", "--host", "127.0.0.1",
                   "--port", str(self.port), *self.args]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                        cwd=str(ROOT))
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise ServerUnavailable(f"the server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/v1/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerUnavailable(f"the server was not ready after {self.start_timeout_s:g} s:\n{self.log()[-3000:]}")

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __exit__(self, *exc) -> None:
        self.stop()
        atexit.unregister(self.stop)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
