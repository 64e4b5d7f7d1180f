"""The embedded PostgreSQL: first start, restart, templates, recovery after a killed run, wipe."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.local.postgres import EmbeddedPostgres, find_pg_bin

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One private cluster for the module (this module stops and kills it, so it is not the shared one)."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg-state"), fast=True)
    pg.start()
    try:
        yield pg
    finally:
        pg.wipe()


@pytest.fixture()
def pg(cluster: EmbeddedPostgres) -> EmbeddedPostgres:
    """The module's cluster, running (a previous test may have stopped or killed it)."""
    cluster.start()
    return cluster


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def wait_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child: reap it
                return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} is still alive")


def test_app_role_owns_the_app_database_on_loopback(pg: EmbeddedPostgres) -> None:
    assert pg.url == f"postgresql://race:race@127.0.0.1:{pg.port}/race"
    with psycopg.connect(pg.url) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), current_setting('listen_addresses'), "
            "current_setting('server_encoding'), current_setting('TimeZone'), current_setting('fsync'), "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
            "(SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
    assert row == ("race", "race", "127.0.0.1", "UTF8", "UTC", "off", False, True)


def test_admin_url_is_a_superuser_and_the_app_password_is_checked(pg: EmbeddedPostgres) -> None:
    assert scalar(pg.admin_url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is True
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.url.replace("race:race@", "race:wrong@")).close()


def test_cluster_lives_outside_the_state_dir_and_the_record_finds_it(pg: EmbeddedPostgres) -> None:
    cluster_dir = pg.cluster_dir
    assert cluster_dir is not None and pg.state_dir not in cluster_dir.parents
    assert stat.S_IMODE(cluster_dir.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert cluster_dir.owner() == "postgres"
    assert stat.S_IMODE(pg.record_path.stat().st_mode) == 0o600
    same = EmbeddedPostgres(pg.state_dir)
    assert (same.cluster_dir, same.url, same.running) == (cluster_dir, pg.url, True)
    assert (pg.bin_dir / "pg_dump").is_file() and (pg.bin_dir / "pg_restore").is_file()


def test_restart_keeps_data_and_port(pg: EmbeddedPostgres) -> None:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")
    url = pg.url
    pg.stop()
    assert not pg.running
    pg.stop()  # a second stop is a no-op

    again = EmbeddedPostgres(pg.state_dir, fast=True)
    assert again.start() == url
    assert scalar(url, "SELECT count(*) FROM kept WHERE note = 'before restart'") == 1


def test_a_second_instance_adopts_the_running_server(pg: EmbeddedPostgres) -> None:
    pid = postmaster_pid(pg)
    assert EmbeddedPostgres(pg.state_dir, fast=True).start() == pg.url
    assert postmaster_pid(pg) == pid


def test_create_database_from_template_copies_it_and_stays_independent(pg: EmbeddedPostgres) -> None:
    template_url = pg.create_database("tpl_laps")
    with psycopg.connect(template_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE laps (lap int)")
        conn.execute("INSERT INTO laps VALUES (1), (2)")

    copy_url = pg.create_database("copy_laps", template="tpl_laps")
    assert copy_url == f"postgresql://race:race@127.0.0.1:{pg.port}/copy_laps"
    with psycopg.connect(copy_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), current_user FROM laps").fetchone() == (2, "race")
        conn.execute("INSERT INTO laps VALUES (3)")
    assert scalar(template_url, "SELECT count(*) FROM laps") == 2

    held = psycopg.connect(copy_url)  # drop_database forces connected clients out
    pg.drop_database("copy_laps")
    held.close()
    pg.drop_database("copy_laps")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(copy_url).close()
    pg.drop_database("tpl_laps")


def test_database_names_are_validated(pg: EmbeddedPostgres) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        pg.create_database('x"; DROP DATABASE race; --')


def test_start_after_the_postmaster_was_killed(pg: EmbeddedPostgres) -> None:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        # fast mode commits asynchronously: a kill -9 may lose the last commits unless asked not to.
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE IF NOT EXISTS survivors (note text)")
        conn.execute("INSERT INTO survivors VALUES ('committed before the kill')")
    url = pg.url
    held = psycopg.connect(url)  # its backend outlives the postmaster for a moment
    pid = postmaster_pid(pg)
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)

    fresh = EmbeddedPostgres(pg.state_dir, fast=True)
    assert (pg.data_dir / "postmaster.pid").exists()
    assert not fresh.running
    assert fresh.start() == url
    assert scalar(url, "SELECT count(*) FROM survivors") == 1
    held.close()


def test_find_pg_bin_finds_server_and_client_tools() -> None:
    found = find_pg_bin()
    assert found is not None
    assert all((found / tool).is_file() for tool in ("initdb", "postgres", "pg_dump", "pg_restore", "psql"))


# Last: it re-creates the module's cluster (any later test would pay one more initdb).
def test_lost_cluster_is_made_again_abandoned_ones_are_reaped_and_wipe_deletes(
    cluster: EmbeddedPostgres, tmp_path: Path
) -> None:
    abandoned = EmbeddedPostgres(tmp_path / "killed-run-state", fast=True)
    abandoned.start()
    abandoned_dir, abandoned_pid = abandoned.cluster_dir, postmaster_pid(abandoned)
    assert abandoned_dir is not None
    shutil.rmtree(abandoned.state_dir)  # what pytest's cleanup does to a killed run's tmp folder

    cluster.stop()
    first = cluster.cluster_dir
    assert first is not None
    shutil.rmtree(first)  # what a reboot does to /tmp: the record survives, the cluster does not
    cluster.start()
    assert cluster.cluster_dir is not None and cluster.cluster_dir != first
    assert scalar(cluster.url, "SELECT 1") == 1
    wait_dead(abandoned_pid)
    assert not abandoned_dir.exists()

    second = cluster.cluster_dir
    cluster.wipe()
    assert not cluster.running
    assert not second.exists()
    assert not cluster.record_path.exists()
