"""Private redis-server and PostgreSQL instances for one benchmark run.

Each server gets a free loopback port and a fresh temporary data directory, and
is stopped (and its directory removed) when its context exits, also on error,
so a run never touches a system instance or leaves one behind.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_S = 20.0
APT_TIMEOUT_S = 600.0


class ServerUnavailable(RuntimeError):
    """A peer server could not be installed or started; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bindir() -> Path | None:
    # Debian keeps the server binaries out of PATH, one directory per major version.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    found = candidates[0] if candidates else shutil.which("pg_ctl")
    return Path(found).parent if found else None


def ensure_installed() -> list[str]:
    """Install redis-server and postgresql from Debian packages when missing.

    Returns the packages installed. Raises ServerUnavailable when they are missing
    and cannot be installed (not root, no apt-get, or apt failed).
    """
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if _postgres_bindir() is None:
        missing.append("postgresql")
    if not missing:
        return []
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise ServerUnavailable(
            f"{' and '.join(missing)} not installed, and apt-get as root is not available"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        try:
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=APT_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            stderr = getattr(error, "stderr", b"") or b""
            detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [str(error)]
            raise ServerUnavailable(f"`{' '.join(command)}` failed: {detail[0]}") from error
    return missing


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerUnavailable(f"{name} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerUnavailable(f"{name} did not accept connections on port {port}")


@dataclass(frozen=True)
class RedisServer:
    port: int
    version: str


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A redis-server without persistence on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server not installed")
    version_line = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout
    version = next((part[2:] for part in version_line.split() if part.startswith("v=")), "?")
    data_dir = tempfile.mkdtemp(prefix="invsync-peers-redis-")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            data_dir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, "redis-server")
        yield RedisServer(port=port, version=version)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root, run it as the `postgres` account.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (default durability settings) on a free loopback port."""
    bindir = _postgres_bindir()
    if bindir is None:
        raise ServerUnavailable("PostgreSQL server binaries not installed")
    data_dir = Path(tempfile.mkdtemp(prefix="invsync-peers-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, user="postgres", group="postgres")
    cluster = data_dir / "cluster"
    port = free_port()
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(cluster)]
    started = False
    try:
        _run_checked(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(cluster),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            "initdb",
        )
        options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1"
        _run_checked(
            _as_server_user(
                [*pg_ctl, "-l", str(data_dir / "server.log"), "-w", "-o", options, "start"]
            ),
            "pg_ctl start",
        )
        started = True
        _wait_for_port(port, None, "postgres")
        yield PostgresServer(port=port, user="postgres")
    finally:
        if started:
            subprocess.run(
                _as_server_user([*pg_ctl, "-m", "fast", "-w", "stop"]),
                check=False,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(data_dir, ignore_errors=True)


def _run_checked(command: list[str], name: str) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        stderr = getattr(error, "stderr", b"") or b""
        detail = stderr.decode(errors="replace").strip() or str(error)
        raise ServerUnavailable(f"{name} failed: {detail}") from error
