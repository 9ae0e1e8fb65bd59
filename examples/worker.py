#!/usr/bin/env python3
"""A reference Yantra tool worker (Python 3 standard library only).

It registers a tool `text` with three actions and serves its tasks:
  upper       {"text": str}   -> {"text": THE TEXT IN CAPITALS}
  word_count  {"text": str}   -> {"words": number of words}
  reject      {"reason": str} -> fails with code "rejected" (not retryable)

The protocol (docs/tools.md, "Tool workers"):
  POST /api/v1/workers                      register (again at every start)
  POST /api/v1/workers/{id}/poll?wait_ms=N  long-poll: 200 a task, 204 none
  POST /api/v1/tasks/{task_id}/heartbeat    while working, well within lease_ms
  POST /api/v1/tasks/{task_id}/complete     {"output": ...}
  POST /api/v1/tasks/{task_id}/fail         {"error": {"code", "message"}, "retryable"}

Tasks are queued on the node that runs the step, so in a cluster a worker
must poll every node: give every node's URL (--url several times); threads
poll each.

Usage:
  YANTRA_API_KEY=yk_... examples/worker.py --url http://127.0.0.1:8080 --id w1
Options: --url (repeatable; default $YANTRA_URL), --id, --slow-ms N (sleep
N ms in each task, heartbeating meanwhile: for tests and demos), --lease-ms N
(the lease the tool asks for), --wait-ms N (long-poll bound), --concurrency N
(tasks at once per URL). It prints one line per event on stdout
("registered ...", "task <id> attempt N action A key K", "task <id> completed 200").
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

TOOL_ID = "text"


def definition(worker_id, lease_ms):
    text_in = {"type": "object", "properties": {"text": {"type": "string"}},
               "required": ["text"], "additionalProperties": False}
    tool = {
        "id": TOOL_ID,
        "description": "Text utilities served by examples/worker.py",
        "actions": [
            {"name": "upper", "description": "The text in capitals",
             "input_schema": text_in,
             "output_schema": {"type": "object", "properties": {"text": {"type": "string"}},
                               "required": ["text"]}},
            {"name": "word_count", "description": "How many words the text has",
             "input_schema": text_in,
             "output_schema": {"type": "object", "properties": {"words": {"type": "integer"}},
                               "required": ["words"]}},
            {"name": "reject", "description": "Always fails (code 'rejected', not retryable)",
             "input_schema": {"type": "object", "properties": {"reason": {"type": "string"}}}},
        ],
    }
    if lease_ms:
        tool["lease_ms"] = lease_ms
    return {"id": worker_id, "tools": [tool]}


class Failure(Exception):
    def __init__(self, code, message, retryable=True):
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable


def run_action(action, params):
    if action == "upper":
        return {"text": params["text"].upper()}
    if action == "word_count":
        return {"words": len(params["text"].split())}
    if action == "reject":
        raise Failure("rejected", params.get("reason", "rejected by the worker"), False)
    raise Failure("unknown_action", "no action '%s'" % action, False)


def log(*parts):
    print(*parts, flush=True)


class Node:
    """One node's API, over urllib."""

    def __init__(self, base, key):
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method, path, body=None, timeout=10):
        data = b"{}" if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.key)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, None


def serve(node, args, stop):
    registered = False
    while not stop.is_set():
        try:
            if not registered:
                status, body = node.call("POST", "/api/v1/workers",
                                         definition(args.id, args.lease_ms))
                if status != 201:
                    log("registration refused", status, json.dumps(body))
                    os._exit(2)
                registered = True
                log("registered", node.base)
            status, task = node.call("POST", "/api/v1/workers/%s/poll?wait_ms=%d"
                                     % (args.id, args.wait_ms), timeout=args.wait_ms / 1000 + 10)
            if status == 204:
                continue
            if status == 404:  # deregistered: register again
                registered = False
                continue
            if status != 200:
                log("poll answered", status, json.dumps(task))
                time.sleep(0.5)
                continue
            work(node, task, args)
        except (urllib.error.URLError, OSError) as e:
            # The node is down or restarting: try again shortly.
            log("node unreachable:", node.base, e)
            registered = False
            time.sleep(0.2)


def work(node, task, args):
    task_id = task["task_id"]
    log("task", task_id, "attempt", task["attempt"], "action", task["action"],
        "key", task["idempotency_key"])
    done = threading.Event()

    def heartbeat():
        # Every third of the lease: two heartbeats may be lost before it runs out.
        every = max(task["lease_ms"] / 3000.0, 0.05)
        while not done.wait(every):
            try:
                status, _ = node.call("POST", "/api/v1/tasks/%s/heartbeat" % task_id)
                if status == 409:  # lease lost: the task went to another worker
                    log("task", task_id, "lease lost")
                    return
            except OSError:
                pass

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        if args.slow_ms:
            time.sleep(args.slow_ms / 1000.0)
        output = run_action(task["action"], task["parameters"])
        status, _ = node.call("POST", "/api/v1/tasks/%s/complete" % task_id, {"output": output})
        log("task", task_id, "completed", status)
    except Failure as f:
        status, _ = node.call("POST", "/api/v1/tasks/%s/fail" % task_id,
                              {"error": {"code": f.code, "message": f.message},
                               "retryable": f.retryable})
        log("task", task_id, "failed", f.code, status)
    except (KeyError, TypeError, AttributeError) as e:
        status, _ = node.call("POST", "/api/v1/tasks/%s/fail" % task_id,
                              {"error": {"code": "bad_parameters", "message": str(e)},
                               "retryable": False})
        log("task", task_id, "failed bad_parameters", status)
    finally:
        done.set()


def main():
    p = argparse.ArgumentParser(description="A reference Yantra tool worker")
    p.add_argument("--url", action="append", help="a node's base URL (repeat for every node)")
    p.add_argument("--id", default="python-text-worker", help="the worker id")
    p.add_argument("--slow-ms", type=int, default=0, help="sleep this long in every task")
    p.add_argument("--lease-ms", type=int, default=0, help="the tool's lease (default 30000)")
    p.add_argument("--wait-ms", type=int, default=20000, help="long-poll bound")
    p.add_argument("--concurrency", type=int, default=1, help="tasks at once per URL")
    args = p.parse_args()
    urls = args.url or [os.environ.get("YANTRA_URL", "http://127.0.0.1:8080")]
    key = os.environ.get("YANTRA_API_KEY")
    if not key:
        sys.exit("set YANTRA_API_KEY (a key with role worker, admin or owner)")
    stop = threading.Event()
    threads = []
    for url in urls:
        node = Node(url, key)
        for _ in range(max(1, args.concurrency)):
            t = threading.Thread(target=serve, args=(node, args, stop), daemon=True)
            t.start()
            threads.append(t)
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    main()
