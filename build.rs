//! Records the commit rowhook is built from, for `rowhook --version`: an
//! office's IT person reporting a problem can say exactly which build runs.
//!
//! `ROWHOOK_COMMIT` in the environment wins (a build from a source tarball
//! can name its commit); otherwise `git rev-parse --short HEAD`; outside a
//! git checkout, "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ROWHOOK_COMMIT");
    let commit = std::env::var("ROWHOOK_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ROWHOOK_COMMIT={commit}");
    watch_head();
}

/// Asks cargo to run this again when HEAD moves: a new commit changes the
/// branch's ref (loose or packed), a checkout changes HEAD itself.
fn watch_head() {
    let (Some(git_dir), Some(common_dir)) = (
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) else {
        return;
    };
    let mut watched = vec![
        Path::new(&git_dir).join("HEAD"),
        Path::new(&common_dir).join("packed-refs"),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(Path::new(&common_dir).join(branch));
    }
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// A git command's trimmed output, or None when git is missing or fails
/// (not a checkout).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
