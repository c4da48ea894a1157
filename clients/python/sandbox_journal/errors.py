"""The exceptions every call of the client can raise.

SandboxJournalError
├── ApiError        the server answered with an error status (a ProblemDetails)
└── TransportError  no answer: refused, reset, timed out, cut off mid-stream
                    (also a ConnectionError, so ``except OSError`` catches it)
"""

from typing import Any, Dict, Optional

__all__ = ["SandboxJournalError", "ApiError", "TransportError"]


class SandboxJournalError(Exception):
    """Base class of the client's own exceptions."""


class ApiError(SandboxJournalError):
    """The server answered with a 4xx or 5xx status.

    ``status``, ``type``, ``title`` and ``detail`` come from the RFC 7807
    ProblemDetails body (``type`` is e.g.
    ``urn:sandbox-agent:error:session_not_found``); ``problem`` is the whole
    body as a dict.  A body that is not a ProblemDetails (a proxy's HTML page)
    gives ``type`` ``about:blank``, the HTTP reason as ``title`` and the start
    of the body as ``detail``.
    """

    def __init__(self, status: int, type: str, title: str, detail: Optional[str] = None,
                 problem: Optional[Dict[str, Any]] = None) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.problem: Dict[str, Any] = dict(problem) if problem else {}
        message = f"{title} (HTTP {status})"
        if detail:
            message = f"{title}: {detail} (HTTP {status})"
        super().__init__(message)

    @property
    def error_type(self) -> str:
        """The last part of ``type``: ``session_not_found``, ``invalid_request``..."""
        return self.type.rsplit(":", 1)[-1]


class TransportError(SandboxJournalError, ConnectionError):
    """The request got no HTTP answer: the connection was refused, reset or
    timed out, or a response was cut off.  ``cause`` is the underlying
    exception (an ``OSError`` or an ``http.client.HTTPException``), and
    ``sent`` says whether the request may have reached the server (False
    only when the connection itself could not be made)."""

    def __init__(self, message: str, cause: Optional[BaseException] = None,
                 sent: bool = True) -> None:
        super().__init__(message)
        self.cause = cause
        self.sent = sent

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "transport error"
