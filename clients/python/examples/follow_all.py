#!/usr/bin/env python3
"""Follows every session on a server, the ones created later too, printing
one line per event.  With asyncio: one task per session, each an
AsyncClient stream that resumes by itself after a server restart.

    python3 follow_all.py --url http://127.0.0.1:2468
    demo     12  item.completed  assistant: hello
"""

import argparse
import asyncio

from sandbox_journal import AsyncClient


def summary(event):
    data = event["data"]
    item = data.get("item")
    if item:
        text = " ".join(p.get("text") or p.get("label") or p.get("name") or ""
                        for p in item["content"])
        return f"{item.get('role') or item['kind']}: {text}"[:100]
    for key in ("delta", "message", "action", "prompt", "reason"):
        if key in data:
            return str(data[key])[:100]
    return ""


async def follow(client, session_id, out):
    async with client.stream_events(session_id) as stream:
        async for event in stream:
            await out.put(f"{session_id:<12} {event['sequence']:>5}  "
                          f"{event['type']:<20} {summary(event)}")


async def follow_all(client, poll_seconds=1.0, max_events=None, printer=print):
    out = asyncio.Queue()
    tasks = {}

    async def discover():
        while True:
            for row in (await client.list_sessions())["sessions"]:
                if row["sessionId"] not in tasks:
                    tasks[row["sessionId"]] = asyncio.ensure_future(
                        follow(client, row["sessionId"], out))
            await asyncio.sleep(poll_seconds)

    discovering = asyncio.ensure_future(discover())
    printed = 0
    try:
        while max_events is None or printed < max_events:
            printer(await out.get())
            printed += 1
    finally:
        for task in [discovering, *tasks.values()]:
            task.cancel()
        await asyncio.gather(discovering, *tasks.values(), return_exceptions=True)
    return printed


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:2468")
    p.add_argument("--token")
    p.add_argument("--max-events", type=int, help="exit after printing this many events")
    args = p.parse_args()
    async with AsyncClient(args.url, args.token) as client:
        await follow_all(client, max_events=args.max_events,
                         printer=lambda line: print(line, flush=True))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
