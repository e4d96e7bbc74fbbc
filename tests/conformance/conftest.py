"""Fixtures that run the real `tallyman` binary for the conformance suite.

Every test here talks to a server process started from the built binary, the way a provider's
script talks to VSPC: over HTTP, with the third-party `veeam-spc` client where it can express
the request and with plain httpx where it cannot.

Servers are module-scoped: each test module gets its own process and its own empty database,
so modules cannot leak state into each other, while the tests inside a module share one start-up.
Each server fixture is parametrized over the storage backends:

* ``sqlite``   -- a SQLite file in a fresh temporary data directory (always runs);
* ``postgres`` -- a freshly created PostgreSQL database on the server named by the
  ``TALLYMAN_TEST_PG`` environment variable (for example
  ``postgres://postgres@127.0.0.1:5432/test``), dropped again afterwards. Without that variable,
  or without ``psql`` on PATH to create the database, the variant is skipped with a reason that
  pytest prints in its summary.

Real license data: ``licensing_server`` (and ``licensing_async_server``) start the server with
``--trusted-key`` on a fresh issuer key from `tallyman keygen` and ``--portal-url`` on a running
`tallyman portal`; tests mint signed files with ``server.issuer.mint(...)`` (`tallyman license
issue`), hand them to the portal with ``server.portal.publish(...)``, add organizations and
servers with the CLI (``add_org``, ``add_managed_server``) and enroll agents that register
servers and post usage through the agent API (``enroll_agent``).

Environment:

* ``TALLYMAN_BIN``     -- the server binary (default: ``<repo>/target/debug/tallyman``).
* ``TALLYMAN_TEST_PG`` -- see above.
* ``TALLYMAN_LOG``     -- passed through to the server (log filter); the server's log goes to
  ``server.log`` in the server's temporary directory and its tail is shown when start-up fails.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from veeam_spc.client import VeeamClient

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "tallyman"

# Upper bounds for process life-cycle steps. They are generous on purpose: they only exist so
# that a broken server fails the suite instead of hanging it.
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0
CLI_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 15.0

ADMIN_NAME = "admin"
LISTEN_LINE = re.compile(rb"^listening on (\S+)$")

BACKENDS = ["sqlite", "postgres"]


def tallyman_bin() -> Path:
    return Path(os.environ.get("TALLYMAN_BIN") or DEFAULT_BIN)


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for server and CLI processes.

    Any ``TALLYMAN_*`` setting of the developer's shell (a database URL, a config file,
    force-async ...) would change what the server under test does, so all of them are dropped
    except the log filter.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TALLYMAN_") or key == "TALLYMAN_LOG"
    }
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# PostgreSQL databases, created and dropped with psql
# --------------------------------------------------------------------------------------------


class PostgresDatabase:
    """A throw-away database on the server that ``TALLYMAN_TEST_PG`` points at."""

    def __init__(self, server_url: str):
        self.server_url = server_url
        self.name = f"tallyman_conf_{secrets.token_hex(6)}"
        parts = urlsplit(server_url)
        self.url = urlunsplit(parts._replace(path="/" + self.name))

    def _psql(self, sql: str) -> None:
        result = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.server_url, "-c", sql],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({sql}): {result.stderr.strip()}")

    def create(self) -> None:
        self._psql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        # FORCE ends sessions a crashed server may have left behind (PostgreSQL 13+).
        self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _postgres_or_skip() -> str:
    url = os.environ.get("TALLYMAN_TEST_PG", "").strip()
    if not url:
        pytest.skip(
            "PostgreSQL variant not run: set TALLYMAN_TEST_PG to a server URL "
            "(e.g. postgres://postgres@127.0.0.1:5432/test) to run every test on PostgreSQL too"
        )
    if shutil.which("psql") is None:
        pytest.skip(
            "PostgreSQL variant not run: TALLYMAN_TEST_PG is set but psql is not on PATH, "
            "so no test database can be created"
        )
    return url


# --------------------------------------------------------------------------------------------
# Processes that announce their address on stdout
# --------------------------------------------------------------------------------------------


def read_announced_address(
    proc: subprocess.Popen,
    pattern: re.Pattern,
    what: str,
    log_tail: Callable[[], str],
) -> str:
    """Reads ``proc``'s stdout until a line matches ``pattern`` and returns its first group.

    Fails (with the tail of the process's log) when the process exits first or says nothing
    matching within STARTUP_TIMEOUT_S.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(
                f"{what} printed no address line within {STARTUP_TIMEOUT_S:.0f} s" + log_tail()
            )
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            code = proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            raise RuntimeError(
                f"{what} exited with status {code} before it was listening" + log_tail()
            )
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            match = pattern.match(line.strip())
            if match:
                return match.group(1).decode()


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


class Tallyman:
    """One running `tallyman serve` process and what tests need to talk to it."""

    def __init__(
        self,
        workdir: Path,
        *,
        backend: str,
        database_url: Optional[str] = None,
        force_async: bool = False,
        config_toml: Optional[str] = None,
        extra_args: Sequence[str] = (),
    ):
        self.binary = tallyman_bin()
        self.backend = backend
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "server.log"
        self.database_url = database_url
        self.force_async = force_async
        # More `serve` flags (e.g. --trusted-key, --portal-url), appended as given.
        self.extra_args = list(extra_args)
        if config_toml is not None:
            # `serve` reads <data-dir>/tallyman.toml when it exists.
            (self.data_dir / "tallyman.toml").write_text(config_toml)
        self.admin_name = ADMIN_NAME
        self.admin_password = "Adm1n-" + secrets.token_urlsafe(12)
        self.proc: Optional[subprocess.Popen] = None
        self.address: Optional[str] = None
        self._admin_token: Optional[str] = None
        # Set by the licensing_server fixture: the issuer whose files this server trusts and the
        # license portal its `update` operations ask.
        self.issuer: Optional[Issuer] = None
        self.portal: Optional[Portal] = None

    # ---- life cycle ----------------------------------------------------------------------

    def _store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database", self.database_url]
        return args

    def start(self) -> None:
        if not self.binary.is_file():
            pytest.fail(
                f"server binary {self.binary} not found: run `cargo build -p tallyman` "
                "or point TALLYMAN_BIN at it",
                pytrace=False,
            )
        args = [str(self.binary), "serve", "--listen", "127.0.0.1:0", *self._store_args()]
        if self.force_async:
            args += ["--force-async", "true"]
        args += self.extra_args
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_child_env({"TALLYMAN_ADMIN_PASSWORD": self.admin_password}),
                bufsize=0,
            )
        try:
            self.address = self._wait_for_listen_line()
        except Exception:
            self.kill()
            raise

    def _wait_for_listen_line(self) -> str:
        """Blocks on the server's stdout until it announces the bound address.

        The server prints the line only after the socket is bound, so once it is read the server
        accepts connections; there is nothing to poll.
        """
        assert self.proc is not None
        return read_announced_address(self.proc, LISTEN_LINE, "server", self.log_tail)

    def stop(self) -> int:
        """Asks the server to shut down with SIGTERM and returns its exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                f"server did not exit within {SHUTDOWN_TIMEOUT_S:.0f} s of SIGTERM" + self.log_tail(),
                pytrace=False,
            )
        self._close_pipes()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- last lines of {self.log_path} ---\n{tail}"

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Scheme, host and port, e.g. ``http://127.0.0.1:41234`` (what VeeamClient takes)."""
        return f"http://{self.address}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v3"

    @property
    def agent_url(self) -> str:
        return f"{self.base_url}/api/agent/v1"

    # ---- the administration CLI, against the same data ---------------------------------------

    def cli(self, *args: str, stdin: Optional[str] = None) -> str:
        result = subprocess.run(
            [str(self.binary), *args, *self._store_args()],
            input=stdin,
            capture_output=True,
            text=True,
            env=_child_env({}),
            timeout=CLI_TIMEOUT_S,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`tallyman {' '.join(args)}` failed with status {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result.stdout

    def add_user(self, name: str, role: str, password: str) -> uuid.UUID:
        """Adds a user with `tallyman user add` and returns the UID it prints."""
        out = self.cli("user", "add", name, "--role", role, "--password-stdin", stdin=password + "\n")
        return uuid.UUID(out.strip().splitlines()[-1])

    def user_uid(self, name: str) -> uuid.UUID:
        """Looks a user up with `tallyman user list` (tab-separated: uid, name, role, org)."""
        for line in self.cli("user", "list").splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1] == name:
                return uuid.UUID(fields[0])
        raise LookupError(f"no user {name!r}")

    def add_org(self, name: str, org_type: str, parent: Optional[uuid.UUID] = None) -> uuid.UUID:
        """`tallyman org add NAME --type Reseller|Company [--parent UID]`; returns the UID."""
        args = ["org", "add", name, "--type", org_type]
        if parent is not None:
            args += ["--parent", str(parent)]
        return uuid.UUID(self.cli(*args).strip().splitlines()[-1])

    def provider_uid(self) -> uuid.UUID:
        """The provider organization (`tallyman org list`: uid, type, name, parent)."""
        for line in self.cli("org", "list").splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1] == "Provider":
                return uuid.UUID(fields[0])
        raise LookupError("no provider organization")

    def add_managed_server(
        self, name: str, kind: str, organization: Optional[uuid.UUID] = None
    ) -> uuid.UUID:
        """`tallyman server add NAME --kind KIND`; KIND is cloud-connect-site, backup-server,
        vone-server or vb365-server. Returns the server's UID."""
        args = ["server", "add", name, "--kind", kind]
        if organization is not None:
            args += ["--organization", str(organization)]
        return uuid.UUID(self.cli(*args).strip().splitlines()[-1])

    def enroll_agent(self, organization: uuid.UUID, name: str = "conformance agent") -> "Agent":
        """An agent of ``organization``, enrolled with a fresh `tallyman org enroll-token`."""
        token = self.cli("org", "enroll-token", str(organization)).strip().splitlines()[-1]
        with httpx.Client(base_url=self.agent_url, timeout=HTTP_TIMEOUT_S) as http:
            response = http.post("/enroll", json={"enrollmentToken": token, "name": name})
        assert response.status_code == 201, response.text
        return Agent(self.agent_url, response.json()["agentToken"])

    def generate_reports(self, month: str) -> str:
        """`tallyman report generate --month YYYY-MM`; returns what it printed."""
        return self.cli("report", "generate", "--month", month)

    # ---- clients -----------------------------------------------------------------------------

    def http(self, token: Optional[str] = None, **headers: str) -> httpx.Client:
        """A plain httpx client rooted at ``/api/v3``, optionally with a bearer token."""
        all_headers = dict(headers)
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.api_url, headers=all_headers, timeout=HTTP_TIMEOUT_S)

    def login(self, username: Optional[str] = None, password: Optional[str] = None, **form) -> dict:
        """Password grant over plain HTTP; returns the token response or fails the test."""
        data = {
            "grant_type": "password",
            "username": username or self.admin_name,
            "password": password or self.admin_password,
            **form,
        }
        with self.http() as http:
            response = http.post("/token", data=data)
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def admin_token(self) -> str:
        """An access token of the admin, fetched once per server."""
        if self._admin_token is None:
            self._admin_token = self.login()["access_token"]
        return self._admin_token

    @contextlib.asynccontextmanager
    async def session(
        self,
        username: Optional[str] = None,
        password: Optional[str] = None,
        api_version: str = "3.6.1",
    ) -> AsyncIterator[VeeamClient]:
        """A connected `VeeamClient`, as a provider's script would hold one."""
        client = VeeamClient(
            host=self.base_url,
            api_version=api_version,
            username=username or self.admin_name,
            password=password or self.admin_password,
        )
        await client.connect()
        try:
            yield client
        finally:
            await close_client(client)


