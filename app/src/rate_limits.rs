//! Rate limits, for both doors: commands (per user and per client address),
//! the auth routes (per address), login attempts (per username, so a
//! password cannot be guessed fast from many addresses), socket handshakes
//! (per user and per address) and client messages (per socket).
//!
//! Each limit is a GCRA (`governor`): `count` per period, with bursts of up
//! to `burst` at once; a refusal says how long until the next one would
//! pass. The counters are this process's own, so behind a balancer each
//! instance allows the full rate. Keys are swept of idle entries every
//! [`SWEEP_EVERY`] ([`sweep_idle_keys`]): the maps hold only the keys seen
//! within about one burst's refill.

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::ApiError;

/// How often the limiters forget the keys that are back to a full burst.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// One limit: `count` per `period`, bursts of up to `burst`. Written
/// `COUNT/UNIT[:BURST]` (`2000/s:20000`, `10/min`, `500/h:50`; the burst
/// defaults to the count), or `off` (also `0`) for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(Option<Rate>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    count: NonZeroU32,
    unit: Unit,
    burst: NonZeroU32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Second,
    Minute,
    Hour,
}

impl Unit {
    fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Second => "s",
            Unit::Minute => "min",
            Unit::Hour => "h",
        }
    }
}

impl Limit {
    pub const OFF: Limit = Limit(None);

    /// `count` per `unit` with bursts of `burst`; for constants.
    const fn rate(count: u32, unit: Unit, burst: u32) -> Self {
        match (NonZeroU32::new(count), NonZeroU32::new(burst)) {
            (Some(count), Some(burst)) => Limit(Some(Rate { count, unit, burst })),
            _ => Limit(None),
        }
    }

    fn quota(self) -> Option<Quota> {
        let rate = self.0?;
        let every = rate.unit.duration() / rate.count.get();
        Quota::with_period(every).map(|quota| quota.allow_burst(rate.burst))
    }
}

impl FromStr for Limit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(Limit::OFF);
        }
        let expected = || {
            format!("{text:?}: expected COUNT/UNIT[:BURST] (e.g. 100/s:500, 10/min; UNIT s, min or h) or off")
        };
        let (count, rest) = text.split_once('/').ok_or_else(expected)?;
        let (unit, burst) = match rest.split_once(':') {
            Some((unit, burst)) => (unit, Some(burst)),
            None => (rest, None),
        };
        let unit = match unit {
            "s" => Unit::Second,
            "min" => Unit::Minute,
            "h" => Unit::Hour,
            _ => return Err(expected()),
        };
        let positive = |n: &str| n.parse::<NonZeroU32>().map_err(|_| expected());
        let count = positive(count)?;
        let burst = burst.map(positive).transpose()?.unwrap_or(count);
        let limit = Limit(Some(Rate { count, unit, burst }));
        match limit.quota() {
            Some(_) => Ok(limit),
            None => Err(format!("{text:?}: more than one a nanosecond")),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(Rate { count, unit, burst }) => {
                write!(f, "{count}/{}:{burst}", unit.name())
            }
        }
    }
}

/// The addresses of proxies whose `X-Forwarded-For` is believed: single
/// addresses or networks (`10.0.0.0/8`, `127.0.0.1`), comma-separated.
/// Empty (the default): the peer's address is the client's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let nets = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is neither an IP address nor a network"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted
    /// proxy; then the nearest address in `X-Forwarded-For` that is not one
    /// (each proxy appends the address it received from, so the entries
    /// left of the last untrusted one may be anybody's invention).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.trusts(client) {
            return client;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in forwarded.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The key of an address: IPv4 as it is, an IPv4-mapped IPv6 address as its
/// IPv4 one, and other IPv6 addresses by their /64, the block one host or
/// home usually gets (one address each would give a client 2^64 keys).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// Every limit of a process, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// POST/PATCH/DELETE under `/api` (but the auth routes), per user.
    pub commands_per_user: Limit,
    /// The same, per client address.
    pub commands_per_ip: Limit,
    /// Register, login, refresh, logout and password change, per address.
    pub auth_per_ip: Limit,
    /// Password checks (login, password change) per username.
    pub logins_per_username: Limit,
    /// Socket handshakes per user.
    pub handshakes_per_user: Limit,
    /// Socket handshakes per address.
    pub handshakes_per_ip: Limit,
    /// Client messages per socket.
    pub socket_messages: Limit,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

