"""scripts/analytics.sh's driver: fills a live server (PostgreSQL + NATS) through its API
with tickets of known histories, then checks what analysts read back.

    analytics_check.py fill   BASE OUT.json     # tickets, transitions, expectations
    analytics_check.py parquet FILE IN.json       # the export, read with pyarrow
    analytics_check.py stream NATS_URL PREFIX COUNT  # waits for the relay to publish COUNT
    analytics_check.py report REPORT.json IN.json    # the cycle-time report, checked
Every check exits non-zero with the difference when it fails.
"""

import asyncio
import json
import sys
import time
import urllib.request
from datetime import datetime


def call(base, method, path, body=None, token=None, accept="application/json"):
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    request.add_header("accept", accept)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
        return text if accept != "application/json" else (json.loads(text) if text else None)


def wait_ready(base, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return call(base, "GET", "/readyz")
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"no ready server at {base} after {deadline_s} s")
            time.sleep(0.2)


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fill(base, out):
    """Two projects; tickets done directly, after reassignment, after a reopen, never."""
    wait_ready(base)
    users = {}
    for name in ["ann", "bob", "cyd"]:
        user = call(base, "POST", "/api/auth/register", {"username": name, "password": f"{name}-password"})
        token = call(base, "POST", "/api/auth/login",
                     {"username": name, "password": f"{name}-password"})["access_token"]
        users[name] = (user["id"], token)
    token = users["ann"][1]
    projects = {}
    for key in ["ALPHA", "BETA"]:
        project = call(base, "POST", "/api/projects", {"key": key, "name": key.title()}, token)
        projects[key] = project["id"]
        for member in ["bob", "cyd"]:
            call(base, "POST", f"/api/projects/{project['id']}/members", {"username": member}, token)
    # (project, assignee at creation, then each change); status 3 is "Done".
    histories = [
        ("ALPHA", "bob", [{"status_id": 3}]),
        ("ALPHA", None, [{"status_id": 2}, {"assignee_id": "cyd"}, {"status_id": 3}]),
        ("ALPHA", "bob", [{"assignee_id": "cyd"}, {"assignee_id": "bob"}, {"status_id": 3},
                          {"status_id": 1}, {"status_id": 3}]),
        ("BETA", "cyd", [{"status_id": 3}]),
        ("BETA", None, [{"status_id": 3}]),
        ("BETA", "bob", [{"status_id": 2}]),  # never done
    ]
    expected = []
    for i, (key, assignee, changes) in enumerate(histories):
        body = {"title": f"ticket {i}"}
        if assignee:
            body["assignee_id"] = users[assignee][0]
        ticket = call(base, "POST", f"/api/projects/{projects[key]}/tickets", body, token)
        current, done_at, done_by = assignee, None, None
        for change in changes:
            if "assignee_id" in change:
                current = change["assignee_id"]
                change = {"assignee_id": users[current][0]}
            updated = call(base, "PATCH", f"/api/tickets/{ticket['id']}", change, token)
            if change.get("status_id") == 3 and done_at is None:
                done_at, done_by = updated["updated_at"], current
        if done_at:
            cycle = (parse_time(done_at) - parse_time(ticket["created_at"])).total_seconds()
            expected.append({"key": ticket["key"], "project": key, "assignee": done_by,
                             "cycle_seconds": cycle})
    feed = []
    for key, pid in projects.items():
        lines = call(base, "GET", f"/api/projects/{pid}/events", token=token,
                     accept="application/x-ndjson")
        feed.extend(json.loads(line) for line in lines.splitlines())
    feed.sort(key=lambda item: item["position"])
    with open(out, "w") as file:
        json.dump({"tickets": expected, "feed": feed}, file)
    print(len(feed))


