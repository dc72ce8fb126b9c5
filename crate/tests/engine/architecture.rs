//! The engine's layering, checked: data flows one way. Every top-level module
//! of `crate/src` may use only modules that `lib.rs` declares before it, so
//! there is no import cycle and `lib.rs` lists the modules in their true
//! order. The two layer folders, `base` (foundations) and `runs`
//! (compositions), count as their modules in the order their `mod.rs`
//! declares them: `base::error` comes before `base::device`, and `runs`
//! after everything else. The dependencies are read from the sources (`crate::x` paths and
//! `use crate::{x, …}` groups); comments do not count. Below that, the same
//! for every file: no two source files of the library or the binary depend
//! on each other, directly or through a chain.

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

/// The folders whose modules are layers of their own (`base::error`, …).
const LAYER_FOLDERS: [&str; 2] = ["base", "runs"];

/// The module a path after `crate::` names: its first segment, or its first
/// two inside a layer folder (`base::host`).
fn layer_module(path: &str) -> String {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let first = ident(path);
    match path[first.len()..].strip_prefix("::") {
        Some(rest) if LAYER_FOLDERS.contains(&first.as_str()) => {
            let second = ident(rest.trim_start_matches('{'));
            if second.is_empty() {
                first
            } else {
                format!("{first}::{second}")
            }
        }
        _ => first,
    }
}

/// The top-level modules a source file refers to.
fn uses(text: &str) -> BTreeSet<String> {
    let text = code(text);
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        // A group inside a layer folder: `crate::base::{host, rng}`.
        let folder = LAYER_FOLDERS
            .iter()
            .find(|f| rest.starts_with(&format!("{f}::{{")));
        let (prefix, after) = match folder {
            Some(f) => (format!("{f}::"), &rest[f.len() + 2..]),
            None => (String::new(), rest),
        };
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = layer_module(&format!("{prefix}{}", item.trim()));
                if !name.is_empty() && name != prefix.trim_end_matches(':') {
                    out.insert(name);
                }
            }
        } else {
            out.insert(layer_module(rest));
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
        let parts: Vec<String> = relative
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        let top = match parts.as_slice() {
            [only] if only == "lib" => continue,
            // A layer folder's mod.rs only declares its modules.
            [folder, m] if LAYER_FOLDERS.contains(&folder.as_str()) && m == "mod" => continue,
            [folder, m, ..] if LAYER_FOLDERS.contains(&folder.as_str()) => format!("{folder}::{m}"),
            [first, ..] => first.clone(),
            [] => continue,
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = deps.entry(top.clone()).or_default();
        for used in uses(&text) {
            if used != top {
                entry.insert(used);
            }
        }
    }
    let declared = |text: &str| -> Vec<String> {
        code(text)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .map(|m| m.trim_end_matches(';').to_string())
            .collect()
    };
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut order = Vec::new();
    for m in declared(&lib) {
        if LAYER_FOLDERS.contains(&m.as_str()) {
            let text = std::fs::read_to_string(src.join(&m).join("mod.rs")).unwrap();
            order.extend(
                declared(&text)
                    .into_iter()
                    .map(|inner| format!("{m}::{inner}")),
            );
        } else {
            order.push(m);
        }
    }
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
    // Inside a layer folder the module is the folder's child.
    let found = uses("use crate::base::{host, rng};\nuse crate::{base::error::E, runs::lab};");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["base::error", "base::host", "base::rng", "runs::lab"]
    );
}

// ---- File level: no import cycle between source files ---------------------
//
// Above, top-level modules; below, every file. A file depends on the file of
// each module a path in it names (`use` trees expanded, `crate::`, `super::`,
// `self::` and child-module paths), resolved literally: a path through a
// folder's `mod.rs` re-export is an edge to that `mod.rs`, so a child that
// imports its parent's re-exports while the parent imports the child is a
// cycle. `mod x;` declarations are not edges. The library (`crate/src`) and
// the binary (`crate/src/bin/prunelab`, its own crate root) are checked
// alike; an inline `#[cfg(test)] mod tests { … }` is left out (its `super::`
// is the file itself).

