#!/usr/bin/env python3
"""Cycle-time report from ticketflow's event stream on NATS JetStream.

Reads the stream `<PREFIX>_EVENTS` (subjects `<prefix>.events.>`, one message per
event, its body the stored event as JSON) from the first message up to the last one
the stream held when the script started, with an ephemeral ordered consumer, and
reports how long tickets took from `TicketCreated` to the first time they reached a
done status: per ticket, per project (median and p90) and per assignee (the ticket's
assignee when it was done).

A status is done when its name is one of --done-status (default "Done", the last of
a project's default statuses; compared case-insensitively): ticketflow's statuses
are a project's own list of names, with no flag of their own.

    pip install -r requirements.txt
    python cycle_time.py --nats-url nats://127.0.0.1:4222 --prefix ticketflow [--json]
"""

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

import nats
from nats.js.api import DeliverPolicy


def stream_name(prefix: str) -> str:
    """The stream of a deployment's prefix, named as ticketflow's bus names it."""
    return "".join(c.upper() if c.isascii() and c.isalnum() else "_" for c in prefix) + "_EVENTS"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Ticket:
    ticket_id: str
    key: str
    project_id: str
    created_at: datetime
    assignee: Optional[str]
    done_at: Optional[datetime] = None
    done_assignee: Optional[str] = None


@dataclass
class Report:
    done_names: set
    projects: dict = field(default_factory=dict)  # project id -> key
    tickets: dict = field(default_factory=dict)  # ticket id -> Ticket

    def apply(self, event: dict) -> None:
        kind, data = event["event_type"], event["data"]
        at = parse_time(event["occurred_at"])
        if kind == "ProjectCreated":
            self.projects[data["project_id"]] = data["key"]
            return
        ticket = self.tickets.get(event["stream_id"])
        if kind == "TicketCreated":
            assignee = (data.get("assignee") or {}).get("username")
            ticket = Ticket(data["ticket_id"], data["key"], data["project_id"], at, assignee)
            self.tickets[ticket.ticket_id] = ticket
            self.reached(ticket, data["status"], at)
        elif ticket is None:
            return
        elif kind == "TicketAssigned":
            ticket.assignee = data["assignee"]["username"]
        elif kind == "TicketUnassigned":
            ticket.assignee = None
        elif kind == "TicketStatusChanged":
            self.reached(ticket, data["status"], at)

    def reached(self, ticket: Ticket, status: dict, at: datetime) -> None:
        """Only the first arrival at a done status counts (reopening does not undo it)."""
        if ticket.done_at is None and status["name"].casefold() in self.done_names:
            ticket.done_at = at
            ticket.done_assignee = ticket.assignee

    def done(self) -> list:
        return sorted((t for t in self.tickets.values() if t.done_at), key=lambda t: t.key)

    def summary(self) -> dict:
        def cycle(t: Ticket) -> float:
            return (t.done_at - t.created_at).total_seconds()

        def group(by) -> list:
            groups: dict = {}
            for t in self.done():
                groups.setdefault(by(t), []).append(cycle(t))
            return [
                {"name": name, "done": len(s), "median_seconds": statistics.median(s),
                 "p90_seconds": nearest_rank(s, 0.9)}
                for name, s in sorted(groups.items())
            ]

        return {
            "tickets": [
                {"ticket_id": t.ticket_id, "key": t.key,
                 "project": self.projects.get(t.project_id, t.project_id),
                 "assignee": t.done_assignee, "created_at": t.created_at.isoformat(),
                 "done_at": t.done_at.isoformat(), "cycle_seconds": cycle(t)}
                for t in self.done()
            ],
            "projects": group(lambda t: self.projects.get(t.project_id, t.project_id)),
            "assignees": group(lambda t: t.done_assignee or "(unassigned)"),
        }


def nearest_rank(values: list, q: float) -> float:
    """The q-quantile by the nearest-rank method: a value that occurred."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def consume(url: str, prefix: str, report: Report) -> int:
    """Applies every message up to the stream's last at start; returns how many."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream_name(prefix))
        last = info.state.last_seq
        if info.state.messages == 0:
            return 0
        sub = await js.subscribe(f"{prefix}.events.>", ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.ALL,
                                 stream=stream_name(prefix))
        seen = 0
        try:
            while True:
                msg = await sub.next_msg(timeout=30)
                report.apply(json.loads(msg.data))
                seen += 1
                if msg.metadata.sequence.stream >= last:
                    return seen
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h{minutes:02d}m{secs:06.3f}s"


def print_table(summary: dict) -> None:
    print(f"{'TICKET':<14} {'PROJECT':<10} {'ASSIGNEE':<16} {'CYCLE':>16}")
    for t in summary["tickets"]:
        print(f"{t['key']:<14} {t['project']:<10} {t['assignee'] or '(unassigned)':<16} "
              f"{duration(t['cycle_seconds']):>16}")
    for title, rows in [("PROJECT", summary["projects"]), ("ASSIGNEE", summary["assignees"])]:
        print()
        print(f"{title:<16} {'DONE':>5} {'MEDIAN':>16} {'P90':>16}")
        for row in rows:
            print(f"{row['name']:<16} {row['done']:>5} {duration(row['median_seconds']):>16} "
                  f"{duration(row['p90_seconds']):>16}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--prefix", default=os.environ.get("NATS_PREFIX", "ticketflow"),
                        help="the deployment's NATS_PREFIX")
    parser.add_argument("--done-status", action="append", default=None,
                        help='a status name that counts as done (repeatable; default "Done")')
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = Report({name.casefold() for name in (args.done_status or ["Done"])})
    seen = asyncio.run(consume(args.nats_url, args.prefix, report))
    summary = report.summary()
    if args.json:
        json.dump({"events": seen, **summary}, sys.stdout, indent=2)
        print()
    else:
        print(f"{seen} events, {len(summary['tickets'])} tickets done\n")
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
