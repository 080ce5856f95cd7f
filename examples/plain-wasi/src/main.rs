//! A plain WASI program: only the standard library, no Fabric imports. It
//! shows that any wasm32-wasip1 program runs unchanged under Fabric.
//!
//! It prints its arguments and the `GREETING` environment variable, then
//! echoes stdin upper-cased. `--exit N` makes it exit with code N. `--probe`
//! also reports what of the host it can reach: it tries to read the host's
//! `/etc/passwd` and to write and read back a file in the `/work` scratch dir.
//!
//! Build without cargo: `rustc --target wasm32-wasip1 -O examples/plain-wasi/src/main.rs -o plain.wasm`
//! Run: `echo hi | fabric exec plain.wasm --input - --env GREETING=hello -- a b`

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut exit = 0;
    if let Some(pos) = args.iter().position(|a| a == "--exit") {
        exit = args.get(pos + 1).and_then(|n| n.parse().ok()).unwrap_or(1);
    }
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        let _ = writeln!(std::io::stderr(), "cannot read stdin: {e}");
        std::process::exit(1);
    }
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "(unset)".into());
    let env_count = std::env::vars().count();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "args: {}", args.join(" "));
    let _ = writeln!(out, "greeting: {greeting}");
    let _ = writeln!(out, "env vars: {env_count}");
    if args.iter().any(|a| a == "--probe") {
        let host = match std::fs::read("/etc/passwd") {
            Ok(_) => "READABLE",
            Err(_) => "denied",
        };
        let _ = writeln!(out, "host file: {host}");
        let scratch = std::fs::write("/work/probe.txt", b"scratch")
            .and_then(|()| std::fs::read("/work/probe.txt"));
        let scratch = match scratch {
            Ok(bytes) if bytes == b"scratch" => "ok",
            Ok(_) => "corrupt",
            Err(_) => "unavailable",
        };
        let _ = writeln!(out, "scratch: {scratch}");
    }
    let _ = write!(out, "{}", input.to_uppercase());
    let _ = out.flush();
    if exit != 0 {
        let _ = writeln!(std::io::stderr(), "exiting with {exit} as asked");
        std::process::exit(exit);
    }
}
