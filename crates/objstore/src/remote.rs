//! A base path in object storage: the store, the bucket and the key prefix,
//! and the URLs that errors and messages name.

use std::fmt;
use std::sync::{Arc, Once};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;

use crate::error::{Error, Result};

/// Which service a [`RemoteBase`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Amazon S3 or an S3-compatible server (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Any other store handed to [`RemoteBase::new`] (tests use
    /// `object_store::memory::InMemory`); named `mem://` in messages.
    Other,
}

impl Scheme {
    fn prefix(self) -> &'static str {
        match self {
            Scheme::S3 => "s3://",
            Scheme::Gcs => "gs://",
            Scheme::Other => "mem://",
        }
    }
}

/// Whether `text` names a base path in object storage (`s3://` or `gs://`)
/// rather than a local path.
///
/// ```
/// assert!(savedmodel_objstore::is_remote("s3://models/mnist"));
/// assert!(!savedmodel_objstore::is_remote("/models/mnist"));
/// ```
pub fn is_remote(text: &str) -> bool {
    text.starts_with("s3://") || text.starts_with("gs://")
}

/// A model's base path in a bucket: where Serving lists `<prefix>/<N>/`.
#[derive(Clone)]
pub struct RemoteBase {
    store: Arc<dyn ObjectStore>,
    scheme: Scheme,
    bucket: String,
    prefix: ObjectPath,
}

impl fmt::Debug for RemoteBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteBase({self})")
    }
}

impl fmt::Display for RemoteBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.scheme.prefix(), self.bucket)?;
        if !self.prefix.as_ref().is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// rustls needs one process-wide crypto provider; object_store's HTTP client
/// is built with `rustls-no-provider`, so ring's is installed here once.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The environment variable bounding how long a failing request is retried,
/// in seconds (object_store's default, 180, when unset).
pub const RETRY_TIMEOUT_ENV: &str = "SAVEDMODEL_RETRY_TIMEOUT";

/// object_store's retries (exponential backoff on connection errors, 5xx
/// and 429), with the total time from [`RETRY_TIMEOUT_ENV`] when set.
fn retry_config(url: &str) -> Result<object_store::RetryConfig> {
    let mut config = object_store::RetryConfig::default();
    if let Some(text) = std::env::var_os(RETRY_TIMEOUT_ENV) {
        let seconds = text
            .to_str()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| Error::InvalidUrl {
                url: url.to_owned(),
                reason: format!("{RETRY_TIMEOUT_ENV}={text:?} is not a number of seconds"),
            })?;
        config.retry_timeout = std::time::Duration::from_secs(seconds);
    }
    Ok(config)
}

