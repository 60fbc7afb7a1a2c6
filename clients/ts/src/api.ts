/**
 * The typed REST client: one method per contract endpoint, grouped as the
 * contract groups them. Commands return `Committed<T>` with the `position`
 * (X-Position) of their last event; pass it as `minPosition` on the next read
 * to read your own writes.
 */

import { ErrorCode } from "./codes.js";
import { TicketflowError } from "./errors.js";
import { Http, type HttpResult, type QueryValue, type RequestOptions, isRecord } from "./http.js";
import type { Session } from "./session.js";
import type {
  Announcement,
  Comment,
  FeedEvent,
  HistoryItem,
  Member,
  NotificationPage,
  Page,
  Priority,
  Project,
  Ticket,
  TokenPair,
  User,
  Uuid,
} from "./types.js";

/** A command's result: the state it produced and the position of its last event. */
export interface Committed<T> {
  data: T;
  /** `X-Position`; pass as `minPosition` to a later read for read-your-writes. */
  position: number | undefined;
}

export interface ReadOptions {
  /** Sent as `X-Min-Position`: the server waits (≤ 5 s) until its projection has applied it. */
  minPosition?: number;
  signal?: AbortSignal;
}

export interface CommandOptions {
  /** Sent as `Idempotency-Key`: repeating the command returns the first response. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface TicketCommandOptions extends CommandOptions {
  /** Sent as `If-Match: "<version>"`; stale → `TicketflowError` 409 `version_conflict` with `currentVersion`. */
  ifMatch?: number;
}

export interface PageQuery {
  limit?: number;
  after?: string;
}

export interface TicketFilter extends PageQuery {
  status_id?: number;
  assignee_id?: Uuid;
}

export interface NewTicket {
  title: string;
  description?: string;
  priority?: Priority;
  assignee_id?: Uuid | null;
  labels?: string[];
  status_id?: number;
}

export interface TicketPatch {
  title?: string;
  description?: string;
  priority?: Priority;
  labels?: string[];
  status_id?: number;
  /** `null` unassigns. */
  assignee_id?: Uuid | null;
}

export interface EventStreamOptions {
  after?: number;
  limit?: number;
  /** Keep the response open and stream new events as they are stored. */
  follow?: boolean;
  signal?: AbortSignal;
}

export class RestApi {
  constructor(
    private readonly http: Http,
    private readonly session: Session,
  ) {}

  readonly auth = {
    register: async (body: { username: string; password: string; display_name?: string }): Promise<User> =>
      (await this.http.json<User>({ method: "POST", path: "/api/auth/register", body, auth: false })).data,

    /** Logs in and installs the tokens in the client's session. */
    login: async (body: { username: string; password: string }): Promise<TokenPair> => {
      const pair = (await this.http.json<TokenPair>({ method: "POST", path: "/api/auth/login", body, auth: false })).data;
      this.session.set(pair);
      return pair;
    },

    /** Refreshes now (normally automatic). Concurrent callers share one request. */
    refresh: (): Promise<string> => this.session.refresh(),

    me: async (options: ReadOptions = {}): Promise<User> => (await this.read<User>("/api/me", undefined, options)).data,

    /**
     * Ends the session on the server (`POST /api/auth/logout`: its refresh and access tokens stop
     * working on every instance, its sockets close) and locally. Local logout happens whatever the
     * server answers, network failures included: the user asked to be signed out here.
     */
    logout: async (): Promise<void> => {
      const refresh_token = this.session.tokens?.refreshToken;
      try {
        if (refresh_token !== undefined) {
          await this.http.json<unknown>({ method: "POST", path: "/api/auth/logout", body: { refresh_token }, auth: false });
        }
      } finally {
        this.session.end("logged_out");
      }
    },

    /**
     * Changes the password (`POST /api/auth/password`). Every other session of the user ends; this
     * one continues with the new token pair the server returns, installed in the client's session.
     * A wrong `current_password` rejects with 403 `wrong_password` and changes nothing.
     */
    changePassword: async (body: { current_password: string; new_password: string }): Promise<TokenPair> => {
      const pair = (await this.http.json<TokenPair>({ method: "POST", path: "/api/auth/password", body })).data;
      this.session.set(pair);
      return pair;
    },
  };