async def close_client(client: VeeamClient) -> None:
    """Closes the pooled connections of a VeeamClient.

    VeeamClient.close() is a no-op and the generated client keeps an httpx.AsyncClient open
    forever; close it here so each test's event loop ends cleanly.
    """
    inner = getattr(client, "_client", None)
    pool = getattr(inner, "_async_client", None)
    if pool is not None:
        await pool.aclose()


# --------------------------------------------------------------------------------------------
# Real license data: an issuer key, signed license files, the license portal, agents
# --------------------------------------------------------------------------------------------


def _run_tool(binary: Path, *args: str) -> str:
    """Runs a `tallyman` command that touches no database and returns its standard output."""
    result = subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        env=_child_env({}),
        timeout=CLI_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`tallyman {' '.join(args)}` failed with status {result.returncode}: "
            f"{result.stderr.strip()}"
        )
    return result.stdout


class MintedLicense:
    """A license file written by `tallyman license issue`, with the claims it carries."""

    def __init__(self, path: Path, claims: dict):
        self.path = path
        self.claims = claims

    @property
    def bytes(self) -> bytes:
        return self.path.read_bytes()

    @property
    def license_id(self) -> uuid.UUID:
        return uuid.UUID(self.claims["licenseId"])

    def __repr__(self) -> str:
        return f"MintedLicense({self.path.name}, {self.claims.get('product')} {self.claims.get('type')})"


