//! Every close code a socket can get, in one place (the contract's
//! WebSockets section names the 4xxx ones).

/// The client was idle past the limit.
pub const NORMAL: u16 = 1000;
/// A frame that breaks the WebSocket protocol (RFC 6455 §7.4.1).
pub const PROTOCOL_ERROR: u16 = 1002;
/// A binary frame: this gateway speaks JSON text only.
pub const BAD_DATA: u16 = 1003;
/// A text message that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A client message over the size limit.
pub const TOO_BIG: u16 = 1009;
/// The store could not be read; the client resumes with `since`.
pub const INTERNAL: u16 = 1011;
/// The server is shutting down (draining); the client resumes at once with
/// `since`, on another instance.
pub const SERVICE_RESTART: u16 = 1012;
/// The socket's queue was full; the client resumes with `since`.
pub const SLOW_CONSUMER: u16 = 4008;
/// The access token expired, or its session was ended (logout, password
/// change, a reused refresh token); the client reconnects with a fresh one.
pub const TOKEN_EXPIRED: u16 = 4401;
/// The user was removed from the project.
pub const REMOVED_MEMBER: u16 = 4403;