def check_parquet(path, known):
    import pyarrow as pa
    import pyarrow.parquet as pq

    feed = json.load(open(known))["feed"]
    table = pq.read_table(path)
    types = {f.name: f.type for f in table.schema}
    wanted = {"position": pa.int64(), "version": pa.int64(), "seq": pa.int64(),
              "schema_version": pa.int32(), "occurred_at": pa.timestamp("us", tz="UTC"),
              "event_id": pa.string(), "type": pa.string(), "data": pa.string(),
              "metadata": pa.string(), "project_id": pa.string(), "stream_id": pa.string(),
              "stream_type": pa.string(), "hash": pa.string()}
    if types != wanted:
        sys.exit(f"parquet columns {types} are not {wanted}")
    rows = table.to_pylist()
    # The export is the whole log: the users' inbox streams have no events, so it is the
    # two projects' feeds.
    if len(rows) != len(feed):
        sys.exit(f"parquet has {len(rows)} rows, the feeds {len(feed)} events")
    for row, item in zip(rows, feed):
        got = {"event_id": row["event_id"], "position": row["position"], "type": row["type"],
               "schema_version": row["schema_version"], "version": row["version"],
               "data": json.loads(row["data"]), "occurred_at": row["occurred_at"]}
        want = {key: item[key] for key in ["event_id", "position", "type", "schema_version",
                                           "version", "data"]}
        want["occurred_at"] = parse_time(item["occurred_at"])
        if got != want:
            sys.exit(f"parquet row {got} is not the feed's {want}")
        if row["hash"] != item["hash"]:
            sys.exit(f"parquet row {row['position']} has hash {row['hash']}, the feed {item['hash']}")
        if json.loads(row["metadata"])["actor"] != item["actor"]:
            sys.exit(f"parquet metadata {row['metadata']} lacks the actor {item['actor']}")
    print(f"parquet: {len(rows)} rows, types and values as the feed")


async def wait_stream(url, prefix, count):
    import nats

    sys.path.insert(0, "examples/analytics")
    from cycle_time import stream_name

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 60
        while (await js.stream_info(stream_name(prefix))).state.messages < count:
            if time.monotonic() > deadline:
                sys.exit(f"the relay did not publish {count} events within 60 s")
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


def check_report(report_path, known):
    expected = json.load(open(known))["tickets"]
    report = json.load(open(report_path))
    got = [{k: t[k] for k in ["key", "project", "assignee", "cycle_seconds"]}
           for t in report["tickets"]]
    expected.sort(key=lambda t: t["key"])
    for g, e in zip(got, expected):
        # The API's times and the events' are the same microseconds.
        if abs(g["cycle_seconds"] - e["cycle_seconds"]) > 1e-6:
            sys.exit(f"cycle time {g} is not {e}")
        g["cycle_seconds"] = e["cycle_seconds"]
    if got != expected:
        sys.exit(f"report tickets {got} are not {expected}")
    by_project = {p["name"]: p["done"] for p in report["projects"]}
    if by_project != {"ALPHA": 3, "BETA": 2}:
        sys.exit(f"per project {report['projects']}")
    by_assignee = {a["name"]: a["done"] for a in report["assignees"]}
    if by_assignee != {"bob": 2, "cyd": 2, "(unassigned)": 1}:
        sys.exit(f"per assignee {report['assignees']}")
    alpha = sorted(t["cycle_seconds"] for t in expected if t["project"] == "ALPHA")
    project = next(p for p in report["projects"] if p["name"] == "ALPHA")
    if abs(project["median_seconds"] - alpha[1]) > 1e-6 or abs(project["p90_seconds"] - alpha[2]) > 1e-6:
        sys.exit(f"ALPHA's median/p90 {project} are not {alpha[1]}/{alpha[2]}")
    print(f"report: {len(got)} tickets, per project and per assignee as created")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "fill":
        fill(*args)
    elif command == "parquet":
        check_parquet(*args)
    elif command == "stream":
        asyncio.run(wait_stream(args[0], args[1], int(args[2])))
    elif command == "report":
        check_report(*args)
    else:
        sys.exit(f"unknown command {command}")
