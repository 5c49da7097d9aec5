"""PostgreSQL 16 from the pgserver wheel, on a unix socket inside its data directory (no TCP port).

pgserver daemonizes postgres (pg_ctl start), so nothing stops it unless we do: stop() runs
`pg_ctl stop -m fast` and falls back to killing the postmaster and its children.

A postmaster killed with kill -9 leaves its postmaster.pid behind. Where nobody reaps it (a container
whose init does not), its pid stays a zombie: pgserver's psutil check takes it for a running server and
hands out its dead socket, and postgres itself refuses the lock files (postmaster.pid and the socket's
.lock) of a pid that still exists. So start() first removes the lock files of a postmaster that is not
really alive, once the orphaned backends that still work in the data directory are gone.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from .errors import StartupError

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _pgserver() -> Any:
    # platformdirs warns about a missing XDG_RUNTIME_DIR on every import; the fallback is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.postgres_server
    return pgserver


class Postgres:
    piece = "postgres"

    def __init__(
        self, pgdata: Path, log_path: Path, *, database: str = "pressroom", durable: bool = True
    ) -> None:
        if not _DB_NAME.match(database):
            raise ValueError(f"invalid database name {database!r}")
        self.pgdata = pgdata.expanduser().resolve()
        self.log_path = log_path  # a symlink to pgserver's own log inside pgdata
        self.database = database
        self.durable = durable  # False (tests): no fsync; several times faster, unsafe on power loss
        self._server: Any = None

    @property
    def server_uri(self) -> str:
        """URI of the maintenance database `postgres`."""
        if self._server is None:
            raise RuntimeError("postgres is not running")
        return str(self._server.get_uri())

    @property
    def url(self) -> str:
        return self.uri_for(self.database)

    def uri_for(self, database: str) -> str:
        parts = urlsplit(self.server_uri)
        return urlunsplit(parts._replace(path=f"/{database}"))

    @property
    def pid(self) -> int | None:
        """The postmaster's, from its lock file."""
        return self._postmaster_pid()

    def running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _alive_pid(pid)

    def start(self) -> str:
        if self._server is not None and self.running():
            return self.url
        pgserver = _pgserver()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._clear_stale_lock()
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:
            raise StartupError(self.piece, f"pgserver failed: {exc}", self.pgdata / "log") from exc
        # pgserver registers an atexit hook of its own that does nothing useful with cleanup_mode=None
        # and fails once we dropped its instance in stop(); ours stops the server instead.
        atexit.unregister(self._server._cleanup)
        atexit.register(self.stop)
        self._link_log()
        try:
            if not self.durable:
                for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                    self.psql(f"ALTER SYSTEM SET {setting} = off")
                self.psql("SELECT pg_reload_conf()")
            self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self.url

    def create_database(self, name: str) -> str:
        """Creates `name` unless it exists; returns its URI."""
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if exists != "1":
            self.psql(f'CREATE DATABASE "{name}"')
        return self.uri_for(name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str) -> str:
        psql = Path(_pgserver().__file__).parent / "pginstall" / "bin" / "psql"
        result = subprocess.run(
            [str(psql), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", self.server_uri, "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise StartupError(self.piece, f"psql failed: {result.stderr.strip()}", self.log_path)
        return result.stdout

    def stop(self) -> None:
        pid = self._postmaster_pid()
        if pid is not None and _alive_pid(pid):
            self._pg_ctl_stop()
            self._kill_leftovers(pid)
        self._forget()

    def _pg_ctl_stop(self) -> None:
        pg_ctl = Path(_pgserver().__file__).parent / "pginstall" / "bin" / "pg_ctl"
        # As root, pgserver runs postgres as its own 'pgserver' user; pg_ctl must run as that user too.
        user = self._server.system_user if self._server is not None else self._data_owner()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [str(pg_ctl), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "20", "stop"],
                capture_output=True,
                timeout=30,
                user=user,
            )

    def _kill_leftovers(self, postmaster_pid: int) -> None:
        try:
            postmaster = psutil.Process(postmaster_pid)
            procs = [postmaster, *postmaster.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            if _alive(proc):
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
        # The daemonized postmaster is not our child: whoever adopted it reaps it, maybe late. A zombie is
        # dead enough.
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _forget(self) -> None:
        # pgserver caches one handle per pgdata for the life of the process; drop ours so that a later
        # start() really starts the server again.
        if self._server is None:
            return
        pgserver = _pgserver()
        pgserver.postgres_server.PostgresServer._instances.pop(self.pgdata, None)
        with contextlib.suppress(Exception):
            self._server.global_process_id_list.get_and_remove(os.getpid())
        atexit.unregister(self.stop)
        self._server = None

    def _clear_stale_lock(self, timeout: float = 10.0) -> None:
        pid = self._postmaster_pid()
        if pid is None or _is_postmaster(pid):
            return  # no lock file, or a live server that pgserver will simply connect to
        # Its children notice the postmaster's death and exit; new ones must not share their memory.
        deadline = time.monotonic() + timeout
        while (orphans := self._orphans()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in orphans:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        pidfile = self.pgdata / "postmaster.pid"
        with contextlib.suppress(OSError, IndexError):
            # Lines 4 and 5 of postmaster.pid: the port and the socket's directory.
            lines = pidfile.read_text().splitlines()
            socket_lock = Path(lines[4]) / f".s.PGSQL.{lines[3].strip()}.lock"
            if socket_lock.read_text().split("\n", 1)[0].strip() == str(pid):
                socket_lock.unlink()
        with contextlib.suppress(OSError):
            pidfile.unlink()

    def _orphans(self) -> list[psutil.Process]:
        """Live postgres processes working in this data directory (a postgres process's cwd is it)."""
        found = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "postgres" or not _alive(proc):
                continue
            with contextlib.suppress(psutil.Error):
                if Path(proc.cwd()) == self.pgdata:
                    found.append(proc)
        return found

    def _postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _data_owner(self) -> str | None:
        if os.geteuid() != 0:
            return None
        import pwd

        return pwd.getpwuid(self.pgdata.stat().st_uid).pw_name

    def _link_log(self) -> None:
        with contextlib.suppress(OSError):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.log_path.is_symlink() or self.log_path.exists():
                self.log_path.unlink()
            self.log_path.symlink_to(self.pgdata / "log")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _is_postmaster(pid: int) -> bool:
    """A live postgres process: not a zombie and not whatever later got a dead postmaster's pid."""
    try:
        proc = psutil.Process(pid)
        return proc.name() == "postgres" and _alive(proc)
    except psutil.Error:
        return False


def _alive_pid(pid: int) -> bool:
    try:
        return _alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def reap_orphans(root: Path) -> list[Path]:
    """Stops postgres servers under `root` whose owning processes are all gone.

    pg_ctl daemonizes postgres, so a test run that was SIGKILLed leaves its server running forever.
    pgserver records the pids of the processes using a data directory in .handle_pids.json; when none
    of them is alive, nobody can stop that server any more but us.
    """
    root = root.resolve()
    reaped: list[Path] = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] != "postgres" or "-D" not in cmdline:
            continue
        pgdata = Path(cmdline[cmdline.index("-D") + 1])
        if not pgdata.is_relative_to(root):
            continue
        try:
            owners = json.loads((pgdata / ".handle_pids.json").read_text())
        except (OSError, ValueError):
            owners = []
        if any(_alive_pid(int(pid)) for pid in owners):
            continue
        Postgres(pgdata, pgdata / "log").stop()
        reaped.append(pgdata)
    return reaped
