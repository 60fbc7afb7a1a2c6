//! The migrations are embedded at compile time from the workspace's
//! `migrations/`, outside this crate: tell cargo to rebuild when they change,
//! or a cached build would ship a stale schema.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
