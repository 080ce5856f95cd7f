//! {{name}}: a Fabric task.
//!
//! It reads JSON on stdin (`{"text": "..."}`), reports progress line by
//! line, logs a summary, and writes JSON on stdout. `--upper` after `--`
//! on the command line is an argument it understands.

use fabric_guest::{Json, run};
use serde::{Deserialize, Serialize};

/// What the task is given: its stdin, as JSON.
#[derive(Deserialize)]
struct Input {
    text: String,
}

/// What it answers: its stdout, as JSON.
#[derive(Serialize, Debug, PartialEq)]
struct Output {
    lines: usize,
    words: usize,
    longest: Option<String>,
}

/// The work itself: plain Rust, tested on this machine with `cargo test`.
fn count(input: &Input, upper: bool) -> Output {
    let lines: Vec<&str> = input.text.lines().collect();
    let total = lines.len() as u64;
    let mut out = Output {
        lines: lines.len(),
        words: 0,
        longest: None,
    };
    for (i, line) in lines.iter().enumerate() {
        for word in line.split_whitespace() {
            out.words += 1;
            if out.longest.as_ref().is_none_or(|l| word.len() > l.len()) {
                out.longest = Some(word.to_string());
            }
        }
        // Shown by `fabric submit --wait`, `fabric top` and the dashboard.
        fabric_guest::progress(i as u64 + 1, total);
    }
    if upper {
        out.longest = out.longest.map(|w| w.to_uppercase());
    }
    out
}

fn main() -> std::process::ExitCode {
    // The arguments after `--`: `fabric submit . -- --upper`.
    let upper = fabric_guest::args().iter().any(|a| a == "--upper");
    run(|input: Json<Input>| -> Result<Json<Output>, String> {
        if input.0.text.is_empty() {
            return Err("the input's \"text\" is empty".into());
        }
        let out = count(&input.0, upper);
        // A structured log line: in the worker's log and the task's events.
        fabric_guest::info(&format!("{} words in {} lines", out.words, out.lines));
        Ok(Json(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_words() {
        let input = Input {
            text: "a bb\nccc".into(),
        };
        let out = count(&input, true);
        assert_eq!(
            out,
            Output {
                lines: 2,
                words: 3,
                longest: Some("CCC".into()),
            }
        );
    }
}
