//! Where a store lives: `[storage] url` parsed into a [`StoreLocation`], and opened through
//! object_store's own builders ([`BlobStore::open`]).
//!
//! | URL | backend | credentials and settings |
//! |---|---|---|
//! | `file:///srv/tufa/store` | the local disk, fsynced ([`BlobStore::local`]) | file permissions |
//! | `s3://bucket/prefix` | AWS S3 and S3-compatible stores (Ceph RGW, MinIO, R2, moto) | the standard AWS environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, web identity and instance metadata as object_store supports them |
//! | `gs://bucket/prefix` | Google Cloud Storage | `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS`, metadata server |
//! | `az://container/prefix` | Azure Blob Storage | `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` (or SAS / managed identity), `AZURE_STORAGE_USE_EMULATOR` for Azurite |
//! | `memory://` | memory, gone when the process exits (tests) | — |
//!
//! [`CloudOptions`] (from the config file) override the endpoint, region and plain-HTTP
//! permission the environment gives. The prefix (the URL's path) is where the tree starts in
//! the bucket, so one bucket can hold several mirrors.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::{ClientConfigKey, RetryConfig};

use crate::{BlobStore, StoreError};

/// A parsed `[storage] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `file:///abs/path`: a directory on the local disk.
    File(PathBuf),
    /// `s3://bucket/prefix`
    S3 { bucket: String, prefix: String },
    /// `gs://bucket/prefix`
    Gcs { bucket: String, prefix: String },
    /// `az://container/prefix`
    Azure { container: String, prefix: String },
    /// `memory://`
    Memory,
}

/// Settings that override what the environment says about a cloud store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudOptions {
    /// S3-compatible endpoint (`http://127.0.0.1:9000`), or Azure/GCS endpoint.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// Allow `http://` endpoints.
    pub allow_http: Option<bool>,
}

impl StoreLocation {
    /// Parses a storage URL. Errors say what is accepted.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "credentials do not belong in the URL; use the environment (AWS_ACCESS_KEY_ID, …)",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a query or fragment is not allowed"));
        }
        let bucket_and_prefix = |kind: &str| -> Result<(String, String), StoreError> {
            let bucket = parsed.host_str().unwrap_or_default();
            if bucket.is_empty() {
                return Err(bad(&format!(
                    "no {kind} name (expected {}://NAME/PREFIX)",
                    parsed.scheme()
                )));
            }
            if parsed.port().is_some() {
                return Err(bad(&format!(
                    "a port belongs in the endpoint setting, not in the {kind} name"
                )));
            }
            let prefix = parsed.path().trim_matches('/');
            let decoded = percent_encoding::percent_decode_str(prefix)
                .decode_utf8()
                .map_err(|_| bad("the prefix is not UTF-8"))?;
            if decoded
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == ".." || s.chars().any(char::is_control))
                && !decoded.is_empty()
            {
                return Err(bad("the prefix has an empty, `.` or `..` segment"));
            }
            Ok((bucket.to_owned(), decoded.into_owned()))
        };
        match parsed.scheme() {
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(bad("a file URL names a local path: file:///absolute/path"));
                }
                let path = parsed
                    .to_file_path()
                    .map_err(|()| bad("not an absolute local path (file:///absolute/path)"))?;
                Ok(Self::File(path))
            }
            "s3" | "s3a" => {
                let (bucket, prefix) = bucket_and_prefix("bucket")?;
                Ok(Self::S3 { bucket, prefix })
            }
            "gs" => {
                let (bucket, prefix) = bucket_and_prefix("bucket")?;
                Ok(Self::Gcs { bucket, prefix })
            }
            "az" | "azure" => {
                let (container, prefix) = bucket_and_prefix("container")?;
                Ok(Self::Azure { container, prefix })
            }
            "memory" => {
                if parsed.host_str().is_some_and(|h| !h.is_empty()) || !matches!(parsed.path(), "" | "/") {
                    return Err(bad("memory:// takes no name or path"));
                }
                Ok(Self::Memory)
            }
            other => Err(bad(&format!(
                "unknown scheme `{other}` (use file:///path, s3://bucket/prefix, gs://bucket/prefix, \
                 az://container/prefix or memory://)"
            ))),
        }
    }

    /// Whether this is the local disk.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::File(_))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_prefix = |f: &mut fmt::Formatter<'_>, scheme: &str, name: &str, prefix: &str| {
            if prefix.is_empty() {
                write!(f, "{scheme}://{name}")
            } else {
                write!(f, "{scheme}://{name}/{prefix}")
            }
        };
        match self {
            Self::File(path) => write!(f, "file://{}", path.display()),
            Self::S3 { bucket, prefix } => with_prefix(f, "s3", bucket, prefix),
            Self::Gcs { bucket, prefix } => with_prefix(f, "gs", bucket, prefix),
            Self::Azure { container, prefix } => with_prefix(f, "az", container, prefix),
            Self::Memory => f.write_str("memory://"),
        }
    }
}

/// Retries of cloud requests: a few, quickly, so an unreachable endpoint is reported within
/// seconds rather than object_store's default three minutes; part uploads are retried too.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

