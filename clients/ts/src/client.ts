/**
 * `TicketflowClient`: the REST client, the token session and the channel
 * subscriptions of one user. Several consumers of one channel share one
 * socket: each gets a handle, and the socket closes when the last handle is
 * released.
 */

import { RestApi } from "./api.js";
import type { BackoffOptions } from "./backoff.js";
import type { CloseReason } from "./codes.js";
import { Emitter, type Listener } from "./emitter.js";
import { TicketflowError } from "./errors.js";
import { type FetchLike, Http } from "./http.js";
import { MemoryPositionStore, type PositionStore } from "./position_store.js";
import { Session, type SessionEvents, type SessionTokens } from "./session.js";
import {
  type ChannelSpec,
  type ProbeResult,
  Subscription,
  type SubscriptionEvents,
  type SubscriptionState,
  channelKey,
} from "./subscription.js";
import { type WebSocketConstructorLike, defaultWebSocket } from "./transport_websocket.js";
import type { ChannelKind, TokenPair, Uuid } from "./types.js";

export interface ClientOptions {
  /** Where the server is, e.g. `http://localhost:8000` (or `location.origin`). */
  baseUrl: string;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike;
  /** Defaults to the global `WebSocket`; in Node pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructorLike;
  /** Keeps the last seq per channel; memory by default, `sessionStoragePositionStore()` to survive reloads. */
  positionStore?: PositionStore;
  /** Reconnect backoff (full jitter): base 500 ms, cap 20 s by default. */
  backoff?: BackoffOptions;
  /** Refresh the access token this long before it expires (default 60 s). */
  refreshLeewayMs?: number;
  /** Client ping period (default 25 s; 0 disables). */
  pingIntervalMs?: number;
  /** Drop a connection silent this long after a ping (default 10 s). */
  pongTimeoutMs?: number;
  /** Tokens to start with (e.g. restored after a reload). */
  tokens?: SessionTokens | TokenPair;
  /** How often `presence.typing()` may send per ticket (default 2 s). */
  typingThrottleMs?: number;
}

/** The worst state among the open subscriptions; `idle` when there are none. */
export type ConnectionState = SubscriptionState | "idle";

export interface ConnectionSummary {
  state: ConnectionState;
  /** Each subscription's state by channel key (`tickets:<pid>`, `notifications`, `presence:<pid>`). */
  channels: Readonly<Record<string, SubscriptionState>>;
}

export interface ClientEvents extends SessionEvents {
  connection: ConnectionSummary;
}

/** One consumer's hold on a shared channel subscription. */
export interface ChannelHandle<K extends ChannelKind> {
  readonly kind: K;
  readonly projectId: Uuid | undefined;
  readonly key: string;
  readonly state: SubscriptionState;
  readonly closeReason: CloseReason | undefined;
  readonly lastSeq: number | undefined;
  /** Adds a listener; removed by the returned function or by `release()`. */
  on<E extends keyof SubscriptionEvents<K>>(event: E, listener: Listener<SubscriptionEvents<K>[E]>): () => void;
  /** Gives up this hold (idempotent); the socket closes with the last one. */
  release(): void;
  /** Drops the socket as a network failure would (it resumes by itself). For tests and diagnostics. */
  dropConnection(): void;
}

export interface PresenceHandle extends ChannelHandle<"presence"> {
  /** Tells the others which ticket this user views (null: none). Re-sent after every reconnect. */
  setViewing(ticketId: Uuid | null): void;
  /** Tells the others this user types on a ticket; throttled per ticket. */
  typing(ticketId: Uuid): void;
}

const STATE_RANK: Record<SubscriptionState, number> = { reconnecting: 0, connecting: 1, replaying: 2, live: 3, closed: 4 };

interface Shared<K extends ChannelKind> {
  sub: Subscription<K>;
  refs: number;
  viewing?: Uuid | null;
  lastTyping: Map<Uuid, number>;
}

export class TicketflowClient extends Emitter<ClientEvents> {
  readonly session: Session;
  readonly api: RestApi;
  private readonly http: Http;
  private readonly shared = new Map<string, Shared<ChannelKind>>();
  private readonly positions: PositionStore;
  private summary: ConnectionSummary = { state: "idle", channels: {} };
  private disposed = false;

  constructor(private readonly options: ClientOptions) {
    super();
    const fetchImpl: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.session = new Session({
      refresh: async (refresh_token) =>
        (await this.http.json<TokenPair>({ method: "POST", path: "/api/auth/refresh", body: { refresh_token }, auth: false }))
          .data,
      ...(options.refreshLeewayMs === undefined ? {} : { refreshLeewayMs: options.refreshLeewayMs }),
    });
    this.http = new Http(options.baseUrl, fetchImpl, this.session);
    this.api = new RestApi(this.http, this.session);
    this.positions = options.positionStore ?? new MemoryPositionStore();
    this.session.on("tokens", (t) => this.emit("tokens", t));
    this.session.on("sessionEnded", (e) => {
      // Every socket belongs to the user whose session ended.
      for (const { sub } of [...this.shared.values()]) sub.close("session_ended");
      this.emit("sessionEnded", e);
    });
    if (options.tokens) this.session.set(options.tokens);
  }

