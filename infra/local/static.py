"""Static file servers for the web client (:6166) and the docs site (:6167), standing in for S3."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        # The dev loop edits files constantly; never let the browser keep a stale copy.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def start_in_thread(directory: Path, host: str, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"static-{port}", daemon=True).start()
    return server
