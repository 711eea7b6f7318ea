//! Named profiles of the AWS shared files, `~/.aws/credentials` and
//! `~/.aws/config`, read the way the AWS CLI reads them (`AWS_PROFILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`).
//!
//! object_store reads the environment, web identity and instance metadata,
//! but has no profile provider; the AWS SDK's (`aws-config`) would bring a
//! second HTTP and TLS stack for one INI file, so the files are parsed here
//! with `rust-ini`. What is read: static keys (`aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`), `region` and
//! `endpoint_url`. Profiles that get their keys another way (`role_arn`,
//! `credential_process`, `sso_*`) are refused with a message saying so,
//! rather than falling through to instance metadata.
//!
//! Precedence, as in the AWS CLI: a variable of the environment wins over
//! the same setting in a profile; the credentials file wins over the config
//! file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ini::Ini;

use crate::error::{Error, Result};

/// The largest shared file read: they hold a few lines a profile.
const MAX_PROFILE_FILE_BYTES: u64 = 1 << 20;

/// Profile settings that ask for a way of getting keys this module does not
/// implement, and the name to give in the error.
const UNSUPPORTED_SOURCES: &[&str] = &[
    "role_arn",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
];

/// What one profile says, after the credentials and config files are merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProfileSettings {
    /// The profile's name.
    pub profile: String,
    /// `aws_access_key_id` and `aws_secret_access_key`, both or neither.
    pub keys: Option<(String, String)>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
}

/// One shared file: its path and, when it exists, its parsed text.
struct SharedFile {
    path: PathBuf,
    ini: Option<Ini>,
}

impl SharedFile {
    fn read(path: PathBuf) -> Result<Self> {
        let io_error = |action, source| Error::Io {
            action,
            path: path.clone(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SharedFile { path, ini: None });
            }
            Err(e) => return Err(io_error("open the AWS shared file", e)),
        };
        let mut text = String::new();
        use std::io::Read;
        file.take(MAX_PROFILE_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| io_error("read the AWS shared file", e))?;
        if text.len() as u64 > MAX_PROFILE_FILE_BYTES {
            return Err(profile_error(
                &path,
                "",
                format!("larger than {MAX_PROFILE_FILE_BYTES} bytes"),
            ));
        }
        let ini = Ini::load_from_str(&text).map_err(|e| profile_error(&path, "", e.to_string()))?;
        Ok(SharedFile {
            path,
            ini: Some(ini),
        })
    }

    /// The section `name`, if the file exists and has it.
    fn section(&self, name: &str) -> Option<&ini::Properties> {
        self.ini.as_ref()?.section(Some(name))
    }
}

fn profile_error(path: &Path, profile: &str, reason: String) -> Error {
    Error::AwsProfile {
        path: path.to_owned(),
        profile: profile.to_owned(),
        reason,
    }
}

