"""Talking to a JupyterLab the way its page does, through Labyard's proxy (test helpers)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.testclient import WebSocketTestSession


def execute_request(code: str) -> dict[str, Any]:
    """A kernel `execute_request` message (Jupyter's JSON websocket form)."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "username": "test",
            "session": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def execute(ws: WebSocketTestSession, code: str, max_messages: int = 500) -> tuple[str, str]:
    """Run `code` on the kernel; its reply status and what it printed. The reply (shell
    channel) may overtake the printed output (iopub): the output is complete once iopub
    says the kernel is idle again for this request."""
    request = execute_request(code)
    ws.send_text(json.dumps(request))
    printed, status, idle = "", None, False
    for _ in range(max_messages):
        message = json.loads(ws.receive_text())
        if message.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream":
            printed += message["content"]["text"]
        elif kind == "execute_reply":
            status = str(message["content"]["status"])
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            idle = True
        if status is not None and idle:
            return status, printed
    raise AssertionError(f"no execute_reply and idle status (reply: {status}, idle: {idle})")


def terminal_output(
    ws: WebSocketTestSession, command: str, want: str, max_messages: int = 500
) -> str:
    """Type `command` into a terminal; everything it printed up to `want`."""
    ws.send_text(json.dumps(["stdin", command + "\r"]))
    seen = ""
    for _ in range(max_messages):
        kind, *rest = json.loads(ws.receive_text())
        if kind == "stdout":
            seen += str(rest[0])
            if want in seen:
                return seen
    raise AssertionError(f"{want!r} never came: {seen[-500:]!r}")
