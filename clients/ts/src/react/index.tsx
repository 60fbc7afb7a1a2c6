/**
 * React bindings: a provider for one `TicketflowClient`, and hooks that
 * subscribe to the framework-free views of the core. Nothing here keeps state
 * of its own beyond which view is mounted.
 */

import { type ReactNode, createContext, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore } from "react";
import type { ConnectionSummary, TicketflowClient } from "../client.js";
import type { Notification, Uuid } from "../types.js";
import {
  NotificationsView,
  type NotificationsSnapshot,
  PresenceView,
  type PresenceSnapshot,
  type TicketListOptions,
  type TicketListSnapshot,
  TicketListView,
} from "../views.js";

const ClientContext = createContext<TicketflowClient | null>(null);

export interface TicketflowProviderProps {
  client: TicketflowClient;
  children?: ReactNode;
}

/** Makes `client` available to the hooks below. The app owns the client (create it once, outside render). */
export function TicketflowProvider({ client, children }: TicketflowProviderProps): ReactNode {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

export function useTicketflowClient(): TicketflowClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error("useTicketflowClient: no <TicketflowProvider> above this component");
  return client;
}

/** The worst state among open channels (`idle` when none), and each channel's state. */
export function useConnectionState(): ConnectionSummary {
  const client = useTicketflowClient();
  return useSyncExternalStore(
    (onChange) => client.on("connection", onChange),
    () => client.connection,
    () => client.connection,
  );
}

interface ViewLike<S> {
  getSnapshot(): S;
  subscribe(listener: () => void): () => void;
  stop(): void;
}

/** Mounts a view for the lifetime of `deps`, and reads its snapshot. */
function useView<V extends ViewLike<S>, S>(create: () => V, initial: S, deps: readonly unknown[]): [S, V | null] {
  const [view, setView] = useState<V | null>(null);
  useEffect(() => {
    const v = create();
    setView(v);
    return () => {
      v.stop();
      setView(null);
    };
  }, deps);
  const snapshot = useSyncExternalStore(
    (onChange) => (view ? view.subscribe(onChange) : () => undefined),
    () => (view ? view.getSnapshot() : initial),
    () => initial,
  );
  return [snapshot, view];
}

const EMPTY_TICKETS: TicketListSnapshot = { tickets: [], state: "connecting", loading: true, error: undefined };

export interface TicketStream extends TicketListSnapshot {
  /** Refetches the REST list. */
  refetch: () => void;
}

/** The project's tickets, starting from the REST list and kept current from the stream. */
export function useTicketStream(projectId: Uuid, options: TicketListOptions = {}): TicketStream {
  const client = useTicketflowClient();
  const max = options.maxTickets;
  const [snapshot, view] = useView(
    () => new TicketListView(client, projectId, max === undefined ? {} : { maxTickets: max }),
    EMPTY_TICKETS,
    [client, projectId, max],
  );
  return { ...snapshot, refetch: () => void view?.load() };
}

const EMPTY_NOTIFICATIONS: NotificationsSnapshot = { items: [], unreadCount: 0, state: "connecting", loading: true, error: undefined };

export interface UseNotificationsOptions {
  /** Called once per notification that arrives live (not for the initial list or a replay): toasts. */
  onNotification?: (notification: Notification) => void;
}

export interface NotificationsState extends NotificationsSnapshot {
  markRead: (id: Uuid) => Promise<void>;
  markAllRead: () => Promise<void>;
}

export function useNotifications(options: UseNotificationsOptions = {}): NotificationsState {
  const client = useTicketflowClient();
  const [snapshot, view] = useView(() => new NotificationsView(client), EMPTY_NOTIFICATIONS, [client]);
  // The latest callback, without remounting the view when the app passes a new closure.
  const callback = useRef(options.onNotification);
  callback.current = options.onNotification;
  useEffect(() => view?.onNotification((n) => callback.current?.(n)), [view]);
  return {
    ...snapshot,
    markRead: (id) => (view ? view.markRead(id) : Promise.resolve()),
    markAllRead: () => (view ? view.markAllRead() : Promise.resolve()),
  };
}

const EMPTY_PRESENCE: PresenceSnapshot = { users: [], state: "connecting" };

export interface PresenceState extends PresenceSnapshot {
  setViewing: (ticketId: Uuid | null) => void;
  /** Throttled: call it on every keystroke. */
  setTyping: (ticketId: Uuid) => void;
}

export function usePresence(projectId: Uuid): PresenceState {
  const client = useTicketflowClient();
  const [snapshot, view] = useView(() => new PresenceView(client, projectId), EMPTY_PRESENCE, [client, projectId]);
  // Stable across renders: screens announce what they view from an effect that depends on
  // these, and a new function per render would re-run it (and re-send) on every presence update.
  const setViewing = useCallback((ticketId: Uuid | null) => view?.setViewing(ticketId), [view]);
  const setTyping = useCallback((ticketId: Uuid) => view?.setTyping(ticketId), [view]);
  return { ...snapshot, setViewing, setTyping };
}

export type { ConnectionSummary, ConnectionState } from "../client.js";
export type { TicketSummary, PresenceMember, TicketListSnapshot, NotificationsSnapshot, PresenceSnapshot } from "../views.js";
