"""Pausing and resuming the local stack for `make restore`: one part that fails does not strand the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.local.maintenance import Gate, Maintenance

pytestmark = pytest.mark.unit


class DeadChild:
    """A gate kept by a child process that has died: every command raises."""

    def pause(self, timeout_s: float = 30.0) -> bool:
        raise RuntimeError("the ws gateway process is not running")

    def resume(self) -> None:
        raise RuntimeError("the ws gateway process is not running")


class Worker:
    def __init__(self, fails: bool = False) -> None:
        self.fails, self.running = fails, True

    def start_in_thread(self) -> None:
        if self.fails:
            raise RuntimeError("did not start")
        self.running = True

    def stop(self) -> None:
        self.running = False


def test_a_dead_child_neither_blocks_the_pause_nor_leaves_the_api_paused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import caches

    monkeypatch.setattr(caches, "forget", lambda: None)
    api, worker, broken = Gate(), Worker(), Worker(fails=True)
    maintenance = Maintenance(tmp_path, [api, DeadChild()], [broken, worker])
    maintenance.pause()
    assert api.paused and not worker.running
    record: Any = (tmp_path / "maintenance.json").read_text()
    assert '"drained": false' in record  # the dead child could not say it was drained
    maintenance.resume()
    assert not api.paused and worker.running
    err = capsys.readouterr().err
    assert "pausing" in err and "resuming" in err and "restarting" in err
