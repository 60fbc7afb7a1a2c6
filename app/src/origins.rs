//! Which browser pages may use the API and open sockets: pages served from
//! the server's own origin always, others only when listed (`CORS_ORIGINS`),
//! and any page on this machine (`localhost`) in development.
//!
//! The HTTP API tells browsers through CORS headers; the WebSocket handshake,
//! which browsers do not guard, checks `Origin` itself with the same rule.
//! Clients that are not browsers send no `Origin` and are not concerned.

/// The allowed origins.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Listed origins, as `scheme://host[:port]`, lower case.
    listed: Vec<String>,
    /// `*` was listed: any origin.
    any: bool,
    /// Any `http(s)://localhost`, `127.0.0.1` or `[::1]` page, on any port.
    localhost: bool,
}

impl Origins {
    /// `listed` as written in `CORS_ORIGINS` (`*` for any); `localhost`
    /// allows this machine's pages too.
    pub fn new<S: AsRef<str>>(listed: impl IntoIterator<Item = S>, localhost: bool) -> Self {
        let mut origins = Self {
            localhost,
            ..Self::default()
        };
        for origin in listed {
            let origin = origin.as_ref().trim().trim_end_matches('/');
            match origin {
                "" => {}
                "*" => origins.any = true,
                _ => origins.listed.push(origin.to_ascii_lowercase()),
            }
        }
        origins
    }

    /// Whether a page of `origin` may call a server reached as `host` (the
    /// request's `Host` header).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        if host.is_some_and(|host| host.eq_ignore_ascii_case(authority)) {
            return true;
        }
        self.any
            || self.listed.contains(&origin)
            || (self.localhost && matches!(scheme, "http" | "https") && is_local(authority))
    }
}

/// Whether an origin's `host[:port]` names this machine.
fn is_local(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_origin_is_always_allowed() {
        let none = Origins::default();
        assert!(none.allows("http://api.example:8000", Some("api.example:8000")));
        assert!(!none.allows("http://other.example", Some("api.example:8000")));
        assert!(!none.allows("http://other.example", None));
        assert!(!none.allows("null", Some("api.example:8000")));
    }

    #[test]
    fn listed_origins_match_exactly_whatever_the_case() {
        let origins = Origins::new(["https://App.example/", " http://b.example:5173"], false);
        assert!(origins.allows("https://app.example", None));
        assert!(origins.allows("http://b.example:5173", None));
        assert!(!origins.allows("http://app.example", None), "scheme counts");
        assert!(
            !origins.allows("http://b.example:5174", None),
            "port counts"
        );
        assert!(!origins.allows("http://localhost:5173", None));
        assert!(Origins::new(["*"], false).allows("https://anything.example", None));
    }

    #[test]
    fn development_allows_this_machines_pages_on_any_port() {
        let dev = Origins::new(Vec::<String>::new(), true);
        for origin in [
            "http://localhost:5173",
            "http://127.0.0.1:3000",
            "https://localhost",
            "http://[::1]:8080",
        ] {
            assert!(dev.allows(origin, None), "{origin}");
        }
        for origin in [
            "http://localhost.example",
            "http://10.0.0.1:5173",
            "file://localhost",
        ] {
            assert!(!dev.allows(origin, None), "{origin}");
        }
    }
}