impl RateLimits {
    /// No limit at all.
    pub fn off() -> Self {
        Self {
            commands_per_user: Limit::OFF,
            commands_per_ip: Limit::OFF,
            auth_per_ip: Limit::OFF,
            logins_per_username: Limit::OFF,
            handshakes_per_user: Limit::OFF,
            handshakes_per_ip: Limit::OFF,
            socket_messages: Limit::OFF,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// The defaults, above everything the project's own workloads do (the
/// README's Rate limits section has the figures): per user and per
/// username they stop a runaway or hostile client; per address they are
/// wide, since many users may share one (a NAT, or the loopback of the
/// benchmarks and tests).
impl Default for RateLimits {
    fn default() -> Self {
        Self {
            commands_per_user: Limit::rate(2000, Unit::Second, 20_000),
            commands_per_ip: Limit::rate(20_000, Unit::Second, 40_000),
            auth_per_ip: Limit::rate(100, Unit::Second, 500),
            logins_per_username: Limit::rate(10, Unit::Minute, 10),
            handshakes_per_user: Limit::rate(100, Unit::Second, 2000),
            handshakes_per_ip: Limit::rate(1000, Unit::Second, 20_000),
            socket_messages: Limit::rate(20, Unit::Second, 100),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// One keyed limit, absent when off.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    /// What is limited, in a refusal's words ("commands from this account").
    what: &'static str,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(limit: Limit, what: &'static str) -> Self {
        Self {
            limiter: limit.quota().map(RateLimiter::dashmap),
            what,
        }
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            ApiError::rate_limited(self.what, wait)
        })
    }

    fn sweep(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn enabled(&self) -> bool {
        self.limiter.is_some()
    }
}

/// The limiters of a process (one per [`RateLimits`] entry).
pub struct RateLimiters {
    commands_per_user: Keyed<Uuid>,
    commands_per_ip: Keyed<IpAddr>,
    auth_per_ip: Keyed<IpAddr>,
    logins_per_username: Keyed<String>,
    handshakes_per_user: Keyed<Uuid>,
    handshakes_per_ip: Keyed<IpAddr>,
    socket_messages: Option<Quota>,
    trusted_proxies: TrustedProxies,
}

impl RateLimiters {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            commands_per_user: Keyed::new(limits.commands_per_user, "commands from this account"),
            commands_per_ip: Keyed::new(limits.commands_per_ip, "commands from this address"),
            auth_per_ip: Keyed::new(limits.auth_per_ip, "sign-in requests from this address"),
            logins_per_username: Keyed::new(
                limits.logins_per_username,
                "password attempts for this username",
            ),
            handshakes_per_user: Keyed::new(
                limits.handshakes_per_user,
                "socket connections by this account",
            ),
            handshakes_per_ip: Keyed::new(
                limits.handshakes_per_ip,
                "socket connections from this address",
            ),
            socket_messages: limits.socket_messages.quota(),
            trusted_proxies: limits.trusted_proxies.clone(),
        }
    }

    /// The client's address, by the peer's (absent only outside a real
    /// server: then every such request shares one key) and the trusted
    /// proxies' word; keyed per [`address_key`].
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
        address_key(self.trusted_proxies.client_of(peer, headers))
    }

    /// Whether the per-user command limit needs to know the caller.
    pub fn limits_users_commands(&self) -> bool {
        self.commands_per_user.enabled()
    }

    /// A command from `ip`, by `user` when its token is valid.
    pub fn command(&self, ip: IpAddr, user: Option<Uuid>) -> Result<(), ApiError> {
        self.commands_per_ip.check(&ip)?;
        match user {
            Some(user) => self.commands_per_user.check(&user),
            None => Ok(()),
        }
    }

    /// A request to one of the auth routes from `ip`.
    pub fn auth(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.auth_per_ip.check(&ip)
    }

