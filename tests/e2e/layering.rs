//! The server's layers, held by reading its `crate::` paths (ARCHITECTURE.md,
//! "Layers"). From the bottom:
//!
//! - **foundation**: settings, randomness and hashing, MLS framing checks,
//!   rate buckets, logging; each imports only the foundation;
//! - **storage**: the database, importing only the foundation;
//! - **services**: the hub, the relay between nodes, push, the video server,
//!   tokens, the sweeper and the delivery core; they import what lies below
//!   and know nothing of HTTP;
//! - **HTTP**: the state handlers reach, errors as answers, extractors, the
//!   route table and its handlers, the OpenAPI frame, startup.
//!
//! Between top-level modules no import circle is allowed, and no handler
//! module imports another (the route table in `routes/mod.rs` names them
//! all). Code after a file's `#[cfg(test)]` is left out: tests may reach
//! anywhere.

use anyhow::{Context as _, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FOUNDATION: [&str; 5] = ["config", "crypto", "framing", "rate_limit", "telemetry"];
const HTTP: [&str; 7] = [
    "auth", "error", "json", "openapi", "routes", "startup", "state",
];
/// Items of the crate root itself (`crate::now()`), not modules.
const ROOT_ITEMS: [&str; 1] = ["now"];

/// One source file of the server: its path under `server/src` and its code
/// outside comments and tests.
struct Source {
    path: String,
    code: String,
}

fn sources() -> Result<Vec<Source>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the repository root")?
        .join("server/src");
    let mut found = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(src.join(&folder))? {
            let entry = entry?;
            let path = folder.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(src.join(&path))?;
                let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
                let code: Vec<&str> = before_tests
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect();
                found.push(Source {
                    path: path.to_string_lossy().replace('\\', "/"),
                    code: code.join("\n"),
                });
            }
        }
    }
    Ok(found)
}

/// The top-level module a file belongs to (`storage/circles.rs` → `storage`);
/// `None` for the crate root and the binary.
fn module_of(path: &str) -> Option<&str> {
    let first = path.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!["lib", "main"].contains(&name)).then_some(name)
}

/// The first segment of every path that follows `prefix` in `code`,
/// including each member of a `prefix{a, b::c}` group.
fn paths_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut member_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => member_start = true,
                    c if member_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        let word: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        names.insert(word);
                        member_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                names.insert(word);
            }
        }
    }
    names
}

/// Which top-level modules each top-level module imports.
fn module_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources {
        let Some(module) = module_of(&source.path) else {
            continue;
        };
        let imports = graph.entry(module.to_owned()).or_default();
        for name in paths_after(&source.code, "crate::") {
            if name != module && !ROOT_ITEMS.contains(&name.as_str()) {
                imports.insert(name);
            }
        }
    }
    graph
}

/// A path of imports that comes back to where it started, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        trail: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = trail.iter().position(|n| n == node) {
            let mut circle = trail[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        trail.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, trail, done) {
                return Some(circle);
            }
        }
        trail.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_servers_modules_import_each_other_in_no_circle() -> Result<()> {
    let graph = module_graph(&sources()?);
    assert!(graph.len() > 15, "the server's modules were found");
    if let Some(circle) = find_circle(&graph) {
        panic!("an import circle: {}", circle.join(" → "));
    }
    Ok(())
}

#[test]
fn storage_and_the_foundation_import_nothing_above_them() -> Result<()> {
    let graph = module_graph(&sources()?);
    for (module, imports) in &graph {
        let foundation = FOUNDATION.contains(&module.as_str());
        if module != "storage" && !foundation {
            continue;
        }
        for import in imports {
            assert!(
                FOUNDATION.contains(&import.as_str()),
                "{module} imports {import}, which lies above it"
            );
        }
    }
    assert!(graph.contains_key("storage"));
    Ok(())
}

#[test]
fn nothing_below_the_http_layer_knows_http() -> Result<()> {
    let sources = sources()?;
    let mut below = 0;
    for source in &sources {
        let Some(module) = module_of(&source.path) else {
            continue;
        };
        if HTTP.contains(&module) {
            continue;
        }
        below += 1;
        assert!(
            !source.code.contains("actix_web"),
            "{} uses actix-web, below the HTTP layer",
            source.path
        );
        for import in paths_after(&source.code, "crate::") {
            assert!(
                !HTTP.contains(&import.as_str()),
                "{} imports {import}, which is HTTP",
                source.path
            );
        }
    }
    assert!(below > 20, "the files below the HTTP layer were read");
    Ok(())
}

#[test]
fn no_route_imports_another() -> Result<()> {
    let sources = sources()?;
    let handlers: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.path.strip_prefix("routes/")?.strip_suffix(".rs"))
        .filter(|name| *name != "mod")
        .map(str::to_owned)
        .collect();
    assert!(handlers.len() > 8, "the handler modules were found");
    for source in &sources {
        let Some(name) = source
            .path
            .strip_prefix("routes/")
            .and_then(|p| p.strip_suffix(".rs"))
        else {
            continue;
        };
        if name == "mod" {
            continue;
        }
        let reached: BTreeSet<String> = paths_after(&source.code, "super::")
            .into_iter()
            .chain(paths_after(&source.code, "crate::routes::"))
            .collect();
        if let Some(other) = reached.intersection(&handlers).next() {
            panic!("routes/{name}.rs imports routes/{other}.rs");
        }
    }
    Ok(())
}

/// The methods of one storage implementation file: name and body.
fn storage_methods(code: &str) -> Vec<(String, String)> {
    let mut methods = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("\n    async fn ") {
        rest = &rest[at + "\n    async fn ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let end = rest.find("\n    }\n").unwrap_or(rest.len());
        methods.push((name, rest[..end].to_owned()));
        rest = &rest[end..];
    }
    methods
}

#[test]
fn every_storage_write_is_one_transaction() -> Result<()> {
    let sources = sources()?;
    let mut checked = 0;
    for source in sources
        .iter()
        .filter(|s| s.path.starts_with("storage/shared/"))
    {
        for (name, body) in storage_methods(&source.code) {
            checked += 1;
            let in_transaction = body.contains("self.write()");
            let alone = body.matches("self.writer()").count();
            assert!(
                !(in_transaction && alone > 0),
                "{}: {name} writes both inside and outside its transaction",
                source.path
            );
            assert!(
                alone <= 1,
                "{}: {name} runs {alone} writes, each its own transaction",
                source.path
            );
        }
    }
    assert!(checked > 40, "the storage methods were read ({checked})");
    Ok(())
}
