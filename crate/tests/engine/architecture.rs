//! The engine's layering, checked: data flows one way. Every top-level module
//! of `crate/src` may use only modules that `lib.rs` declares before it, so
//! there is no import cycle and `lib.rs` lists the modules in their true
//! order. The dependencies are read from the sources (`crate::x` paths and
//! `use crate::{x, …}` groups); comments do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "bin" {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code without `//` comments (doc comments mention modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a source file refers to.
fn uses(text: &str) -> BTreeSet<String> {
    let text = code(text);
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

/// `module → modules it uses`, and the order `lib.rs` declares them in.
fn graph() -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = deps.entry(top.clone()).or_default();
        for used in uses(&text) {
            if used != top {
                entry.insert(used);
            }
        }
    }
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let order: Vec<String> = code(&lib)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    (deps, order)
}

#[test]
fn every_module_uses_only_modules_declared_before_it() {
    let (deps, order) = graph();
    let position = |m: &str| order.iter().position(|o| o == m);
    let mut wrong = Vec::new();
    for (module, used) in &deps {
        let Some(at) = position(module) else {
            wrong.push(format!("{module} is not declared in lib.rs"));
            continue;
        };
        for u in used {
            match position(u) {
                Some(p) if p < at => {}
                Some(_) => wrong.push(format!("{module} uses {u}, declared after it")),
                None if ["Error", "Result"].contains(&u.as_str()) => {}
                None => wrong.push(format!(
                    "{module} uses crate::{u}, which lib.rs does not declare"
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "lib.rs order {order:?}:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_a_cycle() {
    // The check above must be able to fail: a grouped import and a path.
    let found =
        uses("use crate::{train, report::X};\nfn f() { crate::prune::y(); } // crate::ignored");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["prune", "report", "train"]
    );
}
