"""The blocking client against the real server with the mock agent."""

import time
import uuid

import pytest

from sandbox_journal import ApiError, Client, TransportError


def wait_for(client, session_id, predicate, bound=200):
    """Follows the session until an event satisfies predicate; returns it."""
    with client.stream_events(session_id, give_up_after=10) as stream:
        for n, event in enumerate(stream):
            if predicate(event):
                return event
            assert n < bound, "no such event"


def test_meta(client):
    assert client.health()["status"] == "ok"
    agents = client.list_agents()["agents"]
    mock = [a for a in agents if a["id"] == "mock"]
    assert mock and mock[0]["installed"] is True
    assert isinstance(mock[0]["capabilities"]["permissions"], bool)
    modes = client.get_agent_modes("mock")["modes"]
    assert {m["id"] for m in modes} >= {"build", "plan"}


def test_session_flow(client):
    created = client.create_session("flow", agent="mock", agent_mode="plan",
                                    permission_mode="default", model="m1")
    assert created["healthy"] is True
    key = client.post_message("flow", "hello")
    assert uuid.UUID(key).version == 4
    turn = list(client.stream_turn("flow", "echo from python"))
    assert turn, "the turn streamed nothing"
    texts = [p.get("text") for e in turn if e["type"] == "item.completed"
             for p in e["data"]["item"]["content"]]
    assert "from python" in " ".join(t for t in texts if t)
    sequences = [e["sequence"] for e in turn]
    assert sequences == sorted(sequences)

    page = client.get_events("flow", offset=0, limit=2)
    assert len(page["events"]) == 2 and page["hasMore"] is True
    every = client.get_events("flow")["events"]
    assert [e["sequence"] for e in every] == list(range(1, len(every) + 1))
    assert every[0]["type"] == "session.started"
    paged = [e["sequence"] for e in client.iter_events("flow", offset=1, page=3)]
    assert paged == list(range(2, len(paged) + 2)) and len(paged) >= len(every) - 1
    raw = client.get_events("flow", include_raw=True, limit=len(every))["events"]
    assert [e["event_id"] for e in raw] == [e["event_id"] for e in every]

    rows = {s["sessionId"]: s for s in client.list_sessions()["sessions"]}
    assert rows["flow"]["agent"] == "mock" and rows["flow"]["agentMode"] == "plan"
    client.terminate("flow")
    ended = wait_for(client, "flow", lambda e: e["type"] == "session.ended")
    assert ended["data"]["reason"] == "terminated"


def test_permission_and_questions(client):
    client.create_session("hitl", agent="mock")
    events = list(client.stream_turn("hitl", "permission"))
    assert events[-1]["type"] == "permission.requested"
    pid = events[-1]["data"]["permission_id"]
    client.reply_permission("hitl", pid, "once")
    resolved = wait_for(client, "hitl", lambda e: e["type"] == "permission.resolved")
    assert resolved["data"]["permission_id"] == pid

    asked = list(client.stream_turn("hitl", "question"))[-1]
    assert asked["type"] == "question.requested"
    qid = asked["data"]["question_id"]
    client.reply_question("hitl", qid, [[asked["data"]["options"][0]]])
    answered = wait_for(client, "hitl", lambda e: e["type"] == "question.resolved"
                        and e["data"]["question_id"] == qid)
    assert answered["data"]["status"] == "answered"

    asked = list(client.stream_turn("hitl", "question"))[-1]
    client.reject_question("hitl", asked["data"]["question_id"])
    rejected = wait_for(client, "hitl", lambda e: e["type"] == "question.resolved"
                        and e["data"]["question_id"] == asked["data"]["question_id"])
    assert rejected["data"]["status"] == "rejected"