  /** The project's ticket and comment changes. */
  tickets(projectId: Uuid): ChannelHandle<"tickets"> {
    return this.handle(this.acquire({ kind: "tickets", projectId }));
  }

  /** The current user's notifications (and `notifications_read` from every tab). */
  notifications(): ChannelHandle<"notifications"> {
    return this.handle(this.acquire({ kind: "notifications", projectId: undefined }));
  }

  /** Who is online in the project, viewing and typing what. */
  presence(projectId: Uuid): PresenceHandle {
    const shared = this.acquire({ kind: "presence", projectId });
    const base = this.handle(shared);
    const throttle = this.options.typingThrottleMs ?? 2000;
    return Object.assign(base, {
      setViewing: (ticketId: Uuid | null) => {
        // Already announced (or to be, on connecting): nothing new to tell the others.
        if (shared.viewing === ticketId) return;
        shared.viewing = ticketId;
        shared.sub.send({ type: "viewing", ticket_id: ticketId });
      },
      typing: (ticketId: Uuid) => {
        const now = Date.now();
        const last = shared.lastTyping.get(ticketId);
        if (last !== undefined && now - last < throttle) return;
        if (shared.sub.send({ type: "typing", ticket_id: ticketId })) shared.lastTyping.set(ticketId, now);
      },
    });
  }

  get connection(): ConnectionSummary {
    return this.summary;
  }

  /** Closes every subscription and stops timers. The client is unusable afterwards. */
  close(): void {
    this.disposed = true;
    for (const { sub } of [...this.shared.values()]) sub.close("unsubscribed");
    this.shared.clear();
    this.updateSummary();
    this.session.dispose();
  }

  private acquire<K extends ChannelKind>(spec: ChannelSpec & { kind: K }): Shared<K> {
    if (this.disposed) throw new TicketflowError({ status: 0, code: "client_closed", message: "client was closed" });
    const key = channelKey(spec);
    const existing = this.shared.get(key) as Shared<K> | undefined;
    if (existing && existing.sub.state !== "closed") {
      existing.refs += 1;
      return existing;
    }
    const sub = new Subscription<K>(spec, {
      baseUrl: this.options.baseUrl,
      WebSocket: this.options.WebSocket ?? defaultWebSocket(),
      session: this.session,
      positions: this.positions,
      backoff: this.options.backoff ?? {},
      pingIntervalMs: this.options.pingIntervalMs ?? 25_000,
      pongTimeoutMs: this.options.pongTimeoutMs ?? 10_000,
      probe: (s) => this.probe(s),
    });
    const shared: Shared<K> = { sub, refs: 1, lastTyping: new Map() };
    sub.on("state", ({ to }) => {
      // Presence is not replayed: restate what this user views on every new connection.
      if (to === "live" && shared.viewing !== undefined) sub.send({ type: "viewing", ticket_id: shared.viewing });
      this.updateSummary();
    });
    this.shared.set(key, shared);
    sub.start();
    this.updateSummary();
    return shared;
  }

  private handle<K extends ChannelKind>(shared: Shared<K>): ChannelHandle<K> {
    const sub = shared.sub;
    const offs = new Set<() => void>();
    let released = false;
    return {
      kind: sub.spec.kind,
      projectId: sub.spec.projectId,
      key: sub.key,
      get state() {
        return sub.state;
      },
      get closeReason() {
        return sub.closeReason;
      },
      get lastSeq() {
        return sub.lastSeq;
      },
      on: (event, listener) => {
        const off = sub.on(event, listener);
        offs.add(off);
        return () => {
          off();
          offs.delete(off);
        };
      },
      release: () => {
        if (released) return;
        released = true;
        shared.refs -= 1;
        if (shared.refs <= 0) {
          // Closed before the listeners go, so the last holder hears `closed`.
          sub.close("unsubscribed");
          if (this.shared.get(sub.key) === (shared as unknown as Shared<ChannelKind>)) this.shared.delete(sub.key);
          this.updateSummary();
        }
        for (const off of offs) off();
        offs.clear();
      },
      dropConnection: () => sub.dropConnection(),
    };
  }

  /** Finds out over REST why a handshake was refused. */
  private async probe(spec: ChannelSpec): Promise<ProbeResult> {
    try {
      if (spec.projectId === undefined) await this.api.auth.me();
      else await this.api.projects.get(spec.projectId);
      return "retry";
    } catch (err) {
      if (!(err instanceof TicketflowError)) return "retry";
      if (err.status === 403) return "forbidden";
      if (err.status === 404) return "not_found";
      if (err.code === "no_session" || (err.status === 401 && !this.session.tokens)) return "session_ended";
      return "retry";
    }
  }

  private updateSummary(): void {
    const channels: Record<string, SubscriptionState> = {};
    let worst: ConnectionState = "idle";
    for (const [key, { sub }] of this.shared) {
      channels[key] = sub.state;
      if (worst === "idle" || STATE_RANK[sub.state] < STATE_RANK[worst]) worst = sub.state;
    }
    const changed =
      worst !== this.summary.state ||
      Object.keys(channels).length !== Object.keys(this.summary.channels).length ||
      Object.entries(channels).some(([k, v]) => this.summary.channels[k] !== v);
    if (!changed) return;
    this.summary = { state: worst, channels };
    this.emit("connection", this.summary);
  }
}
