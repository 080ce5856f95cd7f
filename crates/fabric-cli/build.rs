//! Embeds the example guests (compiled to wasm32-wasip1) for `fabric demo`.

use std::path::PathBuf;

use fabric_buildkit::{build_guests, rerun_on_guest_changes, workspace_root};

const SPIN_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"#;

fn main() {
    let root = workspace_root();
    rerun_on_guest_changes(&root);
    let guests = build_guests(&root, &["fabric-examples", "plain-wasi"]);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let spin = out.join("spin.wasm");
    std::fs::write(&spin, wat::parse_str(SPIN_WAT).expect("valid WAT")).expect("write spin.wasm");
    let mut code = String::new();
    for (name, file) in [
        ("WORDFREQ", guests.join("wordfreq.wasm")),
        ("PRIMES", guests.join("primes.wasm")),
        ("MANDELBROT", guests.join("mandelbrot.wasm")),
        ("JSON_TRANSFORM", guests.join("json-transform.wasm")),
        ("PLAIN_WASI", guests.join("plain-wasi.wasm")),
        ("SPIN", spin),
    ] {
        assert!(file.exists(), "guest {} was not built", file.display());
        code.push_str(&format!(
            "/// Embedded guest `{}`.\npub(crate) const {name}: &[u8] = include_bytes!({:?});\n",
            file.file_name().unwrap_or_default().to_string_lossy(),
            file.display().to_string()
        ));
    }
    std::fs::write(out.join("guests.rs"), code).expect("write guests.rs");
}