  readonly projects = {
    create: (body: { key: string; name: string }, options: CommandOptions = {}): Promise<Committed<Project>> =>
      this.command<Project>("POST", "/api/projects", body, options),
    list: async (query: PageQuery = {}, options: ReadOptions = {}): Promise<Page<Project>> =>
      (await this.read<Page<Project>>("/api/projects", pageQuery(query), options)).data,
    get: async (projectId: Uuid, options: ReadOptions = {}): Promise<Project> =>
      (await this.read<Project>(`/api/projects/${seg(projectId)}`, undefined, options)).data,
  };

  readonly members = {
    list: async (projectId: Uuid, query: PageQuery = {}, options: ReadOptions = {}): Promise<Page<Member>> =>
      (await this.read<Page<Member>>(`/api/projects/${seg(projectId)}/members`, pageQuery(query), options)).data,
    add: (projectId: Uuid, username: string, options: CommandOptions = {}): Promise<Committed<Member>> =>
      this.command<Member>("POST", `/api/projects/${seg(projectId)}/members`, { username }, options),
    remove: (projectId: Uuid, userId: Uuid, options: CommandOptions = {}): Promise<Committed<void>> =>
      this.command<void>("DELETE", `/api/projects/${seg(projectId)}/members/${seg(userId)}`, undefined, options),
  };

  /** A project admin's announcement: a `general` notification for every other member. */
  readonly announcements = {
    post: (projectId: Uuid, body: { title: string; message: string }, options: CommandOptions = {}): Promise<Committed<Announcement>> =>
      this.command<Announcement>("POST", `/api/projects/${seg(projectId)}/announcements`, body, options),
  };

  readonly tickets = {
    list: async (projectId: Uuid, filter: TicketFilter = {}, options: ReadOptions = {}): Promise<Page<Ticket>> =>
      (
        await this.read<Page<Ticket>>(
          `/api/projects/${seg(projectId)}/tickets`,
          { ...pageQuery(filter), status_id: filter.status_id, assignee_id: filter.assignee_id },
          options,
        )
      ).data,
    /** `asOf`: a version number, or an RFC 3339 time (a Date is converted). */
    get: async (ticketId: Uuid, options: ReadOptions & { asOf?: number | string | Date } = {}): Promise<Ticket> => {
      const asOf = options.asOf instanceof Date ? options.asOf.toISOString() : options.asOf;
      return (await this.read<Ticket>(`/api/tickets/${seg(ticketId)}`, { as_of: asOf }, options)).data;
    },
    create: (projectId: Uuid, body: NewTicket, options: CommandOptions = {}): Promise<Committed<Ticket>> =>
      this.command<Ticket>("POST", `/api/projects/${seg(projectId)}/tickets`, body, options),
    update: (ticketId: Uuid, patch: TicketPatch, options: TicketCommandOptions = {}): Promise<Committed<Ticket>> =>
      this.command<Ticket>("PATCH", `/api/tickets/${seg(ticketId)}`, patch, options),
    delete: (ticketId: Uuid, options: TicketCommandOptions = {}): Promise<Committed<void>> =>
      this.command<void>("DELETE", `/api/tickets/${seg(ticketId)}`, undefined, options),
    history: async (ticketId: Uuid, query: PageQuery = {}, options: ReadOptions = {}): Promise<Page<HistoryItem>> =>
      (await this.read<Page<HistoryItem>>(`/api/tickets/${seg(ticketId)}/history`, pageQuery(query), options)).data,
  };