impl RemoteBase {
    /// Opens the base path `url`, `s3://bucket/prefix` or `gs://bucket/prefix`,
    /// configuring the store the usual way from the environment.
    ///
    /// S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_REGION` (default `us-east-1`), then the static keys, `region`
    /// and `endpoint_url` of the profile `AWS_PROFILE` names (or `default`)
    /// in `~/.aws/credentials` and `~/.aws/config`, then web identity or
    /// instance metadata when no key is given; `AWS_ENDPOINT_URL` for
    /// another server (plain `http://` is allowed when the endpoint says so). GCS:
    /// `GOOGLE_SERVICE_ACCOUNT` (or `GOOGLE_APPLICATION_CREDENTIALS`), a
    /// service account key file, or the metadata server.
    pub fn open(url: &str) -> Result<Self> {
        install_crypto_provider();
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("s3://") {
            (Scheme::S3, rest)
        } else if let Some(rest) = url.strip_prefix("gs://") {
            (Scheme::Gcs, rest)
        } else {
            return Err(invalid("expected s3://bucket/prefix or gs://bucket/prefix"));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket name"));
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = ObjectPath::parse(prefix).map_err(|e| invalid(&e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match scheme {
            Scheme::S3 => {
                let env = |name: &str| std::env::var_os(name);
                let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
                let profile = crate::aws_profile::read_profile(&env)?;
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                // A profile's keys apply when the environment gives none
                // (neither keys nor web identity), as in the AWS CLI.
                if let Some(settings) = &profile {
                    if !set("AWS_ACCESS_KEY_ID") && !set("AWS_WEB_IDENTITY_TOKEN_FILE") {
                        if let Some((id, secret)) = &settings.keys {
                            builder = builder
                                .with_access_key_id(id)
                                .with_secret_access_key(secret);
                            if let Some(token) = &settings.session_token {
                                builder = builder.with_token(token);
                            }
                        }
                    }
                }
                let endpoint = env("AWS_ENDPOINT_URL_S3")
                    .or_else(|| env("AWS_ENDPOINT_URL"))
                    .map(|e| e.to_string_lossy().into_owned())
                    .or_else(|| profile.as_ref().and_then(|p| p.endpoint_url.clone()));
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") {
                    let region = profile.as_ref().and_then(|p| p.region.clone());
                    builder = builder.with_region(region.as_deref().unwrap_or("us-east-1"));
                }
                // The payload is not hashed into the signature: every
                // object's ETag is checked against the MD5s computed while
                // reading it (docs/formats.md, section 22), so a second hash
                // of every byte (SHA-256) would buy nothing.
                builder = builder
                    .with_unsigned_payload(true)
                    .with_retry(retry_config(url)?);
                Arc::new(builder.build().map_err(|e| invalid(&e.to_string()))?)
            }
            Scheme::Gcs | Scheme::Other => {
                let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
                if std::env::var_os("GOOGLE_SERVICE_ACCOUNT").is_none() {
                    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
                        builder = builder.with_service_account_path(path.to_string_lossy());
                    }
                }
                builder = builder.with_retry(retry_config(url)?);
                Arc::new(builder.build().map_err(|e| invalid(&e.to_string()))?)
            }
        };
        Ok(RemoteBase {
            store,
            scheme,
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// A base path `prefix` in a store built by the caller (for example
    /// `object_store::memory::InMemory`), named `<scheme>://<bucket>/<prefix>`
    /// in messages.
    pub fn new(store: Arc<dyn ObjectStore>, scheme: Scheme, bucket: &str, prefix: &str) -> Self {
        RemoteBase {
            store,
            scheme,
            bucket: bucket.to_owned(),
            prefix: ObjectPath::from(prefix.trim_matches('/')),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The service.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The base path's key prefix (no trailing `/`).
    pub fn prefix(&self) -> &ObjectPath {
        &self.prefix
    }

    /// Whether the store's ETag of an object uploaded in one request is the
    /// MD5 of its bytes, and that of a multipart upload the MD5 of the
    /// parts' MD5s followed by `-<parts>` (S3 without SSE-KMS); checked after
    /// an upload when it is.
    pub(crate) fn etag_is_md5(&self) -> bool {
        self.scheme == Scheme::S3
    }

    /// The key `<prefix>/<relative>`, `relative` being `/`-separated.
    pub(crate) fn key(&self, relative: &str) -> ObjectPath {
        let mut key = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            key = key.join(part);
        }
        key
    }

    /// The URL of a key, for messages.
    pub(crate) fn url_of(&self, key: &ObjectPath) -> String {
        format!("{}{}/{}", self.scheme.prefix(), self.bucket, key)
    }

    /// The key relative to the base path (`3/variables/x`), or the whole key
    /// when it is not under it.
    pub(crate) fn relative<'a>(&self, key: &'a ObjectPath) -> &'a str {
        let base = self.prefix.as_ref();
        let whole = key.as_ref();
        if base.is_empty() {
            return whole;
        }
        whole
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(whole)
    }

    /// A store error naming `key`.
    pub(crate) fn store_error(
        &self,
        action: &'static str,
        key: &ObjectPath,
        source: object_store::Error,
    ) -> Error {
        Error::Store {
            action,
            url: self.url_of(key),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let base = RemoteBase::open("s3://bucket/models/mnist/").unwrap();
        assert_eq!(base.to_string(), "s3://bucket/models/mnist");
        assert_eq!(
            base.url_of(&base.key("3/variables/v.index")),
            "s3://bucket/models/mnist/3/variables/v.index"
        );
        assert_eq!(base.relative(&base.key("3/x")), "3/x");
        let root = RemoteBase::open("s3://bucket").unwrap();
        assert_eq!(root.to_string(), "s3://bucket");
        assert_eq!(root.relative(&root.key("3/x")), "3/x");
        for bad in ["s3://", "http://x/y", "s3:///x"] {
            assert!(
                matches!(RemoteBase::open(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
