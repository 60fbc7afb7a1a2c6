/**
 * Framework-free live views built on the client: a project's ticket list, the
 * user's notifications, a project's presence. Each keeps an immutable
 * snapshot and notifies subscribers, the shape `useSyncExternalStore` wants;
 * the React hooks are thin wrappers around them.
 */

import type { ChannelHandle, PresenceHandle, TicketflowClient } from "./client.js";
import type { SubscriptionState } from "./subscription.js";
import { unrefTimer } from "./session.js";
import type { Notification, NotificationChannelMessage, Priority, Status, Ticket, TicketChannelMessage, UserRef, Uuid } from "./types.js";

abstract class View<S> {
  protected snapshot: S;
  private readonly listeners = new Set<() => void>();

  constructor(initial: S) {
    this.snapshot = initial;
  }

  readonly getSnapshot = (): S => this.snapshot;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  protected update(patch: Partial<S>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const l of [...this.listeners]) l();
  }

  abstract stop(): void;
}

// ---- tickets ----------------------------------------------------------------

/** What both the REST ticket and the stream's `ticket_update.data` carry. */
export interface TicketSummary {
  id: Uuid;
  key: string;
  number: number;
  title: string;
  status: Status;
  priority: Priority;
  assignee: UserRef | null;
  version: number;
}

export interface TicketListSnapshot {
  tickets: TicketSummary[];
  state: SubscriptionState;
  /** True until the first REST page arrived (and again while a resync refetches). */
  loading: boolean;
  error: Error | undefined;
}

export interface TicketListOptions {
  /** Most tickets loaded over REST (pages of 200). Default 1000. */
  maxTickets?: number;
}

function summaryOfTicket(t: Ticket): TicketSummary {
  return { id: t.id, key: t.key, number: t.number, title: t.title, status: t.status, priority: t.priority, assignee: t.assignee, version: t.version };
}

function numberOfKey(key: string): number {
  const n = Number(key.slice(key.lastIndexOf("-") + 1));
  return Number.isFinite(n) ? n : 0;
}

/**
 * A project's ticket list, kept current from the tickets channel and starting
 * from the REST list. Messages arriving while the REST page loads are
 * buffered and applied after it; a ticket's `version` decides which of two
 * states is newer, so applying a message twice or late never goes backwards.
 * On `resync` the list is refetched.
 */
export class TicketListView extends View<TicketListSnapshot> {
  private readonly handle: ChannelHandle<"tickets">;
  private readonly byId = new Map<Uuid, TicketSummary>();
  /** Deleted ids with the version of their deletion, so a stale REST row cannot bring one back. */
  private readonly deleted = new Map<Uuid, number>();
  private buffer: TicketChannelMessage[] | null = [];
  private loadGeneration = 0;

  constructor(
    private readonly client: TicketflowClient,
    readonly projectId: Uuid,
    private readonly options: TicketListOptions = {},
  ) {
    super({ tickets: [], state: "connecting", loading: true, error: undefined });
    this.handle = client.tickets(projectId);
    this.handle.on("state", ({ to }) => this.update({ state: to }));
    this.handle.on("message", (m) => (this.buffer ? this.buffer.push(m) : this.apply(m)));
    this.handle.on("resync", () => void this.load());
    this.update({ state: this.handle.state });
    void this.load();
  }