/// Client settings tufa picks unless the environment says otherwise: `(key, value)` for each
/// backend's `with_config`. (Not `with_client_options`: that would replace what `from_env`
/// read, `AWS_ALLOW_HTTP` included.)
const CLIENT_DEFAULTS: [(ClientConfigKey, &str); 2] = [
    (ClientConfigKey::ConnectTimeout, "5s"),
    (ClientConfigKey::Timeout, "120s"),
];

/// Whether the environment already sets this client key for the backend whose variables
/// start with `env_prefix` (`AWS_`, `GOOGLE_`, `AZURE_`).
fn env_sets(env_prefix: &str, key: ClientConfigKey) -> bool {
    std::env::var_os(format!("{env_prefix}{}", key.as_ref().to_ascii_uppercase())).is_some()
}

impl BlobStore {
    /// Opens the store at `location`. Cloud stores read their credentials from the environment
    /// (see the module docs); nothing is contacted yet (see [`probe`](Self::probe)).
    pub fn open(location: &StoreLocation, options: &CloudOptions) -> Result<Self, StoreError> {
        // Cloud clients are reqwest on rustls; the process needs one crypto provider (before
        // the builders make their clients).
        crate::install_crypto_provider();
        let build_error = |source: object_store::Error| StoreError::Connect {
            location: location.to_string(),
            source,
        };
        let description = location.to_string();
        match location {
            StoreLocation::File(path) => Self::local(path),
            StoreLocation::Memory => Ok(Self::memory()),
            StoreLocation::S3 { bucket, prefix } => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config());
                for (key, value) in CLIENT_DEFAULTS {
                    if !env_sets("AWS_", key) {
                        builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
                    }
                }
                if let Some(endpoint) = &options.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &options.region {
                    builder = builder.with_region(region);
                }
                if let Some(allow_http) = options.allow_http {
                    builder = builder.with_allow_http(allow_http);
                }
                let s3 = Arc::new(builder.build().map_err(build_error)?);
                Ok(Self::from_cloud_store(s3, prefix, description))
            }
            StoreLocation::Gcs { bucket, prefix } => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut builder = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config());
                for (key, value) in CLIENT_DEFAULTS {
                    if !env_sets("GOOGLE_", key) {
                        builder = builder.with_config(GoogleConfigKey::Client(key), value);
                    }
                }
                if let Some(allow_http) = options.allow_http {
                    builder = builder.with_config(
                        GoogleConfigKey::Client(ClientConfigKey::AllowHttp),
                        allow_http.to_string(),
                    );
                }
                let gcs = Arc::new(builder.build().map_err(build_error)?);
                Ok(Self::from_cloud_store(gcs, prefix, description))
            }
            StoreLocation::Azure { container, prefix } => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut builder = MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(retry_config());
                for (key, value) in CLIENT_DEFAULTS {
                    if !env_sets("AZURE_", key) {
                        builder = builder.with_config(AzureConfigKey::Client(key), value);
                    }
                }
                if let Some(endpoint) = &options.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if let Some(allow_http) = options.allow_http {
                    builder = builder.with_allow_http(allow_http);
                }
                let azure = Arc::new(builder.build().map_err(build_error)?);
                Ok(Self::from_cloud_store(azure, prefix, description))
            }
        }
    }

    /// Checks that the store answers: one metadata request for a key that may or may not
    /// exist. "Not found" is fine; anything else (unreachable endpoint, missing bucket, denied
    /// credentials) is [`StoreError::Connect`].
    pub async fn probe(&self) -> Result<(), StoreError> {
        let key = object_store::path::Path::from("published/current.json");
        match object_store::ObjectStoreExt::head(self.object_store().as_ref(), &key).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(StoreError::Connect {
                location: self.describe().to_owned(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            StoreLocation::parse("file:///srv/tufa/store").unwrap(),
            StoreLocation::File(PathBuf::from("/srv/tufa/store"))
        );
        assert_eq!(
            StoreLocation::parse("s3://bucket/a/b/").unwrap(),
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("s3://bucket").unwrap(),
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreLocation::parse("gs://b/p").unwrap(),
            StoreLocation::Gcs {
                bucket: "b".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("az://c/p").unwrap(),
            StoreLocation::Azure {
                container: "c".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(StoreLocation::parse("memory://").unwrap(), StoreLocation::Memory);
        for url in [
            "file:///srv/x",
            "s3://b/p/q",
            "s3://b",
            "gs://b/p",
            "az://c/p",
            "memory://",
        ] {
            assert_eq!(StoreLocation::parse(url).unwrap().to_string(), url);
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("ftp://host/x", "unknown scheme `ftp`"),
            ("s3:///prefix", "no bucket name"),
            ("s3://key:secret@bucket/p", "credentials do not belong"),
            ("s3://bucket:9000/p", "endpoint setting"),
            ("s3://bucket/p?x=1", "query"),
            ("file://host/x", "local path"),
            ("memory://x", "no name"),
            ("not a url", "relative URL"),
        ] {
            let err = StoreLocation::parse(url).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(url), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn memory_and_file_open_and_probe() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_file_path(dir.path().join("s")).unwrap();
        let store = BlobStore::open(
            &StoreLocation::parse(url.as_str()).unwrap(),
            &CloudOptions::default(),
        )
        .unwrap();
        store.probe().await.unwrap();
        assert!(dir.path().join("s").is_dir());
        BlobStore::open(&StoreLocation::Memory, &CloudOptions::default())
            .unwrap()
            .probe()
            .await
            .unwrap();
    }
}
