//! Async Rust client for a Fabric dispatcher over QUIC.
