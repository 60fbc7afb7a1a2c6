/**
 * Every close code and error code the client reacts to, in one place, with
 * what the client does about it. The numbers come from CONTRACT.md.
 */

/** WebSocket close codes sent by the server, and the client's own. */
export const CloseCode = {
  /** Normal closure: the client closed the socket itself. */
  Normal: 1000,
  /** The peer went away (server shutting down); resume with backoff. */
  GoingAway: 1001,
  /** A binary frame was sent; a client bug, resume with backoff. */
  UnsupportedData: 1003,
  /** No close frame at all: network drop, failed handshake. */
  Abnormal: 1006,
  /** A frame over 64 KiB was sent; a client bug, resume with backoff. */
  MessageTooBig: 1009,
  /** Service restart: resume at once. */
  ServiceRestart: 1012,
  /** Client side: a gap in seq was seen, so the socket is reopened from the last emitted seq. */
  ClientGap: 4000,
  /** Client side: no pong in time, the connection is presumed dead. */
  ClientPingTimeout: 4001,
  /** Slow consumer: the server dropped this socket's queue; resume at once with `since`. */
  SlowConsumer: 4008,
  /** The socket's access token expired: refresh it, then resume. */
  TokenExpired: 4401,
  /** The user was removed from the project: stop for good. */
  Forbidden: 4403,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** What a subscription does after its socket closed with `code`. */
export type CloseAction = "resume_now" | "refresh_then_resume" | "stop" | "resume_with_backoff";

export function actionForClose(code: number): CloseAction {
  switch (code) {
    case CloseCode.SlowConsumer:
    case CloseCode.ServiceRestart:
    case CloseCode.ClientGap:
      return "resume_now";
    case CloseCode.TokenExpired:
      return "refresh_then_resume";
    case CloseCode.Forbidden:
      return "stop";
    default:
      return "resume_with_backoff";
  }
}

/** Error codes of the contract's `{"error":{"code"}}` bodies. New ones may appear. */
export const ErrorCode = {
  MalformedJson: "malformed_json",
  InvalidField: "invalid_field",
  Unauthenticated: "unauthenticated",
  Forbidden: "forbidden",
  NotFound: "not_found",
  UsernameTaken: "username_taken",
  ProjectKeyTaken: "project_key_taken",
  AlreadyMember: "already_member",
  VersionConflict: "version_conflict",
  IdempotencyKeyReused: "idempotency_key_reused",
  IdempotencyInProgress: "idempotency_in_progress",
  PayloadTooLarge: "payload_too_large",
  RateLimited: "rate_limited",
  ProjectionLagging: "projection_lagging",
  DependencyUnavailable: "dependency_unavailable",
  BadMessage: "bad_message",
  /** Client side: the server could not be reached. */
  NetworkError: "network_error",
  /** Client side: the response was not the contract's JSON. */
  UnexpectedResponse: "unexpected_response",
  /** Client side: no session (never logged in, or the session ended). */
  NoSession: "no_session",
} as const;
/** A known code, or any string the server may add later. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode] | (string & {});

/** Why a subscription reached `closed`. */
export type CloseReason =
  /** The app released the last reference (or closed the client). */
  | "unsubscribed"
  /** The user is not (or no longer) a member of the project: 4403 or handshake 403. */
  | "forbidden"
  /** The project does not exist (handshake 404). */
  | "not_found"
  /** The refresh token was refused; the app should show its login screen. */
  | "session_ended";
