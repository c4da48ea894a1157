#!/usr/bin/env python3
"""Copies a session's events into a local SQLite file and keeps it up to
date, across restarts of the server and of this script.

    python3 persist_sqlite.py demo --db demo.sqlite          # follow, Ctrl-C to stop
    python3 persist_sqlite.py demo --db demo.sqlite --once   # copy what is there, exit

It starts after the highest sequence already in the file, and the primary
key (session_id, sequence) makes a repeated event a no-op, so stopping it at
any moment and running it again neither loses nor doubles an event.
"""

import argparse
import json
import sqlite3
import sys

from sandbox_journal import Client

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT    NOT NULL,
    sequence   INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    time       TEXT    NOT NULL,
    event      TEXT    NOT NULL,   -- the event as the server sent it (JSON)
    PRIMARY KEY (session_id, sequence)
) WITHOUT ROWID;
"""


def persist(client, session_id, db, follow=True, max_events=None):
    """Stores the session's new events in `db`; returns how many."""
    db.executescript(SCHEMA)
    (last,) = db.execute("SELECT COALESCE(MAX(sequence), 0) FROM events WHERE session_id = ?",
                         (session_id,)).fetchone()
    events = (client.stream_events(session_id, offset=last) if follow
              else client.iter_events(session_id, offset=last))
    stored = 0
    try:
        for event in events:
            with db:  # one transaction per event: committed before the next is read
                db.execute("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)",
                           (session_id, event["sequence"], event["type"], event["time"],
                            json.dumps(event, separators=(",", ":"))))
            stored += 1
            if max_events is not None and stored >= max_events:
                break
    finally:
        if follow:
            events.close()
    return stored


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("session")
    p.add_argument("--url", default="http://127.0.0.1:2468")
    p.add_argument("--token")
    p.add_argument("--db", default="events.sqlite")
    p.add_argument("--once", action="store_true", help="copy what is stored, then exit")
    p.add_argument("--max-events", type=int, help="stop after this many new events")
    args = p.parse_args()
    db = sqlite3.connect(args.db)
    try:
        n = persist(Client(args.url, args.token), args.session, db, not args.once,
                    args.max_events)
    except KeyboardInterrupt:
        n = None
    finally:
        db.close()
    if n is not None:
        print(f"{n} new events in {args.db}", file=sys.stderr)


if __name__ == "__main__":
    main()
