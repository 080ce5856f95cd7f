//! The repository's own design account: the README links it, it covers
//! what a reader needs, and every file it names exists.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn the_readme_links_the_design_as_built_and_every_file_it_names_exists() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("(docs/architecture.md)"),
        "the README links docs/architecture.md"
    );
    assert!(
        !readme.contains("team's shared `DESIGN.md`"),
        "the README no longer sends readers to a file outside the repository"
    );
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    for heading in [
        "## Pieces",
        "## A task's flow",
        "## Trust model",
        "## Guarantees",
        "## Bounds",
    ] {
        assert!(
            doc.contains(heading),
            "docs/architecture.md lacks {heading}"
        );
    }
    // Every `crates/...`, `tests/...` or `guest-sdk/...` path in backticks
    // names a file or dir that exists (a renamed file shows up here).
    let mut checked = 0;
    for quoted in doc.split('`').skip(1).step_by(2) {
        let path = quoted
            .split("::")
            .next()
            .unwrap_or("")
            .trim_end_matches(':');
        let named = ["crates/", "tests/", "guest-sdk/", "benches/", "examples/"]
            .iter()
            .any(|p| path.starts_with(p));
        if !named || path.contains(['{', '*', ' ', '<']) {
            continue;
        }
        assert!(
            root().join(path).exists(),
            "docs/architecture.md names {path}, which is not there"
        );
        checked += 1;
    }
    assert!(checked > 10, "only {checked} paths were checked");
}
