//! The git revision the binary is built from, for `ticketflow --version`
//! (the benchmark reports which server it measured by it, not which checkout
//! it ran from; "unknown" outside a git checkout), and the web app it embeds.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // The web app is embedded from here (include_dir): a file added or
    // removed there must rebuild the binary too.
    println!("cargo:rerun-if-changed=../web/dist");
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TICKETFLOW_REVISION={revision}");
    // Run again when HEAD moves: a checkout changes HEAD, a commit the
    // branch it names (a loose ref, or packed). Only files that exist: a
    // missing one would run this on every build.
    let dir = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
    let common =
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).map(PathBuf::from);
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = [
        dir.map(|d| d.join("HEAD")),
        common.as_ref().zip(branch).map(|(c, b)| c.join(b)),
        common.map(|c| c.join("packed-refs")),
    ];
    for path in watched.into_iter().flatten().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
