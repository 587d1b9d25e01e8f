//! `notebooks/README.ipynb` holds the cells of `examples/readme.rs`: this fails when one is
//! edited without the other (rebuild with `python3 notebooks/build.py`, execute with
//! `bash notebooks/run.sh`), and when the committed notebook was not run top to bottom.

use serde_json::Value;
use std::path::Path;

/// The source of every code cell, in order.
fn code_cells(notebook: &Value) -> Vec<String> {
    let cells = notebook["cells"].as_array().expect("a notebook has cells");
    cells
        .iter()
        .filter(|cell| cell["cell_type"] == "code")
        .map(|cell| match &cell["source"] {
            Value::String(text) => text.clone(),
            Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
            other => panic!("a cell source that is neither text nor lines: {other}"),
        })
        .collect()
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_notebook_runs_the_code_of_the_readme_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = read(&root.join("notebooks/README.ipynb"));
    let dir = tempfile::tempdir().unwrap();
    let fresh_path = dir.path().join("README.ipynb");
    let built = std::process::Command::new("python3")
        .arg(root.join("notebooks/build.py"))
        .arg(&fresh_path)
        .output()
        .expect("python3 runs notebooks/build.py");
    assert!(
        built.status.success(),
        "notebooks/build.py failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (committed, fresh) = (code_cells(&committed), code_cells(&read(&fresh_path)));
    assert!(fresh.len() > 10, "the example has its sections: {fresh:?}");
    for (i, (ours, theirs)) in committed.iter().zip(&fresh).enumerate() {
        assert_eq!(
            ours, theirs,
            "code cell {i} of notebooks/README.ipynb differs from examples/readme.rs: \
             run `bash notebooks/run.sh`"
        );
    }
    assert_eq!(
        committed.len(),
        fresh.len(),
        "notebooks/README.ipynb and examples/readme.rs have different sections: \
         run `bash notebooks/run.sh`"
    );
}

/// The committed notebook was executed top to bottom: every code cell has run, in order, and
/// none ended in an error.
#[test]
fn the_notebook_was_executed_without_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let notebook = read(&root.join("notebooks/README.ipynb"));
    let cells = notebook["cells"].as_array().expect("a notebook has cells");
    let mut last = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell["cell_type"] != "code" {
            continue;
        }
        let count = cell["execution_count"].as_u64().unwrap_or_else(|| {
            panic!("cell {i} of notebooks/README.ipynb never ran: run `bash notebooks/run.sh`")
        });
        assert!(
            count > last,
            "cell {i} ran out of order ({count} after {last})"
        );
        last = count;
        let outputs = cell["outputs"].as_array().expect("a code cell has outputs");
        for output in outputs {
            assert_ne!(
                output["output_type"], "error",
                "cell {i} of notebooks/README.ipynb failed: {output}"
            );
        }
    }
    let text = serde_json::to_string(&notebook).unwrap();
    assert!(
        text.contains("call 2: 6 animals, read back"),
        "the stored outputs are the walk-through's"
    );
}
