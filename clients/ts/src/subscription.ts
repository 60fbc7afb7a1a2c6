/**
 * One channel subscription (tickets, notifications or presence of one
 * project) and its socket, as an explicit state machine:
 *
 *   connecting ─► replaying ─► live ─► reconnecting ─► replaying ─► live ...
 *        │            │          │          │
 *        └────────────┴──────────┴──────────┴──► closed (unsubscribed | forbidden | not_found | session_ended)
 *
 * (`connecting`/`reconnecting` go straight to `live` when there is nothing to
 * replay: a first connection without a stored position, or presence.)
 *
 * Invariants kept here:
 * - a seq that was emitted is never emitted again (`seq <= lastSeq` is dropped);
 * - no seq is skipped: a jump (`seq > lastSeq + 1`) reopens the socket with
 *   `since = lastSeq` instead of emitting past the hole;
 * - `lastSeq` is written to the position store after each emission, so a
 *   reload resumes where the app really was.
 */

import { Backoff, type BackoffOptions } from "./backoff.js";
import { CloseCode, actionForClose, type CloseReason } from "./codes.js";
import { Emitter } from "./emitter.js";
import { TicketflowError } from "./errors.js";
import { isRecord } from "./http.js";
import type { PositionStore } from "./position_store.js";
import { unrefTimer, type Session } from "./session.js";
import { OPEN, socketUrl, type WebSocketConstructorLike, type WebSocketLike } from "./transport_websocket.js";
import type { ChannelKind, ChannelMessages, ServerError, ServerMessage } from "./types.js";

export type SubscriptionState = "connecting" | "replaying" | "live" | "reconnecting" | "closed";

export interface StateChange {
  from: SubscriptionState;
  to: SubscriptionState;
  /** Set when `to` is `closed`. */
  reason?: CloseReason;
  /** The close code of the socket that ended, when a socket ended. */
  code?: number;
}

export interface SubscriptionEvents<K extends ChannelKind> {
  state: StateChange;
  /** A channel message, in seq order, each seq once. During replay `state` is `replaying`. */
  message: ChannelMessages[K];
  /** History could not be replayed: refetch what you show over REST. `seq` is the new position. */
  resync: { seq: number };
  /** The server answered `{"type":"error"}` to something this client sent. */
  error: ServerError;
}

/** What a handshake failure turned out to be, found out over REST (browsers hide the HTTP status). */
export type ProbeResult = "retry" | "forbidden" | "not_found" | "session_ended";

export interface ChannelSpec {
  kind: ChannelKind;
  projectId: string | undefined;
}

export interface SubscriptionContext {
  baseUrl: string;
  WebSocket: WebSocketConstructorLike;
  session: Session;
  positions: PositionStore;
  backoff: BackoffOptions;
  /** Client pings this often (ms) to notice a dead connection. */
  pingIntervalMs: number;
  /** A connection silent this long after a ping is dropped and resumed. */
  pongTimeoutMs: number;
  probe: (spec: ChannelSpec) => Promise<ProbeResult>;
}

export function channelPath(spec: ChannelSpec): string {
  switch (spec.kind) {
    case "notifications":
      return "/ws/notifications/";
    case "tickets":
      return `/ws/projects/${encodeURIComponent(spec.projectId ?? "")}/tickets/`;
    case "presence":
      return `/ws/projects/${encodeURIComponent(spec.projectId ?? "")}/presence/`;
  }
}

export function channelKey(spec: ChannelSpec): string {
  return spec.projectId === undefined ? spec.kind : `${spec.kind}:${spec.projectId}`;
}

/** One socket attempt; handlers of a superseded attempt check `generation` and do nothing. */
interface Attempt {
  generation: number;
  socket: WebSocketLike;
  token: string;
  opened: boolean;
  established: boolean;
}

export class Subscription<K extends ChannelKind> extends Emitter<SubscriptionEvents<K>> {
  readonly key: string;
  private stateValue: SubscriptionState = "connecting";
  private closeReasonValue: CloseReason | undefined;
  private seq: number | undefined;
  private attempt: Attempt | undefined;
  private generation = 0;
  private readonly backoff: Backoff;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongDeadline: number | undefined;
  private positionKey: string | undefined;

  constructor(
    readonly spec: ChannelSpec & { kind: K },
    private readonly ctx: SubscriptionContext,
  ) {
    super();
    this.key = channelKey(spec);
    this.backoff = new Backoff(ctx.backoff);
  }

  get state(): SubscriptionState {
    return this.stateValue;
  }

