# syntax=docker/dockerfile:1
# ticketflow: one binary, every role. Build: `docker build -t ticketflow .`
# Run with PostgreSQL and NATS: see docker-compose.yml.

# The builder's Rust must satisfy every locked dependency's rust-version, not only the
# workspace's own (uuid 1.29 already wants 1.89). Bookworm, to match the runtime's glibc.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# The workspace's crates and migrations (.dockerignore keeps the rest out).
COPY . .
# Cache mounts keep the registry and incremental build between builds; the binary is copied
# out because the target dir mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ticketflow \
    && install -D -m 0755 target/release/ticketflow /out/ticketflow

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/ticketflow ticketflow
COPY --from=builder /out/ticketflow /usr/local/bin/ticketflow
USER ticketflow
# The embedded mode (no DATABASE_URL/NATS_URL) keeps its files under the working directory.
WORKDIR /var/lib/ticketflow
ENV BIND_ADDR=0.0.0.0:8000
EXPOSE 8000
# Liveness, asked by the binary itself (the image has no curl): GET /healthz on BIND_ADDR's
# port. Readiness (`ticketflow health --ready`, GET /readyz) is for load balancers and
# docker-compose's depends_on. On SIGTERM the server drains within SHUTDOWN_TIMEOUT_MS
# (default 10 s): give `docker stop` more than that (`-t 15`, compose's stop_grace_period).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["ticketflow", "health"]
ENTRYPOINT ["ticketflow"]
CMD ["serve"]
