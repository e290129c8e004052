//! `--config FILE`: the binary reads KEY=VALUE defaults from a file; a flag
//! wins over the environment, the environment over the file.

use std::path::Path;
use std::time::Duration;

use crate::helpers::{TestDb, BIN};

/// Runs `rowhook ARGS` with exactly the given rowhook variables set.
async fn rowhook(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ROWHOOK_WORKSTATION")
        .env_remove("ROWHOOK_CONFIG")
        .envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("rowhook finished in time")
        .expect("rowhook ran");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn write_config(dir: &Path, db_url: &str) -> String {
    let path = dir.join("rowhook.env");
    let text = format!(
        "# written by the test\r\n\r\nDATABASE_URL=\"{db_url}\"\r\nROWHOOK_WORKSTATION=FILE-WS\r\n"
    );
    std::fs::write(&path, text).expect("the test directory is writable");
    path.display().to_string()
}

#[tokio::test]
async fn the_config_file_sets_defaults_below_the_environment_and_flags() {
    let db = TestDb::sqlite().await;
    let dir = std::env::temp_dir().join(format!("rowhook_config_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = write_config(&dir, &db.url);

    let (code, out, err) = rowhook(&["check", "--config", &file], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("workstation \"FILE-WS\""), "{out}");

    let (code, out, err) = rowhook(&["check"], &[("ROWHOOK_CONFIG", &file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("workstation \"FILE-WS\""), "{out}");

    let env = [("ROWHOOK_WORKSTATION", "ENV-WS")];
    let (code, out, _) = rowhook(&["--config", &file, "check"], &env).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("workstation \"ENV-WS\""), "{out}");

    let args = ["check", "--config", &file, "--workstation", "FLAG-WS"];
    let (code, out, _) = rowhook(&args, &env).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("workstation \"FLAG-WS\""), "{out}");

    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_or_malformed_config_file_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("rowhook_badconfig_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("absent.env").display().to_string();
    let (code, _, err) = rowhook(&["check", "--config", &missing], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains(&missing), "{err}");

    let bad = dir.join("bad.env");
    std::fs::write(&bad, "DATABASE_URL=sqlite://x\nthis is not a setting\n").unwrap();
    let bad = bad.display().to_string();
    let (code, _, err) = rowhook(&["check", "--config", &bad], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{bad} line 2")), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(not(windows))]
#[tokio::test]
async fn the_service_command_says_it_is_for_windows_elsewhere() {
    let (code, _, err) = rowhook(&["service", "status"], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains("`rowhook service` is for Windows"), "{err}");
    assert!(err.contains("systemd"), "{err}");
}
