"""AsyncClient: the same methods as Client, awaitable.

It runs the blocking Client in a thread pool of its own (standard library
only, and one tested code path for retries, back-off and stream resumption).
Every call holds a worker thread while it waits, and so does every open
stream while it waits for its next event: ``max_workers`` (default 64) bounds
how many calls and streams run at once; more wait their turn.  Closing or
cancelling a stream closes its connection, which frees its thread.
"""

import asyncio
import concurrent.futures
import functools
import weakref
from typing import Any, Callable, Optional, Sequence, TypeVar

from .client import DEFAULT_BASE_URL, Client
from .streams import EventStream, TurnStream
from .types import (AgentListResponse, AgentModesResponse, CreateSessionResponse,
                    EventsResponse, HealthResponse, PermissionReply, SearchResponse,
                    SessionInfo, SessionListResponse, UniversalEvent)

__all__ = ["AsyncClient", "AsyncEventStream"]

T = TypeVar("T")
_END = object()


def _next_or_end(iterator: Any) -> Any:
    try:
        return next(iterator)
    except StopIteration:
        return _END


class AsyncEventStream:
    """An async iterator over an EventStream or a TurnStream; ``aclose()``
    (or ``async with``) ends it and its connection."""

    def __init__(self, client: "AsyncClient", stream: Any) -> None:
        self._client = client
        self.stream = stream

    @property
    def last_sequence(self) -> int:
        return int(self.stream.last_sequence)

    def __aiter__(self) -> "AsyncEventStream":
        return self

    async def __anext__(self) -> UniversalEvent:
        try:
            item = await self._client._run(_next_or_end, self.stream)
        except asyncio.CancelledError:
            # The worker thread is blocked on the socket: closing it frees it.
            self.stream.close()
            raise
        if item is _END:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self.stream.close()

    async def __aenter__(self) -> "AsyncEventStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class AsyncClient:
    """``async with AsyncClient(url) as c: await c.health()``.  Arguments as
    for Client, plus ``max_workers`` for the thread pool."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: Optional[str] = None,
                 timeout: float = 30.0, *, max_workers: int = 64, **options: Any) -> None:
        self.sync = Client(base_url, token, timeout, **options)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="sandbox-journal")
        self._streams: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"AsyncClient({self.sync.base_url!r})"

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the streams still open (which frees the threads waiting on
        them), then shuts the thread pool down once the calls under way end."""
        for stream in list(self._streams):
            stream.close()
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def health(self) -> HealthResponse:
        return await self._run(self.sync.health)

    async def list_agents(self) -> AgentListResponse:
        return await self._run(self.sync.list_agents)

    async def install_agent(self, agent: str, reinstall: bool = False, **kw: Any) -> None:
        return await self._run(self.sync.install_agent, agent, reinstall, **kw)

    async def get_agent_modes(self, agent: str) -> AgentModesResponse:
        return await self._run(self.sync.get_agent_modes, agent)

    async def list_sessions(self, **kw: Any) -> SessionListResponse:
        return await self._run(self.sync.list_sessions, **kw)

    async def get_session(self, session_id: str) -> SessionInfo:
        return await self._run(self.sync.get_session, session_id)

    async def create_session(self, session_id: str, agent: str, **kw: Any) -> CreateSessionResponse:
        return await self._run(self.sync.create_session, session_id, agent, **kw)

    async def post_message(self, session_id: str, text: str,
                           idempotency_key: Optional[str] = None) -> str:
        return await self._run(self.sync.post_message, session_id, text, idempotency_key)

    async def stream_turn(self, session_id: str, text: str, **kw: Any) -> AsyncEventStream:
        """``async for event in await client.stream_turn(id, text)``."""
        stream: TurnStream = await self._run(self.sync.stream_turn, session_id, text, **kw)
        self._streams.add(stream)
        return AsyncEventStream(self, stream)

    async def get_events(self, session_id: str, offset: int = 0, limit: Optional[int] = None,
                         include_raw: bool = False) -> EventsResponse:
        return await self._run(self.sync.get_events, session_id, offset, limit, include_raw)

    def stream_events(self, session_id: str, offset: int = 0, **kw: Any) -> AsyncEventStream:
        """``async for event in client.stream_events(id)``: resumes by itself
        as Client.stream_events does (it connects on the first iteration)."""
        stream: EventStream = self.sync.stream_events(session_id, offset, **kw)
        self._streams.add(stream)
        return AsyncEventStream(self, stream)

    async def reply_permission(self, session_id: str, permission_id: str,
                               reply: PermissionReply, **kw: Any) -> None:
        return await self._run(self.sync.reply_permission, session_id, permission_id, reply,
                               **kw)

    async def reply_question(self, session_id: str, question_id: str,
                             answers: Sequence[Sequence[str]], **kw: Any) -> None:
        return await self._run(self.sync.reply_question, session_id, question_id, answers, **kw)

    async def reject_question(self, session_id: str, question_id: str, **kw: Any) -> None:
        return await self._run(self.sync.reject_question, session_id, question_id, **kw)

    async def terminate(self, session_id: str, **kw: Any) -> None:
        return await self._run(self.sync.terminate, session_id, **kw)

    async def search(self, q: str, **kw: Any) -> SearchResponse:
        return await self._run(self.sync.search, q, **kw)
