//! Sizes and durations with units, as users type them: `64MiB`, `1.5s`.

use std::time::Duration;

/// Parses a byte size such as `64MiB`, `1GiB`, `512k` or `1048576`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s.trim())
        .map_err(|e| format!("invalid size {s:?} ({e}); use e.g. 64MiB, 1GiB or 1048576"))
}

/// Parses a duration such as `1.5s`, `500ms`, `2m`, `1h`, `7d` or `30`
/// (seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?}; use e.g. 500ms, 1.5s, 2m or 1h");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| err())?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        _ => return Err(err()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("invalid duration {s:?}: must be greater than zero"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

/// Parses a fuel budget: `1000000`, `10G`, `500M`, `2k`, `1T` (powers of
/// 1,000), or `unlimited` (a local run only: clusters cap fuel).
pub(crate) fn parse_fuel(s: &str) -> Result<u64, String> {
    let err = || format!("invalid fuel {s:?}; use e.g. 1000000, 500M, 10G or unlimited");
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(u64::MAX);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: u64 = num.parse().map_err(|_| err())?;
    let scale: u64 = match unit {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return Err(err()),
    };
    value.checked_mul(scale).ok_or_else(err)
}

pub(crate) use fabric_proto::{format_count, format_size};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").unwrap_err().contains("lots"));
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(12), "12 B");
    }

    #[test]
    fn fuel() {
        assert_eq!(parse_fuel("1000").unwrap(), 1000);
        assert_eq!(parse_fuel("10G").unwrap(), 10_000_000_000);
        assert_eq!(parse_fuel("500M").unwrap(), 500_000_000);
        assert_eq!(parse_fuel("unlimited").unwrap(), u64::MAX);
        assert!(parse_fuel("10X").unwrap_err().contains("10X"));
        assert!(parse_fuel("99999999999T").is_err(), "overflow is refused");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_duration("").is_err());
    }
}