def test_api_error_fields(client):
    client.create_session("dup", agent="mock")
    with pytest.raises(ApiError) as info:
        client.create_session("dup", agent="mock")
    e = info.value
    assert e.status == 409
    assert e.type == "urn:sandbox-agent:error:session_already_exists"
    assert e.error_type == "session_already_exists"
    assert e.title and "dup" in (e.detail or "")
    assert e.problem["status"] == 409

    with pytest.raises(ApiError) as info:
        client.get_events("no-such-session")
    assert info.value.status == 404
    assert info.value.type.endswith(":session_not_found")

    with pytest.raises(ApiError) as info:
        client.create_session("bad", agent="no-such-agent")
    assert info.value.status == 400 and info.value.error_type == "unsupported_agent"

    with pytest.raises(ApiError) as info:  # no retry either: the stream raises at once
        next(client.stream_events("no-such-session"))
    assert info.value.status == 404


def test_token(make_server):
    server = make_server("--token", "s3cret")
    with pytest.raises(ApiError) as info:
        Client(server.url).list_sessions()
    assert info.value.status == 401 and info.value.error_type == "token_invalid"
    assert Client(server.url, token="s3cret").list_sessions() == {"sessions": []}


def test_get_session_and_search(client):
    """GET /v1/sessions/{id} and /v1/search come with issue 14's sessions
    API.  Before it the server has no such routes: the client must still
    raise ApiError with the ProblemDetails' fields."""
    client.create_session("found", agent="mock")
    client.post_message("found", "echo needle")
    wait_for(client, "found", lambda e: e["type"] == "item.completed"
             and "needle" in str(e["data"]) and e["data"]["item"].get("role") == "assistant")
    paths = client._call("GET", "/v1/openapi.json")["paths"]
    if "/v1/search" not in paths:
        for call in (lambda: client.get_session("found"), lambda: client.search("needle")):
            with pytest.raises(ApiError) as info:
                call()
            assert info.value.status in (404, 405) and info.value.title
            assert info.value.problem.get("status") == info.value.status
        return
    row = client.get_session("found")
    assert row["sessionId"] == "found" and row["agent"] == "mock"
    assert row["status"] in ("running", "waiting", "idle", "ended")
    assert row["lastSequence"] == row["eventCount"] >= 1
    assert row["title"] == "echo needle"
    with pytest.raises(ApiError) as info:
        client.get_session("no-such-session")
    assert info.value.status == 404 and info.value.error_type == "session_not_found"
    # The index follows the commit: once an answer reports no lag, the
    # assistant's message (already streamed, so committed) must be a hit.
    for _ in range(500):
        found = client.search("needle")
        if found["indexLag"] == 0:
            break
        time.sleep(0.01)
    assert found["indexLag"] == 0
    hit = [h for h in found["hits"] if h["sessionId"] == "found"][0]
    assert "<mark>needle</mark>" in hit["snippet"] and hit["sequence"] >= 1
    assert client.search("needle", session="found", limit=1)["hits"][0]["sessionId"] == "found"
    with pytest.raises(ApiError) as info:
        client.search("")
    assert info.value.status == 400
    page = client.list_sessions(limit=1)
    assert len(page["sessions"]) == 1 and "nextCursor" in page


def test_connection_refused_raises_transport_error():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = Client(f"http://127.0.0.1:{port}", retries=1, backoff_initial=0.01)
    with pytest.raises(TransportError) as info:
        c.health()
    assert info.value.sent is False
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(TransportError):
        c.post_message("x", "y")


def test_idempotency_key_reaches_the_server(client):
    """The key post_message sends is one the server can de-duplicate on:
    a repeat with it journals no second message (servers with
    Idempotency-Key support; others journal it twice, and the test skips)."""
    client.create_session("idem", agent="mock")
    key = client.post_message("idem", "echo once")
    assert client.post_message("idem", "echo once", idempotency_key=key) == key
    users = [e for e in client.get_events("idem")["events"]
             if e["type"] == "item.completed" and e["data"]["item"].get("role") == "user"]
    if len(users) == 2:
        pytest.skip("this server does not de-duplicate Idempotency-Key")
    assert len(users) == 1
