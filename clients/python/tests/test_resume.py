"""stream_events across dropped connections and server restarts."""

import threading

from sandbox_journal import Client


class Reader:
    """Pulls events from a stream, with a watchdog: a stream that stalls is
    closed after `bound` seconds, which ends the iteration and the test."""

    def __init__(self, stream, bound=20.0):
        self.stream = stream
        self.seen = []
        self.watchdog = threading.Timer(bound, stream.close)
        self.watchdog.daemon = True
        self.watchdog.start()

    def until(self, predicate):
        for event in self.stream:
            self.seen.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"stream ended after {len(self.seen)} events without the one awaited")

    def close(self):
        self.watchdog.cancel()
        self.stream.close()


def said(text):
    return lambda e: (e["type"] == "item.completed" and e["data"]["item"].get("role") ==
                      "assistant" and text in str(e["data"]["item"]["content"]))


def test_resume_across_kill9_and_restart(server):
    c = Client(server.url, timeout=5, backoff_initial=0.05, backoff_max=0.5)
    c.create_session("r", agent="mock")
    c.post_message("r", "demo")
    reader = Reader(c.stream_events("r", give_up_after=15))
    try:
        reader.until(lambda e: e["sequence"] >= 4)
        server.restart(kill=True)  # kill -9 mid-stream, maybe mid-turn
        c.post_message("r", "echo after the kill")
        reader.until(said("after the kill"))
        server.restart()  # SIGTERM: the server ends the stream itself
        c.post_message("r", "echo after the stop")
        reader.until(said("after the stop"))
    finally:
        reader.close()

    seen = reader.seen
    assert [e["sequence"] for e in seen] == list(range(1, len(seen) + 1))  # no gap, no twice
    stored = c.get_events("r", limit=10000)["events"]
    assert seen == stored[:len(seen)]  # the same events the journal holds, byte for byte
    assert reader.stream.reconnects >= 2
    assert reader.stream.last_sequence == seen[-1]["sequence"]


def test_resume_from_offset(client):
    client.create_session("o", agent="mock")
    client.post_message("o", "echo one")
    first = Reader(client.stream_events("o"))
    try:
        event = first.until(said("one"))
    finally:
        first.close()
    client.post_message("o", "echo two")
    second = Reader(client.stream_events("o", offset=event["sequence"]))
    try:
        second.until(said("two"))
    finally:
        second.close()
    assert second.seen[0]["sequence"] == event["sequence"] + 1
