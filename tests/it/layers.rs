//! The import rule, checked: each layer of `src/` uses only the layers
//! before it (ARCHITECTURE.md, "Layers").
//!
//! domain → db → delivery → config → window → tick → daemon → the edge
//! (cli, commands, telemetry, shutdown, receiver, main).
//!
//! Every `crate::<module>` path in code (not in comments) is checked, so a
//! fully qualified call cannot slip past a rule that only reads `use` lines.

use std::path::{Path, PathBuf};

/// The layers, lowest first; a module's top-level name decides its layer.
const LAYERS: &[&[&str]] = &[
    &["domain", "win32"],
    &["db"],
    &["delivery"],
    &["config"],
    &["window"],
    &["tick"],
    &["daemon"],
    &[
        "cli",
        "commands",
        "telemetry",
        "shutdown",
        "receiver",
        "http",
        "env_file",
        "windows",
        "main",
        "lib",
    ],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|names| names.contains(&module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The crate modules a line of code names, as `crate::name`.
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{')
                .collect()
        })
        .collect()
}

/// Every breach of the rule in `src/`, as `file:line: what`.
fn breaches(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let top = top.to_string_lossy().trim_end_matches(".rs").to_owned();
        let Some(own) = layer_of(&top) else {
            found.push(format!("{}: {top} is in no layer", relative.display()));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for module in named_modules(line) {
                let at = format!("{}:{}", relative.display(), n + 1);
                match layer_of(&module) {
                    _ if module.starts_with('{') => {
                        found.push(format!("{at}: grouped crate import (name each module)"))
                    }
                    Some(layer) if layer > own => {
                        found.push(format!("{at}: {top} uses {module}, a later layer"))
                    }
                    Some(_) => {}
                    // Items of lib.rs itself, such as a re-exported constant.
                    None => found.push(format!("{at}: crate::{module} is in no layer")),
                }
            }
        }
    }
    found
}

#[test]
fn each_layer_uses_only_the_layers_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = breaches(&src);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The check itself finds a breach: a file of a low layer naming a higher.
#[test]
fn the_layer_check_catches_an_upward_import() {
    let dir = std::env::temp_dir().join(format!("rowhook_layers_{}", std::process::id()));
    std::fs::create_dir_all(dir.join("domain")).unwrap();
    std::fs::write(
        dir.join("domain/bad.rs"),
        "// crate::tick in a comment is fine\nuse crate::tick::Ticker;\nfn f() { crate::db::x(); }\n",
    )
    .unwrap();
    std::fs::write(dir.join("daemon.rs"), "use crate::window::Context;\n").unwrap();
    let found = breaches(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("domain uses tick") || found[1].contains("domain uses tick"));
    assert!(found.iter().any(|f| f.contains("domain uses db")));
}
