//! The house rules of `src/`, checked on the source itself so they cannot rot:
//!
//! - no file over [`FILE_MAX_LINES`] lines (functions are kept short by clippy's
//!   `too_many_lines`, set to 80 in `clippy.toml` and enabled in `src/lib.rs`);
//! - no import cycle between the services: each top-level folder of `src/` is one node, except
//!   the shared leaves (`msg.rs`, `settings.rs`, `shard/timer.rs`), which are nodes of their own;
//!   references inside one folder do not count, test code (`tests.rs`, `testing.rs`) neither;
//! - a service's `msg.rs` depends on nothing else in `src/`, so any service may name another's
//!   messages without depending on its code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest file allowed in `src/`.
const FILE_MAX_LINES: usize = 800;

/// A source file and the module path it defines (`["danmaku", "home"]`).
struct Module {
    path: PathBuf,
    name: Vec<String>,
    text: String,
}

fn modules() -> Vec<Module> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut name: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                name.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                name.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            Module { path, name, text }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The node a module belongs to in the service graph (`None`: the crate root).
fn node(name: &[String]) -> Option<String> {
    let folder = name.first()?;
    let leaf = name.get(1).map(String::as_str);
    Some(match leaf {
        Some("msg" | "settings") => format!("{folder}::{}", leaf.unwrap()),
        Some("timer") if folder == "shard" => "shard::timer".to_string(),
        _ => folder.clone(),
    })
}

/// Test modules: `tests`, `testing`, and `*_tests` (a service's second test file).
fn is_test_code(module: &Module) -> bool {
    module.name.last().is_some_and(|leaf| {
        matches!(leaf.as_str(), "tests" | "testing") || leaf.ends_with("_tests")
    })
}

/// The code of `text` without comments (line comments, doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` and `super::…` path of `module`, resolved to absolute module paths
/// (`{…}` groups expanded one level).
fn references(module: &Module) -> Vec<Vec<String>> {
    let code = code(&module.text);
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let preceded_by_ident = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[at + prefix.len()..];
            if preceded_by_ident {
                continue;
            }
            for path in expand(rest) {
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// The module `super` names from `module` (a `mod.rs` file is named after its folder, so
/// this is the same for both kinds of file).
fn parent(module: &Module) -> Vec<String> {
    let mut name = module.name.clone();
    name.pop();
    name
}

/// The paths at the start of `text` (after `crate::`): `a::b::C` or `a::{b, c::D}`.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        segments.push(ident);
        match rest.strip_prefix("::") {
            Some(after) => rest = after,
            None => return vec![segments],
        }
    }
    let Some(group) = rest.strip_prefix('{') else {
        return vec![segments];
    };
    let end = group.find('}').unwrap_or(group.len());
    group[..end]
        .split(',')
        .map(|item| {
            let mut path = segments.clone();
            path.extend(
                item.split("::")
                    .map(|s| s.trim().trim_start_matches('{').to_string())
                    .take_while(|s| {
                        !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                    }),
            );
            path
        })
        .collect()
}

/// The longest prefix of `path` that is a module.
fn resolve<'a>(path: &[String], known: &'a BTreeSet<Vec<String>>) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| known.get(&path[..n].to_vec()))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.name.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in modules.iter().filter(|m| !is_test_code(m)) {
        let Some(from) = node(&module.name) else {
            continue;
        };
        let edges = graph.entry(from.clone()).or_default();
        for reference in references(module) {
            let Some(to) = resolve(&reference, &known).and_then(|m| node(m)) else {
                continue;
            };
            let same_folder = from.split("::").next() == to.split("::").next();
            if !same_folder {
                edges.insert(to);
            }
        }
    }
    graph
}

#[test]
fn no_file_in_src_is_over_800_lines() {
    let long: Vec<String> = modules()
        .iter()
        .filter(|m| m.text.lines().count() > FILE_MAX_LINES)
        .map(|m| format!("{} ({} lines)", m.path.display(), m.text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {FILE_MAX_LINES} lines: {long:?}");
}

#[test]
fn the_services_import_each_other_without_a_cycle() {
    let graph = graph();
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| n == node) {
            panic!("import cycle: {} → {node}", stack[at..].join(" → "));
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    // The graph is the one we think it is: the router reaches every service, and they do not
    // reach it.
    assert!(graph["shard"].contains("danmaku") && graph["shard"].contains("media"));
    assert!(
        !graph["danmaku"].contains("shard"),
        "{:?}",
        graph["danmaku"]
    );
}

#[test]
fn message_modules_depend_on_nothing_else_in_src() {
    let modules = modules();
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.name.clone()).collect();
    let msgs: Vec<&Module> = modules
        .iter()
        .filter(|m| m.name.len() == 2 && m.name[1] == "msg")
        .collect();
    assert!(msgs.len() >= 5, "every service declares its messages");
    for msg in msgs {
        // Only the mesh's own enum names the others.
        let may_name_messages = msg.name[0] == "shard";
        for reference in references(msg) {
            let Some(to) = resolve(&reference, &known) else {
                continue;
            };
            let is_message = to.len() == 2 && to[1] == "msg";
            assert!(
                may_name_messages && is_message,
                "{} depends on crate::{}",
                msg.path.display(),
                to.join("::")
            );
        }
    }
}
