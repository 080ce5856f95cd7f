//! The Fabric guest SDK: what a task author links to write a task in a few
//! lines.
//!
//! A task reads its input from stdin, writes its result to stdout, and may
//! report progress and structured log lines to the worker running it. The SDK
//! wraps those in typed helpers and an entry point, [`run`], that maps a
//! `Result` onto the process exit code.
//!
//! ```no_run
//! use fabric_guest::{Json, run};
//! use std::process::ExitCode;
//!
//! #[derive(serde::Deserialize)]
//! struct Request { n: u64 }
//!
//! fn main() -> ExitCode {
//!     run(|req: Json<Request>| -> Result<String, String> {
//!         fabric_guest::info("squaring");
//!         Ok(format!("{}\n", req.0.n * req.0.n))
//!     })
//! }
//! ```
//!
//! The same code builds for `wasm32-wasip1` (where progress and logs go to the
//! host through the `fabric` import module) and for the host (where logs go to
//! stderr and progress is ignored), so a task can be unit-tested natively with
//! `cargo test`. A module that never calls [`progress`] or a log function
//! imports nothing beyond WASI.
//!
//! # Tutorial: a task that reads JSON, reports progress and writes JSON
//!
//! A task is a binary crate with this SDK as a dependency. Keep the work in
//! a plain function of typed input to typed output, and let [`run`] do the
//! plumbing: it reads stdin as the input type (here [`Json`]), calls the
//! function, writes what it returns to stdout, and turns an error into a
//! message on stderr and exit code 1.
//!
//! ```
//! use fabric_guest::{Json, run};
//! use serde::{Deserialize, Serialize};
//!
//! /// What the task is given (stdin, as JSON).
//! #[derive(Deserialize)]
//! struct Request {
//!     words: Vec<String>,
//!     min_len: usize,
//! }
//!
//! /// What it answers (stdout, as JSON).
//! #[derive(Serialize, Debug, PartialEq)]
//! struct Summary {
//!     kept: usize,
//!     longest: Option<String>,
//! }
//!
//! /// The work: plain Rust, testable anywhere.
//! fn summarise(req: &Request) -> Summary {
//!     let total = req.words.len() as u64;
//!     let mut summary = Summary { kept: 0, longest: None };
//!     for (i, word) in req.words.iter().enumerate() {
//!         // Shown by `fabric submit --wait`, the dashboard and `fabric top`
//!         // (coalesced by the worker; ignored on the host).
//!         fabric_guest::progress(i as u64 + 1, total);
//!         if word.len() >= req.min_len {
//!             summary.kept += 1;
//!             if summary.longest.as_ref().is_none_or(|l| word.len() > l.len()) {
//!                 summary.longest = Some(word.clone());
//!             }
//!         }
//!     }
//!     fabric_guest::info(&format!("kept {} of {total}", summary.kept));
//!     summary
//! }
//!
//! /// The entry point the module exports.
//! fn main() -> std::process::ExitCode {
//!     run(|req: Json<Request>| -> Result<Json<Summary>, String> {
//!         if req.0.min_len == 0 {
//!             return Err("min_len must be at least 1".into());
//!         }
//!         Ok(Json(summarise(&req.0)))
//!     })
//! }
//!
//! // On the host the function is an ordinary one: test it with `cargo test`.
//! let req = Request {
//!     words: vec!["a".into(), "fabric".into(), "wasm".into()],
//!     min_len: 4,
//! };
//! assert_eq!(
//!     summarise(&req),
//!     Summary { kept: 2, longest: Some("fabric".into()) }
//! );
//! # let _ = main;
//! ```
//!
//! Then build it for the cluster, try it as a worker would, and submit it:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip1
//! echo '{"words": ["a", "fabric", "wasm"], "min_len": 4}' > req.json
//! fabric exec target/wasm32-wasip1/release/summarise.wasm --input req.json
//! fabric submit target/wasm32-wasip1/release/summarise.wasm --input req.json --wait
//! ```

use std::fmt::Display;
use std::io::{Read, Write};
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod imports;

pub use imports::LogLevel;

/// Why reading the input or writing the output failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading stdin or writing stdout failed.
    Io(std::io::Error),
    /// The input is not valid UTF-8 text.
    Utf8(std::string::FromUtf8Error),
    /// The input is not the JSON the task expects.
    Json(serde_json::Error),
    /// The input is not the CBOR the task expects.
    Cbor(String),
}

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Utf8(e) => write!(f, "input is not valid UTF-8: {e}"),
            Self::Json(e) => write!(f, "input is not valid JSON for this task: {e}"),
            Self::Cbor(e) => write!(f, "input is not valid CBOR for this task: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Reads the whole task input (stdin) as bytes.
pub fn input_bytes() -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(Error::Io)?;
    Ok(buf)
}

/// Reads the whole task input as UTF-8 text.
pub fn input_text() -> Result<String, Error> {
    String::from_utf8(input_bytes()?).map_err(Error::Utf8)
}

/// Reads the task input as JSON.
pub fn input_json<T: DeserializeOwned>() -> Result<T, Error> {
    serde_json::from_slice(&input_bytes()?).map_err(Error::Json)
}

/// Reads the task input as CBOR.
pub fn input_cbor<T: DeserializeOwned>() -> Result<T, Error> {
    ciborium::from_reader(&input_bytes()?[..]).map_err(|e| Error::Cbor(e.to_string()))
}

/// Writes bytes to the task output (stdout).
pub fn output_bytes(bytes: &[u8]) -> Result<(), Error> {
    write_flushed(&mut std::io::stdout().lock(), bytes)
}

/// Writes a value to the task output as pretty JSON plus a newline.
pub fn output_json<T: Serialize>(value: &T) -> Result<(), Error> {
    output_bytes(&json_bytes(value)?)
}

