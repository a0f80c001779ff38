//! docs/architecture.md draws which top-level modules each module uses; this reads the
//! `crate::` paths of every module's code (tests aside) and checks the drawing against
//! them, and that the drawing has no cycle, so the picture stays true as the code moves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its unit tests (a `tests.rs` file, or the `mod tests` block at
/// its end) and without comments.
fn code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `crate::` in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Each top-level module and the other top-level modules its code names.
fn used() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> Option<String> {
        let first = path.strip_prefix(&src).ok()?.components().next()?;
        let name = first.as_os_str().to_str()?;
        Some(name.trim_end_matches(".rs").to_string())
    };
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|p| module_of(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = Graph::new();
    for path in &files {
        let Some(module) = module_of(path).filter(|m| modules.contains(m)) else {
            continue;
        };
        let uses = graph.entry(module.clone()).or_default();
        for name in crate_paths(&code(path)) {
            if name != module && modules.contains(&name) {
                uses.insert(name);
            }
        }
    }
    graph
}

/// The drawing: the lines `module -> used used ...` of the `modules` block.
fn drawn() -> Graph {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let block = doc
        .split("```modules\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```modules block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (module, uses) = line.split_once("->").expect("module -> uses");
            (
                module.trim().to_string(),
                uses.split_whitespace().map(String::from).collect(),
            )
        })
        .collect()
}

#[test]
fn the_drawing_of_the_modules_is_what_the_code_uses() {
    let (used, drawn) = (used(), drawn());
    for (module, uses) in &used {
        let shown = drawn.get(module).cloned().unwrap_or_default();
        assert_eq!(
            &shown, uses,
            "docs/architecture.md draws {module} -> {shown:?}, but its code uses {uses:?}"
        );
    }
    for module in drawn.keys() {
        assert!(
            used.contains_key(module),
            "{module} is drawn but not in src/"
        );
    }
}

#[test]
fn the_modules_are_layered_without_a_cycle() {
    let graph = used();
    // Kahn's order: a module whose uses are all placed can be placed
    let mut placed = BTreeSet::new();
    while placed.len() < graph.len() {
        let next: Vec<&String> = graph
            .iter()
            .filter(|(m, uses)| !placed.contains(*m) && uses.iter().all(|u| placed.contains(u)))
            .map(|(m, _)| m)
            .collect();
        assert!(
            !next.is_empty(),
            "a cycle among {:?}",
            graph
                .keys()
                .filter(|m| !placed.contains(*m))
                .collect::<Vec<_>>()
        );
        placed.extend(next.into_iter().cloned());
    }
}
