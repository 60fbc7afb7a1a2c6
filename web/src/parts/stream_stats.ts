/**
 * What the streams delivered to this page, for the connection indicator
 * ("replaying N") and for the browser tests (`window.__ticketflow`): the seqs
 * of the ticket-channel messages the app applied, in order, so a test can
 * check that each arrived exactly once.
 */
import { useEffect, useSyncExternalStore } from "react";
import type { TicketflowClient, Uuid } from "@ticketflow/client";

export interface StreamStats {
  /** Messages received during the current (or last) replay. */
  replayed: number;
  /** Seqs of applied ticket-channel messages, by project id. */
  ticketSeqs: Record<Uuid, number[]>;
}

let stats: StreamStats = { replayed: 0, ticketSeqs: {} };
const listeners = new Set<() => void>();

function publish(next: StreamStats): void {
  stats = next;
  (window as unknown as { __ticketflow?: StreamStats }).__ticketflow = stats;
  for (const l of [...listeners]) l();
}
publish(stats);

export function useStreamStats(): StreamStats {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => stats,
  );
}

/** Counts a project's ticket messages (shares the socket of the board's view). */
export function useTicketStreamStats(client: TicketflowClient, projectId: Uuid): void {
  useEffect(() => {
    const handle = client.tickets(projectId);
    handle.on("state", ({ to }) => {
      if (to === "replaying") publish({ ...stats, replayed: 0 });
    });
    handle.on("message", (m) => {
      const seqs = [...(stats.ticketSeqs[projectId] ?? []), m.seq];
      publish({
        replayed: handle.state === "replaying" ? stats.replayed + 1 : stats.replayed,
        ticketSeqs: { ...stats.ticketSeqs, [projectId]: seqs },
      });
    });
    return () => {
      handle.release();
    };
  }, [client, projectId]);
}
