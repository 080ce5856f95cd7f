//! Prime sieve: counts the primes up to a limit with a sieve of Eratosthenes.
//!
//! Input JSON: `{"limit": 1000000}`. Output JSON: count, largest prime, and
//! the sum of all primes up to the limit.
//!
//! Run: `echo '{"limit": 100000}' | fabric exec primes.wasm --input -`

use std::process::ExitCode;

use fabric_guest::{Json, progress, run};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    limit: u64,
}

#[derive(Serialize, Debug, PartialEq)]
struct Answer {
    limit: u64,
    count: u64,
    largest: Option<u64>,
    sum: u64,
}

const MAX_LIMIT: u64 = 200_000_000;

fn sieve(limit: u64) -> Result<Answer, String> {
    if limit > MAX_LIMIT {
        return Err(format!("limit {limit} is over the maximum of {MAX_LIMIT}"));
    }
    let n = limit as usize;
    let mut composite = vec![false; n + 1];
    let (mut count, mut sum, mut largest) = (0u64, 0u64, None);
    let step = (n / 20).max(1);
    for i in 2..=n {
        if composite[i] {
            continue;
        }
        count += 1;
        sum += i as u64;
        largest = Some(i as u64);
        let mut j = i.saturating_mul(i);
        while j <= n {
            composite[j] = true;
            j += i;
        }
        if i % step == 0 {
            progress(i as u64, limit);
        }
    }
    progress(limit, limit);
    Ok(Answer {
        limit,
        count,
        largest,
        sum,
    })
}

fn main() -> ExitCode {
    run(|Json(req): Json<Request>| sieve(req.limit).map(Json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_prime_counts() {
        assert_eq!(sieve(10).unwrap().count, 4);
        assert_eq!(sieve(10).unwrap().sum, 17);
        assert_eq!(sieve(1).unwrap().largest, None);
        assert_eq!(sieve(1_000).unwrap().count, 168);
        assert!(sieve(MAX_LIMIT + 1).is_err());
    }
}
