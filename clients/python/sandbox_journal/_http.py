"""HTTP plumbing on http.client: one connection per request (so a Client is
safe to share between threads, and a retry never rides a stale keep-alive
connection), ProblemDetails → ApiError, and the back-off every retry uses."""

import http.client
import json
import random
import socket
import threading
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

from .errors import ApiError, TransportError

USER_AGENT = "sandbox-journal-python"


def path_part(value: str) -> str:
    """One path segment (a session, agent, permission or question id)."""
    return quote(str(value), safe="")


class Backoff:
    """Exponential back-off with jitter: the n-th delay is drawn from
    [d/2, d] with d = min(maximum, initial * 2**n), so clients that lost the
    same server do not come back in step, and no delay exceeds `maximum`."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Response:
    """An open response whose body is still to be read: a stream."""

    def __init__(self, conn: http.client.HTTPConnection, sock: Optional[socket.socket],
                 resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self._sock = sock
        self._lock = threading.Lock()
        self._closed = False

    def readline(self) -> bytes:
        return self.resp.readline()

    def abort(self) -> None:
        """Unblocks a read in another thread and closes the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone: nothing to unblock
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        try:
            self.resp.close()
        finally:
            self.conn.close()


def api_error(status: int, reason: str, content_type: str, body: bytes) -> ApiError:
    problem: Optional[Dict[str, Any]] = None
    if body and ("json" in content_type or body[:1] == b"{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            problem = parsed
    if problem is not None and isinstance(problem.get("title"), str):
        detail = problem.get("detail")
        ptype = problem.get("type")
        pstatus = problem.get("status")
        return ApiError(pstatus if isinstance(pstatus, int) else status,
                        ptype if isinstance(ptype, str) else "about:blank",
                        problem["title"], detail if isinstance(detail, str) else None, problem)
    text = body[:500].decode("utf-8", "replace").strip() or None
    return ApiError(status, "about:blank", reason or f"HTTP {status}", text, problem)


class Transport:
    def __init__(self, base_url: str, token: Optional[str], timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http://host[:port][/prefix]: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout

    def url_path(self, path: str, query: Optional[Mapping[str, Any]]) -> str:
        full = self.prefix + path
        if query:
            items = []
            for key, value in query.items():
                if value is None:
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                items.append((key, value))
            if items:
                full += "?" + urlencode(items)
        return full

    def connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        """A connected connection.  TransportError with sent=False when the
        connection cannot be made: then no byte of a request left here."""
        t = self.timeout if timeout is None else timeout
        conn: http.client.HTTPConnection
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=t)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=t)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {e}", e,
                                 sent=False) from e
        return conn

    def headers(self, extra: Optional[Mapping[str, str]], body: Optional[bytes]) -> Dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            h["Content-Type"] = "application/json"
        if extra:
            h.update(extra)
        return h

    def open(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
             body: Any = None, headers: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None) -> Response:
        """Sends the request and reads the status line and headers; raises
        ApiError for an error status.  The caller reads and closes the body."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        conn = self.connect(timeout)
        sock = conn.sock
        try:
            conn.request(method, self.url_path(path, query), body=data,
                         headers=self.headers(headers, data))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransportError(f"{method} {path}: no answer: {e}", e, sent=True) from e
        if resp.status >= 400:
            try:
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                conn.close()
            raise api_error(resp.status, resp.reason, resp.getheader("Content-Type", ""), raw)
        return Response(conn, sock, resp)

    def call(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
             body: Any = None, headers: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None) -> Tuple[int, Any]:
        """One request, its whole body read: (status, parsed JSON or None)."""
        r = self.open(method, path, query, body, headers, timeout)
        try:
            raw = r.resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise TransportError(f"{method} {path}: answer cut off: {e}", e, sent=True) from e
        finally:
            r.close()
        if not raw:
            return r.resp.status, None
        ctype = r.resp.getheader("Content-Type", "")
        if "json" not in ctype:
            return r.resp.status, raw.decode("utf-8", "replace")
        try:
            return r.resp.status, json.loads(raw)
        except ValueError as e:
            raise TransportError(f"{method} {path}: answer is not JSON: {e}", e, sent=True) from e