    /// A password check for `username`. Only names that could be a user's
    /// are counted (any other fails anyway, and would let a client fill the
    /// map with long keys).
    pub fn password_attempt(&self, username: &str) -> Result<(), ApiError> {
        if ticketflow_domain::user::validate_username(username).is_err() {
            return Ok(());
        }
        self.logins_per_username.check(&username.to_string())
    }

    /// A socket handshake from `ip`, before its token is read.
    pub fn handshake_from(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.handshakes_per_ip.check(&ip)
    }

    /// A socket handshake by `user`, once its token is checked.
    pub fn handshake_by(&self, user: Uuid) -> Result<(), ApiError> {
        self.handshakes_per_user.check(&user)
    }

    /// A new socket's own limit on its client's messages.
    pub fn socket_messages(&self) -> MessageLimit {
        MessageLimit(self.socket_messages.map(RateLimiter::direct))
    }

    /// Forgets the keys that are back to a full burst: they would behave
    /// the same if seen again.
    pub fn sweep(&self) {
        self.commands_per_user.sweep();
        self.commands_per_ip.sweep();
        self.auth_per_ip.sweep();
        self.logins_per_username.sweep();
        self.handshakes_per_user.sweep();
        self.handshakes_per_ip.sweep();
    }
}

/// Sweeps `limiters` every [`SWEEP_EVERY`] until the task is aborted.
pub fn sweep_idle_keys(limiters: Arc<RateLimiters>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            limiters.sweep();
        }
    })
}

/// One socket's limit on its client's messages (none when off).
pub struct MessageLimit(Option<DefaultDirectRateLimiter>);

impl MessageLimit {
    /// Takes one message, or says how long until one would pass.
    pub fn check(&self) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn limits_parse_and_print_back() {
        for (text, shown) in [
            ("2000/s:20000", "2000/s:20000"),
            ("10/min", "10/min:10"),
            ("500/h:50", "500/h:50"),
            ("off", "off"),
            ("OFF", "off"),
            ("0", "off"),
        ] {
            let limit: Limit = text.parse().expect(text);
            assert_eq!(limit.to_string(), shown);
            assert_eq!(shown.parse::<Limit>(), Ok(limit));
        }
        for bad in [
            "",
            "10",
            "10/d",
            "0/s",
            "10/s:0",
            "-1/s",
            "x/s",
            "10/s:",
            "5000000000/s",
        ] {
            assert!(bad.parse::<Limit>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_defaults_print_as_they_parse() {
        let defaults = RateLimits::default();
        for limit in [defaults.commands_per_user, defaults.socket_messages] {
            assert_eq!(limit.to_string().parse::<Limit>(), Ok(limit));
            assert!(limit.quota().is_some());
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let keyed = Keyed::new("1/h:3".parse().unwrap(), "tries");
        for _ in 0..3 {
            assert!(keyed.check(&1).is_ok());
        }
        let refused = keyed.check(&1).expect_err("the fourth in an hour");
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        let ms = refused.extra["retry_after_ms"].as_u64().unwrap();
        assert!(ms > 3_590_000 && ms <= 3_600_000, "{ms}");
        assert!(keyed.check(&2).is_ok(), "another key has its own burst");
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let headers = forwarded("203.0.113.9, 10.0.0.7");
        let nobody = TrustedProxies::default();
        assert_eq!(nobody.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
        let proxies: TrustedProxies = "10.0.0.0/8, 192.0.2.1".parse().unwrap();
        // The nearest untrusted hop, whatever a client wrote before it.
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &headers),
            ip("203.0.113.9")
        );
        let spoofed = forwarded("1.1.1.1, 198.51.100.4");
        assert_eq!(
            proxies.client_of(ip("192.0.2.1"), &spoofed),
            ip("198.51.100.4")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            proxies.client_of(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
        // Garbage stops the walk at the last hop that could be read.
        let garbage = forwarded("nonsense, 10.0.0.8");
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &garbage), ip("10.0.0.8"));
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_block() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            address_key(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.3")), ip("192.0.2.3"));
        assert_eq!(address_key(ip("192.0.2.3")), ip("192.0.2.3"));
    }
}
