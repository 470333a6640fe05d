//! Where the Parquet files live: the data dir's `store/` folder (the default, and the only
//! choice of a single binary) or a key prefix in a bucket of an S3-compatible object store
//! (`--object-store s3://bucket/prefix`, for running several nodes on one set of files).
//!
//! The bucket is reached through `object_store`'s S3 client. Its address and credentials
//! come the way the AWS SDKs take them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` and `AWS_ENDPOINT_URL` from the environment (secrets
//! never on the command line, where `ps` would show them), the endpoint and region also as
//! flags.
//!
//! An `http://` endpoint (a server on the same network, such as MinIO, Ceph or `s3s-fs`) is
//! allowed without TLS because it was named so; everything else speaks HTTPS, through the
//! connector of `s3_http.rs`, trusting the system's roots and `--object-store-ca-bundle`.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use super::StoreError;

/// Where a store's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder on local disk, created if missing.
    Local(PathBuf),
    /// A key prefix in an S3 bucket, its ranged reads cached on local disk.
    S3(S3Location, ReadCacheSettings),
}

/// Where and how much a remote store's reads are cached (see `read_cache.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCacheSettings {
    /// Folder of the cached ranges (`<data-dir>/read-cache`).
    pub dir: PathBuf,
    /// Most bytes kept; 0 = no cache.
    pub max_bytes: u64,
}

/// A bucket, a key prefix and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket, which must exist.
    pub bucket: String,
    /// Key prefix every file goes under, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Endpoint of an S3-compatible server; `None` = AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Region; `None` = `AWS_REGION`, else the client's default (`us-east-1`).
    pub region: Option<String>,
    /// PEM certificates trusted besides the system's roots (a private CA).
    pub ca_bundle: Option<PathBuf>,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`; the message names what is wrong.
    pub fn parse(url: &str) -> Result<S3Location, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("object store {url:?}: only s3://bucket/prefix is supported"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "object store {url:?}: {bucket:?} is not a bucket name (3-63 lowercase letters, digits, '-' or '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(format!(
                "object store {url:?}: the prefix may not hold '.' or '..'"
            ));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: None,
            region: None,
            ca_bundle: None,
        })
    }

    /// The location as users write it, for messages.
    pub fn url(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// The client of the bucket, with every key under the prefix and ranged reads cached.
    pub(super) fn cached_client(
        &self,
        cache: &ReadCacheSettings,
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let client = self.client()?;
        if cache.max_bytes == 0 {
            return Ok(client);
        }
        Ok(Arc::new(super::read_cache::CachedObjects::new(
            client,
            &cache.dir,
            cache.max_bytes,
        )?))
    }

    /// The client of the bucket, with every key under the prefix.
    fn client(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_http_connector(super::s3_http::HyperConnector {
                ca_bundle: self.ca_bundle.clone(),
            });
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        let bucket: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        Ok(match self.prefix.as_str() {
            "" => bucket,
            prefix => Arc::new(PrefixStore::new(bucket, prefix)),
        })
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Local(dir) => write!(f, "{}", dir.display()),
            StoreLocation::S3(s3, _) => f.write_str(&s3.url()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_prefix_are_read_and_bad_urls_named() {
        let s3 = S3Location::parse("s3://team-traces/sightline/prod/").expect("parses");
        assert_eq!(s3.bucket, "team-traces");
        assert_eq!(s3.prefix, "sightline/prod");
        assert_eq!(s3.url(), "s3://team-traces/sightline/prod");
        let bare = S3Location::parse("s3://team-traces").expect("parses");
        assert_eq!(
            (bare.prefix.as_str(), bare.url().as_str()),
            ("", "s3://team-traces")
        );
        for (bad, says) in [
            ("gs://bucket/x", "only s3://"),
            ("s3://", "not a bucket name"),
            ("s3://Upper/x", "not a bucket name"),
            ("s3://b/x", "not a bucket name"),
            ("s3://bucket/../other", "'..'"),
        ] {
            let e = S3Location::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
