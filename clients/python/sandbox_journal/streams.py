"""Server-Sent Events from the server, as iterators of event dicts.

EventStream follows GET /v1/sessions/{id}/events/sse for as long as you
iterate, across dropped connections and server restarts: it remembers the
last sequence it yielded, reconnects with ``Last-Event-ID: <sequence>``
after a back-off, and drops anything at or below that sequence, so every
event is yielded once, in order, with no gap (the server serves streams
from its journal, where sequences are dense and never reused).

TurnStream is the answer of POST /v1/sessions/{id}/messages/stream: the
events of one turn, ending where the server ends the response.  It does not
resume by itself (re-sending the POST could send the message twice); after a
TransportError, continue with ``client.stream_events(id,
offset=turn.last_sequence)``.
"""

import http.client
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from ._http import Backoff, Response, path_part
from .errors import ApiError, SandboxJournalError, TransportError
from .types import UniversalEvent

if TYPE_CHECKING:
    from .client import Client

__all__ = ["EventStream", "TurnStream"]

# What a read raises when the connection goes: reset or timed out (OSError),
# cut mid-chunk (HTTPException), bytes cut mid-character (ValueError).
_DROPPED = (OSError, ValueError, http.client.HTTPException)
# A stream connection that stayed up this long (seconds) was a good one: the
# reconnect after it starts the back-off from its first step again.
_LASTED = 10.0


class _SseReader:
    """Frames of one response: (id, data) per event; heartbeat comments
    (lines starting with ':') and unknown fields are skipped.  None at the
    end of the response; a frame cut off by the end is never returned."""

    def __init__(self, response: Response) -> None:
        self.response = response

    def next_frame(self) -> Optional[Dict[str, Any]]:
        data = []
        event_id: Optional[str] = None
        while True:
            raw = self.response.readline()
            if not raw or not raw.endswith(b"\n"):
                return None
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    return {"id": event_id, "data": "\n".join(data)}
                event_id = None
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


def _event_of(frame: Dict[str, Any]) -> UniversalEvent:
    try:
        event = json.loads(frame["data"])
    except ValueError as e:
        raise SandboxJournalError(f"server sent an event that is not JSON: {e}") from e
    if not isinstance(event, dict):
        raise SandboxJournalError("server sent an event that is not an object")
    if "sequence" not in event and frame.get("id") is not None:
        event["sequence"] = int(frame["id"])
    return event  # type: ignore[return-value]


class EventStream(Iterator[UniversalEvent]):
    """Iterator over a session's events after ``offset``; see the module
    docstring.  ``last_sequence`` is the sequence of the last event yielded,
    ``reconnects`` how many times the stream had to connect again.

    Raises ApiError for a 4xx answer (an unknown session, a bad token), which
    no retry would change, and TransportError only once reconnecting has
    failed for longer than ``give_up_after`` seconds (never, if None).  5xx
    answers and refused, reset or silent connections are retried.  ``close()``
    (from any thread) ends the iteration.
    """

    def __init__(self, client: "Client", session_id: str, offset: int = 0,
                 include_raw: bool = False, give_up_after: Optional[float] = None) -> None:
        self._client = client
        self.session_id = session_id
        self.last_sequence = int(offset)
        self.include_raw = include_raw
        self.give_up_after = give_up_after
        self.reconnects = 0
        self._backoff = Backoff(client.backoff_initial, client.backoff_max)
        self._response: Optional[Response] = None
        self._reader: Optional[_SseReader] = None
        self._closed = threading.Event()
        self._connects = 0
        self._failing_since: Optional[float] = None
        self._opened_at = 0.0
        self._path = f"/v1/sessions/{path_part(session_id)}/events/sse"

    def __iter__(self) -> "EventStream":
        return self

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            response.abort()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _open(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self._connects > 0:
            headers["Last-Event-ID"] = str(self.last_sequence)
        response = self._client._transport.open(
            "GET", self._path,
            {"offset": self.last_sequence, "include_raw": True if self.include_raw else None},
            headers=headers, timeout=self._client.stream_idle_timeout)
        if self._connects > 0:
            self.reconnects += 1
        self._connects += 1
        # A server that answers is there: give_up_after counts from the next
        # failure.  The back-off is reset only by an event or a connection
        # that lasted (_drop), so one that hangs up at once is not hammered.
        self._failing_since = None
        self._opened_at = time.monotonic()
        self._response = response
        self._reader = _SseReader(response)
        if self._closed.is_set():  # close() raced with the connect
            response.abort()

    def _drop(self) -> None:
        response, self._response, self._reader = self._response, None, None
        if response is not None:
            response.close()
            if time.monotonic() - self._opened_at > _LASTED:
                self._backoff.reset()  # e.g. a proxy that cuts idle streams

    def _wait_before_retry(self, error: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif self.give_up_after is not None and now - self._failing_since > self.give_up_after:
            self.close()
            if isinstance(error, TransportError):
                raise error
            raise TransportError(f"stream of {self.session_id} lost: {error}", error)
        self._closed.wait(self._backoff.next_delay())

    def __next__(self) -> UniversalEvent:
        while True:
            if self._closed.is_set():
                self._drop()
                raise StopIteration
            if self._reader is None:
                try:
                    self._open()
                except TransportError as e:
                    self._wait_before_retry(e)
                    continue
                except ApiError as e:
                    if e.status < 500:
                        self.close()
                        raise
                    self._wait_before_retry(e)
                    continue
            try:
                frame = self._reader.next_frame()  # type: ignore[union-attr]
            except Exception as e:
                self._drop()
                if self._closed.is_set():
                    # close() from another thread pulled the connection from
                    # under the read: whatever that raised, the stream is over.
                    continue
                if not isinstance(e, _DROPPED):
                    raise
                # Reset, cut mid-chunk, or silent past stream_idle_timeout.
                self._wait_before_retry(TransportError(f"stream dropped: {e}", e))
                continue
            if frame is None:
                # The server ended the response (it is stopping) or the
                # connection closed: either way, come back after a pause.
                self._drop()
                if not self._closed.is_set():
                    self._wait_before_retry(TransportError("stream ended by the server"))
                continue
            event = _event_of(frame)
            sequence = event.get("sequence")
            if not isinstance(sequence, int) or sequence <= self.last_sequence:
                continue  # already yielded before a reconnect
            self.last_sequence = sequence
            self._failing_since = None
            self._backoff.reset()
            return event


class TurnStream(Iterator[UniversalEvent]):
    """The events of one turn (POST /messages/stream), ending where the
    server ends the turn: at a turn-ending event (the turn completed, an
    error, a permission or question request, the session's end).  A server
    that stops mid-turn also ends the response; compare the last event's
    ``type`` if that matters.  ``last_sequence`` is the last event's
    sequence (0 before the first)."""

    def __init__(self, response: Response) -> None:
        self._response = response
        self._reader = _SseReader(response)
        self.last_sequence = 0
        self._done = False

    def __iter__(self) -> "TurnStream":
        return self

    def __enter__(self) -> "TurnStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._done = True
        self._response.abort()

    def __next__(self) -> UniversalEvent:
        if self._done:
            raise StopIteration
        try:
            frame = self._reader.next_frame()
        except Exception as e:
            if self._done:  # close() from another thread
                raise StopIteration from None
            self.close()
            if not isinstance(e, _DROPPED):
                raise
            raise TransportError(f"turn stream cut off after sequence {self.last_sequence}: {e}",
                                 e) from e
        if frame is None:
            self.close()
            raise StopIteration
        event = _event_of(frame)
        sequence = event.get("sequence")
        if isinstance(sequence, int):
            self.last_sequence = sequence
        return event