  /** Why the subscription closed (undefined until it has). */
  get closeReason(): CloseReason | undefined {
    return this.closeReasonValue;
  }

  /** The last seq emitted (or the head it started from); undefined on presence and before the first connection. */
  get lastSeq(): number | undefined {
    return this.seq;
  }

  private isClosed(): boolean {
    return this.stateValue === "closed";
  }

  get sequenced(): boolean {
    return this.spec.kind !== "presence";
  }

  /** Starts the first connection. */
  start(): void {
    void this.connect();
  }

  /** Ends the subscription for good. */
  close(reason: CloseReason): void {
    if (this.isClosed()) return;
    this.clearTimers();
    const attempt = this.attempt;
    this.attempt = undefined;
    this.generation += 1;
    if (attempt) closeQuietly(attempt.socket, CloseCode.Normal, reason);
    this.closeReasonValue = reason;
    this.transition("closed", { reason });
  }

  /** Sends a client message on the open socket; false when there is none. */
  send(message: Record<string, unknown>): boolean {
    const attempt = this.attempt;
    if (!attempt?.established || attempt.socket.readyState !== OPEN) return false;
    attempt.socket.send(JSON.stringify(message));
    return true;
  }

  /** Test and diagnostics hook: drops the current socket as a network failure would. */
  dropConnection(): void {
    const attempt = this.attempt;
    if (attempt) this.abandon(attempt, CloseCode.Abnormal);
  }

  // ---- connection ---------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.isClosed()) return;
    const generation = ++this.generation;
    let token: string;
    try {
      token = await this.ctx.session.accessToken();
    } catch (err) {
      if (generation !== this.generation || this.isClosed()) return;
      if (err instanceof TicketflowError && (err.code === "no_session" || (err.status >= 400 && err.status < 500))) {
        this.close("session_ended");
      } else {
        this.retry("backoff");
      }
      return;
    }
    if (generation !== this.generation || this.isClosed()) return;

