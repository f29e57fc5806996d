//! ARCHITECTURE.md is a map of at most 250 lines, and every file or folder
//! it, the design documents (`docs/design/`) and the decision log name in
//! backticks exists in the repository (by its full path, or as the tail of one, the
//! way the map names files within their crate: `store/calendar.rs`).

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// Every file and folder of the repository, as paths from its root (build
/// output, dependencies and git's own folder left out).
fn tree(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(root.join(&folder))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if [".git", "target", "node_modules"].contains(&name.as_str()) {
                continue;
            }
            let path = folder.join(&name);
            let text = path.to_string_lossy().replace('\\', "/");
            if entry.file_type()?.is_dir() {
                found.push(format!("{text}/"));
                folders.push(path);
            } else {
                found.push(text);
            }
        }
    }
    Ok(found)
}

/// The backticked names that look like a file or a folder.
fn named_paths(text: &str) -> Vec<String> {
    const KINDS: [&str; 12] = [
        ".rs", ".md", ".sql", ".sh", ".toml", ".yml", ".yaml", ".mjs", ".json", ".conf", ".py",
        ".kts",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.is_empty() && !t.starts_with('/'))
        .filter(|t| !t.contains(|c: char| c.is_whitespace() || "{}*<>()=:,\"'$".contains(c)))
        .filter(|t| t.ends_with('/') || KINDS.iter().any(|k| t.ends_with(k)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_map_is_short_and_every_path_it_and_the_design_documents_name_exists() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the repository root")?;
    let tree = tree(root)?;
    let mut documents = vec![
        PathBuf::from("ARCHITECTURE.md"),
        PathBuf::from("docs/decisions.md"),
    ];
    for entry in std::fs::read_dir(root.join("docs/design"))? {
        let name = entry?.file_name();
        documents.push(Path::new("docs/design").join(name));
    }
    assert!(documents.len() > 8, "the design documents were found");
    for document in documents {
        let text = std::fs::read_to_string(root.join(&document))?;
        let names = named_paths(&text);
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| {
                !tree
                    .iter()
                    .any(|path| path == *name || path.ends_with(&format!("/{name}")))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{} names what is not there: {missing:?}",
            document.display()
        );
    }
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let lines = map.lines().count();
    assert!(
        (100..=250).contains(&lines),
        "ARCHITECTURE.md is a map of 100 to 250 lines, not {lines}"
    );
    assert!(named_paths(&map).len() > 50, "the map names its files");
    Ok(())
}
