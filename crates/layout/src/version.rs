//! Version names and version policies, as TensorFlow Serving reads them.
//!
//! Source: TensorFlow Serving
//! `tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc`
//! (`ParseVersionNumber`, `IndexChildrenByVersion`, `Aspire*Versions`), which
//! parses a child's name with `strings::safe_strto64`; in TensorFlow's
//! `tsl/platform/numbers.h` that is `absl::SimpleAtoi` into an `int64_t`, whose
//! rules are in abseil's `absl/strings/numbers.cc`
//! (`safe_parse_sign_and_base`, `safe_parse_positive_int`,
//! `safe_parse_negative_int`). See also docs/formats.md, section 11 "Version
//! directories and atomic publish".

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The bytes `absl::ascii_isspace` accepts: space, `\t`, `\n`, `\v`, `\f`,
/// `\r`. (Rust's `u8::is_ascii_whitespace` leaves out `\v`.)
fn is_absl_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses a child name of a base path the way TensorFlow Serving does
/// (`absl::SimpleAtoi` into an `int64`), returning the version number, or
/// `None` when Serving ignores the child.
///
/// The rules, all from abseil's `absl/strings/numbers.cc`:
/// * leading and trailing ASCII whitespace (`absl::ascii_isspace`) is skipped;
/// * then one optional `+` or `-`;
/// * then one or more decimal digits and nothing else (base 10: no `0x`, and
///   leading zeros are plain digits, so `007` is 7);
/// * a value outside the `int64` range fails.
///
/// ```
/// use savedmodel_layout::parse_version;
///
/// assert_eq!(parse_version(b"00000123"), Some(123));
/// assert_eq!(parse_version(b" -5\n"), Some(-5));
/// assert_eq!(parse_version(b"v1"), None);
/// assert_eq!(parse_version(b"1.0"), None);
/// ```
pub fn parse_version(name: &[u8]) -> Option<i64> {
    let start = name.iter().position(|&b| !is_absl_space(b))?;
    let end = name.iter().rposition(|&b| !is_absl_space(b))?;
    let trimmed = name.get(start..=end)?;
    let (negative, digits) = match trimmed.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, trimmed),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(byte - b'0');
        value = value.checked_mul(10)?;
        // Accumulating towards the sign, as abseil does, so that
        // -9223372036854775808 parses although its magnitude is not an i64.
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// Which versions TensorFlow Serving loads from a base path
/// (`FileSystemStoragePathSourceConfig.ServableVersionPolicy`).
///
/// Written as text (command line, [`FromStr`]): `latest`, `latest:N`, `all`,
/// `specific:V1,V2,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// The `num_versions` highest versions; Serving treats 0 as 1
    /// (`std::max(num_versions, 1U)`). Serving's default when no policy is
    /// set.
    Latest {
        /// How many of the highest versions to serve.
        num_versions: u32,
    },
    /// Every child whose name parses as a version, duplicates included.
    All,
    /// The listed versions that exist.
    Specific {
        /// The versions to serve.
        versions: Vec<i64>,
    },
}

impl Default for VersionPolicy {
    /// Serving's default: `POLICY_CHOICE_NOT_SET` falls through to latest, and
    /// an unset `num_versions` (0) serves one version.
    fn default() -> Self {
        VersionPolicy::Latest { num_versions: 1 }
    }
}

impl fmt::Display for VersionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionPolicy::Latest { num_versions } => write!(f, "latest:{num_versions}"),
            VersionPolicy::All => f.write_str("all"),
            VersionPolicy::Specific { versions } => {
                f.write_str("specific:")?;
                for (i, version) in versions.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{version}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for VersionPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidArgument {
            what: "version policy",
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, argument) = match text.split_once(':') {
            Some((kind, argument)) => (kind, Some(argument)),
            None => (text, None),
        };
        match (kind, argument) {
            ("latest", None) => Ok(VersionPolicy::Latest { num_versions: 1 }),
            ("latest", Some(n)) => n
                .parse::<u32>()
                .map(|num_versions| VersionPolicy::Latest { num_versions })
                .map_err(|_| invalid("expected latest:N with N a non-negative 32-bit number")),
            ("all", None) => Ok(VersionPolicy::All),
            ("specific", Some(list)) => {
                let versions = parse_version_list(list).map_err(|reason| invalid(&reason))?;
                if versions.is_empty() {
                    return Err(invalid("specific needs at least one version"));
                }
                Ok(VersionPolicy::Specific { versions })
            }
            _ => Err(invalid(
                "expected latest, latest:N, all or specific:V1,V2,... (versions are int64)",
            )),
        }
    }
}

