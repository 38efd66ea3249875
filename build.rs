//! Embeds every `schemas/<layer>/<table>.toml` into the binary, so a deployed
//! binary always validates against the schemas it was built with.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("schemas");
    println!("cargo:rerun-if-changed=schemas");

    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &mut files)?;
    }
    let mut entries: Vec<(String, PathBuf)> = Vec::with_capacity(files.len());
    for f in files {
        let rel = f
            .strip_prefix(&root)?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        entries.push((rel, f));
    }
    entries.sort();

    let mut code = String::from("&[\n");
    for (rel, abs) in &entries {
        println!("cargo:rerun-if-changed={}", abs.display());
        let abs = abs.to_str().ok_or("schema path is not UTF-8")?;
        writeln!(code, "    ({rel:?}, include_str!({abs:?})),")?;
    }
    code.push_str("]\n");

    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("embedded_schemas.rs");
    fs::write(out, code)?;
    Ok(())
}
