"""Retry, resume and de-duplication rules, against small stand-in servers
that misbehave on purpose (the real server never replays an event or drops
a request on the floor)."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox_journal import ApiError, Client, TransportError
from sandbox_journal._http import Backoff


def event(n):
    return {"event_id": f"evt_{n}", "sequence": n, "time": "2026-01-01T00:00:00Z",
            "session_id": "s", "synthetic": False, "source": "daemon", "type": "item.delta",
            "data": {"item_id": "i", "delta": str(n)}}


class Fake:
    """A stand-in server on a free loopback port; `handle(handler)` answers."""

    def __init__(self, handle, port=0):
        fake = self
        self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers), body))
                handle(self)

            do_GET = do_POST = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_stream_drops_replays_and_cut_frames():
    """A server that answers 503 first, then ignores Last-Event-ID (replays
    the two events before it), sends three events and cuts the connection
    in the middle of a fourth: the stream still yields 1..12 once each."""
    calls = []

    def handle(h):
        calls.append(h.headers.get("Last-Event-ID"))
        if len(calls) == 1:
            body = json.dumps({"type": "urn:sandbox-agent:error:stream_error",
                               "title": "Stream Error", "status": 503}).encode()
            h.send_response(503)
            h.send_header("Content-Type", "application/problem+json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        last = int(h.headers.get("Last-Event-ID") or h.path.split("offset=")[1].split("&")[0])
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        start = max(1, last - 1)
        out = b": heartbeat\n\n"
        for n in range(start, min(start + 5, 13)):
            out += f"id: {n}\ndata: {json.dumps(event(n))}\n\n".encode()
        if start + 5 <= 12:
            out += f"id: {start + 5}\ndata: {{\"event_id\": \"ev".encode()
        h.wfile.write(out)
        h.wfile.flush()
        h.close_connection = True

    fake = Fake(handle)
    try:
        c = Client(fake.url, backoff_initial=0.01, backoff_max=0.05)
        stream = c.stream_events("s", give_up_after=5)
        got = [e["sequence"] for _, e in zip(range(12), stream)]
        stream.close()
    finally:
        fake.close()
    assert got == list(range(1, 13))
    assert calls[0] is None and calls[1] is None  # the first connects resume from `offset`
    assert [int(x) for x in calls[2:]] == sorted(int(x) for x in calls[2:])
    assert stream.reconnects >= 3


def test_stream_gives_up_when_told():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = Client(f"http://127.0.0.1:{port}", backoff_initial=0.01, backoff_max=0.05)
    started = time.monotonic()
    with pytest.raises(TransportError):
        next(c.stream_events("s", give_up_after=0.3))
    assert time.monotonic() - started < 5


def test_stream_close_from_another_thread(server):
    c = Client(server.url)
    c.create_session("quiet", agent="mock")
    stream = c.stream_events("quiet")
    assert next(stream)["type"] == "session.started"
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert list(stream) == []  # blocked waiting, then ended by close()
    assert time.monotonic() - started < 5


def answer_204(h):
    h.send_response(204)
    h.end_headers()


def test_post_message_retried_when_refused():
    """Nothing listens yet: the POST provably never arrived, so it is sent
    again once the server is up, exactly once, with its Idempotency-Key."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    holder = {}
    timer = threading.Timer(0.3, lambda: holder.setdefault("fake", Fake(answer_204, port)))
    timer.start()
    try:
        c = Client(f"http://127.0.0.1:{port}", retries=20, backoff_initial=0.05,
                   backoff_max=0.2)
        key = c.post_message("s", "hello")
    finally:
        timer.join()
        holder["fake"].close()
    posts = holder["fake"].requests
    assert len(posts) == 1
    method, path, headers, body = posts[0]
    assert (method, path) == ("POST", "/v1/sessions/s/messages")
    assert headers["Idempotency-Key"] == key
    assert json.loads(body) == {"message": "hello"}


def test_post_not_resent_after_it_may_have_arrived():
    """The server reads the request and hangs up without an answer: the
    message may be journaled, so the client raises instead of re-sending."""
    def hang_up(h):
        h.close_connection = True
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)

    fake = Fake(hang_up)
    try:
        c = Client(fake.url, retries=3, backoff_initial=0.01)
        with pytest.raises(TransportError) as info:
            c.post_message("s", "once", idempotency_key="k-1")
        assert info.value.sent is True
        assert len(fake.requests) == 1
        assert fake.requests[0][2]["Idempotency-Key"] == "k-1"
        with pytest.raises(TransportError):
            c.health()  # a GET is safe to repeat: it is
        assert len(fake.requests) == 1 + 4
    finally:
        fake.close()


def test_post_resent_with_its_key_where_the_server_dedups():
    """With server_dedups=True, the same request goes again, same key."""
    def hang_up_once(h):
        if len(fake.requests) == 1:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        else:
            answer_204(h)

    fake = Fake(hang_up_once)
    try:
        c = Client(fake.url, backoff_initial=0.01, server_dedups=True)
        key = c.post_message("s", "twice, once")
        posted = list(fake.requests)
        fake.requests.clear()
        with pytest.raises(TransportError):
            c.terminate("s")  # no key: nothing would tell a repeat apart, so no repeat
        assert len(fake.requests) == 1
    finally:
        fake.close()
    assert len(posted) == 2
    assert all(r[2]["Idempotency-Key"] == key for r in posted)


def test_non_problem_error_body():
    def proxy_error(h):
        body = b"<html>bad gateway</html>"
        h.send_response(502, "Bad Gateway")
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    fake = Fake(proxy_error)
    try:
        with pytest.raises(ApiError) as info:
            Client(fake.url).terminate("s")
    finally:
        fake.close()
    assert info.value.status == 502 and info.value.type == "about:blank"
    assert info.value.title == "Bad Gateway" and "bad gateway" in info.value.detail


def test_backoff_is_bounded_and_jittered():
    b = Backoff(0.1, 2.0)
    delays = [b.next_delay() for _ in range(40)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert delays[0] <= 0.1 and max(delays) > 1.0
    assert len(set(round(d, 6) for d in delays[10:])) > 1  # not in lock-step
    b.reset()
    assert b.next_delay() <= 0.1
