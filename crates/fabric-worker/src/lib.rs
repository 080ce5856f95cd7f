//! The Fabric worker: registration, manifest verification, module cache, execution and result reporting.
