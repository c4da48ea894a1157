"""TypedDicts for the server's JSON (docs/openapi.json).  Every call returns
the server's JSON as plain dicts and lists; these types only describe them
for a type checker and a reader.  Keys the server may leave out are in the
``total=False`` halves.  Field names are the server's (camelCase in the
envelopes, snake_case in events), so that a dict goes back to the server or
into a file unchanged."""

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "HealthResponse", "SearchIndexInfo", "AgentCapabilities", "ServerStatusInfo", "AgentInfo", "AgentListResponse",
    "AgentModeInfo", "AgentModesResponse", "SessionInfo", "SessionListResponse",
    "CreateSessionResponse", "AgentError", "ContentPart", "UniversalItem", "UniversalEvent",
    "EventsResponse", "SearchHit", "SearchResponse", "ProblemDetails", "UniversalEventType",
    "PermissionReply",
]

UniversalEventType = Literal[
    "session.started", "session.ended", "item.started", "item.delta", "item.completed",
    "error", "permission.requested", "permission.resolved", "question.requested",
    "question.resolved", "agent.unparsed",
]
PermissionReply = Literal["once", "always", "reject"]


class SearchIndexInfo(TypedDict):
    indexedThrough: int
    lag: int


class _HealthRequired(TypedDict):
    status: str


class HealthResponse(_HealthRequired, total=False):
    searchIndex: SearchIndexInfo  # issue 14: how far the search index is


AgentCapabilities = TypedDict("AgentCapabilities", {
    "planMode": bool, "permissions": bool, "questions": bool, "toolCalls": bool,
    "toolResults": bool, "textMessages": bool, "images": bool, "fileAttachments": bool,
    "sessionLifecycle": bool, "errorEvents": bool, "reasoning": bool, "status": bool,
    "commandExecution": bool, "fileChanges": bool, "mcpTools": bool, "streamingDeltas": bool,
    "itemStarted": bool, "sharedProcess": bool,
})


class _ServerStatusRequired(TypedDict):
    status: Literal["running", "stopped", "error"]
    restartCount: int


class ServerStatusInfo(_ServerStatusRequired, total=False):
    baseUrl: Optional[str]
    lastError: Optional[str]
    uptimeMs: Optional[int]


class _AgentInfoRequired(TypedDict):
    id: str
    installed: bool
    capabilities: AgentCapabilities


class AgentInfo(_AgentInfoRequired, total=False):
    path: Optional[str]
    version: Optional[str]
    serverStatus: Optional[ServerStatusInfo]


class AgentListResponse(TypedDict):
    agents: List[AgentInfo]


class AgentModeInfo(TypedDict):
    id: str
    name: str
    description: str


class AgentModesResponse(TypedDict):
    modes: List[AgentModeInfo]


class _SessionInfoRequired(TypedDict):
    sessionId: str
    agent: str
    agentMode: str
    permissionMode: str
    ended: bool
    eventCount: int


class SessionInfo(_SessionInfoRequired, total=False):
    """A row of GET /v1/sessions, and GET /v1/sessions/{id}.  The keys from
    ``status`` on come with the sessions API of issue 14 (servers before it
    leave them out)."""
    model: Optional[str]
    nativeSessionId: Optional[str]
    variant: Optional[str]
    status: Literal["running", "waiting", "idle", "ended"]
    lastSequence: int
    createdAt: str
    updatedAt: str
    title: Optional[str]
    pendingPermissions: List[str]
    pendingQuestions: List[str]


class _SessionListRequired(TypedDict):
    sessions: List[SessionInfo]


class SessionListResponse(_SessionListRequired, total=False):
    nextCursor: Optional[str]


class _AgentErrorRequired(TypedDict):
    type: str
    message: str


class AgentError(_AgentErrorRequired, total=False):
    agent: Optional[str]
    details: Any
    session_id: Optional[str]


class _CreateSessionRequired(TypedDict):
    healthy: bool


class CreateSessionResponse(_CreateSessionRequired, total=False):
    error: Optional[AgentError]
    nativeSessionId: Optional[str]


# A content part is one of text, json, tool_call, tool_result, file_ref,
# reasoning, image, status (its "type"); the other keys depend on the type.
ContentPart = Dict[str, Any]


class _UniversalItemRequired(TypedDict):
    item_id: str
    kind: Literal["message", "tool_call", "tool_result", "system", "status", "unknown"]
    content: List[ContentPart]
    status: Literal["in_progress", "completed", "failed"]


class UniversalItem(_UniversalItemRequired, total=False):
    native_item_id: Optional[str]
    parent_id: Optional[str]
    role: Optional[Literal["user", "assistant", "system", "tool"]]


class _UniversalEventRequired(TypedDict):
    event_id: str
    sequence: int
    time: str
    session_id: str
    synthetic: bool
    source: Literal["agent", "daemon"]
    type: UniversalEventType
    # Depends on type: {"item": UniversalItem} for item.*, {"item_id",
    # "delta"} for item.delta, {"permission_id", "action", "status"},
    # {"question_id", "prompt", "options", "status"}, {"reason",
    # "terminated_by"} for session.ended, {"message"} for error.
    data: Dict[str, Any]


class UniversalEvent(_UniversalEventRequired, total=False):
    native_session_id: Optional[str]
    raw: Any  # the agent's native payload, with include_raw=True


class EventsResponse(TypedDict):
    events: List[UniversalEvent]
    hasMore: bool


class _SearchHitRequired(TypedDict):
    sessionId: str
    sequence: int
    type: str
    snippet: str


SearchHit = _SearchHitRequired


class _SearchResponseRequired(TypedDict):
    hits: List[SearchHit]


class SearchResponse(_SearchResponseRequired, total=False):
    nextCursor: Optional[str]
    indexedThrough: int  # events (commit order) the index has read
    indexLag: int  # committed events not searchable yet


class _ProblemRequired(TypedDict):
    type: str
    title: str
    status: int


class ProblemDetails(_ProblemRequired, total=False):
    detail: Optional[str]
    instance: Optional[str]

