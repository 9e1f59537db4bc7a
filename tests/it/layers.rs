//! The library's layers (docs/architecture.md): each top-level module imports only from
//! the layers below its own, so the imports have no cycles and run one way.

use std::path::{Path, PathBuf};

/// The layers from the bottom up; the command line (`src/cli/`, in the binary) on top.
const LAYERS: &[&[&str]] = &[
    &["contract", "clock"],
    &["vision", "service"],
    &["protect", "frames", "http", "config"],
    &["enroll", "capture", "backend"],
    &["kiosk", "recovery"],
    &["agent"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The Rust files of a top-level module: `src/NAME.rs` or everything under `src/NAME/`.
fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() || p.extension().is_some_and(|e| e == "rs") {
            all.extend(files(&p));
        }
    }
    all
}

/// The top-level modules named by `crate::NAME` outside comments.
fn imports(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| line.split("crate::").skip(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_module_imports_only_from_the_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if name == "main" || name == "lib" {
            continue;
        }
        let own = layer(&name).unwrap_or_else(|| panic!("src/{name} is in no layer"));
        for file in files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in imports(&text) {
                if used == name {
                    continue;
                }
                let theirs = layer(&used).unwrap_or_else(|| panic!("{file:?}: crate::{used}"));
                assert!(
                    theirs < own,
                    "{}: {name} (layer {}) imports {used} (layer {})",
                    file.display(),
                    own + 1,
                    theirs + 1
                );
            }
        }
        seen.push(name);
    }
    // Every layer's modules exist.
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(seen.iter().any(|s| s == module), "no src/{module}");
    }
}
