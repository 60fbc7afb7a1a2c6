//! `serve`'s rate-limit options: each a `COUNT/UNIT[:BURST]` limit or `off`
//! (see [`ticketflow_app::rate_limits`]), and the proxies whose
//! `X-Forwarded-For` names the client.

use clap::Args;
use ticketflow_app::rate_limits::{Limit, TrustedProxies};
use ticketflow_app::RateLimits;

/// The defaults, shown in `--help` as they parse.
fn default() -> RateLimits {
    RateLimits::default()
}

#[derive(Args)]
pub struct RateLimitArgs {
    /// Commands (POST/PATCH/DELETE under /api but the auth routes) per user:
    /// COUNT/UNIT[:BURST] with UNIT s, min or h (e.g. 2000/s:20000), or off.
    #[arg(long, env = "RATE_LIMIT_COMMANDS_PER_USER", default_value_t = default().commands_per_user)]
    rate_limit_commands_per_user: Limit,
    /// Commands per client address.
    #[arg(long, env = "RATE_LIMIT_COMMANDS_PER_IP", default_value_t = default().commands_per_ip)]
    rate_limit_commands_per_ip: Limit,
    /// Register, login, refresh, logout and password change per client address.
    #[arg(long, env = "RATE_LIMIT_AUTH_PER_IP", default_value_t = default().auth_per_ip)]
    rate_limit_auth_per_ip: Limit,
    /// Password checks (login, password change) per username.
    #[arg(long, env = "RATE_LIMIT_LOGINS_PER_USERNAME", default_value_t = default().logins_per_username)]
    rate_limit_logins_per_username: Limit,
    /// WebSocket handshakes per user.
    #[arg(long, env = "RATE_LIMIT_HANDSHAKES_PER_USER", default_value_t = default().handshakes_per_user)]
    rate_limit_handshakes_per_user: Limit,
    /// WebSocket handshakes per client address.
    #[arg(long, env = "RATE_LIMIT_HANDSHAKES_PER_IP", default_value_t = default().handshakes_per_ip)]
    rate_limit_handshakes_per_ip: Limit,
    /// Client messages per socket (beyond it: a `rate_limited` error message).
    #[arg(long, env = "RATE_LIMIT_SOCKET_MESSAGES", default_value_t = default().socket_messages)]
    rate_limit_socket_messages: Limit,
    /// Proxies (addresses or networks, comma-separated) whose X-Forwarded-For
    /// names the client; without them the peer's address is the client's.
    #[arg(long, env = "TRUSTED_PROXIES")]
    trusted_proxies: Option<TrustedProxies>,
}

impl RateLimitArgs {
    pub fn limits(&self) -> RateLimits {
        RateLimits {
            commands_per_user: self.rate_limit_commands_per_user,
            commands_per_ip: self.rate_limit_commands_per_ip,
            auth_per_ip: self.rate_limit_auth_per_ip,
            logins_per_username: self.rate_limit_logins_per_username,
            handshakes_per_user: self.rate_limit_handshakes_per_user,
            handshakes_per_ip: self.rate_limit_handshakes_per_ip,
            socket_messages: self.rate_limit_socket_messages,
            trusted_proxies: self.trusted_proxies.clone().unwrap_or_default(),
        }
    }
}
