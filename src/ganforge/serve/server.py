"""The HTTP side: the standard library's ThreadingHTTPServer serving app.py's routes and page.py's page.

Every error is JSON {"error": one line} with a 4xx status (a bug: 500 with one line, the traceback
only in the server's log); each request runs in its own thread, so a slow or failing request never
stops the server. Bound to a loopback address, it also refuses requests whose Host header names
another host (a web page elsewhere cannot reach it through DNS rebinding).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

import torch

from ..errors import GanforgeError
from .app import ROUTES, App
from .page import PAGE_CSS, PAGE_HTML, PAGE_JS
from .params import parse_query
from .paths import HttpError

log = logging.getLogger("ganforge")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
JSON = "application/json"
FILE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".mp4": "video/mp4", ".html": "text/html; charset=utf-8", ".json": JSON, ".jsonl": "text/plain; charset=utf-8",
    ".yaml": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
}
STATIC = {"/": (PAGE_HTML, "text/html; charset=utf-8"), "/app.js": (PAGE_JS, "text/javascript; charset=utf-8"),
          "/app.css": (PAGE_CSS, "text/css; charset=utf-8")}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
FILE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"  # report.html: no scripts

Response = tuple[int, bytes, str]


def to_json(payload: Any) -> bytes:
    """JSON bytes; NaN/inf (which JSON.parse refuses) become null."""
    try:
        return json.dumps(payload, allow_nan=False, default=str).encode()
    except ValueError:
        return json.dumps(_finite(payload), allow_nan=False, default=str).encode()


def _finite(v: Any) -> Any:
    """v with every non-finite float replaced by None."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def error(status: int, message: str) -> Response:
    """The JSON answer {"error": message} with `status`."""
    return status, to_json({"error": message}), JSON


class Handler(BaseHTTPRequestHandler):
    """One request: the page, a file inside RUNS_DIR, or a JSON route."""

    server: "ServeServer"
    server_version = "ganforge-serve"
    timeout = 60  # a client that stops sending frees its thread after this many seconds

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        try:
            status, body, ctype = self._route()
        except HttpError as e:
            status, body, ctype = error(e.status, str(e))
        except GanforgeError as e:
            status, body, ctype = error(400, str(e).splitlines()[0] if str(e) else type(e).__name__)
        except Exception as e:  # noqa: BLE001 - a bug: one line to the client, the traceback to the log
            log.exception("ganforge serve: GET %s failed", self.path)
            status, body, ctype = error(500, f"internal error ({type(e).__name__}: {str(e)[:200]}); the server keeps running")
        self._send(status, body, ctype)

    def _route(self) -> Response:
        """The answer to a GET, errors raised as HttpError/GanforgeError."""
        self._check_host()
        url = urlsplit(self.path)
        if url.path in STATIC:
            text, ctype = STATIC[url.path]
            return 200, text.encode(), ctype
        if url.path.startswith("/files/"):
            try:
                rel = unquote(url.path[len("/files/"):], errors="strict")
            except UnicodeDecodeError:
                raise HttpError(400, "bad file path: not UTF-8") from None
            return self._file(rel)
        route = ROUTES.get(url.path)
        if route is None:
            raise HttpError(404, f"no such page: {url.path[:100]}")
        return 200, to_json(route(self.server.app, parse_query(url.query))), JSON

    def _file(self, rel: str) -> Response:
        """A file inside RUNS_DIR, of a type the page shows; never one outside it."""
        path = self.server.app.root.file(rel)
        ctype = FILE_TYPES.get(path.suffix.lower())
        if ctype is None:
            raise HttpError(403, f"files of type '{path.suffix or path.name}' are not served")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                return 200, f.read(), ctype
        except OSError:
            raise HttpError(404, f"no such file: {rel}") from None

    def _check_host(self) -> None:
        """Bound to loopback: the Host header must name a loopback host too."""
        if not self.server.loopback_only:
            return
        host = self.headers.get("Host", "")
        try:
            name = urlsplit("//" + host).hostname
        except ValueError:
            name = None
        if name not in LOOPBACK:
            raise HttpError(403, f"unexpected Host header {host[:60]!r}; open {self.server.url}")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        """Write the response; never cached, never sniffed, under the page's (or a file's) CSP."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", FILE_CSP if self.path.startswith("/files/") else PAGE_CSP)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a page reload): nothing to answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("serve: %s " + format, self.address_string(), *args)


class ServeServer(ThreadingHTTPServer):
    """A threaded HTTP server holding the App; port 0 picks a free port."""

    daemon_threads = True  # a request still running does not keep the process alive at exit
    request_queue_size = 64  # 20 clients connecting at once are all accepted

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.app = app
        self.loopback_only = host in LOOPBACK
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        """http://HOST:PORT/ as bound (the real port when 0 was asked for)."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"


def make_server(runs_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu") -> ServeServer:
    """A server for the runs under `runs_dir`, bound and ready for serve_forever()."""
    app = App(runs_dir, device)
    try:
        return ServeServer(app, host, port)
    except OSError as e:
        raise GanforgeError(f"could not listen on {host}:{port} ({e.strerror or e}); choose another --port or --host") from None


def serve(runs_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu",
          threads: Optional[int] = 1, out: Optional[Any] = None) -> None:
    """Serve until Ctrl-C. `threads`: torch's CPU threads per request (None: torch's default). One is
    fastest for small generators: concurrent requests run on the other cores, and on a busy machine
    torch's threads of one request wait for each other (28x28 with 2 threads: 10x slower)."""
    if threads is not None:
        torch.set_num_threads(threads)
    server = make_server(runs_dir, host, port, device)
    print(f"serving the runs in {server.app.root.path} at {server.url} (Ctrl-C to stop)", file=out or sys.stdout, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
