#!/usr/bin/env python3
"""Upload a module, queue a task, follow its events, read its result: the
REST API from Python's standard library alone.

    FABRIC_API_URL=http://127.0.0.1:7080 FABRIC_API_TOKEN=fab_... \\
        python3 submit.py wordfreq.wasm book.txt

The URL and an admin token are api_url and api_token in the cluster profile
that `fabric up` writes (~/.config/fabric/cluster.toml).
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ["FABRIC_API_URL"]
TOKEN = os.environ["FABRIC_API_TOKEN"]


def call(method, path, body=None, content_type="application/json"):
    """One request; the parsed JSON answer, or exit with the API's error."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=body, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        err = json.load(e)["error"]
        sys.exit(f"{method} {path}: {e.code} {err['code']}: {err['message']}")


def events(task_id):
    """The task's Server-Sent Events as (event, data) pairs, until `end`."""
    req = urllib.request.Request(f"{URL}/api/v1/tasks/{task_id}/events")
    req.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(req, timeout=120) as resp:
        kind = None
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                yield kind, json.loads(line[len("data: "):])
                if kind == "end":
                    return


def main():
    module = open(sys.argv[1], "rb").read()
    stdin = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else b""
    sha = call("POST", "/api/v1/modules", module, "application/octet-stream")["sha256"]
    print("module", sha)
    task = call("POST", "/api/v1/tasks", {
        "module": sha,
        "input_b64": base64.b64encode(stdin).decode(),
        "limits": {"timeout_ms": 30000},
    })
    print("task", task["id"])
    for kind, data in events(task["id"]):
        if kind == "progress":
            print(f"progress {data['done']}/{data['total']}")
        elif kind == "log":
            print("log", data["message"])
        elif kind == "end":
            print("end", data["task"]["status"])
    out = call("GET", f"/api/v1/tasks/{task['id']}/output")
    print(json.dumps(out, separators=(",", ":")))
    sys.exit(0 if out["status"] == "succeeded" else 1)


if __name__ == "__main__":
    main()
