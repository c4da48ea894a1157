"""AsyncClient: the same calls, awaited; streams as async iterators."""

import asyncio

import pytest

from sandbox_journal import ApiError, AsyncClient


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_async_calls_and_streams(server):
    async def main():
        async with AsyncClient(server.url, timeout=10, backoff_initial=0.05,
                               backoff_max=0.5) as c:
            assert (await c.health())["status"] == "ok"
            assert any(a["id"] == "mock" for a in (await c.list_agents())["agents"])
            await c.create_session("a1", agent="mock")
            await c.create_session("a2", agent="mock")
            # Two turns at once, on two sessions.
            turns = await asyncio.gather(c.stream_turn("a1", "echo one"),
                                         c.stream_turn("a2", "echo two"))
            texts = []
            for turn in turns:
                async with turn:
                    texts.append(" ".join([str(e["data"]) async for e in turn]))
            assert "one" in texts[0] and "two" in texts[1]

            await c.post_message("a1", "echo three")
            seen = []
            async with c.stream_events("a1") as stream:
                async for event in stream:
                    seen.append(event)
                    if "three" in str(event["data"]) and event["type"] == "item.completed":
                        break
            assert [e["sequence"] for e in seen] == list(range(1, len(seen) + 1))
            page = await c.get_events("a1", limit=len(seen))
            assert page["events"] == seen

            with pytest.raises(ApiError) as info:
                await c.create_session("a1", agent="mock")
            assert info.value.status == 409
            await c.terminate("a2")
            rows = (await c.list_sessions())["sessions"]
            assert {r["sessionId"] for r in rows} == {"a1", "a2"}

    run(main())


def test_async_stream_resumes_and_cancels(server):
    async def main():
        async with AsyncClient(server.url, backoff_initial=0.05, backoff_max=0.5) as c:
            await c.create_session("ar", agent="mock")
            stream = c.stream_events("ar", give_up_after=15)
            first = await stream.__anext__()
            assert first["sequence"] == 1
            await asyncio.get_running_loop().run_in_executor(None, server.restart, True)
            await c.post_message("ar", "echo back")
            got = [first]
            async for event in stream:
                got.append(event)
                if "back" in str(event["data"]) and event["type"] == "item.completed":
                    break
            assert [e["sequence"] for e in got] == list(range(1, len(got) + 1))
            assert stream.stream.reconnects >= 1

            # Cancelling a wait frees its worker: the stream's connection is closed.
            for _ in range(100):  # past the turn's last events, to a wait
                waiting = asyncio.ensure_future(stream.__anext__())
                await asyncio.sleep(0.2)
                if not waiting.done():
                    break
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert stream.stream.closed

    run(main())


def test_aclose_ends_a_stream_still_waiting(server):
    """A task left waiting on a stream does not hold aclose() up."""
    async def main():
        c = AsyncClient(server.url)
        await c.create_session("w", agent="mock")
        stream = c.stream_events("w")
        assert (await stream.__anext__())["type"] == "session.started"
        for _ in range(100):  # to a wait past the last event
            waiting = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.1)
            if not waiting.done():
                break
        await c.aclose()
        with pytest.raises(StopAsyncIteration):
            await waiting

    run(main())
