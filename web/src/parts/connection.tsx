/** Live / reconnecting / replaying N: the worst state among the open channels. */
import { useConnectionState } from "@ticketflow/client/react";
import { useStreamStats } from "./stream_stats";

export function ConnectionIndicator() {
  const { state } = useConnectionState();
  const { replayed } = useStreamStats();
  const label =
    state === "live"
      ? "Live"
      : state === "replaying"
        ? `Replaying ${replayed}`
        : state === "reconnecting"
          ? "Reconnecting…"
          : state === "connecting"
            ? "Connecting…"
            : state === "closed"
              ? "Disconnected"
              : "Idle";
  return (
    <span className={`conn conn-${state}`} data-testid="connection" data-state={state} role="status" aria-live="polite" title="Connection to the server">
      <span className="dot" aria-hidden="true" />
      {label}
    </span>
  );
}
