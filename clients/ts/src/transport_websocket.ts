/**
 * The WebSocket transport is injected: browsers use the global `WebSocket`,
 * Node passes the `ws` package's class, tests pass a wrapper that can cut the
 * connection. Only the browser-standard surface below is used.
 */

/* Handlers are declared through a method so they are checked bivariantly,
   which lets both the DOM's WebSocket and `ws` fit without casts. */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

export interface MessageEventLike {
  data: unknown;
}

export interface CloseEventLike {
  code: number;
  reason: string;
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<MessageEventLike> | null;
  onclose: Handler<CloseEventLike> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

/** `WebSocket.OPEN` without depending on the constructor carrying the constant. */
export const OPEN = 1;

export function defaultWebSocket(): WebSocketConstructorLike {
  const ctor = (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
  if (!ctor) {
    throw new Error(
      "No global WebSocket: pass one, e.g. `new TicketflowClient({ baseUrl, WebSocket: (await import('ws')).WebSocket })`",
    );
  }
  return ctor;
}

/** http(s)://host/base + path → ws(s)://host/base/path?query */
export function socketUrl(baseUrl: string, path: string, query: Record<string, string | undefined>): string {
  const url = new URL(path, baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : url.protocol === "http:" ? "ws:" : url.protocol;
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}
