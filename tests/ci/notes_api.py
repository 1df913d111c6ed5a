"""A stand-in for GitLab's merge request notes API, on loopback: records what the plan job posts."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Note:
    path: str
    token: str | None
    body: str


@dataclass
class NotesApi:
    url: str  # what CI_API_V4_URL would be
    notes: list[Note] = field(default_factory=list)


@contextmanager
def serve_notes_api() -> Iterator[NotesApi]:
    api = NotesApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            api.notes.append(Note(self.path, self.headers.get("PRIVATE-TOKEN"),
                                  form.get("body", [""])[0]))
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": 1}')

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
