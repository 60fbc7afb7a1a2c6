/** The one error type of the client: a contract error, or a client-side failure. */

import type { ErrorCode } from "./codes.js";

export interface TicketflowErrorInit {
  status: number;
  code: ErrorCode;
  message: string;
  field?: string | undefined;
  currentVersion?: number | undefined;
  currentPosition?: number | undefined;
  cause?: unknown;
}

export class TicketflowError extends Error {
  override readonly name = "TicketflowError";
  /** HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  /** The contract's snake_case code (`version_conflict`, ...) or a client-side one (`network_error`). */
  readonly code: ErrorCode;
  /** The offending field on 422. */
  readonly field: string | undefined;
  /** On 409 `version_conflict`: the ticket's current version, to retry with If-Match. */
  readonly currentVersion: number | undefined;
  /** On 503 `projection_lagging`: the position the projection had reached. */
  readonly currentPosition: number | undefined;

  constructor(init: TicketflowErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.field = init.field;
    this.currentVersion = init.currentVersion;
    this.currentPosition = init.currentPosition;
  }
}

export function isTicketflowError(err: unknown): err is TicketflowError {
  return err instanceof TicketflowError;
}
