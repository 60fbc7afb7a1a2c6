/**
 * HTTP plumbing under the REST client: URL building, auth header, the
 * contract's headers (If-Match, Idempotency-Key, X-Min-Position, X-Position,
 * ETag) and the mapping of error bodies to `TicketflowError`.
 */

import { ErrorCode } from "./codes.js";
import { TicketflowError } from "./errors.js";
import type { Session } from "./session.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type QueryValue = string | number | boolean | null | undefined;

export interface RequestOptions {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, QueryValue> | undefined;
  body?: unknown;
  /** Send the bearer token (every /api route but register/login/refresh). */
  auth?: boolean;
  minPosition?: number | undefined;
  ifMatch?: number | undefined;
  idempotencyKey?: string | undefined;
  accept?: string;
  signal?: AbortSignal | undefined;
}

export interface HttpResult<T> {
  data: T;
  status: number;
  /** `X-Position`: global position of the command's last event. */
  position: number | undefined;
  /** `ETag` as a version number. */
  etag: number | undefined;
  response: Response;
}

export class Http {
  constructor(
    readonly baseUrl: string,
    private readonly fetchImpl: FetchLike,
    private readonly session: Session,
  ) {}

  url(path: string, query?: Record<string, QueryValue>): string {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    }
    return url.toString();
  }

  /** Sends a request; a 401 on an authenticated call triggers one refresh and one retry. */
  async send(opts: RequestOptions): Promise<Response> {
    const auth = opts.auth ?? true;
    const token = auth ? await this.session.accessToken() : undefined;
    let response = await this.fetchOnce(opts, token);
    if (auth && response.status === 401) {
      // A 401 means the request was not executed, so repeating it is safe even for commands.
      const fresh = await this.session.refresh();
      response = await this.fetchOnce(opts, fresh);
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  async json<T>(opts: RequestOptions): Promise<HttpResult<T>> {
    const response = await this.send(opts);
    let data: T;
    if (response.status === 204) {
      data = undefined as T;
    } else {
      try {
        data = (await response.json()) as T;
      } catch (cause) {
        throw new TicketflowError({
          status: response.status,
          code: ErrorCode.UnexpectedResponse,
          message: "response body is not JSON",
          cause,
        });
      }
    }
    return {
      data,
      status: response.status,
      position: intHeader(response, "x-position"),
      etag: etagVersion(response.headers.get("etag")),
      response,
    };
  }

  private async fetchOnce(opts: RequestOptions, token: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { accept: opts.accept ?? "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    if (opts.minPosition !== undefined) headers["x-min-position"] = String(opts.minPosition);
    if (opts.ifMatch !== undefined) headers["if-match"] = `"${opts.ifMatch}"`;
    if (opts.idempotencyKey !== undefined) headers["idempotency-key"] = opts.idempotencyKey;
    const init: RequestInit = { method: opts.method, headers };
    if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
    if (opts.signal) init.signal = opts.signal;
    try {
      return await this.fetchImpl(this.url(opts.path, opts.query), init);
    } catch (cause) {
      if (opts.signal?.aborted) throw cause;
      throw new TicketflowError({ status: 0, code: ErrorCode.NetworkError, message: "server unreachable", cause });
    }
  }
}

function intHeader(response: Response, name: string): number | undefined {
  const raw = response.headers.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `"7"` or `W/"7"` → 7. */
export function etagVersion(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(raw.trim());
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export async function errorFromResponse(response: Response): Promise<TicketflowError> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const err = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
  return new TicketflowError({
    status: response.status,
    code: typeof err?.code === "string" ? err.code : ErrorCode.UnexpectedResponse,
    message: typeof err?.message === "string" ? err.message : `HTTP ${response.status}`,
    field: typeof err?.field === "string" ? err.field : undefined,
    currentVersion: num(err?.current_version),
    currentPosition: num(err?.current_position),
  });
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
