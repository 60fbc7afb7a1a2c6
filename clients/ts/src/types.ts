/**
 * The wire types of CONTRACT.md, as TypeScript. Field names stay in the
 * server's snake_case so a payload is never renamed on its way through.
 */

export type Uuid = string;
/** RFC 3339 UTC time. */
export type Timestamp = string;

export interface User {
  id: Uuid;
  username: string;
  display_name: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  /** Lifetime of the access token in seconds. */
  expires_in: number;
}

export interface Status {
  id: number;
  name: string;
  color: string;
}

export interface Project {
  id: Uuid;
  key: string;
  name: string;
  statuses: Status[];
  created_at: Timestamp;
}

export type Role = "admin" | "member";

export interface Member {
  user_id: Uuid;
  username: string;
  display_name: string;
  role: Role;
  joined_at: Timestamp;
}

/** `POST /api/projects/{pid}/announcements` (an addition to the contract, see the server's README). */
export interface Announcement {
  id: Uuid;
  project_id: Uuid;
  title: string;
  message: string;
  author: UserRef;
  created_at: Timestamp;
}

export interface UserRef {
  id: Uuid;
  username: string;
}

export type Priority = "low" | "medium" | "high" | "urgent";

export interface Ticket {
  id: Uuid;
  project_id: Uuid;
  key: string;
  number: number;
  title: string;
  description: string;
  priority: Priority;
  status: Status;
  assignee: UserRef | null;
  reporter: UserRef;
  labels: string[];
  created_at: Timestamp;
  updated_at: Timestamp;
  version: number;
}

export interface Comment {
  id: Uuid;
  ticket_id: Uuid;
  author: UserRef;
  body: string;
  created_at: Timestamp;
}

/** Event data is event-type specific; the client passes it through untouched. */
export type EventData = Record<string, unknown>;

export interface HistoryItem {
  event_id: Uuid;
  position: number;
  version: number;
  type: string;
  actor: UserRef;
  occurred_at: Timestamp;
  data: EventData;
  /** The event's link in the log's hash chain (docs/audit.md): 64 hex digits. */
  hash: string | null;
}

export interface FeedEvent {
  event_id: Uuid;
  position: number;
  type: string;
  schema_version: number;
  ticket_id: Uuid | null;
  version: number;
  actor: UserRef;
  occurred_at: Timestamp;
  data: EventData;
  /** The event's link in the log's hash chain (docs/audit.md): 64 hex digits. */
  hash: string | null;
}

export type NotificationType =
  | "ticket_assigned"
  | "ticket_unassigned"
  | "mentioned"
  | "comment_added"
  | "status_changed"
  | "general"
  | (string & {});

export interface Notification {
  id: Uuid;
  seq: number;
  notification_type: NotificationType;
  title: string;
  message: string;
  ticket_id: Uuid | null;
  ticket_key: string | null;
  project_id: Uuid | null;
  read: boolean;
  timestamp: Timestamp;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface NotificationPage extends Page<Notification> {
  unread_count: number;
}

// ---- WebSocket messages -------------------------------------------------

export type ChannelKind = "tickets" | "notifications" | "presence";

export interface ConnectionEstablished {
  type: "connection_established";
  channel: ChannelKind;
  user_id: Uuid;
  project_id?: Uuid;
  /** The channel head; absent on presence. */
  seq?: number;
}

export interface ReplayComplete {
  type: "replay_complete";
  seq: number;
}

export interface ResyncRequired {
  type: "resync_required";
  seq: number;
}

export interface Pong {
  type: "pong";
  timestamp: number;
}

export interface ServerError {
  type: "error";
  code: string;
  message: string;
}

export interface TicketUpdateData {
  ticket_id: Uuid;
  key: string;
  title: string;
  status: Status;
  priority: Priority;
  assignee: UserRef | null;
  version: number;
}

export interface TicketUpdate {
  type: "ticket_update";
  action: "created" | "updated" | "deleted";
  seq: number;
  event_id: Uuid;
  event_type: string;
  actor: UserRef;
  timestamp: Timestamp;
  data: TicketUpdateData;
}

export interface CommentAddedData {
  comment_id: Uuid;
  ticket_id: Uuid;
  ticket_key: string;
  body: string;
  author: UserRef;
}

export interface CommentAddedMessage {
  type: "comment_added";
  seq: number;
  event_id: Uuid;
  event_type: string;
  actor: UserRef;
  timestamp: Timestamp;
  data: CommentAddedData;
}

export interface NotificationMessage {
  type: "notification_message";
  seq: number;
  data: Notification;
}

/** Not sequenced and never replayed: another tab (or this one) marked notifications read. */
export interface NotificationsRead {
  type: "notifications_read";
  ids: Uuid[] | "all";
  unread_count: number;
}

export interface PresenceUser {
  user_id: Uuid;
  username: string;
  viewing_ticket_id: Uuid | null;
}

export interface PresenceState {
  type: "presence_state";
  users: PresenceUser[];
}

export interface UserStatus {
  type: "user_status";
  action: "joined" | "left";
  user_id: Uuid;
  username: string;
}

export interface TicketViewing {
  type: "ticket_viewing";
  user_id: Uuid;
  username: string;
  ticket_id: Uuid | null;
}

export interface UserTyping {
  type: "user_typing";
  user_id: Uuid;
  username: string;
  ticket_id: Uuid;
}

/** What each channel delivers to the app (control messages are handled by the client). */
export type TicketChannelMessage = TicketUpdate | CommentAddedMessage;
export type NotificationChannelMessage = NotificationMessage | NotificationsRead;
export type PresenceChannelMessage = PresenceState | UserStatus | TicketViewing | UserTyping;

export interface ChannelMessages {
  tickets: TicketChannelMessage;
  notifications: NotificationChannelMessage;
  presence: PresenceChannelMessage;
}

export type ControlMessage = ConnectionEstablished | ReplayComplete | ResyncRequired | Pong | ServerError;
export type ServerMessage = ControlMessage | TicketChannelMessage | NotificationChannelMessage | PresenceChannelMessage;
