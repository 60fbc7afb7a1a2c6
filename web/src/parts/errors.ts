import { isTicketflowError } from "@ticketflow/client";

/** A line a person can read, from whatever a call threw. */
export function errorText(err: unknown): string {
  if (isTicketflowError(err)) {
    if (err.code === "network_error") return "The server cannot be reached.";
    return err.field ? `${err.message} (${err.field})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
