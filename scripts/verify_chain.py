#!/usr/bin/env python3
"""Recomputes ticketflow's hash chain from events in NDJSON, one per line, in
position order: each line is an event's canonical object plus its "hash"
(what `ticketflow events export --format ndjson` writes). Standard library
only. See docs/audit.md.

    python3 scripts/verify_chain.py < events.ndjson
    python3 scripts/verify_chain.py --prev HASH < events-from-position-p.ndjson

Prints "verified N events, head P hash H" and exits 0 when every hash
matches; otherwise names the first position that does not and exits 1.
"""
import argparse
import hashlib
import json
import sys


def canonical(event):
    """The canonical bytes: keys sorted at every depth, no whitespace."""
    return json.dumps(
        event, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prev",
        default="00" * 32,
        help="hash of the event before the first line (default: 64 zeros, "
        "for a file that starts at position 1)",
    )
    args = parser.parse_args()
    prev = bytes.fromhex(args.prev)
    count, position = 0, None
    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        stored = event.pop("hash", None)
        position = event.get("position")
        computed = hashlib.sha256(prev + canonical(event)).hexdigest()
        if stored != computed:
            print(
                f"position {position}: hash {stored} does not match the "
                f"recomputed {computed}",
                file=sys.stderr,
            )
            return 1
        prev = bytes.fromhex(computed)
        count += 1
    print(f"verified {count} events, head {position or 0} hash {prev.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
