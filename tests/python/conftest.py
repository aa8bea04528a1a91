"""Fixtures: a real `banso up` process and a Python client generated from proto/.

The server binary is never built here. Set BANSO_BIN to use another binary
than <repo>/target/debug/banso (build it with `cargo build -p banso`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
GEN = HERE / "gen"

# Set to a directory to keep the server's output there after the session.
LOG_DIR_ENV = "PYTEST_BANSO_LOG_DIR"
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 30.0
TOKEN_MARKER = "token (admin, 30 days):"
JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def _ensure_stubs() -> None:
    """Generates the stubs when run.sh/generate.sh has not (plain `pytest`)."""
    if not (GEN / "banso" / "accounts" / "v1" / "accounts_service_pb2_grpc.py").exists():
        subprocess.run(
            ["bash", str(HERE / "generate.sh")],
            check=True,
            env={**os.environ, "PYTHON": sys.executable},
        )
    if str(GEN) not in sys.path:
        sys.path.insert(0, str(GEN))


_ensure_stubs()

from banso.accounts.v1 import accounts_service_pb2_grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402


def banso_bin() -> Path:
    raw = os.environ.get("BANSO_BIN")
    path = Path(raw) if raw else REPO_ROOT / "target" / "debug" / "banso"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.exit(
            f"banso binary not found or not executable at {path}: "
            "run `cargo build -p banso` first, or set BANSO_BIN to a built binary",
            returncode=2,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    """The environment without BANSO_* settings that would change `banso up`
    (a secret or database URL meant for something else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANSO_")}
    env["NO_COLOR"] = "1"
    return env


@dataclass
class BansoServer:
    binary: Path
    data_dir: Path
    addr: str
    token: str
    process: subprocess.Popen
    stdout_path: Path
    log_path: Path
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def mint_token(self, tenant: str = "default", role: str = "admin") -> str:
        """A token from `banso token`, signed with this server's dev secret."""
        key = (tenant, role)
        if key not in self._tokens:
            out = subprocess.run(
                [str(self.binary), "token", "--tenant", tenant, "--role", role, "--data-dir", str(self.data_dir)],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=30,
            )
            assert out.returncode == 0, f"banso token failed ({out.returncode}): {out.stderr}"
            token = out.stdout.strip()
            assert token.count(".") == 2, f"banso token printed no JWT: {out.stdout!r}"
            self._tokens[key] = token
        return self._tokens[key]

    def log(self) -> str:
        """What the server wrote: banner and logs (stdout), then stderr."""
        out = self.stdout_path.read_text(errors="replace")
        err = self.log_path.read_text(errors="replace")
        return f"--- banso up stdout ---\n{out}\n--- banso up stderr ---\n{err}"


def _read_token(stdout_path: Path) -> tuple[str | None, str | None]:
    """(grpc address, token) from `banso up`'s banner, once both are printed."""
    # Logs go to stdout too: take the first JWT-shaped line after the marker.
    lines = [line.strip() for line in stdout_path.read_text(errors="replace").splitlines()]
    addr = token = None
    for i, line in enumerate(lines):
        if line.startswith("gRPC:"):
            addr = line.split(None, 1)[1]
        if line == TOKEN_MARKER:
            token = next((l for l in lines[i + 1 :] if JWT.match(l)), None)
    return addr, token


def _wait_healthy(addr: str, deadline: float, proc: subprocess.Popen) -> None:
    last: Exception | None = None
    with grpc.insecure_channel(addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"banso exited with {proc.returncode} before becoming healthy")
            try:
                for service in ("", "banso.accounts.v1.AccountsService"):
                    resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                    if resp.status != health_pb2.HealthCheckResponse.SERVING:
                        raise RuntimeError(f"health of {service!r} is {resp.status}")
                return
            except (grpc.RpcError, RuntimeError) as e:
                last = e
                time.sleep(0.1)
    raise TimeoutError(f"banso at {addr} not healthy within {STARTUP_TIMEOUT_S}s: {last}")


def _start(binary: Path, data_dir: Path, workdir: Path, attempt: int) -> BansoServer:
    port = free_port()
    stdout_path = workdir / f"banso-up-{attempt}.stdout"
    log_path = workdir / f"banso-up-{attempt}.log"
    with open(stdout_path, "wb") as out, open(log_path, "wb") as err:
        proc = subprocess.Popen(
            [
                str(binary), "up",
                "--data-dir", str(data_dir),
                "--grpc-addr", f"127.0.0.1:{port}",
                "--admin-addr", "off",
                "--gateway-addr", f"127.0.0.1:{free_port()}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=child_env(),
            cwd=workdir,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    addr = token = None
    while time.monotonic() < deadline:
        addr, token = _read_token(stdout_path)
        if token or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not token:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise RuntimeError(
            f"banso up (exit {proc.returncode}) printed no token within {STARTUP_TIMEOUT_S}s.\n"
            f"--- stdout ---\n{stdout_path.read_text(errors='replace')}\n"
            f"--- stderr ---\n{log_path.read_text(errors='replace')}"
        )
    assert addr == f"127.0.0.1:{port}", f"banso up printed gRPC address {addr!r}, asked for port {port}"
    try:
        _wait_healthy(addr, deadline, proc)
    except Exception:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return BansoServer(
        binary=binary, data_dir=data_dir, addr=addr, token=token, process=proc, stdout_path=stdout_path, log_path=log_path
    )


@pytest.fixture(scope="session")
def banso_server():
    binary = banso_bin()
    with tempfile.TemporaryDirectory(prefix="banso-pytest-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        server = None
        error: Exception | None = None
        # A free port can be taken between probing and binding: try again.
        for attempt in range(3):
            try:
                server = _start(binary, data_dir, workdir, attempt)
                break
            except (RuntimeError, TimeoutError) as e:
                error = e
        if server is None:
            pytest.fail(f"could not start banso up: {error}", pytrace=False)
        try:
            yield server
        finally:
            proc = server.process
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    pytest.fail(
                        f"banso did not stop within {SHUTDOWN_TIMEOUT_S}s of SIGTERM\n{server.log()}",
                        pytrace=False,
                    )
            log = server.log()
            if keep := os.environ.get(LOG_DIR_ENV):
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(server.stdout_path, Path(keep) / "banso-up.stdout")
                shutil.copy(server.log_path, Path(keep) / "banso-up.stderr")
            assert proc.returncode == 0, (
                f"banso exited with {proc.returncode} after SIGTERM (want 0: graceful shutdown)\n{log}"
            )
            assert "panicked" not in log, f"banso panicked during the session\n{log}"


@pytest.fixture(scope="session")
def channel(banso_server):
    with grpc.insecure_channel(banso_server.addr) as ch:
        yield ch


@pytest.fixture(scope="session")
def accounts(channel):
    return accounts_service_pb2_grpc.AccountsServiceStub(channel)


@pytest.fixture(scope="session")
def admin_md(banso_server):
    """Call metadata with the admin token `banso up` printed (tenant "default")."""
    return (("authorization", f"Bearer {banso_server.token}"),)


@pytest.fixture(scope="session")
def md_for(banso_server):
    """md_for(tenant, role): call metadata with a token minted by `banso token`."""

    def make(tenant: str = "default", role: str = "admin"):
        return (("authorization", f"Bearer {banso_server.mint_token(tenant, role)}"),)

    return make