/// The home directory, from `HOME`.
fn home(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// Reads the profile the environment names (`AWS_PROFILE`, else
/// `AWS_DEFAULT_PROFILE`, else `default`) from the shared files. `None`
/// when the profile is `default` by default and neither file has it (then
/// the other sources of credentials apply); an error when a profile named
/// in the environment is in neither file, when a file cannot be read or
/// parsed, or when the profile's keys come from a source this module does
/// not read.
pub(crate) fn read_profile(
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<ProfileSettings>> {
    let named = env("AWS_PROFILE")
        .or_else(|| env("AWS_DEFAULT_PROFILE"))
        .filter(|p| !p.is_empty());
    let explicit = named.is_some();
    let profile = match named {
        Some(name) => name.to_string_lossy().into_owned(),
        None => "default".to_owned(),
    };
    let shared_path = |variable: &str, file: &str| {
        env(variable)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| home(env).map(|h| h.join(".aws").join(file)))
    };
    let credentials_path = shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_path = shared_path("AWS_CONFIG_FILE", "config");
    let (Some(credentials_path), Some(config_path)) = (credentials_path, config_path) else {
        if explicit {
            return Err(profile_error(
                Path::new("~/.aws/credentials"),
                &profile,
                "HOME is not set, so the shared files cannot be found".to_owned(),
            ));
        }
        return Ok(None);
    };
    let credentials = SharedFile::read(credentials_path)?;
    let config = SharedFile::read(config_path)?;
    // The config file names sections `profile NAME`, except `default`
    // (which the AWS CLI also accepts as `profile default`).
    let config_section = config.section(&format!("profile {profile}")).or_else(|| {
        (profile == "default")
            .then(|| config.section("default"))
            .flatten()
    });
    let credentials_section = credentials.section(&profile);
    if credentials_section.is_none() && config_section.is_none() {
        if explicit {
            return Err(profile_error(
                &credentials.path,
                &profile,
                format!(
                    "no such profile in {} or {}",
                    credentials.path.display(),
                    config.path.display()
                ),
            ));
        }
        return Ok(None);
    }
    // A setting from the credentials file, else from the config file.
    let get = |key: &str| -> Option<(String, &Path)> {
        credentials_section
            .and_then(|s| s.get(key))
            .map(|v| (v.trim().to_owned(), credentials.path.as_path()))
            .or_else(|| {
                config_section
                    .and_then(|s| s.get(key))
                    .map(|v| (v.trim().to_owned(), config.path.as_path()))
            })
            .filter(|(v, _)| !v.is_empty())
    };
    let access_key = get("aws_access_key_id");
    let secret_key = get("aws_secret_access_key");
    let keys = match (access_key, secret_key) {
        (Some((id, _)), Some((secret, _))) => Some((id, secret)),
        (None, None) => None,
        (Some((_, path)), None) => {
            return Err(profile_error(
                path,
                &profile,
                "aws_access_key_id without aws_secret_access_key".to_owned(),
            ));
        }
        (None, Some((_, path))) => {
            return Err(profile_error(
                path,
                &profile,
                "aws_secret_access_key without aws_access_key_id".to_owned(),
            ));
        }
    };
    if keys.is_none() {
        if let Some((setting, (_, path))) = UNSUPPORTED_SOURCES
            .iter()
            .find_map(|setting| get(setting).map(|found| (*setting, found)))
        {
            return Err(profile_error(
                path,
                &profile,
                format!(
                    "its keys come from `{setting}`, which savedmodel does not read; \
                     export them to AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
                     AWS_SESSION_TOKEN (for example with `aws configure export-credentials \
                     --format env`)"
                ),
            ));
        }
    }
    Ok(Some(ProfileSettings {
        profile,
        keys,
        session_token: get("aws_session_token").map(|(v, _)| v),
        region: get("region").map(|(v, _)| v),
        endpoint_url: get("endpoint_url").map(|(v, _)| v),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Writes the two shared files into a temporary HOME and reads the
    /// profile with exactly the variables given (plus HOME).
    fn read_with(
        credentials: Option<&str>,
        config: Option<&str>,
        variables: &[(&str, &str)],
    ) -> Result<Option<ProfileSettings>> {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        if let Some(text) = credentials {
            std::fs::write(home.path().join(".aws/credentials"), text).unwrap();
        }
        if let Some(text) = config {
            std::fs::write(home.path().join(".aws/config"), text).unwrap();
        }
        let mut env: HashMap<String, OsString> = variables
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        env.insert("HOME".into(), home.path().as_os_str().to_owned());
        read_profile(&|name| env.get(name).cloned())
    }

    const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = secret-default

# a comment
[ci]
aws_access_key_id=AKICI
aws_secret_access_key=secret-ci
aws_session_token = token-ci
";

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile ci]
region = ap-south-1
endpoint_url = http://127.0.0.1:9000
s3 =
  addressing_style = path

[profile assumed]
role_arn = arn:aws:iam::123456789012:role/deploy
source_profile = default

[profile half]
aws_access_key_id = AKIHALF
";

    #[test]
    fn the_default_profile_merges_both_files() {
        let settings = read_with(Some(CREDENTIALS), Some(CONFIG), &[])
            .unwrap()
            .unwrap();
        assert_eq!(settings.profile, "default");
        assert_eq!(
            settings.keys,
            Some(("AKIDEFAULT".into(), "secret-default".into()))
        );
        assert_eq!(settings.session_token, None);
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
        assert_eq!(settings.endpoint_url, None);
    }

    #[test]
    fn aws_profile_names_a_profile_of_each_file() {
        let settings = read_with(Some(CREDENTIALS), Some(CONFIG), &[("AWS_PROFILE", "ci")])
            .unwrap()
            .unwrap();
        assert_eq!(settings.keys, Some(("AKICI".into(), "secret-ci".into())));
        assert_eq!(settings.session_token.as_deref(), Some("token-ci"));
        assert_eq!(settings.region.as_deref(), Some("ap-south-1"));
        assert_eq!(
            settings.endpoint_url.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn no_files_and_no_named_profile_is_no_profile() {
        assert_eq!(read_with(None, None, &[]).unwrap(), None);
    }

    #[test]
    fn a_named_profile_that_is_nowhere_is_an_error_naming_it() {
        let error = read_with(Some(CREDENTIALS), Some(CONFIG), &[("AWS_PROFILE", "prod")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"prod\""), "{error}");
        assert!(error.contains("no such profile"), "{error}");
        assert!(error.contains(".aws/config"), "{error}");
    }

    #[test]
    fn profiles_whose_keys_come_from_elsewhere_are_refused_by_name() {
        let error = read_with(
            Some(CREDENTIALS),
            Some(CONFIG),
            &[("AWS_PROFILE", "assumed")],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("role_arn"), "{error}");
        assert!(error.contains("AWS_ACCESS_KEY_ID"), "{error}");
    }

    #[test]
    fn a_key_id_without_its_secret_is_an_error() {
        let error = read_with(None, Some(CONFIG), &[("AWS_PROFILE", "half")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("without aws_secret_access_key"), "{error}");
    }

    #[test]
    fn the_file_variables_move_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("creds");
        std::fs::write(
            &credentials,
            "[x]\naws_access_key_id=A\naws_secret_access_key=B\n",
        )
        .unwrap();
        let env: HashMap<&str, OsString> = [
            ("AWS_PROFILE", OsString::from("x")),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.into_os_string()),
            ("AWS_CONFIG_FILE", dir.path().join("none").into_os_string()),
        ]
        .into();
        let settings = read_profile(&|name| env.get(name).cloned())
            .unwrap()
            .unwrap();
        assert_eq!(settings.keys, Some(("A".into(), "B".into())));
    }

    #[test]
    fn unparsable_and_oversized_files_are_errors_naming_the_file() {
        let error = read_with(Some("[unclosed\nkey = value\n"), None, &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains(".aws/credentials"), "{error}");
        let huge = format!(
            "[default]\n# {}\n",
            "x".repeat(MAX_PROFILE_FILE_BYTES as usize)
        );
        let error = read_with(Some(&huge), None, &[]).unwrap_err().to_string();
        assert!(error.contains("larger than"), "{error}");
    }
}