class Issuer:
    """A license issuer: a signing key from `tallyman keygen` and the files it signs."""

    def __init__(self, binary: Path, directory: Path):
        self.binary = binary
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = directory / "issuer.key"
        self.public_key = directory / "issuer.key.pub"
        _run_tool(binary, "keygen", "--out", str(self.key))
        self._count = 0

    def mint(self, product: str, license_type: str, **claims) -> MintedLicense:
        """`tallyman license issue --product PRODUCT --type TYPE [--flag value ...]`.

        Keyword arguments become flags (``units=50`` → ``--units 50``, ``support_id=...`` →
        ``--support-id ...``); a list repeats its flag; dates may be ``datetime.date``. Returns
        the file with its claims, read back (and verified) with `tallyman license inspect`.
        """
        self._count += 1
        path = self.directory / f"{self._count:03d}-{product}-{license_type}.lic"
        args = ["license", "issue", "--key", str(self.key), "--product", product,
                "--type", license_type, "--out", str(path)]
        for name, value in claims.items():
            flag = "--" + name.replace("_", "-")
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, bool):
                    item = "true" if item else "false"
                args += [flag, str(item)]
        _run_tool(self.binary, *args)
        inspected = json.loads(
            _run_tool(self.binary, "license", "inspect", "--json",
                      "--trusted-key", str(self.public_key), str(path))
        )
        assert inspected["verified"] is True, inspected
        return MintedLicense(path, inspected["claims"])


