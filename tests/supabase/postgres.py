"""A throwaway PostgreSQL server for the tests, one per test session.

``initdb`` refuses to run as root, and tests often do (CI, containers): then the
cluster belongs to ``nobody``, the server runs as ``nobody``, and only the
``psql`` client runs as the current user. The server listens on a Unix socket in
its own private folder only, so no TCP port can clash, and skips fsync: the data
is thrown away at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
PORT = "5432"  # only names the socket file inside our private folder
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) and psql are needed for the "
    "docs/supabase.sql tests; install them (Debian/Ubuntu: "
    "apt-get install -y postgresql postgresql-client)"
)


def find_bindir() -> Path | None:
    """A folder holding initdb, pg_ctl and postgres: on PATH, else Debian's place."""
    on_path = [shutil.which(name) for name in SERVER_BINARIES]
    if all(on_path):
        return Path(on_path[0]).resolve().parent  # type: ignore[arg-type]
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in [*candidates, Path("/usr/local/pgsql/bin")]:
        if all((folder / name).is_file() for name in SERVER_BINARIES):
            return folder
    return None


def _clean_env() -> dict[str, str]:
    # A developer's PGHOST/PGUSER/PGPASSWORD must not redirect the tests anywhere.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


@dataclass
class PostgresServer:
    bindir: Path
    psql_path: str
    base: Path
    socket_dir: Path
    owner: tuple[int, int] | None  # (uid, gid) the server runs as, when we are root

    def _run(self, args: list[str], *, as_owner: bool = False, input: str | None = None) -> str:
        extra = {}
        if as_owner and self.owner is not None:
            extra = {"user": self.owner[0], "group": self.owner[1], "extra_groups": []}
        proc = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=self.base,
            timeout=60,
            check=False,
            **extra,
        )
        if proc.returncode != 0:
            raise PostgresError(f"{' '.join(args[:3])}… failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def psql(
        self,
        sql: str | None = None,
        *,
        file: Path | None = None,
        database: str = "postgres",
        variables: dict[str, str] | None = None,
    ) -> str:
        """Run SQL (from stdin, so that ``:'var'`` interpolation works) or a file;
        stop at the first error; return unaligned, tuples-only output."""
        args = [
            self.psql_path,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            PORT,
            "-U",
            "postgres",
            "-d",
            database,
        ]
        for name, value in (variables or {}).items():
            args += ["-v", f"{name}={value}"]
        if file is not None:
            args += ["-f", str(file)]
        return self._run(args, input=sql).strip()

    def create_database(self, name: str) -> str:
        self.psql(f'DROP DATABASE IF EXISTS "{name}"; CREATE DATABASE "{name}";')
        return name

    def stop(self) -> None:
        try:
            self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.base / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                as_owner=True,
            )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class PostgresError(Exception):
    pass


def start_postgres() -> PostgresServer:
    bindir = find_bindir()
    psql_path = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql_path is None or not Path(psql_path).exists():
        pytest.fail(INSTALL_HINT, pytrace=False)
    # mkdtemp under /tmp, not pytest's tmp_path: that one is private to root and
    # the unprivileged server could not even reach it.
    base = Path(tempfile.mkdtemp(prefix="imagen-pg-"))
    owner = None
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            shutil.rmtree(base, ignore_errors=True)
            pytest.fail(
                "running as root, the tests run PostgreSQL as the user 'nobody' (initdb "
                "refuses root), and there is no such user; create it or run as another user",
                pytrace=False,
            )
        owner = (nobody.pw_uid, nobody.pw_gid)
    socket_dir = base / "socket"
    socket_dir.mkdir()
    # The client (this user) must reach the socket; the server (maybe nobody) owns both.
    base.chmod(0o755)
    socket_dir.chmod(0o755)
    if owner is not None:
        for path in (base, socket_dir):
            os.chown(path, *owner)
    server = PostgresServer(bindir, psql_path, base, socket_dir, owner)
    data = base / "data"
    try:
        server._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
            as_owner=True,
        )
        options = (
            f"-c listen_addresses= -k {socket_dir} -p {PORT} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        server._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ],
            as_owner=True,
        )
    except (PostgresError, subprocess.TimeoutExpired) as exc:
        log = base / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}\n{detail}", pytrace=False)
    return server
