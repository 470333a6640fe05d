//! The house checks itself: every `crate::` path in `src/` points down the layer list that
//! ARCHITECTURE.md draws, so no room imports one above it and no two rooms import each other.
//!
//! A room is a top-level module of `src/` (a file or a folder). Code after a
//! `#[cfg(test)] mod …` line is not read: test modules sit at the end of their file and may
//! borrow fixtures from anywhere (the load generator's payloads, the decoders). Comments are
//! not read either.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The rooms from the bottom up. A room may use the rooms of earlier lines; rooms on one line
/// are peers and must not use each other. Keep ARCHITECTURE.md's "Layers" list in step.
const LAYERS: &[&[&str]] = &[
    // What every layer shares: the record types and the self-metrics registry.
    &["model", "telemetry"],
    // Per-minute aggregates over the records.
    &["rollup"],
    // Storage: the WAL, Parquet files, the metadata database; in cluster mode the queue in
    // front of indexing and the PostgreSQL catalog.
    &["wal", "store", "meta", "queue", "metastore"],
    // The block index over the Parquet files.
    &["index"],
    // The write path: memtables, the writer and the flusher.
    &["pipeline"],
    // The one read layer.
    &["query"],
    // Services over the read layer: pins, the notebook, post-mortem suggestions.
    &["evidence"],
    &["notebook"],
    &["postmortem"],
    // Logins, as middleware that knows no page.
    &["access"],
    // Front ends: OTLP receivers, the JSON/gRPC API, other tools' APIs.
    &["ingest", "api", "compat"],
    // Alert rules, states and notifications over the read layer and the PromQL evaluator
    // (its API beside the others; the UI above it shows its alerts).
    &["alerting"],
    // The UI (it renders the API's OpenAPI document too).
    &["web"],
    // What the server runs beside the front ends.
    &[
        "compaction",
        "retention",
        "reindex",
        "quarantine",
        "demo",
        "hardening",
        "tls",
        "cluster",
    ],
    // Settings: flags, environment and file, into each room's own settings types.
    &["config"],
    // Wiring.
    &["server"],
    // The load generator is a client of everything; the command line starts it all.
    &["loadgen"],
    &["cli"],
];

/// One `crate::` path found in a room's code.
#[derive(Debug)]
struct Import {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
}

fn layer_of(room: &str) -> Option<usize> {
    LAYERS.iter().position(|rooms| rooms.contains(&room))
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The room a file belongs to: `src/web/chrome.rs` → `web`, `src/access.rs` → `access`.
fn room_of(file: &Path) -> String {
    let relative = file.strip_prefix(src_dir()).expect("under src");
    let first = relative
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of `text` without comments and test modules, and where each line starts in it.
fn code_of(text: &str) -> (String, Vec<usize>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut code, mut starts) = (String::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let next = lines.get(i + 1).map_or("", |l| l.trim_start());
        // `mod tests`, or `pub(super) mod tests` when a sibling's tests share its helpers.
        let test_module =
            |l: &str| l.starts_with("mod ") || l.starts_with("pub") && l.contains(" mod ");
        if trimmed.starts_with("#[cfg(test)]") && (test_module(next) || trimmed.contains(" mod ")) {
            break;
        }
        starts.push(code.len());
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    (code, starts)
}

/// The rooms a `crate::` path names, `at` being just after `crate::`: one name, or each
/// top-level name of a `{a::b, c}` group.
fn rooms_named(code: &str, at: usize) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let rest = &code[at..];
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let (mut depth, mut names, mut expect_name) = (1, Vec::new(), true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            ',' if depth == 1 => expect_name = true,
            c if expect_name && depth == 1 && (c.is_ascii_alphanumeric() || c == '_') => {
                names.push(ident(&group[i..]));
                expect_name = false;
            }
            _ => {}
        }
    }
    names
}

/// The `crate::room` paths of `text`, outside comments and test modules.
fn imports_of(file: &Path, text: &str) -> Vec<Import> {
    let from = room_of(file);
    let (code, starts) = code_of(text);
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let line = starts.partition_point(|&s| s <= at);
        for to in rooms_named(&code, at + "crate::".len()) {
            if !to.is_empty() && to != from {
                found.push(Import {
                    file: file.to_path_buf(),
                    line,
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    found
}

/// The arrows of `imports` that do not point down the layer list.
fn upward(imports: &[Import]) -> Vec<String> {
    imports
        .iter()
        .filter_map(|i| {
            let (Some(from), Some(to)) = (layer_of(&i.from), layer_of(&i.to)) else {
                return Some(format!(
                    "{}:{}: `{}` uses `{}`, and one of them is in no layer of tests/layers.rs",
                    i.file.display(),
                    i.line,
                    i.from,
                    i.to
                ));
            };
            (to >= from).then(|| {
                format!(
                    "{}:{}: `{}` (layer {from}) uses `crate::{}` (layer {to}): {}",
                    i.file.display(),
                    i.line,
                    i.from,
                    i.to,
                    if to == from {
                        "peers must not use each other"
                    } else {
                        "an arrow pointing up"
                    }
                )
            })
        })
        .collect()
}

fn all_imports() -> Vec<Import> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files.sort();
    files
        .iter()
        .filter(|f| !matches!(room_of(f).as_str(), "lib" | "main"))
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("read a source file");
            imports_of(f, &text)
        })
        .collect()
}

#[test]
fn every_crate_path_points_down_the_layers() {
    let imports = all_imports();
    assert!(
        imports.len() > 100,
        "the scan found only {} imports; is it reading src/?",
        imports.len()
    );
    let wrong = upward(&imports);
    assert!(
        wrong.is_empty(),
        "imports against ARCHITECTURE.md's layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_room_of_the_crate_is_in_a_layer() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("read lib.rs");
    let rooms: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(rooms.len() > 20, "rooms read from lib.rs: {rooms:?}");
    let unplaced: Vec<_> = rooms.iter().filter(|r| layer_of(r).is_none()).collect();
    assert!(unplaced.is_empty(), "rooms in no layer: {unplaced:?}");
    let listed: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    let unknown: Vec<_> = listed.iter().filter(|r| !rooms.contains(*r)).collect();
    assert!(
        unknown.is_empty(),
        "layers name rooms lib.rs lacks: {unknown:?}"
    );
}

#[test]
fn an_upward_use_is_caught() {
    let file = src_dir().join("store").join("example.rs");
    let text = "use crate::model::Signal;\nuse crate::query::QueryEngine;\n// crate::web in a comment\n#[cfg(test)]\nmod tests {\n    use crate::server;\n}\n";
    let imports = imports_of(&file, text);
    let rooms: Vec<&str> = imports.iter().map(|i| i.to.as_str()).collect();
    assert_eq!(
        rooms,
        ["model", "query"],
        "comments and test modules are not read"
    );
    let shared = "use crate::model::Signal;\n#[cfg(test)]\npub(super) mod tests {\n    use crate::server;\n}\n";
    assert_eq!(
        imports_of(&file, shared).len(),
        1,
        "a test module shared with its siblings is not read"
    );
    let wrong = upward(&imports);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].contains("`store` (layer 2) uses `crate::query` (layer 5)"),
        "{}",
        wrong[0]
    );
    let grouped = imports_of(
        &file,
        "use crate::{\n    index::{BlockIndex, Fields},\n    pipeline::LiveData,\n};\n",
    );
    let rooms: Vec<&str> = grouped.iter().map(|i| i.to.as_str()).collect();
    assert_eq!(rooms, ["index", "pipeline"]);
    assert_eq!(upward(&grouped).len(), 2);
}
