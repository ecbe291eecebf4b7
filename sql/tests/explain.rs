//! Golden tests of EXPLAIN: `tests/golden/*.txt` hold statements and the
//! plans their queries must get. `UPDATE_GOLDEN=1 cargo test -p teller-sql
//! --test explain` rewrites the expected plans from what the planner does.
//!
//! File format: blocks separated by blank lines. A block starting with
//! `statement` runs the SQL lines that follow. A block starting with
//! `explain` holds a query, a `----` line and the expected plan lines.
//! Lines starting with `#` are comments.

mod support;

use std::path::{Path, PathBuf};

use support::Node;

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

fn run_file(path: &Path, update: bool) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("golden file");
    let node = Node::new();
    let mut s = node.session();
    let mut out = String::new();
    let mut failures = Vec::new();
    for block in text.split("\n\n") {
        let block = block.trim_matches('\n');
        if block.is_empty() {
            continue;
        }
        let comments: Vec<&str> = block.lines().take_while(|l| l.starts_with('#')).collect();
        for c in &comments {
            out.push_str(c);
            out.push('\n');
        }
        let mut lines = block.lines().skip(comments.len());
        let Some(first) = lines.next() else {
            out.push('\n');
            continue;
        };
        let block = block
            .lines()
            .skip(comments.len())
            .collect::<Vec<_>>()
            .join("\n");
        match first.trim() {
            "statement" => {
                let sql: Vec<&str> = lines.collect();
                let sql = sql.join("\n");
                if let Err(e) = s.run(&sql) {
                    panic!("{}: statement failed: {sql}\n{e:?}", path.display());
                }
                out.push_str(&block);
            }
            "explain" => {
                let rest: Vec<&str> = lines.collect();
                let split = rest.iter().position(|l| *l == "----").unwrap_or(rest.len());
                let query = rest[..split].join("\n");
                let expected: Vec<&str> = rest.get(split + 1..).unwrap_or(&[]).to_vec();
                let actual = match s.run(&format!("EXPLAIN {query}")) {
                    Ok(o) => o
                        .rows
                        .iter()
                        .map(|r| support::text(&r[0]))
                        .collect::<Vec<_>>(),
                    Err(e) => vec![format!("ERROR: {}", e.message)],
                };
                if actual != expected {
                    failures.push(format!(
                        "{}: {query}\nexpected:\n{}\nactual:\n{}",
                        path.display(),
                        expected.join("\n"),
                        actual.join("\n")
                    ));
                }
                out.push_str(&format!("explain\n{query}\n----\n{}", actual.join("\n")));
            }
            other => panic!("{}: unknown block kind {other:?}", path.display()),
        }
        out.push_str("\n\n");
    }
    let out = out.replace("\n\n\n", "\n\n");
    if update {
        std::fs::write(path, out.trim_end().to_string() + "\n").expect("rewriting the golden file");
    }
    failures
}

#[test]
fn plans_match_the_golden_files() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for file in golden_files() {
        failures.extend(run_file(&file, update));
    }
    if !update {
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