PORTAL_LINE = re.compile(rb"^portal listening on (\S+)$")


class Portal:
    """A running `tallyman portal` on an issuer's key (a context manager)."""

    def __init__(self, binary: Path, issuer: Issuer, directory: Path):
        self.binary = binary
        self.issuer = issuer
        self.directory = directory
        self.log_path = directory.parent / "portal.log"
        self.proc: Optional[subprocess.Popen] = None
        self.address: Optional[str] = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "Portal":
        args = [str(self.binary), "portal", "--listen", "127.0.0.1:0",
                "--key", str(self.issuer.key), "--licenses", str(self.directory)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env=_child_env({}), bufsize=0,
            )
        try:
            self.address = read_announced_address(self.proc, PORTAL_LINE, "portal", self.log_tail)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def publish(self, minted: MintedLicense) -> dict:
        """Hands a file to the portal (`POST /portal/v1/licenses`), as an issuer would."""
        with httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_S) as http:
            response = http.post("/portal/v1/licenses", content=minted.bytes)
        assert response.status_code in (200, 201), response.text + self.log_tail()
        return response.json()

    def latest(self, license_id: uuid.UUID) -> Optional[dict]:
        """What the portal hands out for a license id now (None: nothing newer than nothing)."""
        with httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_S) as http:
            response = http.get(f"/portal/v1/licenses/{license_id}/latest")
        assert response.status_code in (200, 204), response.text
        return response.json() if response.status_code == 200 else None


