//! The whole task shown in the README's "Writing a task" section, kept here
//! verbatim so it is built and run by the tests (tests/e2e/readme.rs).
//!
//! Run: `echo '{"limit": 21}' | fabric exec double.wasm --input -`

use fabric_guest::{Json, run};

#[derive(serde::Deserialize)]
struct Req {
    limit: u64,
}

fn main() -> std::process::ExitCode {
    run(|Json(req): Json<Req>| -> Result<String, String> {
        fabric_guest::progress(0, req.limit);
        Ok(format!("{}\n", req.limit * 2))
    })
}
