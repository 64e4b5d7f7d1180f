"""A private PostgreSQL cluster for the dev stack and the tests, run from the machine's own binaries."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from infra.local.ports import free_port, is_listening

if TYPE_CHECKING:
    import psycopg

APP_ROLE = "race"
APP_PASSWORD = "race"  # noqa: S105 (the local stack's fixed dev password)
APP_DATABASE = "race"
SUPERUSER = "postgres"
# initdb and postgres refuse to run as root; as root they run as this system user (Debian's).
SYSTEM_USER = "postgres"
RECORD_FILE = "postgres.json"
OWNER_FILE = "race-state.json"
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres) were not found: install them "
    "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15) or "
    "`pip install pgserver`, point RACE_PG_BIN at their bin folder, or set DATABASE_URL to a running server"
)
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


class PostgresError(RuntimeError):
    """The embedded cluster could not be created, started or stopped; the message says why."""


def find_pg_bin(major: int | None = None) -> Path | None:
    """The folder holding initdb/postgres/pg_dump (newest version first; `major` pins one), else None."""
    for candidate in _bin_candidates():
        has_server = (candidate / "initdb").is_file() and (candidate / "postgres").is_file()
        if has_server and (major is None or _major_version(candidate) == major):
            return candidate
    return None


def _bin_candidates() -> Iterator[Path]:
    if os.environ.get("RACE_PG_BIN"):
        yield Path(os.environ["RACE_PG_BIN"])
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted((p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name))
        yield from (p / "bin" for p in versions)
    yield from sorted(Path("/usr").glob("pgsql-*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        yield Path(on_path).resolve().parent
    yield Path("/usr/local/pgsql/bin")
    # find_spec locates the pgserver wheel without importing it.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        yield Path(spec.origin).parent / "pginstall" / "bin"


@functools.cache
def _major_version(bin_dir: Path) -> int:
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not found:
        raise PostgresError(f"cannot read the PostgreSQL version from {out!r}")
    return int(found.group(1))


def _system_user() -> pwd.struct_passwd:
    """The `postgres` account, created the way Debian's postgresql-common does when it is missing."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    if shutil.which("adduser"):
        cmd = [
            "adduser",
            "--system",
            "--quiet",
            "--home",
            "/var/lib/postgresql",
            "--no-create-home",
            "--shell",
            "/bin/bash",
            "--group",
            "--gecos",
            "PostgreSQL administrator",
            SYSTEM_USER,
        ]
    else:
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--home-dir",
            "/var/lib/postgresql",
            "--no-create-home",
            "--shell",
            "/bin/bash",
            "--comment",
            "PostgreSQL administrator",
            SYSTEM_USER,
        ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PostgresError(f"could not create the {SYSTEM_USER} system user: {done.stderr.strip()}")
    return pwd.getpwnam(SYSTEM_USER)


