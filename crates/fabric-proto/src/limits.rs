//! Resource limits of one task, and the cluster-wide caps they must fit under.

use serde::{Deserialize, Serialize};

/// What one task may consume. Every field has a default and a cluster-wide
/// maximum ([`LimitCaps`]) that a task cannot raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wasm fuel (roughly one unit per instruction).
    pub fuel: u64,
    /// Linear memory a wasm task may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time from start to result, in milliseconds.
    pub timeout_ms: u64,
    /// Bytes kept of each of stdout and stderr; the rest is cut and flagged.
    pub output_bytes: u64,
    /// Files a native task may hold in `/work` and `/tmp` together, staged
    /// files included (a size-limited tmpfs: the kernel enforces it).
    /// Records and manifests from before the field read as the default.
    #[serde(default = "default_disk_bytes")]
    pub disk_bytes: u64,
}

fn default_disk_bytes() -> u64 {
    Limits::DEFAULT_DISK_BYTES
}

impl Limits {
    /// Default fuel: ten billion units, a few seconds of busy compute.
    pub const DEFAULT_FUEL: u64 = 10_000_000_000;
    /// Default memory: 256 MiB.
    pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
    /// Default timeout: 30 s.
    pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
    /// Default output cap per stream: 4 MiB.
    pub const DEFAULT_OUTPUT_BYTES: u64 = 4 << 20;
    /// Default disk of a native task: 1 GiB.
    pub const DEFAULT_DISK_BYTES: u64 = 1 << 30;

    /// Checks every field against `caps`, naming the first that is out of range.
    pub fn check_within(&self, caps: &LimitCaps) -> Result<(), LimitError> {
        let fields = [
            ("fuel", self.fuel, caps.max.fuel),
            ("memory_bytes", self.memory_bytes, caps.max.memory_bytes),
            ("timeout_ms", self.timeout_ms, caps.max.timeout_ms),
            ("output_bytes", self.output_bytes, caps.max.output_bytes),
            ("disk_bytes", self.disk_bytes, caps.max.disk_bytes),
        ];
        for (field, value, max) in fields {
            if value == 0 {
                return Err(LimitError::Zero { field });
            }
            if value > max {
                return Err(LimitError::AboveMaximum { field, value, max });
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Self::DEFAULT_FUEL,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            timeout_ms: Self::DEFAULT_TIMEOUT_MS,
            output_bytes: Self::DEFAULT_OUTPUT_BYTES,
            disk_bytes: Self::DEFAULT_DISK_BYTES,
        }
    }
}

/// How long past a task's timeout its lease lasts by default: the grace a
/// worker has to report. A worker stops a run well before (its own
/// backstops are shorter), so a task is never running in two places.
pub const DEFAULT_LEASE_GRACE_MS: u64 = 10_000;

/// Cluster-wide maxima for [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCaps {
    /// The largest value each field of a task's limits may take.
    pub max: Limits,
}

impl Default for LimitCaps {
    fn default() -> Self {
        Self {
            max: Limits {
                fuel: 1_000_000_000_000,
                memory_bytes: 4 << 30,
                timeout_ms: 60 * 60 * 1000,
                output_bytes: 64 << 20,
                disk_bytes: 16 << 30,
            },
        }
    }
}

/// A limit is outside what the cluster allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A limit was zero, which would make every task fail.
    #[error("limit {field} must be greater than zero")]
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// A limit exceeded the cluster maximum.
    #[error(
        "{field} {} is over the cluster maximum of {}",
        show(field, *value),
        show(field, *max)
    )]
    AboveMaximum {
        /// The offending field.
        field: &'static str,
        /// The requested value.
        value: u64,
        /// The cluster maximum.
        max: u64,
    },
}

/// A limit's value in its unit: sizes in KiB/MiB/GiB, times in seconds.
pub fn show(field: &str, value: u64) -> String {
    if field.ends_with("_bytes") {
        crate::format_size(value)
    } else if field.ends_with("_ms") {
        if value.is_multiple_of(1000) {
            format!("{} s", value / 1000)
        } else {
            format!("{:.3} s", value as f64 / 1000.0)
        }
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_default_caps_and_excess_is_named() {
        let caps = LimitCaps::default();
        Limits::default().check_within(&caps).unwrap();
        let too_much = Limits {
            memory_bytes: 8 << 30,
            ..Limits::default()
        };
        let err = too_much.check_within(&caps).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "memory_bytes {} is over the cluster maximum of {}",
                crate::format_size(8 << 30),
                crate::format_size(4 << 30)
            )
        );
        let zero = Limits {
            fuel: 0,
            ..Limits::default()
        };
        assert_eq!(
            zero.check_within(&caps).unwrap_err(),
            LimitError::Zero { field: "fuel" }
        );
    }
}
