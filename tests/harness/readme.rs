//! The README's fenced code blocks, for the tests that run them.

use std::path::Path;
use std::process::{Command, Output};

use super::deadline::OutputWithin as _;
use super::sandbox::{Sandbox, fabric_bin};

/// A fenced block of README.md: its language tag and lines.
pub struct Block {
    /// The language tag after the fence.
    pub lang: String,
    /// Its lines.
    pub lines: Vec<String>,
}

impl Block {
    /// Its first line.
    pub fn first(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }
}

/// README.md's text.
pub fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every fenced block.
pub fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in readme().lines() {
        match (line.strip_prefix("```"), current.take()) {
            (Some(lang), None) => {
                current = Some(Block {
                    lang: lang.trim().to_owned(),
                    lines: Vec::new(),
                });
            }
            (Some(_), Some(block)) => out.push(block),
            (None, Some(mut block)) => {
                block.lines.push(line.to_owned());
                current = Some(block);
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "README.md has an unclosed code block");
    out
}

/// The block that starts with `first`.
pub fn block(first: &str) -> Block {
    blocks()
        .into_iter()
        .find(|b| b.first().starts_with(first))
        .unwrap_or_else(|| panic!("README.md has no block starting {first:?}"))
}

/// One command line of a block: the words before any `#` comment.
pub fn words(line: &str) -> Vec<String> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `sh -c script` in `sb`'s home with this build's `fabric` first on PATH.
pub fn shell(sb: &Sandbox, script: &str) -> Output {
    let bin_dir = fabric_bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut sh = Command::new("sh");
    sb.isolate(&mut sh);
    sh.current_dir(sb.dir.path())
        .env("PATH", path)
        .args(["-c", script])
        .output_in_time()
        .expect("sh runs")
}
