//! Roles of REST API tokens.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a REST token may do. Each role may do what the ones before it may:
/// `read` < `submit` < `admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    /// Looks: tasks, workers, stats, events, metrics.
    Read,
    /// Also uploads modules and blobs, submits and cancels tasks.
    Submit,
    /// Also retries dead letters and everything else.
    Admin,
}

impl ApiRole {
    /// Every role, weakest first.
    pub const ALL: [Self; 3] = [Self::Read, Self::Submit, Self::Admin];

    /// Its name: `read`, `submit` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Submit => "submit",
            Self::Admin => "admin",
        }
    }

    /// Whether a token of this role may do what `needed` may.
    pub fn allows(self, needed: Self) -> bool {
        self >= needed
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not a role name.
#[derive(Debug, thiserror::Error)]
#[error("invalid role {0:?}: expected read, submit or admin")]
pub struct ApiRoleParseError(String);

impl FromStr for ApiRole {
    type Err = ApiRoleParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ApiRoleParseError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::ApiRole;

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("Submit".parse::<ApiRole>().unwrap(), ApiRole::Submit);
        assert!("root".parse::<ApiRole>().is_err());
        assert!(ApiRole::Admin.allows(ApiRole::Submit));
        assert!(ApiRole::Submit.allows(ApiRole::Read));
        assert!(!ApiRole::Read.allows(ApiRole::Submit));
        assert!(!ApiRole::Submit.allows(ApiRole::Admin));
    }
}
