"""moto's answers are made whole before werkzeug writes a byte (infra/local/moto_patches.answered_whole):
on a kept-alive connection, an answer cut short by a failure would be read as the next one's start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.local.moto_patches import answered_whole

pytestmark = pytest.mark.unit


class Answer:
    """A WSGI answer that yields its chunks (failing where told) and records that it was closed."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks, self.fail_after, self.closed = chunks, fail_after, False

    def __iter__(self) -> Iterator[bytes]:
        for n, chunk in enumerate(self.chunks):
            if n == self.fail_after:
                raise RuntimeError("moto failed mid-answer")
            yield chunk

    def close(self) -> None:
        self.closed = True


def _app(answer: Answer, written: bytes = b"") -> Callable[..., Any]:
    def dispatch(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Answer:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        if written:
            write(written)  # WSGI's legacy write(): before the iterated chunks
        return answer

    return dispatch


def test_a_failure_mid_answer_is_raised_before_anything_is_started() -> None:
    answer = Answer([b"first", b"second"], fail_after=1)
    started: list[Any] = []
    with pytest.raises(RuntimeError, match="mid-answer"):
        answered_whole(_app(answer))(None, {}, lambda *args: started.append(args))
    assert started == []  # werkzeug has nothing on the wire yet: it answers a whole 500 instead
    assert answer.closed


def test_a_whole_answer_is_started_once_with_every_chunk_in_order() -> None:
    answer = Answer([b"b", b"c"])
    started: list[Any] = []
    chunks = answered_whole(_app(answer, written=b"a"))(None, {}, lambda *args: started.append(args))
    assert started == [("200 OK", [("Content-Type", "text/plain")])]
    assert chunks == [b"abc"]  # one write
    assert answer.closed
