"""The blocking client: one method per route of the v1 API."""

import time
import uuid
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, TypeVar

from ._http import Backoff, Transport, path_part
from .errors import TransportError
from .streams import EventStream, TurnStream
from .types import (AgentListResponse, AgentModesResponse, CreateSessionResponse,
                    EventsResponse, HealthResponse, PermissionReply, SearchResponse,
                    SessionInfo, SessionListResponse, UniversalEvent)

__all__ = ["Client", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "http://127.0.0.1:2468"
T = TypeVar("T")


def _key_header(idempotency_key: Optional[str]) -> Optional[Dict[str, str]]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else None


class Client:
    """A client of one sandbox-journal server (or any sandbox-agent v1 server).

    ``base_url`` is ``http[s]://host:port`` with an optional path prefix;
    ``token`` is sent as ``Authorization: Bearer``; ``timeout`` (seconds)
    bounds connecting and each read of an ordinary call.

    Retries: a GET is retried after any transport failure; a POST only when
    the connection could not be made at all (refused, unreachable), which
    proves the server never saw it.  Both up to ``retries`` times with
    jittered exponential back-off from ``backoff_initial`` to
    ``backoff_max`` seconds.  Streams (``stream_events``) reconnect without
    a limit unless told otherwise, and count a connection silent for
    ``stream_idle_timeout`` seconds (the server sends a heartbeat every 15 s
    by default) as dropped.

    ``server_dedups=True`` says the server de-duplicates ``Idempotency-Key``
    (sandbox-journal since its Idempotency-Key support; a repeat gets the
    first answer and acts no further): then a POST that carries a key is
    retried after any transport failure too, with the same key.  Off by
    default, because a server without that support would act twice.

    One connection per call: a Client may be shared between threads.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: Optional[str] = None,
                 timeout: float = 30.0, *, retries: int = 4, backoff_initial: float = 0.1,
                 backoff_max: float = 5.0, stream_idle_timeout: float = 60.0,
                 server_dedups: bool = False) -> None:
        self._transport = Transport(base_url, token, timeout)
        self.base_url = base_url
        self.timeout = timeout
        self.retries = retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stream_idle_timeout = stream_idle_timeout
        self.server_dedups = server_dedups

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release (no connection outlives its call); for symmetry
        with AsyncClient and ``with``."""

    # ---- plumbing ------------------------------------------------------------

    def _retrying(self, method: str, attempt: Callable[[], T], keyed: bool = False) -> T:
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        tries = 0
        while True:
            try:
                return attempt()
            except TransportError as e:
                tries += 1
                # A POST that may have reached the server is re-sent only
                # where the server de-duplicates its key: else it could act twice.
                repeatable = method == "GET" or not e.sent or (keyed and self.server_dedups)
                if tries > self.retries or not repeatable:
                    raise
                time.sleep(backoff.next_delay())

    def _call(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
              body: Any = None, headers: Optional[Mapping[str, str]] = None,
              timeout: Optional[float] = None) -> Any:
        keyed = bool(headers and headers.get("Idempotency-Key"))
        return self._retrying(
            method, lambda: self._transport.call(method, path, query, body, headers, timeout)[1],
            keyed)

    @staticmethod
    def _session(session_id: str) -> str:
        return f"/v1/sessions/{path_part(session_id)}"

    # ---- meta and agents -----------------------------------------------------

    def health(self) -> HealthResponse:
        """GET /v1/health: ``{"status": "ok"}``."""
        return self._call("GET", "/v1/health")

    def list_agents(self) -> AgentListResponse:
        """GET /v1/agents: ``{"agents": [...]}`` with install state and capabilities."""
        return self._call("GET", "/v1/agents")

    def install_agent(self, agent: str, reinstall: bool = False, *,
                      idempotency_key: Optional[str] = None,
                      timeout: Optional[float] = 900.0) -> None:
        """POST /v1/agents/{agent}/install (npm may take minutes: its own timeout)."""
        body = {"reinstall": True} if reinstall else {}
        self._call("POST", f"/v1/agents/{path_part(agent)}/install", body=body,
                   headers=_key_header(idempotency_key), timeout=timeout)

    def get_agent_modes(self, agent: str) -> AgentModesResponse:
        """GET /v1/agents/{agent}/modes: ``{"modes": [...]}``."""
        return self._call("GET", f"/v1/agents/{path_part(agent)}/modes")

    # ---- sessions --------------------------------------------------------------

    def list_sessions(self, *, limit: Optional[int] = None, cursor: Optional[str] = None,
                      status: Optional[str] = None,
                      agent: Optional[str] = None) -> SessionListResponse:
        """GET /v1/sessions: ``{"sessions": [...]}``, newest first.  The
        paging and filter parameters are sent only when given (servers with
        the sessions API of issue 14 answer ``nextCursor``)."""
        return self._call("GET", "/v1/sessions",
                          {"limit": limit, "cursor": cursor, "status": status, "agent": agent})

    def get_session(self, session_id: str) -> SessionInfo:
        """GET /v1/sessions/{id}: the session's row with its status."""
        return self._call("GET", self._session(session_id))

    def create_session(self, session_id: str, agent: str, *, agent_mode: Optional[str] = None,
                       permission_mode: Optional[str] = None, model: Optional[str] = None,
                       variant: Optional[str] = None, agent_version: Optional[str] = None,
                       idempotency_key: Optional[str] = None) -> CreateSessionResponse:
        """POST /v1/sessions/{id}: ``{"healthy": true, "nativeSessionId": ...}``;
        ApiError 409 (``session_already_exists``) if the id is taken."""
        body: Dict[str, Any] = {"agent": agent}
        for key, value in (("agentMode", agent_mode), ("permissionMode", permission_mode),
                           ("model", model), ("variant", variant),
                           ("agentVersion", agent_version)):
            if value is not None:
                body[key] = value
        return self._call("POST", self._session(session_id), body=body,
                          headers=_key_header(idempotency_key))

    def post_message(self, session_id: str, text: str,
                     idempotency_key: Optional[str] = None) -> str:
        """POST /v1/sessions/{id}/messages; returns once the message is
        committed to the journal.  Sends ``Idempotency-Key`` (a new uuid4 if
        none is given) and returns the key, so a caller that got a
        TransportError can send again with the same key where the server
        de-duplicates.  Retried by itself when the connection was refused
        (the message provably never arrived), and after any transport
        failure with ``server_dedups=True``."""
        key = idempotency_key or str(uuid.uuid4())
        self._call("POST", self._session(session_id) + "/messages", body={"message": text},
                   headers=_key_header(key))
        return key

    def stream_turn(self, session_id: str, text: str, *, include_raw: bool = False,
                    idempotency_key: Optional[str] = None) -> TurnStream:
        """POST /v1/sessions/{id}/messages/stream: sends the message and
        iterates the turn's events (see TurnStream).  Close it, or use it in
        ``with``, if you stop early."""
        path = self._session(session_id) + "/messages/stream"
        headers = {"Accept": "text/event-stream"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        query = {"include_raw": True if include_raw else None}
        response = self._retrying("POST", lambda: self._transport.open(
            "POST", path, query, {"message": text}, headers, self.stream_idle_timeout),
            bool(idempotency_key))
        return TurnStream(response)

    def get_events(self, session_id: str, offset: int = 0, limit: Optional[int] = None,
                   include_raw: bool = False) -> EventsResponse:
        """GET /v1/sessions/{id}/events: ``{"events": [...], "hasMore": bool}``,
        the events after sequence ``offset`` (exclusive), at most ``limit``
        (the server caps a page at 10000)."""
        return self._call("GET", self._session(session_id) + "/events",
                          {"offset": offset, "limit": limit,
                           "include_raw": True if include_raw else None})

    def iter_events(self, session_id: str, offset: int = 0, page: int = 1000,
                    include_raw: bool = False) -> Iterator[UniversalEvent]:
        """Every event stored after ``offset``, page by page; ends at the
        newest (use stream_events to keep following)."""
        while True:
            answer = self.get_events(session_id, offset, page, include_raw)
            for event in answer["events"]:
                offset = event["sequence"]
                yield event
            if not answer["hasMore"] or not answer["events"]:
                return

    def stream_events(self, session_id: str, offset: int = 0, *, include_raw: bool = False,
                      give_up_after: Optional[float] = None) -> EventStream:
        """GET /v1/sessions/{id}/events/sse as an iterator that never ends
        by itself: it resumes after a dropped connection or a server restart
        with ``Last-Event-ID``, yielding every event after ``offset`` once,
        in order.  ``give_up_after`` seconds of failed reconnects raise
        TransportError (None: keep trying).  ``close()`` stops it."""
        return EventStream(self, session_id, offset, include_raw, give_up_after)

    def reply_permission(self, session_id: str, permission_id: str, reply: PermissionReply, *,
                         idempotency_key: Optional[str] = None) -> None:
        """POST .../permissions/{pid}/reply with ``once``, ``always`` or ``reject``."""
        self._call("POST", f"{self._session(session_id)}/permissions/{path_part(permission_id)}"
                   "/reply", body={"reply": reply}, headers=_key_header(idempotency_key))

    def reply_question(self, session_id: str, question_id: str,
                       answers: Sequence[Sequence[str]], *,
                       idempotency_key: Optional[str] = None) -> None:
        """POST .../questions/{qid}/reply: one list of chosen options per
        question, e.g. ``[["approve"]]``."""
        body = {"answers": [list(a) for a in answers]}
        self._call("POST", f"{self._session(session_id)}/questions/{path_part(question_id)}"
                   "/reply", body=body, headers=_key_header(idempotency_key))

    def reject_question(self, session_id: str, question_id: str, *,
                        idempotency_key: Optional[str] = None) -> None:
        """POST .../questions/{qid}/reject."""
        self._call("POST", f"{self._session(session_id)}/questions/{path_part(question_id)}"
                   "/reject", headers=_key_header(idempotency_key))

    def terminate(self, session_id: str, *, idempotency_key: Optional[str] = None) -> None:
        """POST /v1/sessions/{id}/terminate."""
        self._call("POST", self._session(session_id) + "/terminate",
                   headers=_key_header(idempotency_key))

    def search(self, q: str, *, limit: Optional[int] = None, cursor: Optional[str] = None,
               session: Optional[str] = None) -> SearchResponse:
        """GET /v1/search?q=...: full-text hits (``sessionId``, ``sequence``,
        ``type``, ``snippet``) over every journaled session, or one."""
        return self._call("GET", "/v1/search",
                          {"q": q, "limit": limit, "cursor": cursor, "session": session})

