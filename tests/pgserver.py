"""A throwaway PostgreSQL server for the tests (imagen-postgres's queue,
imagen-supabase's SQL) and bench/postgres_queue.py; free of pytest so that the
benchmark can use it too.

``initdb`` refuses to run as root, and tests often do (CI, containers): then
the cluster belongs to ``nobody`` and the server runs as ``nobody``; clients
(psycopg in this process, or the ``psql`` program) run as the current user. The server listens on a Unix socket in its own
private folder only, so no TCP port can clash, and skips fsync: the data is
thrown away at the end.

Authentication is real for one role: ``postgres`` may connect without a
password (the test suite's own administration), every other role needs its
SCRAM password, so that a wrong password is refused as on a real server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
PORT = "5432"  # only names the socket file inside our private folder
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) and psql are needed for the "
    "imagen-postgres and imagen-supabase's SQL tests; install them (Debian/Ubuntu: "
    "apt-get install -y postgresql postgresql-client)"
)
HBA = """\
local   all   postgres                  trust
local   all   all                       scram-sha-256
"""


class PostgresError(Exception):
    pass


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
    # A developer's PGHOST/PGUSER/PGPASSWORD must not redirect anything anywhere.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


@dataclass
class PostgresServer:
    bindir: Path
    base: Path
    socket_dir: Path
    owner: tuple[int, int] | None  # (uid, gid) the server runs as, when we are root

    def dsn(self, database: str = "postgres", user: str = "postgres", password: str = "") -> str:
        """A URL connection string over the server's Unix socket."""
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        return f"postgresql://{auth}@/{database}?host={self.socket_dir}&port={PORT}"

    def psql(
        self,
        sql: str | None = None,
        *,
        file: Path | None = None,
        database: str = "postgres",
        variables: dict[str, str] | None = None,
    ) -> str:
        """Run SQL with the psql program (from stdin, so that ``:'var'``
        interpolation works) or a file of it; stop at the first error; return
        unaligned, tuples-only output. PostgresError carries psql's message."""
        program = shutil.which("psql") or str(self.bindir / "psql")
        if not Path(program).exists():
            raise PostgresError(INSTALL_HINT)
        args = [program, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        args += ["-h", str(self.socket_dir), "-p", PORT, "-U", "postgres", "-d", database]
        for name, value in (variables or {}).items():
            args += ["-v", f"{name}={value}"]
        if file is not None:
            args += ["-f", str(file)]
        return self._run(args, input=sql, as_owner=False).strip()

    def execute(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, name: str | None = None) -> str:
        name = name or f"imagen_{uuid.uuid4().hex[:12]}"
        self.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def create_role(self, name: str, password: str, database: str) -> None:
        """A login role that owns nothing but may create schemas in ``database``."""
        quoted = password.replace("'", "''")
        self.execute(
            f'DROP ROLE IF EXISTS "{name}"; CREATE ROLE "{name}" LOGIN PASSWORD \'{quoted}\''
        )
        self.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{name}"')

    def _run(self, args: list[str], *, input: str | None = None, as_owner: bool = True) -> str:
        """Run a program: the server's own (initdb, pg_ctl) as its owner."""
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
                ]
            )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_postgres(max_connections: int = 100) -> PostgresServer:
    """Start a server; PostgresError (with the server's log) when that fails."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresError(INSTALL_HINT)
    # mkdtemp under /tmp, not pytest's tmp_path: that one is private to root and
    # the unprivileged server could not even reach it.
    base = Path(tempfile.mkdtemp(prefix="imagen-pg-"))
    owner = None
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            shutil.rmtree(base, ignore_errors=True)
            raise PostgresError(
                "running as root, PostgreSQL runs as the user 'nobody' (initdb refuses "
                "root), and there is no such user; create it or run as another user"
            ) from None
        owner = (nobody.pw_uid, nobody.pw_gid)
    socket_dir = base / "socket"
    socket_dir.mkdir()
    # The client (this user) must reach the socket; the server (maybe nobody) owns both.
    base.chmod(0o755)
    socket_dir.chmod(0o755)
    if owner is not None:
        for path in (base, socket_dir):
            os.chown(path, *owner)
    server = PostgresServer(bindir, base, socket_dir, owner)
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
            ]
        )
        hba = data / "pg_hba.conf"
        hba.write_text(HBA)
        if owner is not None:
            os.chown(hba, *owner)
        options = (
            f"-c listen_addresses= -k {socket_dir} -p {PORT} -c max_connections={max_connections} "
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
            ]
        )
    except (PostgresError, subprocess.TimeoutExpired) as exc:
        log = base / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise PostgresError(f"could not start PostgreSQL from {bindir}: {exc}\n{detail}") from None
    return server