    if (this.sequenced && this.seq === undefined) {
      // A reload resumes from the stored position instead of the channel head.
      this.positionKey = `${this.ctx.session.userId ?? "anonymous"}:${this.key}`;
      this.seq = this.ctx.positions.get(this.positionKey);
    }
    const since = this.sequenced && this.seq !== undefined ? String(this.seq) : undefined;
    const url = socketUrl(this.ctx.baseUrl, channelPath(this.spec), { token, since });
    let socket: WebSocketLike;
    try {
      socket = new this.ctx.WebSocket(url);
    } catch {
      this.retry("backoff");
      return;
    }
    const attempt: Attempt = { generation, socket, token, opened: false, established: false };
    this.attempt = attempt;
    socket.onopen = () => {
      if (attempt.generation !== this.generation) return;
      attempt.opened = true;
      this.startPing(attempt);
    };
    socket.onmessage = (event) => {
      if (attempt.generation !== this.generation) return;
      this.pongDeadline = undefined;
      if (typeof event.data !== "string") return;
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (isRecord(message) && typeof message.type === "string") this.handle(attempt, message as unknown as ServerMessage);
    };
    socket.onclose = (event) => {
      if (attempt.generation !== this.generation) return;
      this.ended(attempt, event.code);
    };
    socket.onerror = () => {
      // A close event always follows; the decision is made there.
    };
  }

  private handle(attempt: Attempt, message: ServerMessage): void {
    switch (message.type) {
      case "connection_established": {
        attempt.established = true;
        if (!this.sequenced) {
          this.becomeLive();
        } else if (this.seq === undefined) {
          // Fresh start: live from the head, nothing before it is ours to emit.
          this.setSeq(message.seq ?? 0);
          this.becomeLive();
        } else {
          this.transition("replaying");
        }
        return;
      }
      case "replay_complete":
        if (this.stateValue === "replaying") this.becomeLive();
        return;
      case "resync_required":
        // The gap cannot be replayed: the app refetches, and the stream goes on from the head.
        this.setSeq(message.seq);
        this.emit("resync", { seq: message.seq });
        if (this.stateValue !== "live") this.becomeLive();
        return;
      case "pong":
        return;
      case "error":
        this.emit("error", message);
        return;
      case "ticket_update":
      case "comment_added":
      case "notification_message":
        this.sequencedMessage(attempt, message);
        return;
      case "notifications_read":
      case "presence_state":
      case "user_status":
      case "ticket_viewing":
      case "user_typing":
        this.emit("message", message as ChannelMessages[K]);
        return;
      default: {
        // Message types added after this client was written are ignored.
        ignoreUnknown(message);
        return;
      }
    }
  }

  private sequencedMessage(attempt: Attempt, message: ServerMessage & { seq: number }): void {
    const last = this.seq ?? 0;
    if (message.seq <= last) return; // already emitted: never twice
    if (message.seq > last + 1) {
      // A hole: resume from what was really emitted rather than skip past it.
      this.abandon(attempt, CloseCode.ClientGap);
      return;
    }
    this.setSeq(message.seq);
    this.emit("message", message as ChannelMessages[K]);
  }

  /** Stops listening to `attempt`, closes it, and reacts as if it had closed with `code`. */
  private abandon(attempt: Attempt, code: number): void {
    this.generation += 1;
    closeQuietly(attempt.socket, code === CloseCode.Abnormal ? CloseCode.Normal : code, "client");
    this.ended(attempt, code);
  }

  private ended(attempt: Attempt, code: number): void {
    this.stopPing();
    this.attempt = undefined;
    this.generation += 1;
    if (this.isClosed()) return;
    if (!attempt.established) {
      // Browsers hide a refused handshake's status (401/403/404): ask over REST why.
      void this.diagnose(code);
      return;
    }
    switch (actionForClose(code)) {
      case "resume_now":
        this.retry("now", code);
        return;
      case "refresh_then_resume":
        void this.refreshThenResume(attempt, code);
        return;
      case "stop":
        this.closeFor("forbidden", code);
        return;
      case "resume_with_backoff":
        this.retry("backoff", code);
        return;
    }
  }

  private async refreshThenResume(attempt: Attempt, code: number): Promise<void> {
    this.transition("reconnecting", { code });
    const generation = this.generation;
    try {
      // Another socket may have refreshed already; then the current token is new and good.
      if (this.ctx.session.tokens?.accessToken === attempt.token) await this.ctx.session.refresh();
    } catch {
      // A refusal ends the session (the client closes every subscription); a network error retries.
      if (generation === this.generation && !this.isClosed()) this.retry("backoff", code);
      return;
    }
    if (generation === this.generation && !this.isClosed()) this.retry("now", code);
  }

  private async diagnose(code: number): Promise<void> {
    this.transition(this.stateValue === "connecting" ? "connecting" : "reconnecting", { code });
    const generation = this.generation;
    let result: ProbeResult;
    try {
      result = await this.ctx.probe(this.spec);
    } catch {
      result = "retry";
    }
    if (generation !== this.generation || this.isClosed()) return;
    if (result === "retry") this.retry("backoff", code);
    else this.closeFor(result, code);
  }

  private retry(mode: "now" | "backoff", code?: number): void {
    if (this.isClosed()) return;
    if (this.stateValue !== "connecting") this.transition("reconnecting", code === undefined ? {} : { code });
    const delay = mode === "now" ? 0 : this.backoff.next();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }

  private closeFor(reason: CloseReason, code: number): void {
    this.clearTimers();
    this.closeReasonValue = reason;
    this.transition("closed", { reason, code });
  }

  private becomeLive(): void {
    this.backoff.reset();
    this.transition("live");
  }

  private setSeq(seq: number): void {
    this.seq = seq;
    if (this.positionKey !== undefined) this.ctx.positions.set(this.positionKey, seq);
  }

  private transition(to: SubscriptionState, extra: { reason?: CloseReason; code?: number } = {}): void {
    const from = this.stateValue;
    if (from === to || from === "closed") return;
    this.stateValue = to;
    this.emit("state", { from, to, ...extra });
  }

  // ---- liveness -----------------------------------------------------------

  private startPing(attempt: Attempt): void {
    this.stopPing();
    if (this.ctx.pingIntervalMs <= 0) return;
    this.pingTimer = setInterval(() => {
      if (attempt.generation !== this.generation) return;
      const now = Date.now();
      if (this.pongDeadline !== undefined && now > this.pongDeadline) {
        this.abandon(attempt, CloseCode.ClientPingTimeout);
        return;
      }
      if (attempt.socket.readyState === OPEN) {
        attempt.socket.send(JSON.stringify({ type: "ping", timestamp: now }));
        this.pongDeadline ??= now + this.ctx.pongTimeoutMs;
      }
    }, this.ctx.pingIntervalMs);
    unrefTimer(this.pingTimer);
  }

  private stopPing(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.pongDeadline = undefined;
  }

  private clearTimers(): void {
    this.stopPing();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

/** Exhaustiveness: every known message type is handled above; types added later are ignored. */
function ignoreUnknown(message: never): void {
  return message;
}

function closeQuietly(socket: WebSocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closed or never opened: nothing left to release.
  }
}