class Agent:
    """An enrolled agent speaking the agent API (docs/agent-api.md) with its own token."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.token = token

    def _http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=HTTP_TIMEOUT_S,
        )

    def register(self, kind: str, name: str) -> uuid.UUID:
        """`POST /servers` (kind: CloudConnectSite, BackupServer, VOneServer, Vb365Server)."""
        with self._http() as http:
            response = http.post("/servers", json={"kind": kind, "name": name})
        assert response.status_code in (200, 201), response.text
        return uuid.UUID(response.json()["serverUid"])

    def report_usage(self, server_uid: uuid.UUID, sampled_at: str, workloads: list[dict]) -> dict:
        """`POST /servers/{uid}/usage` with one sample."""
        with self._http() as http:
            response = http.post(
                f"/servers/{server_uid}/usage",
                json={"sampledAt": sampled_at, "workloads": workloads},
            )
        assert response.status_code == 200, response.text
        return response.json()

    def heartbeat(self, server_uid: uuid.UUID, **report) -> dict:
        """`POST /servers/{uid}/heartbeat` (licenseState, licenseIds, usedUnits, ...)."""
        body = {"licenseState": "licensed", "licenseIds": [], **report}
        with self._http() as http:
            response = http.post(f"/servers/{server_uid}/heartbeat", json=body)
        assert response.status_code == 200, response.text
        return response.json()


def _launch(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    prepare: Optional[Callable[[Tallyman], None]] = None,
    **options,
) -> Iterator[Tallyman]:
    backend = request.param
    database: Optional[PostgresDatabase] = None
    if backend == "postgres":
        database = PostgresDatabase(_postgres_or_skip())
        database.create()
    workdir = tmp_path_factory.mktemp(f"tallyman-{backend}")
    server = Tallyman(
        workdir,
        backend=backend,
        database_url=database.url if database else None,
        **options,
    )
    try:
        if prepare is not None:
            # Runs before `serve` starts, with the server's work directory in place.
            prepare(server)
        server.start()
        yield server
        code = server.stop()
        # Graceful shutdown: SIGTERM lets requests finish and the process exit cleanly.
        assert code == 0, f"server exited with status {code} after SIGTERM" + server.log_tail()
    finally:
        server.kill()
        if database is not None:
            database.drop()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[Tallyman]:
    """A plain server: operations answer synchronously unless they run past the budget."""
    yield from _launch(request, tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def async_server(request, tmp_path_factory) -> Iterator[Tallyman]:
    """A server started with ``--force-async true``: every async-capable operation answers 202."""
    yield from _launch(request, tmp_path_factory, force_async=True)


def _launch_licensing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, **options
) -> Iterator[Tallyman]:
    """`_launch` with an issuer key the server trusts and a running license portal.

    Before `serve` starts, `tallyman keygen` writes ``<workdir>/issuer/issuer.key`` and a
    `tallyman portal` is started on that key (``server.issuer``, ``server.portal``); the server
    gets ``--trusted-key <workdir>/issuer/issuer.key.pub --portal-url http://<portal>``. Tests mint
    their license files with ``server.issuer.mint(...)``.
    """
    with contextlib.ExitStack() as stack:

        def prepare(server: Tallyman) -> None:
            server.issuer = Issuer(server.binary, server.workdir / "issuer")
            server.portal = stack.enter_context(
                Portal(server.binary, server.issuer, server.workdir / "portal")
            )
            server.extra_args += [
                "--trusted-key",
                str(server.issuer.public_key),
                "--portal-url",
                server.portal.url,
            ]

        # The portal outlives the server: `_launch` stops the server before the stack unwinds.
        yield from _launch(request, tmp_path_factory, prepare=prepare, **options)


@pytest.fixture(scope="module", params=BACKENDS)
def licensing_server(request, tmp_path_factory) -> Iterator[Tallyman]:
    """A server that trusts a fresh issuer key and asks a running license portal for updates."""
    yield from _launch_licensing(request, tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def licensing_async_server(request, tmp_path_factory) -> Iterator[Tallyman]:
    """``licensing_server`` started with ``--force-async true``."""
    yield from _launch_licensing(request, tmp_path_factory, force_async=True)


# Access tokens of this server live one second; refresh tokens keep the default.
SHORT_ACCESS_TTL_S = 1


@pytest.fixture(scope="module", params=BACKENDS)
def short_ttl_server(request, tmp_path_factory) -> Iterator[Tallyman]:
    """A server whose access tokens expire after SHORT_ACCESS_TTL_S, to see expiry for real."""
    yield from _launch(
        request,
        tmp_path_factory,
        config_toml=f"access_token_ttl_secs = {SHORT_ACCESS_TTL_S}\n",
    )


def pytest_report_header(config) -> list[str]:
    pg = os.environ.get("TALLYMAN_TEST_PG")
    return [
        f"tallyman binary: {tallyman_bin()}",
        "postgres variant: "
        + ("on (TALLYMAN_TEST_PG is set)" if pg else "skipped (TALLYMAN_TEST_PG is not set)"),
    ]


def pytest_terminal_summary(terminalreporter) -> None:
    """One line per distinct skip reason, so a skipped PostgreSQL variant is visible in a -q run
    without repeating the same reason for every test."""
    reasons: collections.Counter[str] = collections.Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            reasons[str(longrepr[2]).removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("skip reasons", sep="-")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"SKIPPED x{count}: {reason}")