  readonly comments = {
    list: async (ticketId: Uuid, query: PageQuery = {}, options: ReadOptions = {}): Promise<Page<Comment>> =>
      (await this.read<Page<Comment>>(`/api/tickets/${seg(ticketId)}/comments`, pageQuery(query), options)).data,
    add: (ticketId: Uuid, body: string, options: TicketCommandOptions = {}): Promise<Committed<Comment>> =>
      this.command<Comment>("POST", `/api/tickets/${seg(ticketId)}/comments`, { body }, options),
  };

  readonly events = {
    /** One page of the project's events feed; the cursor is the position. */
    list: async (
      projectId: Uuid,
      query: { after?: number | string; limit?: number } = {},
      options: ReadOptions = {},
    ): Promise<Page<FeedEvent>> =>
      (await this.read<Page<FeedEvent>>(`/api/projects/${seg(projectId)}/events`, { after: query.after, limit: query.limit }, options))
        .data,

    /** The feed as NDJSON, one event at a time; with `follow` it never ends until aborted. */
    stream: (projectId: Uuid, options: EventStreamOptions = {}): AsyncIterable<FeedEvent> => {
      const http = this.http;
      const request: RequestOptions = {
        method: "GET",
        path: `/api/projects/${seg(projectId)}/events`,
        query: { after: options.after, limit: options.limit, follow: options.follow ? "true" : undefined },
        accept: "application/x-ndjson",
        signal: options.signal,
      };
      return {
        async *[Symbol.asyncIterator]() {
          const response = await http.send(request);
          if (!response.body) return;
          yield* ndjson<FeedEvent>(response.body);
        },
      };
    },
  };

  readonly notifications = {
    list: async (
      query: PageQuery & { unread_only?: boolean } = {},
      options: ReadOptions = {},
    ): Promise<NotificationPage> =>
      (await this.read<NotificationPage>("/api/notifications", { ...pageQuery(query), unread_only: query.unread_only }, options)).data,
    markRead: (notificationId: Uuid, options: CommandOptions = {}): Promise<Committed<void>> =>
      this.command<void>("POST", `/api/notifications/${seg(notificationId)}/read`, undefined, options),
    markAllRead: (options: CommandOptions = {}): Promise<Committed<void>> =>
      this.command<void>("POST", "/api/notifications/read-all", undefined, options),
  };

  /** Every item of a paged list, following `next_cursor`. */
  async *paginate<T>(fetchPage: (after: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
    let after: string | undefined;
    for (;;) {
      const page = await fetchPage(after);
      yield* page.items;
      if (page.next_cursor === null) return;
      after = page.next_cursor;
    }
  }

  private read<T>(path: string, query: Record<string, QueryValue> | undefined, options: ReadOptions): Promise<HttpResult<T>> {
    return this.http.json<T>({ method: "GET", path, query, minPosition: options.minPosition, signal: options.signal });
  }

  private async command<T>(
    method: "POST" | "PATCH" | "DELETE",
    path: string,
    body: unknown,
    options: TicketCommandOptions,
  ): Promise<Committed<T>> {
    const result = await this.http.json<T>({
      method,
      path,
      body,
      ifMatch: options.ifMatch,
      idempotencyKey: options.idempotencyKey,
      signal: options.signal,
    });
    return { data: result.data, position: result.position };
  }
}

function pageQuery(q: PageQuery): Record<string, QueryValue> {
  return { limit: q.limit, after: q.after };
}

/** Path segments are ids from the server, but are escaped anyway. */
function seg(id: string): string {
  return encodeURIComponent(id);
}

async function* ndjson<T>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) yield parseLine<T>(line);
      }
    }
    buffer += decoder.decode();
    if (buffer.trim()) yield parseLine<T>(buffer.trim());
  } finally {
    reader.releaseLock();
  }
}

function parseLine<T>(line: string): T {
  const value: unknown = JSON.parse(line);
  if (!isRecord(value)) {
    throw new TicketflowError({ status: 200, code: ErrorCode.UnexpectedResponse, message: "NDJSON line is not an object" });
  }
  return value as T;
}
