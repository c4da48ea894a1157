"""Python client for sandbox-journal and the sandbox-agent v1 HTTP API.

    from sandbox_journal import Client
    c = Client("http://127.0.0.1:2468")
    c.create_session("demo", agent="mock")
    c.post_message("demo", "hello")
    for event in c.stream_events("demo"):      # survives server restarts
        print(event["sequence"], event["type"])

Standard library only.  See clients/python/README.md.
"""

from .aio import AsyncClient, AsyncEventStream
from .client import DEFAULT_BASE_URL, Client
from .errors import ApiError, SandboxJournalError, TransportError
from .streams import EventStream, TurnStream

__version__ = "0.1.0"

__all__ = ["Client", "AsyncClient", "ApiError", "TransportError", "SandboxJournalError",
           "EventStream", "TurnStream", "AsyncEventStream", "DEFAULT_BASE_URL", "__version__"]