/// Writes a value to the task output as CBOR.
pub fn output_cbor<T: Serialize>(value: &T) -> Result<(), Error> {
    output_bytes(&cbor_bytes(value)?)
}

fn write_flushed(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Io)
}

/// Pretty JSON plus a newline: what [`output_json`] writes.
fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut text = serde_json::to_vec_pretty(value).map_err(Error::Json)?;
    text.push(b'\n');
    Ok(text)
}

/// CBOR: what [`output_cbor`] writes.
fn cbor_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    ciborium::into_writer(value, &mut buf).map_err(|e| Error::Cbor(e.to_string()))?;
    Ok(buf)
}

/// The task's arguments, without the program name.
pub fn args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// Reports that `done` of `total` units of work are complete (`total` 0 when
/// unknown). Cheap: call it as often as is useful.
pub fn progress(done: u64, total: u64) {
    imports::progress(done, total);
}

/// Sends a structured log line at `level` to the worker.
pub fn log(level: LogLevel, message: &str) {
    imports::log(level, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(LogLevel::Error, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

/// Input decoded as JSON (`Json<T>` as a [`run`] parameter) or output encoded
/// as JSON (as its return value).
#[derive(Debug, Clone, PartialEq)]
pub struct Json<T>(pub T);

/// Input decoded as CBOR or output encoded as CBOR.
#[derive(Debug, Clone, PartialEq)]
pub struct Cbor<T>(pub T);

/// A type a task's input can be read as.
pub trait FromInput: Sized {
    /// Reads and decodes stdin.
    fn from_input() -> Result<Self, Error>;
}

impl FromInput for () {
    fn from_input() -> Result<Self, Error> {
        Ok(())
    }
}

impl FromInput for Vec<u8> {
    fn from_input() -> Result<Self, Error> {
        input_bytes()
    }
}

impl FromInput for String {
    fn from_input() -> Result<Self, Error> {
        input_text()
    }
}

impl<T: DeserializeOwned> FromInput for Json<T> {
    fn from_input() -> Result<Self, Error> {
        input_json().map(Json)
    }
}

impl<T: DeserializeOwned> FromInput for Cbor<T> {
    fn from_input() -> Result<Self, Error> {
        input_cbor().map(Cbor)
    }
}

/// A type a task's result can be written as.
pub trait IntoOutput: Sized {
    /// Encodes and writes to `out` (stdout, for [`IntoOutput::write_output`]).
    fn write_to(self, out: &mut dyn Write) -> Result<(), Error>;

    /// Encodes and writes to stdout.
    fn write_output(self) -> Result<(), Error> {
        self.write_to(&mut std::io::stdout().lock())
    }
}

impl IntoOutput for () {
    fn write_to(self, _out: &mut dyn Write) -> Result<(), Error> {
        Ok(())
    }
}

impl IntoOutput for Vec<u8> {
    fn write_to(self, out: &mut dyn Write) -> Result<(), Error> {
        write_flushed(out, &self)
    }
}

impl IntoOutput for String {
    fn write_to(self, out: &mut dyn Write) -> Result<(), Error> {
        write_flushed(out, self.as_bytes())
    }
}

impl<T: Serialize> IntoOutput for Json<T> {
    fn write_to(self, out: &mut dyn Write) -> Result<(), Error> {
        write_flushed(out, &json_bytes(&self.0)?)
    }
}

impl<T: Serialize> IntoOutput for Cbor<T> {
    fn write_to(self, out: &mut dyn Write) -> Result<(), Error> {
        write_flushed(out, &cbor_bytes(&self.0)?)
    }
}

/// Runs a task: reads its input as `I`, calls `task`, writes the `O` it
/// returns. An error (from decoding the input or from `task`) is logged,
/// printed to stderr as `error: ...`, and ends the task with exit code 1,
/// which Fabric reports as `failed`.
pub fn run<I, O, E, F>(task: F) -> ExitCode
where
    I: FromInput,
    O: IntoOutput,
    E: Display,
    F: FnOnce(I) -> Result<O, E>,
{
    let result = match I::from_input() {
        Ok(input) => task(input).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
    .and_then(|out| out.write_output().map_err(|e| e.to_string()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error(&message);
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `value` writes as a task's output.
    fn written(value: impl IntoOutput) -> Vec<u8> {
        let mut out = Vec::new();
        value.write_to(&mut out).unwrap();
        out
    }

    #[test]
    fn outputs_encode_as_documented() {
        // JSON: pretty, plus a newline.
        let json = written(Json(serde_json::json!({"a": 1, "b": [true]})));
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}\n"
        );
        // Text and bytes: as they are.
        assert_eq!(written(String::from("text\n")), b"text\n");
        assert_eq!(written(vec![0u8, 0xff, b'\n']), [0u8, 0xff, b'\n']);
        assert!(written(()).is_empty());
        // CBOR: an array of two unsigned integers, and it decodes back.
        let cbor = written(Cbor(vec![1u8, 2]));
        assert_eq!(cbor, [0x82, 0x01, 0x02]);
        let back: Vec<u8> = ciborium::from_reader(&cbor[..]).unwrap();
        assert_eq!(back, [1, 2]);
        // The stdout helpers write the same encodings.
        assert_eq!(json_bytes(&serde_json::json!([1])).unwrap(), b"[\n  1\n]\n");
        assert_eq!(cbor_bytes(&7u8).unwrap(), [0x07]);
        // Host build: progress is ignored and logging goes to stderr.
        progress(1, 2);
        info("host logging goes to stderr");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Error::Json(serde_json::from_str::<u8>("x").unwrap_err());
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }
}
