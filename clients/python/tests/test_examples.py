"""The scripts in examples/ run against the real server."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from sandbox_journal import Client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run_example(name, *args, timeout=30):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=True)


def settle(client, session_id, text):
    """Waits for the mock's answer to `echo text` (the end of that turn)."""
    with client.stream_events(session_id) as stream:
        for event in stream:
            if event["type"] == "item.completed" and text in str(event["data"]) and \
                    event["data"]["item"].get("role") == "assistant":
                return


def test_persist_sqlite(server, tmp_path):
    c = Client(server.url)
    c.create_session("p", agent="mock")
    c.post_message("p", "echo first")
    settle(c, "p", "first")
    db = str(tmp_path / "p.sqlite")
    run_example("persist_sqlite.py", "p", "--url", server.url, "--db", db, "--once")
    c.post_message("p", "echo second")
    settle(c, "p", "second")
    stored = c.get_events("p")["events"]
    # Follow mode, from where the file ends, to the newest event.
    with sqlite3.connect(db) as conn:
        (have,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    run_example("persist_sqlite.py", "p", "--url", server.url, "--db", db,
                "--max-events", str(len(stored) - have))
    run_example("persist_sqlite.py", "p", "--url", server.url, "--db", db, "--once")
    stored = c.get_events("p")["events"]  # the mock may have added a turn-end since
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sequence, event FROM events ORDER BY sequence").fetchall()
    assert [r[0] for r in rows] == [e["sequence"] for e in stored]
    assert [json.loads(r[1]) for r in rows] == stored


def test_follow_all(server):
    c = Client(server.url)
    for sid in ("f1", "f2"):
        c.create_session(sid, agent="mock")
        c.post_message(sid, f"echo hello {sid}")
        settle(c, sid, f"hello {sid}")
    total = sum(len(c.get_events(sid)["events"]) for sid in ("f1", "f2"))
    out = run_example("follow_all.py", "--url", server.url, "--max-events", str(total)).stdout
    lines = out.splitlines()
    assert len(lines) == total
    for sid in ("f1", "f2"):
        mine = [ln.split() for ln in lines if ln.split()[0] == sid]
        assert [int(f[1]) for f in mine] == list(range(1, len(mine) + 1))
        assert any(f"hello {sid}" in ln for ln in lines)


@pytest.mark.parametrize("name", ["persist_sqlite.py", "follow_all.py"])
def test_examples_have_help(name):
    assert "usage" in run_example(name, "--help").stdout
