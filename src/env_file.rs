//! `--config FILE`: a `KEY=VALUE` file, the form of systemd's
//! `EnvironmentFile` (`systemd/rowhook.env`), read before the command line
//! is parsed. Its values become environment defaults, so the precedence is:
//! a command-line flag, then a variable already in the environment, then
//! the file, then the built-in default.
//!
//! Hand-written rather than `dotenvy`: dotenv files expand `$NAME` in
//! unquoted and double-quoted values, systemd's do not, and a database
//! password holding a `$` would silently change.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The flag, also accepted as `--config=FILE`.
pub const FLAG: &str = "--config";
/// The variable naming the file when no flag does.
pub const VARIABLE: &str = "ROWHOOK_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The file named by the last `--config FILE` (or `--config=FILE`) before
/// a `--`, else by `ROWHOOK_CONFIG`.
pub fn path_from(args: &[OsString], variable: Option<OsString>) -> Option<PathBuf> {
    let mut found = None;
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == FLAG {
            found = args.next().map(PathBuf::from);
        } else if let Some(value) = text.strip_prefix("--config=") {
            found = Some(PathBuf::from(value));
        }
    }
    found.or_else(|| variable.filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Reads the file and sets each variable the environment does not already
/// hold. Returns the names set. Must run before any other thread starts
/// (it changes the process environment).
pub fn load_defaults(path: &Path) -> Result<Vec<String>, EnvFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let pairs = parse(&text).map_err(|(line, reason)| EnvFileError::Syntax {
        path: path.to_owned(),
        line,
        reason,
    })?;
    let unset = missing(pairs, |key| std::env::var_os(key).is_some());
    for (key, value) in &unset {
        std::env::set_var(key, value);
    }
    Ok(unset.into_iter().map(|(key, _)| key).collect())
}

/// The pairs whose key is not already set; a key given twice in the file
/// takes its last value, as systemd does.
fn missing(pairs: Vec<(String, String)>, is_set: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (key, value) in pairs {
        if is_set(&key) {
            continue;
        }
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    out
}

/// Parses the file: blank lines and lines starting with `#` or `;` are
/// skipped; otherwise `KEY=VALUE`, whitespace around either trimmed, the
/// value optionally in single quotes (taken literally) or double quotes
/// (`\"` and `\\` unescaped). No variable expansion. Errors carry the
/// 1-based line number.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let error = |reason: String| (index + 1, reason);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| error("expected KEY=VALUE".into()))?;
        let key = key.trim();
        if !is_name(key) {
            return Err(error(format!("{key:?} is not a variable name")));
        }
        pairs.push((key.to_owned(), unquote(value.trim()).map_err(error)?));
    }
    Ok(pairs)
}

fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> Result<String, String> {
    let quote = match value.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => return Ok(value.to_owned()),
    };
    let inner = value
        .strip_prefix(quote)
        .and_then(|v| v.strip_suffix(quote))
        .filter(|_| value.len() >= 2)
        .ok_or_else(|| format!("unterminated {quote} quote"))?;
    if quote == '\'' {
        return Ok(inner.to_owned());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_systemd_example_file_parses() {
        let parsed = parse(include_str!("../systemd/rowhook.env")).unwrap();
        assert_eq!(
            parsed,
            pairs(&[(
                "DATABASE_URL",
                "mysql://rowhook:CHANGE-ME@127.0.0.1:3306/opendental"
            )])
        );
    }

    #[test]
    fn comments_blanks_quotes_and_crlf() {
        let text = "# comment\r\n; also\r\n\r\n  A = plain value \r\nB=\"two words\"\r\nC='it''s'\r\nD=\"say \\\"hi\\\" \\\\ \\n\"\r\nE=''\r\nF=\r\n";
        assert_eq!(
            parse(text).unwrap(),
            pairs(&[
                ("A", "plain value"),
                ("B", "two words"),
                ("C", "it''s"),
                ("D", "say \"hi\" \\ \\n"),
                ("E", ""),
                ("F", ""),
            ])
        );
    }

    #[test]
    fn dollars_and_equals_signs_are_kept_literally() {
        let text = "DATABASE_URL=mysql://u:pa$word=1@h/db\nQ=\"$HOME\"\n";
        assert_eq!(
            parse(text).unwrap(),
            pairs(&[("DATABASE_URL", "mysql://u:pa$word=1@h/db"), ("Q", "$HOME")])
        );
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse("\n\n1A=x").unwrap_err().0, 3);
        assert_eq!(parse("A=\"open").unwrap_err().0, 1);
        assert_eq!(parse("A='").unwrap_err().0, 1);
    }

    #[test]
    fn the_environment_wins_over_the_file_and_the_last_duplicate_counts() {
        let file = pairs(&[("SET", "file"), ("NEW", "first"), ("NEW", "second")]);
        let kept = missing(file, |key| key == "SET");
        assert_eq!(kept, pairs(&[("NEW", "second")]));
    }

    #[test]
    fn the_flag_then_the_variable_names_the_file() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        let env = Some(OsString::from("/env.conf"));
        assert_eq!(
            path_from(&args(&["rowhook", "--config", "/a", "run"]), env.clone()),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            path_from(&args(&["rowhook", "run", "--config=/b"]), env.clone()),
            Some(PathBuf::from("/b"))
        );
        assert_eq!(
            path_from(&args(&["rowhook", "run"]), env.clone()),
            Some(PathBuf::from("/env.conf"))
        );
        assert_eq!(
            path_from(&args(&["rowhook", "run", "--", "--config", "/c"]), None),
            None
        );
    }
}