def _child_env() -> dict[str, str]:
    # Stray PG* variables (PGPORT, PGDATA...) must not redirect the server or initdb.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _cluster_pids(data_dir: Path) -> list[int]:
    """Processes of a cluster: every postgres process runs with the data folder as its cwd."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    target = os.path.realpath(data_dir)
    pids = []
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry.name}/cwd") == target:
                    pids.append(int(entry.name))
    return pids


def _abandoned(cluster: Path) -> bool:
    try:
        state_dir = Path(json.loads((cluster / OWNER_FILE).read_text())["state_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # still being made, or not one of ours
    try:
        recorded = json.loads((state_dir / RECORD_FILE).read_text())
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return not isinstance(recorded, dict) or recorded.get("cluster_dir") != str(cluster)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reaps it if it is a dead child of ours (started by another instance in this process).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    """One private cluster per state folder, kept between runs, listening on 127.0.0.1:port.

    The cluster lives in a folder outside the state folder (/tmp/race-pg-<hash>-<random>/, owned
    by the user that runs postgres) because, as root, `postgres` must be able to traverse every
    parent folder and a checkout may sit under a mode-700 home; `state_dir/postgres.json` records
    where it is, its port and the superuser password.
    """

    def __init__(
        self, state_dir: Path, port: int | None = None, *, fast: bool = False, bin_dir: Path | None = None
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.fast = fast
        self._requested_port = port
        self._bin_dir_override = bin_dir
        self._record: dict[str, Any] = self._read_record()
        self.port: int | None = port or self._record.get("port")
        self._process: subprocess.Popen[bytes] | None = None

    # ----- where things are

    @property
    def record_path(self) -> Path:
        return self.state_dir / RECORD_FILE

    @property
    def cluster_dir(self) -> Path | None:
        return Path(self._record["cluster_dir"]) if self._record.get("cluster_dir") else None

    @property
    def data_dir(self) -> Path:
        return self._require_cluster_dir() / "data"

    @property
    def log_path(self) -> Path:
        return self._require_cluster_dir() / "postgres.log"

    @functools.cached_property
    def bin_dir(self) -> Path:
        """Where postgres, pg_dump, pg_restore and psql live (the cluster's own version)."""
        if self._bin_dir_override:
            return self._bin_dir_override
        recorded = self._record.get("bin_dir")
        if recorded and (Path(recorded) / "postgres").is_file():
            return Path(recorded)
        major = self._record.get("major")
        found = find_pg_bin(major)
        if found is None:
            if major is not None and find_pg_bin() is not None:
                raise PostgresError(
                    f"the cluster in {self.cluster_dir} was made by PostgreSQL {major}, which is no "
                    "longer installed: install it again or wipe the cluster (./teardown.sh --wipe)"
                )
            raise PostgresError(INSTALL_HINT)
        return found

    @property
    def url(self) -> str:
        return self.url_for(APP_DATABASE)

    @property
    def admin_url(self) -> str:
        self._require_cluster_dir()
        password = self._record["admin_password"]
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self._require_port()}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{self._require_port()}/{database}"

    @property
    def running(self) -> bool:
        return self._live_postmaster() is not None

    # ----- lifecycle

    def start(self, timeout_s: float = 30) -> str:
        """Start the cluster (initdb on first use) and return the app's DATABASE_URL."""
        with self._locked():
            self._record = self._read_record()
            self._ensure_cluster(timeout_s)
            pid = self._live_postmaster()
            if pid is not None and self._adoptable():
                # A server left running by an earlier run of the stack: keep it, reload the settings.
                self.port = int(self._record["port"])
                self._write_settings(self.port)
                os.kill(pid, signal.SIGHUP)
            else:
                if pid is not None:
                    self._stop_locked(timeout_s)
                self._clear_leftovers()
                self._launch_on_some_port(timeout_s)
            self._ensure_app_role_and_database()
        return self.url

    def stop(self, timeout_s: float = 15) -> None:
        """Fast shutdown (clients are disconnected); escalates to immediate, then SIGKILL."""
        with self._locked():
            self._record = self._read_record()
            self._stop_locked(timeout_s)

    def wipe(self) -> None:
        """Stop the cluster and delete it and its record."""
        with self._locked():
            self._record = self._read_record()
            if self.cluster_dir is not None:
                self._stop_locked(15)
                shutil.rmtree(self.cluster_dir, ignore_errors=True)
            self._remove_orphans()
            self.record_path.unlink(missing_ok=True)
            self._record = {}
            self.port = self._requested_port
            self.__dict__.pop("bin_dir", None)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----- databases

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database owned by the app role (a copy of `template` if given); return its URL."""
        from psycopg import errors, sql

        statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(_db_name(name)), sql.Identifier(APP_ROLE)
        )
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(_db_name(template)))
        with self._admin() as conn:
            # A backend whose client just closed can still be attached to the template for a moment.
            deadline = time.monotonic() + 10
            while True:
                try:
                    conn.execute(statement)
                    break
                except errors.ObjectInUse:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_db_name(name))))

    # ----- internals: the cluster folder

    def _ensure_cluster(self, timeout_s: float) -> None:
        cluster = self.cluster_dir
        if cluster is not None and (cluster / "data" / "PG_VERSION").is_file():
            return
        if cluster is not None and cluster.exists():
            shutil.rmtree(cluster)  # a half-made cluster from an interrupted initdb
        self._remove_orphans()
        as_user = self._as_user()
        cluster = Path(tempfile.mkdtemp(prefix=f"race-pg-{self._digest()}-", dir=self._cluster_base()))
        if as_user:
            os.chown(cluster, as_user.pw_uid, as_user.pw_gid)
        bin_dir = self._usable_bin_dir(cluster)
        password = secrets.token_urlsafe(18)
        pwfile = cluster / "pwfile"
        pwfile.write_text(password + "\n")
        self._give(pwfile)
        ctype = "C.UTF-8" if Path("/usr/lib/locale/C.utf8").exists() else "C"
        cmd = [
            str(bin_dir / "initdb"),
            "-D",
            str(cluster / "data"),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            f"--lc-ctype={ctype}",
            "--no-sync",
        ]
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                cwd=cluster,
                env=_child_env(),
                **self._popen_user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            shutil.rmtree(cluster, ignore_errors=True)
            raise PostgresError(f"initdb failed in {cluster}: {done.stderr.strip() or done.stdout.strip()}")
        with open(cluster / "data" / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'race.conf'\n")
        self._record = {
            "cluster_dir": str(cluster),
            "bin_dir": str(bin_dir),
            "major": _major_version(bin_dir),
            "admin_password": password,
            "port": self._record.get("port"),
        }
        self.__dict__["bin_dir"] = bin_dir
        self._write_record()
        # Written after the record, so a cluster with this file and no record is truly abandoned.
        (cluster / OWNER_FILE).write_text(json.dumps({"state_dir": str(self.state_dir)}) + "\n")

    def _usable_bin_dir(self, cluster: Path) -> Path:
        """The binaries, copied into the cluster folder when `postgres` cannot reach them (a pgserver
        wheel inside a mode-700 home)."""
        bin_dir = self.bin_dir
        if self._as_user() is None:
            return bin_dir
        try:
            subprocess.run(
                [str(bin_dir / "postgres"), "--version"],
                capture_output=True,
                check=True,
                cwd=cluster,
                **self._popen_user(),
            )
            return bin_dir
        except (OSError, subprocess.CalledProcessError):
            prefix = bin_dir.parent
            copied = cluster / "install" / prefix.parent.name / prefix.name
            shutil.copytree(prefix, copied, symlinks=True)
            # A wheel's vendored libraries sit beside its package (RPATH $ORIGIN/../../../<pkg>.libs).
            libs = prefix.parent.parent / f"{prefix.parent.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, cluster / "install" / libs.name, symlinks=True)
            return copied / "bin"

    def _remove_orphans(self) -> None:
        """Delete clusters nobody can reach: this state folder's unrecorded ones, and any whose state
        folder is gone or records another cluster (left running by a killed test run)."""
        as_user = self._as_user()
        owner = as_user.pw_uid if as_user else os.getuid()
        mine = f"race-pg-{self._digest()}-"
        for folder in self._cluster_base().glob("race-pg-*-*"):
            with contextlib.suppress(OSError):
                if folder == self.cluster_dir or folder.is_symlink() or folder.stat().st_uid != owner:
                    continue
                if folder.is_dir() and (folder.name.startswith(mine) or _abandoned(folder)):
                    for pid in _cluster_pids(folder / "data"):
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    shutil.rmtree(folder, ignore_errors=True)

    def _write_settings(self, port: int) -> None:
        lines = [
            "# Rewritten by infra/local/postgres.py on every start.",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = '{self._require_cluster_dir()}'",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "max_connections = 200",
            "password_encryption = 'scram-sha-256'",
        ]
        if self.fast:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        target = self.data_dir / "race.conf"
        target.write_text("\n".join(lines) + "\n")
        self._give(target)

    # ----- internals: processes

    def _launch_on_some_port(self, timeout_s: float) -> None:
        for attempt in range(3):
            port = self._pick_port(attempt)
            self._write_settings(port)
            self.port = port
            self._record["port"] = port
            self._write_record()
            try:
                self._launch(timeout_s)
                return
            except _PortTaken:
                if self._requested_port is not None or attempt == 2:
                    raise PostgresError(f"port {port} is taken; choose another or free it") from None

    def _pick_port(self, attempt: int) -> int:
        if self._requested_port is not None:
            return self._requested_port
        recorded = self._record.get("port")
        if attempt == 0 and recorded and not is_listening("127.0.0.1", int(recorded)):
            return int(recorded)
        return free_port()

    def _launch(self, timeout_s: float) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._give(self.log_path)
            # Own session: a Ctrl-C in the terminal reaches the stack's runner, which stops us in order.
            self._process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=_child_env(),
                start_new_session=True,
                **self._popen_user(),
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                message = self._log_since(log_offset)
                if "could not create any TCP/IP sockets" in message or "already in use" in message:
                    raise _PortTaken()
                raise PostgresError(f"PostgreSQL exited while starting; {self.log_path}:\n{message}")
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[0] == str(self._process.pid) and lines[7].strip() == "ready":
                    return
            time.sleep(0.01)
        self._stop_locked(5)
        raise PostgresError(
            f"PostgreSQL did not become ready within {timeout_s:.0f} s; {self.log_path}:\n"
            + self._log_since(log_offset)
        )

    def _live_postmaster(self) -> int | None:
        """The pid of this cluster's running postmaster, or None (no pid file, a stale one, or a reused pid)."""
        if self.cluster_dir is None:
            return None
        if self._process is not None and self._process.poll() is not None:
            self._process = None
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        if Path("/proc").is_dir() and pid not in _cluster_pids(self.data_dir):
            return None
        return pid

    def _adoptable(self) -> bool:
        recorded = self._record.get("port")
        if not recorded or (self._requested_port not in (None, recorded)):
            return False
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[3].strip() == str(recorded) and lines[7].strip() == "ready"

    def _stop_locked(self, timeout_s: float) -> None:
        pid = self._live_postmaster()
        if pid is None and self._process is not None:
            pid = self._process.pid  # started but hung before writing postmaster.pid
        if pid is not None:
            # SIGINT = fast shutdown, SIGQUIT = immediate (crash recovery on next start).
            for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if self._wait_gone(pid, wait_s):
                    break
            else:
                raise PostgresError(f"PostgreSQL (pid {pid}) did not stop")
        self._process = None

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.01)
        return False

    def _clear_leftovers(self) -> None:
        """Make a start after a killed run possible: old backends gone, stale pid file removed."""
        if self.cluster_dir is None:
            return
        deadline = time.monotonic() + 5
        # Orphaned backends exit on their own once they notice the postmaster died; they hold the
        # old shared memory segment, which blocks a new postmaster.
        while (pids := _cluster_pids(self.data_dir)) and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    @contextlib.contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[Any]]:
        import psycopg

        with psycopg.connect(
            host=str(self._require_cluster_dir()),
            port=self._require_port(),
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            yield conn

    def _ensure_app_role_and_database(self) -> None:
        from psycopg import sql

        with self._admin() as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                        sql.Identifier(APP_ROLE), sql.Literal(APP_PASSWORD)
                    )
                )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [APP_DATABASE]).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE)
                    )
                )

    # ----- internals: small helpers

    def _as_user(self) -> pwd.struct_passwd | None:
        """The account postgres runs as: `postgres` when we are root, else ourselves (None)."""
        return _system_user() if os.geteuid() == 0 else None

    def _popen_user(self) -> dict[str, Any]:
        as_user = self._as_user()
        if as_user is None:
            return {}
        groups = os.getgrouplist(as_user.pw_name, as_user.pw_gid)
        return {"user": as_user.pw_uid, "group": as_user.pw_gid, "extra_groups": groups}

    def _give(self, path: Path) -> None:
        as_user = self._as_user()
        if as_user is not None:
            os.chown(path, as_user.pw_uid, as_user.pw_gid)
        path.chmod(0o600)

    def _cluster_base(self) -> Path:
        # As root, TMPDIR may point into a home `postgres` cannot enter; mkdtemp names are unguessable.
        return Path("/tmp") if self._as_user() else Path(tempfile.gettempdir())  # noqa: S108

    def _digest(self) -> str:
        return hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]

    def _read_record(self) -> dict[str, Any]:
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _write_record(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        scratch = self.record_path.with_suffix(".json.tmp")
        scratch.write_text(json.dumps(self._record, indent=2) + "\n")
        scratch.chmod(0o600)  # it holds the superuser password
        os.replace(scratch, self.record_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "postgres.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _log_since(self, offset: int) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")[-4000:]
        return ""

    def _require_cluster_dir(self) -> Path:
        if self.cluster_dir is None:
            raise PostgresError(f"no cluster yet for {self.state_dir}: call start() first")
        return self.cluster_dir

    def _require_port(self) -> int:
        if self.port is None:
            raise PostgresError(f"no port yet for {self.state_dir}: call start() first")
        return int(self.port)


class _PortTaken(Exception):
    pass


def _db_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise ValueError(f"invalid database name {name!r}: letters, digits, _ and -, at most 63")
    return name


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.local.postgres start|stop|wipe|url --state-dir DIR`: the cluster from a shell."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "wipe", "url", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--fast", action="store_true", help="fsync off: for tests only")
    args = parser.parse_args(argv)
    pg = EmbeddedPostgres(args.state_dir, args.port, fast=args.fast)
    try:
        if args.action == "start":
            print(pg.start())
        elif args.action == "stop":
            pg.stop()
        elif args.action == "wipe":
            pg.wipe()
        elif args.action == "url":
            print(pg.url)
        else:
            print("running" if pg.running else "stopped")
            return 0 if pg.running else 3
    except PostgresError as exc:
        print(f"postgres: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