/// Parses `1,2,3` into versions (decimal `int64`s, surrounding spaces
/// allowed).
fn parse_version_list(list: &str) -> Result<Vec<i64>, String> {
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            item.trim()
                .parse::<i64>()
                .map_err(|_| format!("{:?} is not an int64 version", item.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: child name, what Serving makes of it, and why (the rule in
    /// abseil's `absl/strings/numbers.cc`, reached from Serving's
    /// `ParseVersionNumber` in `file_system_storage_path_source.cc`).
    const PARSE_TABLE: &[(&[u8], Option<i64>, &str)] = &[
        (b"1", Some(1), "plain decimal digits"),
        (b"123", Some(123), "plain decimal digits"),
        (b"0", Some(0), "zero is a version"),
        (
            b"00000123",
            Some(123),
            "leading zeros are digits in base 10 (no octal: base is fixed at 10)",
        ),
        (b"007", Some(7), "leading zeros are digits in base 10"),
        (
            b"+7",
            Some(7),
            "safe_parse_sign_and_base consumes an optional '+'",
        ),
        (
            b"-5",
            Some(-5),
            "safe_parse_sign_and_base consumes an optional '-'; negative versions are accepted",
        ),
        (b"-0", Some(0), "minus zero is zero"),
        (b" 7", Some(7), "leading ascii_isspace is skipped"),
        (b"7 ", Some(7), "trailing ascii_isspace is skipped"),
        (b"\t7\n", Some(7), "tab and newline are ascii_isspace"),
        (
            b"\x0b7\x0c\r",
            Some(7),
            "vertical tab, form feed and carriage return are ascii_isspace",
        ),
        (
            b" +7 ",
            Some(7),
            "whitespace is skipped before the sign is read",
        ),
        (b"9223372036854775807", Some(i64::MAX), "int64 max fits"),
        (
            b"-9223372036854775808",
            Some(i64::MIN),
            "int64 min fits (safe_parse_negative_int accumulates downwards)",
        ),
        (
            b"9223372036854775808",
            None,
            "int64 max + 1 overflows: safe_parse_positive_int fails",
        ),
        (
            b"-9223372036854775809",
            None,
            "int64 min - 1 overflows: safe_parse_negative_int fails",
        ),
        (b"99999999999999999999999", None, "overflow fails"),
        (b"", None, "empty: nothing left after whitespace"),
        (b"   ", None, "only whitespace: start >= end"),
        (b"+", None, "a sign with no digits after it fails"),
        (b"-", None, "a sign with no digits after it fails"),
        (
            b"+-1",
            None,
            "only one sign is consumed; '-' is then not a digit",
        ),
        (b"--1", None, "only one sign is consumed"),
        (
            b"- 1",
            None,
            "whitespace between sign and digits is not skipped",
        ),
        (b"1 2", None, "inner whitespace is not a digit"),
        (b"v1", None, "a letter is not a digit"),
        (b"1.0", None, "'.' is not a digit"),
        (b"1e3", None, "no exponent in integer parsing"),
        (b"0x10", None, "base 10 only: 'x' is not a digit"),
        (
            b"temp-123",
            None,
            "TensorFlow's temp-<timestamp> export dirs are ignored",
        ),
        (b"123-temp", None, "trailing garbage fails"),
        (
            b".savedmodel-staging-1-ab",
            None,
            "our staging directories are ignored",
        ),
        (
            b"\xd9\xa3",
            None,
            "non-ASCII digits (Arabic-Indic three) are not digits",
        ),
        (
            b"\xc2\xa07",
            None,
            "a non-breaking space is not ascii_isspace",
        ),
        (b"7\0", None, "NUL is not whitespace"),
    ];

    #[test]
    fn parse_version_follows_absl_simple_atoi() {
        for &(name, expected, why) in PARSE_TABLE {
            assert_eq!(
                parse_version(name),
                expected,
                "{:?}: {why}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn parse_version_round_trips_every_canonical_name() {
        for value in [i64::MIN, -1, 0, 1, 42, 1_700_000_000, i64::MAX] {
            assert_eq!(parse_version(value.to_string().as_bytes()), Some(value));
        }
    }

    #[test]
    fn policies_parse_and_print() {
        for (text, policy) in [
            ("latest", VersionPolicy::Latest { num_versions: 1 }),
            ("latest:3", VersionPolicy::Latest { num_versions: 3 }),
            ("latest:0", VersionPolicy::Latest { num_versions: 0 }),
            ("all", VersionPolicy::All),
            (
                "specific:1,2,-3",
                VersionPolicy::Specific {
                    versions: vec![1, 2, -3],
                },
            ),
            (
                "specific: 4 , 5",
                VersionPolicy::Specific {
                    versions: vec![4, 5],
                },
            ),
        ] {
            assert_eq!(text.parse::<VersionPolicy>().unwrap(), policy, "{text}");
            assert_eq!(
                policy.to_string().parse::<VersionPolicy>().unwrap(),
                policy,
                "{text} round trip"
            );
        }
        for bad in [
            "",
            "latest:",
            "latest:-1",
            "latest:x",
            "all:2",
            "specific",
            "specific:",
            "specific:a",
            "newest",
        ] {
            let err = bad.parse::<VersionPolicy>().unwrap_err();
            assert!(
                err.to_string().contains("invalid version policy"),
                "{bad}: {err}"
            );
        }
    }
}