/// `prune/criteria/energy.rs` → `[prune, criteria, energy]`; `prune/mod.rs`
/// → `[prune]`; the crate root (`lib.rs`, `main.rs`) → `[]`.
fn module_path(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative.split('/').map(str::to_string).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !["mod", "lib", "main"].contains(&stem) {
        parts.push(stem.to_string());
    }
    parts
}

/// Code without comments, string contents and inline test modules.
fn plain_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::new();
    let mut in_string = false;
    let text = code(text);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if !in_string && c == '/' && chars.peek() == Some(&'*') {
            // A block comment (not nested): keep only its line breaks.
            let mut last = ' ';
            for c in chars.by_ref() {
                if c == '\n' {
                    out.push('\n');
                }
                if last == '*' && c == '/' {
                    break;
                }
                last = c;
            }
            continue;
        }
        if !in_string && c == '\'' {
            // A quote character literal (`'"'`, `'\"'`) opens no string.
            let mut ahead = chars.clone();
            let quote = match ahead.next() {
                Some('"') => ahead.next() == Some('\''),
                Some('\\') => ahead.next() == Some('"') && ahead.next() == Some('\''),
                _ => false,
            };
            if quote {
                chars = ahead;
                out.push_str("' '");
                continue;
            }
        }
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                '\n' => out.push('\n'),
                _ => {}
            }
        } else {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// Every path a `use` tree names: `a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let mut base = prefix.to_vec();
        base.extend(
            head.split("::")
                .filter(|s| !s.is_empty())
                .map(|s| s.trim().to_string()),
        );
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
    } else if !tree.is_empty() {
        let tree = tree.split(" as ").next().unwrap();
        let mut path = prefix.to_vec();
        for s in tree.split("::").map(str::trim) {
            if s != "*" && s != "self" && !s.is_empty() {
                path.push(s.to_string());
            }
        }
        out.push(path);
    }
}

/// The paths a file names: its `use` trees and its inline paths.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let word_start = i == 0 || !is_ident(rest[..i].chars().last().unwrap());
        rest = &rest[i + 4..];
        if word_start {
            let end = rest.find(';').unwrap_or(rest.len());
            expand(&[], &rest[..end], &mut out);
            rest = &rest[end..];
        }
    }
    // Inline paths (`crate::a::f()`, `super::x::Y`, `child::g()`): every
    // `a::b…` token; the graph keeps those that name a module of this crate.
    let mut token = String::new();
    for c in code.chars().chain(std::iter::once(' ')) {
        if is_ident(c) || c == ':' {
            token.push(c);
            continue;
        }
        let path = token.trim_end_matches(':');
        // `super::{a, b}` alone names the groups' items: the `use` scan has them.
        if path.contains("::") && !path.starts_with(':') {
            expand(&[], path, &mut out);
        }
        token.clear();
    }
    out
}

/// `file → files it depends on`, for one crate given as `(path relative to
/// its root, source text)`.
fn file_graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<Vec<String>, &str> = files
        .iter()
        .map(|(path, _)| (module_path(path), path.as_str()))
        .collect();
    let mut graph = BTreeMap::new();
    for (path, text) in files {
        let here = module_path(path);
        let mut deps = BTreeSet::new();
        for named in named_paths(&plain_code(text)) {
            let mut absolute = match named.first().map(String::as_str) {
                Some("crate") => Vec::new(),
                Some("super") | Some("self") => here.clone(),
                Some(first) => {
                    // A child module of this one (`use advance::Stepper` in a mod.rs).
                    let mut child = here.clone();
                    child.push(first.to_string());
                    if !by_module.contains_key(&child) {
                        continue; // another crate: std, burn, serde …
                    }
                    here.clone()
                }
                None => continue,
            };
            let mut segments = named.iter().peekable();
            if named[0] == "crate" || named[0] == "self" {
                segments.next();
            }
            while segments.peek().is_some_and(|s| *s == "super") {
                segments.next();
                absolute.pop();
            }
            absolute.extend(segments.cloned());
            // The deepest file module the path runs through.
            let target = (0..=absolute.len())
                .rev()
                .find_map(|n| by_module.get(&absolute[..n]))
                .copied();
            if let Some(target) = target.filter(|t| *t != path.as_str()) {
                deps.insert(target.to_string());
            }
        }
        graph.insert(path.clone(), deps);
    }
    graph
}

