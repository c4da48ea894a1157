#!/usr/bin/env python3
"""A tiny MCP server on stdio for the end-to-end tests: one tool, `sj_echo`,
that answers its `text` argument back.  Newline-delimited JSON-RPC 2.0, as
the MCP stdio transport has it; no network.

usage: echo_mcp.py LOGFILE
Each message received is appended to LOGFILE as one JSON line, so a test can
see that an agent started the server and what it asked.
"""
import json
import sys

TOOL = {
    "name": "sj_echo",
    "description": "Echoes the text it is given (sandbox-journal test server).",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


def answer(msg_id, result=None, error=None):
    out = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def main():
    log = open(sys.argv[1], "a", encoding="utf-8") if len(sys.argv) > 1 else None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if log:
            log.write(json.dumps(msg) + "\n")
            log.flush()
        method = msg.get("method")
        if "id" not in msg:
            continue  # a notification (notifications/initialized, cancelled)
        params = msg.get("params") or {}
        if method == "initialize":
            answer(msg["id"], {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "sj-echo", "version": "1.0.0"},
            })
        elif method == "tools/list":
            answer(msg["id"], {"tools": [TOOL]})
        elif method == "tools/call":
            text = (params.get("arguments") or {}).get("text", "")
            answer(msg["id"], {"content": [{"type": "text", "text": "echo: " + text}]})
        elif method == "ping":
            answer(msg["id"], {})
        elif method in ("resources/list", "prompts/list", "resources/templates/list"):
            key = method.split("/")[0] if method != "resources/templates/list" else "resourceTemplates"
            answer(msg["id"], {key: []})
        else:
            answer(msg["id"], error={"code": -32601, "message": "method not found: %s" % method})


if __name__ == "__main__":
    main()
