//! `ticketflow health`: asks a running server whether it is up (`/healthz`)
//! or ready (`/readyz`), and exits 0 if so. For container health checks,
//! where the runtime image has no curl: one small HTTP/1.0 GET.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::Uri;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole probe may take.
const PROBE_WITHIN: Duration = Duration::from_secs(5);
/// The most of the answer read (the readiness report is far smaller).
const MOST_READ: u64 = 64 * 1024;

#[derive(Args)]
pub struct HealthArgs {
    /// The URL to ask, e.g. http://127.0.0.1:8000/readyz (default: the
    /// server of BIND_ADDR on this machine).
    #[arg(long)]
    url: Option<Uri>,
    /// Ask `/readyz` (dependencies and lag) rather than `/healthz` (up).
    #[arg(long)]
    ready: bool,
    /// The address the server listens on; an unspecified one (0.0.0.0) is
    /// asked on the loopback.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8000")]
    bind_addr: SocketAddr,
}

/// Prints the answer's body; fails unless it is a 200.
pub async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let url = match args.url {
        Some(url) => url,
        None => local_url(args.bind_addr, args.ready)?,
    };
    let (status, body) = tokio::time::timeout(PROBE_WITHIN, get(&url))
        .await
        .with_context(|| format!("no answer from {url} within {PROBE_WITHIN:?}"))??;
    println!("{body}");
    if status != 200 {
        bail!("{url} answered {status}");
    }
    Ok(())
}

fn local_url(bind: SocketAddr, ready: bool) -> anyhow::Result<Uri> {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    let url = format!("http://{}{path}", SocketAddr::new(ip, bind.port()));
    url.parse().context("building the URL")
}

/// The status and body of a GET of `url` (plain HTTP).
async fn get(url: &Uri) -> anyhow::Result<(u16, String)> {
    if url.scheme_str() != Some("http") {
        bail!("{url}: only http:// URLs are supported");
    }
    let authority = url.authority().context("the URL names no host")?;
    let address = match authority.port_u16() {
        Some(_) => authority.to_string(),
        None => format!("{}:80", authority.host()),
    };
    let mut stream = TcpStream::connect(&address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MOST_READ).read_to_end(&mut answer).await?;
    parse(&String::from_utf8_lossy(&answer))
}

/// The status code and body of an HTTP/1.x response.
fn parse(answer: &str) -> anyhow::Result<(u16, String)> {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {head:?}"))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_bind_address_is_asked_on_the_loopback() {
        let url = local_url("0.0.0.0:8000".parse().unwrap(), true).unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:8000/readyz");
        let url = local_url("[::]:9000".parse().unwrap(), false).unwrap();
        assert_eq!(url.to_string(), "http://[::1]:9000/healthz");
    }

    #[test]
    fn the_status_and_body_are_read_from_the_answer() {
        let answer = "HTTP/1.0 503 Service Unavailable\r\ncontent-type: application/json\r\n\r\n\
                      {\"status\":\"draining\"}";
        let (status, body) = parse(answer).unwrap();
        assert_eq!((status, body.as_str()), (503, "{\"status\":\"draining\"}"));
        assert!(parse("garbage").is_err());
    }
}
