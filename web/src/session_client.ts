/**
 * The page's client and where its tokens live.
 *
 * Tokens are kept in sessionStorage, not localStorage and not only in memory:
 * a reload must resume the session and the streams (the stream positions are
 * in sessionStorage too, so a reload replays only what it missed), while
 * sessionStorage stays per tab (two users in two tabs do not clash) and is
 * gone when the tab closes, which keeps the 30-day refresh token from lying
 * around on disk for other tabs or later visitors.
 */
import { TicketflowClient, sessionStoragePositionStore, type SessionTokens } from "@ticketflow/client";

const TOKENS_KEY = "ticketflow:tokens";
const API_KEY = "ticketflow:api";

function restoreTokens(): SessionTokens | undefined {
  try {
    const raw = sessionStorage.getItem(TOKENS_KEY);
    if (!raw) return undefined;
    const parsed = JSON.parse(raw) as Partial<SessionTokens>;
    if (typeof parsed.accessToken === "string" && typeof parsed.refreshToken === "string" && typeof parsed.expiresAt === "number") {
      return { accessToken: parsed.accessToken, refreshToken: parsed.refreshToken, expiresAt: parsed.expiresAt };
    }
  } catch {
    // Unreadable storage: start logged out.
  }
  return undefined;
}

/**
 * The API's origin: this page's own, unless the page was opened with
 * `?api=<origin>` (an app served from another origin, allowed by the server's
 * CORS_ORIGINS); remembered for the tab.
 */
export function apiBaseUrl(): string {
  const fromQuery = new URLSearchParams(location.search).get("api");
  if (fromQuery) {
    try {
      const origin = new URL(fromQuery).origin;
      sessionStorage.setItem(API_KEY, origin);
      return origin;
    } catch {
      // Not a URL: ignore it.
    }
  }
  return sessionStorage.getItem(API_KEY) ?? location.origin;
}

export function createAppClient(): TicketflowClient {
  const tokens = restoreTokens();
  const positionStore = sessionStoragePositionStore();
  const client = new TicketflowClient({
    baseUrl: apiBaseUrl(),
    ...(positionStore ? { positionStore } : {}),
    ...(tokens ? { tokens } : {}),
  });
  client.on("tokens", (t) => {
    if (t) sessionStorage.setItem(TOKENS_KEY, JSON.stringify(t));
    else sessionStorage.removeItem(TOKENS_KEY);
  });
  return client;
}