/// One import cycle (`a → b → … → a`), if the graph has any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<&'a str>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// `(path relative to root, text)` of every `.rs` file under `root`,
/// `bin/` left out (the binary is its own crate).
fn crate_files(root: &Path) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    sources(root, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let relative = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (relative, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn no_two_source_files_import_each_other_even_through_a_chain() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for root in [src.clone(), src.join("bin/prunelab")] {
        let files = crate_files(&root);
        assert!(files.len() > 5, "read the sources under {}", root.display());
        let graph = file_graph(&files);
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "import cycle in {}: {}\n(import from the file that defines an item, not \
                 through a parent's re-export; move what two files share into a third)",
                root.display(),
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn the_file_checker_sees_cycles_through_reexports_super_children_and_bare_paths() {
    let crate_of = |files: &[(&str, &str)]| -> Vec<(String, String)> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    };
    // A child importing its parent's re-export while the parent uses the child.
    let through_super = crate_of(&[
        ("lib.rs", "pub mod a;"),
        ("a/mod.rs", "mod b;\nmod c;\npub use b::X;\npub fn f() {}"),
        ("a/b.rs", "use super::{f, c::Y};\npub struct X;"),
        (
            "a/c.rs",
            "pub struct Y;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
    ]);
    let cycle = find_cycle(&file_graph(&through_super)).expect("a/mod.rs ↔ a/b.rs");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"a/b.rs".to_string()) && cycle.contains(&"a/mod.rs".to_string()));
    // A chain through a grouped `crate::` path and an inline one; strings
    // and comments do not count.
    let chain = crate_of(&[
        ("lib.rs", "pub mod x;\npub mod y;\npub mod z;"),
        ("x.rs", "use crate::{y::{self, Thing as T}};"),
        (
            "y.rs",
            "pub struct Thing;\nfn g() { let _ = ('\"', \"a\"); crate::z::h(); } // crate::x",
        ),
        (
            "z.rs",
            "pub fn h() { let _ = \"crate::y\"; crate::x::k(); }",
        ),
    ]);
    let cycle = find_cycle(&file_graph(&chain)).expect("x → y → z → x");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    // A binary's root calling a child by its bare path, the child importing
    // an item the root imports from a third module.
    let binary = crate_of(&[
        (
            "main.rs",
            "mod cli;\nmod fetch;\nuse cli::*;\nfn main() { fetch::run(Args); }",
        ),
        ("cli.rs", "pub struct Args;"),
        ("fetch.rs", "use crate::Args;\npub fn run(_: Args) {}"),
    ]);
    let cycle = find_cycle(&file_graph(&binary)).expect("main.rs ↔ fetch.rs");
    assert!(cycle.contains(&"fetch.rs".to_string()), "{cycle:?}");
    // Without the back edge: no cycle; the inline test module's `super::*` is no edge.
    let acyclic = crate_of(&[
        ("lib.rs", "pub mod x;\npub mod y;"),
        ("x.rs", "use crate::y::Thing;"),
        (
            "y.rs",
            "pub struct Thing; /* crate::x */\n#[cfg(test)]\nmod tests {\n    use crate::x;\n}\n",
        ),
    ]);
    assert_eq!(find_cycle(&file_graph(&acyclic)), None);
}
