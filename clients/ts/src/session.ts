/**
 * The token session: holds the access/refresh pair, refreshes the access token
 * before it expires (from `expires_in`), makes concurrent callers share one
 * refresh (refresh tokens are single-use: two parallel refreshes with one token
 * would revoke the whole family), and ends cleanly when a refresh is refused.
 */

import { Emitter } from "./emitter.js";
import { TicketflowError } from "./errors.js";
import { ErrorCode } from "./codes.js";
import type { TokenPair } from "./types.js";

export interface SessionTokens {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms at which the access token expires, computed from `expires_in` on receipt. */
  expiresAt: number;
}

export type SessionEndReason = "refresh_refused" | "logged_out";

export interface SessionEvents {
  /** New tokens (after login or refresh), or null once the session ended. Persist them if you want. */
  tokens: SessionTokens | null;
  /** The session is over: route the user to the login screen (unless `logged_out` by the app itself). */
  sessionEnded: { reason: SessionEndReason; error?: TicketflowError };
}

export interface SessionOptions {
  /** Calls POST /api/auth/refresh. */
  refresh: (refreshToken: string) => Promise<TokenPair>;
  /** Refresh this long before expiry (default 60 s; at most half the token's lifetime). */
  refreshLeewayMs?: number;
  now?: () => number;
}

export class Session extends Emitter<SessionEvents> {
  private current: SessionTokens | null = null;
  private inflight: Promise<string> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly leewayMs: number;
  private readonly now: () => number;

  constructor(private readonly options: SessionOptions) {
    super();
    this.leewayMs = options.refreshLeewayMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  get tokens(): SessionTokens | null {
    return this.current;
  }

  /** The user id (`sub`) of the current access token, read without verifying it. */
  get userId(): string | undefined {
    return this.current ? jwtSubject(this.current.accessToken) : undefined;
  }

  /** Installs tokens from a login or refresh response, or restored ones. */
  set(tokens: TokenPair | SessionTokens): void {
    const next: SessionTokens =
      "access_token" in tokens
        ? {
            accessToken: tokens.access_token,
            refreshToken: tokens.refresh_token,
            expiresAt: this.now() + tokens.expires_in * 1000,
          }
        : { ...tokens };
    const lifetime = Math.max(0, next.expiresAt - this.now());
    this.current = next;
    this.schedule(lifetime);
    this.emit("tokens", next);
  }

  /** A usable access token: the current one, or a refreshed one when it is about to expire. */
  async accessToken(): Promise<string> {
    const tokens = this.current;
    if (!tokens) throw noSession();
    if (this.now() < tokens.expiresAt - 1000) return tokens.accessToken;
    return this.refresh();
  }

  /**
   * Refreshes the pair. Every caller during one refresh gets the same promise.
   * A refusal (4xx) ends the session; a network failure only rejects.
   */
  refresh(): Promise<string> {
    if (this.inflight) return this.inflight;
    const tokens = this.current;
    if (!tokens) return Promise.reject(noSession());
    this.inflight = (async () => {
      try {
        const pair = await this.options.refresh(tokens.refreshToken);
        // The session may have ended (logout) while the request was in flight.
        if (this.current !== tokens) throw noSession();
        this.set(pair);
        return pair.access_token;
      } catch (err) {
        if (err instanceof TicketflowError && err.status >= 400 && err.status < 500 && this.current === tokens) {
          this.end("refresh_refused", err);
        }
        throw err;
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** Ends the session: drops the tokens and tells listeners. */
  end(reason: SessionEndReason, error?: TicketflowError): void {
    if (!this.current) return;
    this.current = null;
    this.clearTimer();
    this.emit("tokens", null);
    this.emit("sessionEnded", error ? { reason, error } : { reason });
  }

  /** Stops the refresh timer (the client is being disposed). */
  dispose(): void {
    this.clearTimer();
  }

  private schedule(lifetimeMs: number): void {
    this.clearTimer();
    const leeway = Math.min(this.leewayMs, lifetimeMs / 2);
    const delay = Math.max(0, lifetimeMs - leeway);
    this.timer = setTimeout(() => {
      this.refresh().catch(() => {
        // A network failure: try again shortly, while the token may still be valid.
        if (this.current) this.schedule(Math.max(0, Math.min(10_000, this.current.expiresAt - this.now())));
      });
    }, delay);
    unrefTimer(this.timer);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function noSession(): TicketflowError {
  return new TicketflowError({ status: 0, code: ErrorCode.NoSession, message: "not logged in" });
}

/** Node keeps a process alive for a pending timer; a background refresh must not. */
export function unrefTimer(timer: unknown): void {
  const t = timer as { unref?: () => void };
  if (typeof t.unref === "function") t.unref();
}

/** Reads `sub` from a JWT payload (base64url JSON). Never used for trust, only for keys. */
export function jwtSubject(token: string): string | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json: unknown = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    if (typeof json === "object" && json !== null && "sub" in json && typeof json.sub === "string") return json.sub;
  } catch {
    // Not a JWT we can read: no subject.
  }
  return undefined;
}