  /** Refetches the REST list (what the app does on resync; done here automatically). */
  async load(): Promise<void> {
    const generation = ++this.loadGeneration;
    this.buffer ??= [];
    this.update({ loading: true, error: undefined });
    try {
      const max = this.options.maxTickets ?? 1000;
      const rows: Ticket[] = [];
      let after: string | undefined;
      do {
        const page = await this.client.api.tickets.list(this.projectId, after === undefined ? { limit: 200 } : { limit: 200, after });
        rows.push(...page.items);
        after = page.next_cursor ?? undefined;
      } while (after !== undefined && rows.length < max);
      if (generation !== this.loadGeneration) return;
      this.byId.clear();
      for (const t of rows) this.upsert(summaryOfTicket(t));
      for (const m of this.takeBuffer()) this.apply(m, false);
      this.publish({ loading: false });
    } catch (err) {
      if (generation !== this.loadGeneration) return;
      for (const m of this.takeBuffer()) this.apply(m, false);
      this.publish({ loading: false, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  stop(): void {
    this.loadGeneration += 1;
    this.handle.release();
  }

  /** Hands over what arrived during the load; from now on messages apply directly. */
  private takeBuffer(): TicketChannelMessage[] {
    const buffered = this.buffer;
    this.buffer = null;
    return buffered ?? [];
  }

  private apply(m: TicketChannelMessage, publish = true): void {
    switch (m.type) {
      case "ticket_update": {
        const d = m.data;
        if (m.action === "deleted") {
          this.deleted.set(d.ticket_id, d.version);
          this.byId.delete(d.ticket_id);
        } else {
          this.upsert({
            id: d.ticket_id,
            key: d.key,
            number: numberOfKey(d.key),
            title: d.title,
            status: d.status,
            priority: d.priority,
            assignee: d.assignee,
            version: d.version,
          });
        }
        break;
      }
      case "comment_added":
        return; // comments do not change the list's columns
    }
    if (publish) this.publish({});
  }

  private upsert(t: TicketSummary): void {
    if (this.deleted.has(t.id)) return;
    const known = this.byId.get(t.id);
    if (!known || known.version < t.version) this.byId.set(t.id, t);
  }

  private publish(patch: Partial<TicketListSnapshot>): void {
    const tickets = [...this.byId.values()].sort((a, b) => a.number - b.number);
    this.update({ ...patch, tickets });
  }
}

// ---- notifications ------------------------------------------------------------

export interface NotificationsSnapshot {
  items: Notification[];
  unreadCount: number;
  state: SubscriptionState;
  loading: boolean;
  error: Error | undefined;
}

/**
 * The user's notifications: the newest REST page, then the channel. New
 * notifications that arrive live (not replayed, not during the first load)
 * are also handed to `onNotification` listeners, e.g. for toasts.
 * `notifications_read` from any tab keeps the badge right.
 */
export class NotificationsView extends View<NotificationsSnapshot> {
  private readonly handle: ChannelHandle<"notifications">;
  private buffer: NotificationChannelMessage[] | null = [];
  private readonly toastListeners = new Set<(n: Notification) => void>();
  private loadGeneration = 0;

  constructor(
    private readonly client: TicketflowClient,
    private readonly pageSize = 50,
  ) {
    super({ items: [], unreadCount: 0, state: "connecting", loading: true, error: undefined });
    this.handle = client.notifications();
    this.handle.on("state", ({ to }) => this.update({ state: to }));
    this.handle.on("message", (m) => {
      if (this.buffer) this.buffer.push(m);
      else this.apply(m, this.handle.state === "live");
    });
    this.handle.on("resync", () => void this.load());
    this.update({ state: this.handle.state });
    void this.load();
  }

  /** Called for each notification that arrives live. Returns the unsubscribe function. */
  onNotification(listener: (n: Notification) => void): () => void {
    this.toastListeners.add(listener);
    return () => this.toastListeners.delete(listener);
  }

  async load(): Promise<void> {
    const generation = ++this.loadGeneration;
    this.buffer ??= [];
    this.update({ loading: true, error: undefined });
    try {
      const page = await this.client.api.notifications.list({ limit: this.pageSize });
      if (generation !== this.loadGeneration) return;
      this.update({ items: page.items, unreadCount: page.unread_count });
    } catch (err) {
      if (generation !== this.loadGeneration) return;
      this.update({ error: err instanceof Error ? err : new Error(String(err)) });
    }
    const buffered: NotificationChannelMessage[] = this.takeBuffer();
    for (const m of buffered) this.apply(m, false);
    this.update({ loading: false });
  }

  /** Marks one read (optimistically; the server's `notifications_read` confirms the count). */
  async markRead(id: Uuid): Promise<void> {
    const target = this.snapshot.items.find((n) => n.id === id);
    if (target && !target.read) {
      this.update({
        items: this.snapshot.items.map((n) => (n.id === id ? { ...n, read: true } : n)),
        unreadCount: Math.max(0, this.snapshot.unreadCount - 1),
      });
    }
    await this.client.api.notifications.markRead(id);
  }

  async markAllRead(): Promise<void> {
    this.update({ items: this.snapshot.items.map((n) => (n.read ? n : { ...n, read: true })), unreadCount: 0 });
    await this.client.api.notifications.markAllRead();
  }

  stop(): void {
    this.loadGeneration += 1;
    this.toastListeners.clear();
    this.handle.release();
  }

  private takeBuffer(): NotificationChannelMessage[] {
    const buffered = this.buffer;
    this.buffer = null;
    return buffered ?? [];
  }

  private apply(m: NotificationChannelMessage, live: boolean): void {
    switch (m.type) {
      case "notification_message": {
        if (this.snapshot.items.some((n) => n.id === m.data.id)) return;
        this.update({
          items: [m.data, ...this.snapshot.items],
          unreadCount: this.snapshot.unreadCount + (m.data.read ? 0 : 1),
        });
        if (live) for (const l of [...this.toastListeners]) l(m.data);
        return;
      }
      case "notifications_read": {
        const ids = m.ids;
        const isRead = ids === "all" ? () => true : (n: Notification) => ids.includes(n.id);
        this.update({
          items: this.snapshot.items.map((n) => (!n.read && isRead(n) ? { ...n, read: true } : n)),
          unreadCount: m.unread_count,
        });
        return;
      }
    }
  }
}

// ---- presence -------------------------------------------------------------------

export interface PresenceMember {
  userId: Uuid;
  username: string;
  viewingTicketId: Uuid | null;
  /** The ticket the user typed on within the last few seconds, if any. */
  typingTicketId: Uuid | null;
}

export interface PresenceSnapshot {
  users: PresenceMember[];
  state: SubscriptionState;
}

/** Who is in the project, viewing and typing what. Typing fades after `typingFadeMs` (5 s). */
export class PresenceView extends View<PresenceSnapshot> {
  private readonly handle: PresenceHandle;
  private readonly users = new Map<Uuid, PresenceMember>();
  private readonly typingTimers = new Map<Uuid, ReturnType<typeof setTimeout>>();

  constructor(
    client: TicketflowClient,
    readonly projectId: Uuid,
    private readonly typingFadeMs = 5000,
  ) {
    super({ users: [], state: "connecting" });
    this.handle = client.presence(projectId);
    this.handle.on("state", ({ to }) => this.update({ state: to }));
    this.handle.on("message", (m) => {
      switch (m.type) {
        case "presence_state":
          this.users.clear();
          for (const u of m.users) {
            this.users.set(u.user_id, { userId: u.user_id, username: u.username, viewingTicketId: u.viewing_ticket_id, typingTicketId: null });
          }
          break;
        case "user_status":
          if (m.action === "joined") {
            if (!this.users.has(m.user_id)) {
              this.users.set(m.user_id, { userId: m.user_id, username: m.username, viewingTicketId: null, typingTicketId: null });
            }
          } else {
            this.users.delete(m.user_id);
          }
          break;
        case "ticket_viewing":
          this.patchUser(m.user_id, m.username, { viewingTicketId: m.ticket_id });
          break;
        case "user_typing":
          this.patchUser(m.user_id, m.username, { typingTicketId: m.ticket_id });
          this.fadeTyping(m.user_id);
          break;
      }
      this.publish();
    });
    this.update({ state: this.handle.state });
  }

  setViewing(ticketId: Uuid | null): void {
    this.handle.setViewing(ticketId);
  }

  /** Throttled by the client (one message per ticket per 2 s by default). */
  setTyping(ticketId: Uuid): void {
    this.handle.typing(ticketId);
  }

  stop(): void {
    for (const t of this.typingTimers.values()) clearTimeout(t);
    this.typingTimers.clear();
    this.handle.release();
  }

  private patchUser(userId: Uuid, username: string, patch: Partial<PresenceMember>): void {
    const known = this.users.get(userId) ?? { userId, username, viewingTicketId: null, typingTicketId: null };
    this.users.set(userId, { ...known, ...patch });
  }

  private fadeTyping(userId: Uuid): void {
    clearTimeout(this.typingTimers.get(userId));
    const timer = setTimeout(() => {
      this.typingTimers.delete(userId);
      const u = this.users.get(userId);
      if (u) this.users.set(userId, { ...u, typingTicketId: null });
      this.publish();
    }, this.typingFadeMs);
    unrefTimer(timer);
    this.typingTimers.set(userId, timer);
  }

  private publish(): void {
    this.update({ users: [...this.users.values()].sort((a, b) => a.username.localeCompare(b.username)) });
  }
}
