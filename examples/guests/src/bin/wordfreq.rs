//! Word frequencies: reads text on stdin, writes the most common words as JSON.
//!
//! Build and run:
//! `cargo build -p fabric-examples --release --target wasm32-wasip1 && fabric exec target/wasm32-wasip1/release/wordfreq.wasm --input book.txt -- --top 5`

use std::collections::HashMap;
use std::process::ExitCode;

use fabric_guest::{Json, progress, run};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    total_words: u64,
    unique_words: usize,
    top: Vec<(String, u64)>,
}

fn top_n(args: &[String]) -> Result<usize, String> {
    match args {
        [] => Ok(10),
        [flag, n] if flag == "--top" => n
            .parse()
            .map_err(|_| format!("--top takes a whole number, got {n:?}")),
        other => Err(format!("usage: wordfreq [--top N], got {other:?}")),
    }
}

fn count(text: &str, top: usize) -> Report {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut total = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        for word in line
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .map(|w| w.trim_matches('\''))
            .filter(|w| !w.is_empty())
        {
            *counts.entry(word.to_lowercase()).or_default() += 1;
            total += 1;
        }
        if i % 1024 == 0 {
            progress(i as u64, lines.len() as u64);
        }
    }
    progress(lines.len() as u64, lines.len() as u64);
    let unique_words = counts.len();
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top);
    Report {
        total_words: total,
        unique_words,
        top: ranked,
    }
}

fn main() -> ExitCode {
    run(|text: String| -> Result<Json<Report>, String> {
        let top = top_n(&fabric_guest::args())?;
        fabric_guest::info(&format!("counting words in {} bytes", text.len()));
        Ok(Json(count(&text, top)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ranks_words() {
        let r = count("the cat and the hat. The end", 2);
        assert_eq!(r.total_words, 7);
        assert_eq!(r.unique_words, 5);
        assert_eq!(r.top, vec![("the".into(), 3), ("and".into(), 1)]);
        assert!(top_n(&["--top".into(), "x".into()]).is_err());
    }
}
