//! Checking a module before anyone runs it, without compiling it: valid
//! wasm, a `_start` function, and only imports the sandbox provides. The
//! dispatcher calls this at admission, so a module that cannot run is
//! `rejected` up front instead of failing on every worker.

use wasmparser::{ExternalKind, Parser, Payload, TypeRef, Validator};

use crate::SandboxError;

/// WASI preview 1 functions the sandbox links (all of them).
const WASI_P1: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The `fabric` host functions (see the guest SDK).
const FABRIC: &[&str] = &["progress", "log"];

/// Whether the sandbox provides the function `module.name`.
fn provided(module: &str, name: &str) -> bool {
    match module {
        "wasi_snapshot_preview1" => WASI_P1.contains(&name),
        m if m == crate::host::MODULE => FABRIC.contains(&name),
        _ => false,
    }
}

/// Checks that `bytes` is a module the sandbox can run.
pub fn inspect_module(bytes: &[u8]) -> Result<(), SandboxError> {
    let invalid = |e: wasmparser::BinaryReaderError| SandboxError::InvalidModule(e.to_string());
    Validator::new().validate_all(bytes).map_err(invalid)?;
    let mut has_start = false;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(invalid)?;
                    let func = matches!(import.ty, TypeRef::Func(_));
                    if !func || !provided(import.module, import.name) {
                        return Err(SandboxError::Link(format!(
                            "it imports `{}.{}`, which the sandbox does not provide (it offers WASI preview 1 and the `fabric` functions)",
                            import.module, import.name
                        )));
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export.map_err(invalid)?;
                    has_start |= export.name == "_start" && export.kind == ExternalKind::Func;
                }
            }
            _ => {}
        }
    }
    if has_start {
        Ok(())
    } else {
        Err(SandboxError::NoEntryPoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(wat_text: &str) -> Vec<u8> {
        wat::parse_str(wat_text).unwrap()
    }

    #[test]
    fn a_plain_wasi_program_passes() {
        let m = wasm(
            r#"(module
              (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
              (import "fabric" "progress" (func (param i64 i64)))
              (memory (export "memory") 1)
              (func (export "_start")))"#,
        );
        inspect_module(&m).unwrap();
    }

    #[test]
    fn what_cannot_run_is_named() {
        let err = inspect_module(b"\0asm\x01\0\0\0garbage").unwrap_err();
        assert!(matches!(err, SandboxError::InvalidModule(_)), "{err}");
        let err = inspect_module(&wasm(r#"(module (func (export "main")))"#)).unwrap_err();
        assert!(matches!(err, SandboxError::NoEntryPoint), "{err}");
        let err = inspect_module(&wasm(
            r#"(module (import "env" "foo" (func)) (func (export "_start")))"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("`env.foo`"), "{err}");
        let err = inspect_module(&wasm(
            r#"(module (import "wasi_snapshot_preview1" "fd_wrote" (func)) (func (export "_start")))"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("fd_wrote"), "{err}");
        let err = inspect_module(&wasm(
            r#"(module (import "env" "memory" (memory 1)) (func (export "_start")))"#,
        ))
        .unwrap_err();
        assert!(matches!(err, SandboxError::Link(_)), "{err}");
    }

    #[test]
    fn every_listed_wasi_function_is_one_the_runtime_links() {
        // The list must not promise what the linker lacks: instantiate a
        // module importing each name with its real signature via the
        // runtime's own linker check (prepare links against it).
        let runtime = crate::WasmRuntime::new(crate::WasmRuntimeConfig::default()).unwrap();
        for name in [
            "fd_write",
            "proc_exit",
            "random_get",
            "poll_oneoff",
            "sock_shutdown",
        ] {
            let sig = match name {
                "fd_write" => "(param i32 i32 i32 i32) (result i32)",
                "proc_exit" => "(param i32)",
                "random_get" => "(param i32 i32) (result i32)",
                "poll_oneoff" => "(param i32 i32 i32 i32) (result i32)",
                _ => "(param i32 i32) (result i32)",
            };
            let m = wasm(&format!(
                r#"(module (import "wasi_snapshot_preview1" "{name}" (func {sig})) (memory (export "memory") 1) (func (export "_start")))"#
            ));
            inspect_module(&m).unwrap();
            runtime
                .prepare(&m)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
