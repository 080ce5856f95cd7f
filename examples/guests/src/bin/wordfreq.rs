//! Word frequencies: reads text on stdin, writes the most common words as JSON.
//!
//! Build and run:
//! `cargo build -p fabric-examples --release --target wasm32-wasip1 && fabric exec target/wasm32-wasip1/release/wordfreq.wasm --input book.txt -- --top 5`
//!
//! As a map-reduce (`examples/jobs/wordcount`): each part is counted with
//! `--top all` (every word), and `--merge` reads those reports, one after
//! the other, and adds them up into one report of the whole text.

use std::collections::HashMap;
use std::process::ExitCode;

use fabric_guest::{Json, progress, run};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Report {
    total_words: u64,
    unique_words: usize,
    top: Vec<(String, u64)>,
}

/// What the flags ask: how many top words, and whether to merge reports.
fn parse(args: &[String]) -> Result<(usize, bool), String> {
    let (mut top, mut merge) = (10, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--merge" => merge = true,
            "--top" => {
                top = match it.next().map(String::as_str) {
                    Some("all") => usize::MAX,
                    Some(n) => n
                        .parse()
                        .map_err(|_| format!("--top takes a whole number or all, got {n:?}"))?,
                    None => return Err("--top takes a whole number or all".into()),
                }
            }
            other => {
                return Err(format!(
                    "usage: wordfreq [--top N|all] [--merge], got {other:?}"
                ));
            }
        }
    }
    Ok((top, merge))
}

/// Adds up reports made with `--top all`, given one after the other.
fn merge(text: &str, top: usize) -> Result<Report, String> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut total = 0;
    for report in serde_json::Deserializer::from_str(text).into_iter::<Report>() {
        let report =
            report.map_err(|e| format!("--merge reads reports of wordfreq --top all: {e}"))?;
        total += report.total_words;
        for (word, n) in report.top {
            *counts.entry(word).or_default() += n;
        }
    }
    Ok(rank(counts, total, top))
}

fn rank(counts: HashMap<String, u64>, total_words: u64, top: usize) -> Report {
    let unique_words = counts.len();
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top);
    Report {
        total_words,
        unique_words,
        top: ranked,
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
    rank(counts, total, top)
}

fn main() -> ExitCode {
    run(|text: String| -> Result<Json<Report>, String> {
        let (top, merging) = parse(&fabric_guest::args())?;
        if merging {
            fabric_guest::info(&format!("merging reports of {} bytes", text.len()));
            return merge(&text, top).map(Json);
        }
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
        assert!(parse(&["--top".into(), "x".into()]).is_err());
    }

    #[test]
    fn merged_parts_count_as_the_whole() {
        let (a, b) = ("the cat and\n", "the hat. The end");
        let parts = [count(a, usize::MAX), count(b, usize::MAX)]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect::<String>();
        let merged = merge(&parts, 3).unwrap();
        let whole = count(&format!("{a}{b}"), 3);
        assert_eq!(
            serde_json::to_string(&merged).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );
        assert_eq!(
            parse(&["--top".into(), "all".into(), "--merge".into()]).unwrap(),
            (usize::MAX, true)
        );
    }
}
