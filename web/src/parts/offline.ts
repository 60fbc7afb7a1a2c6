/**
 * When the browser says it went offline, drop the channels' sockets at once:
 * a socket on a dead network can look open for a long time (until the ping
 * times out), and the connection indicator should say "reconnecting" now.
 * The client then resumes each channel with `since` by itself, so what was
 * missed is replayed, once, when the network is back.
 */
import { useEffect } from "react";
import type { TicketflowClient } from "@ticketflow/client";

function dropAll(client: TicketflowClient): void {
  for (const key of Object.keys(client.connection.channels)) {
    const [kind, projectId] = key.split(":");
    const handle =
      kind === "notifications" ? client.notifications() : kind === "tickets" && projectId ? client.tickets(projectId) : kind === "presence" && projectId ? client.presence(projectId) : undefined;
    // A second hold on the shared socket: dropping it drops the one every holder uses.
    handle?.dropConnection();
    handle?.release();
  }
}

export function useDropSocketsWhenOffline(client: TicketflowClient): void {
  useEffect(() => {
    const onOffline = () => {
      dropAll(client);
    };
    window.addEventListener("offline", onOffline);
    return () => {
      window.removeEventListener("offline", onOffline);
    };
  }, [client]);
}
