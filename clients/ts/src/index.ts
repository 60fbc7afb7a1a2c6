/**
 * @ticketflow/client — typed REST, resumable WebSocket channels and a token
 * session for ticketflow. Framework-free; React bindings live in
 * `@ticketflow/client/react`.
 */

export { TicketflowClient } from "./client.js";
export type { ClientOptions, ClientEvents, ChannelHandle, PresenceHandle, ConnectionState, ConnectionSummary } from "./client.js";
export { RestApi } from "./api.js";
export type {
  Committed,
  ReadOptions,
  CommandOptions,
  TicketCommandOptions,
  PageQuery,
  TicketFilter,
  NewTicket,
  TicketPatch,
  EventStreamOptions,
} from "./api.js";
export { TicketflowError, isTicketflowError } from "./errors.js";
export type { TicketflowErrorInit } from "./errors.js";
export { CloseCode, ErrorCode, actionForClose } from "./codes.js";
export type { CloseAction, CloseReason } from "./codes.js";
export { Session } from "./session.js";
export type { SessionTokens, SessionEvents, SessionEndReason } from "./session.js";
export type { SubscriptionState, StateChange, SubscriptionEvents } from "./subscription.js";
export { Backoff } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { MemoryPositionStore, WebStoragePositionStore, sessionStoragePositionStore } from "./position_store.js";
export type { PositionStore, StorageLike } from "./position_store.js";
export type { WebSocketLike, WebSocketConstructorLike, MessageEventLike, CloseEventLike } from "./transport_websocket.js";
export type { FetchLike } from "./http.js";
export type { Listener } from "./emitter.js";
export type * from "./types.js";
export { TicketListView, NotificationsView, PresenceView } from "./views.js";
export type {
  TicketSummary,
  TicketListSnapshot,
  TicketListOptions,
  NotificationsSnapshot,
  PresenceMember,
  PresenceSnapshot,
} from "./views.js";
