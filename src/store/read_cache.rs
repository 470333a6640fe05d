//! A bounded cache on local disk of the byte ranges read from a remote object store, so a
//! query that reads the same row groups again (a dashboard refreshing, a trace opened twice,
//! the footers after a restart) does not fetch them from the bucket again.
//!
//! Every cached range is one file of `<data-dir>/read-cache/`, named by a SHA-256 of the
//! object path and the range, with the object's size after a dot (what a ranged answer
//! reports besides its bytes; the name is the only index, so a restart needs no other file). The files are held in a `moka` cache weighed by their bytes,
//! least recently used evicted first, the evicted file deleted; on start the folder's files
//! are taken back oldest first, so the cache survives restarts and its bound holds from the
//! start. Decision: entries are never invalidated, because the store never rewrites an object
//! under the same name (every file gets a new UUID; compaction writes new files and deletes
//! old ones), so a cached range of a path is that path's bytes forever; ranges of deleted
//! objects simply age out. Whole-object reads and conditional or versioned reads are not
//! cached. The cache is best effort: a range it cannot write is served anyway.

use std::fmt;
use std::ops::Range;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};
use sha2::{Digest, Sha256};

/// The cached ranges on disk and their recency.
#[derive(Debug)]
struct RangeFiles {
    dir: PathBuf,
    /// Range key → (bytes cached, size of the object); evicting an entry deletes its file.
    entries: moka::sync::Cache<String, (u64, u64)>,
}

/// The file of a cached range: the key, then the object's size.
fn file_name(key: &str, object_size: u64) -> String {
    format!("{key}.{object_size}")
}

impl RangeFiles {
    /// The cache in `dir` (created if missing) holding at most `max_bytes`, with the files a
    /// previous run left there taken back, oldest first.
    fn open(dir: &LocalPath, max_bytes: u64) -> std::io::Result<RangeFiles> {
        std::fs::create_dir_all(dir)?;
        let evict_dir = dir.to_path_buf();
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &String, (bytes, _): &(u64, u64)| {
                u32::try_from(*bytes).unwrap_or(u32::MAX)
            })
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .eviction_listener(move |key: Arc<String>, (_, size): (u64, u64), cause| {
                if cause != moka::notification::RemovalCause::Replaced {
                    let _ = std::fs::remove_file(evict_dir.join(file_name(&key, size)));
                }
            })
            .build();
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            let parsed = name
                .split_once('.')
                .and_then(|(key, size)| Some((key.to_string(), size.parse::<u64>().ok()?)));
            match parsed {
                Some((key, size)) if meta.is_file() => {
                    found.push((meta.modified().ok(), key, meta.len(), size))
                }
                // Half-written (`.tmp`) or foreign files.
                _ => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        found.sort();
        for (_, key, bytes, size) in found {
            entries.insert(key, (bytes, size));
        }
        let files = RangeFiles {
            dir: dir.to_path_buf(),
            entries,
        };
        files.report();
        Ok(files)
    }

    /// The bytes and object size of a cached range, marking it used.
    fn get(&self, key: &str) -> Option<(Bytes, u64)> {
        let (_, size) = self.entries.get(key)?;
        match std::fs::read(self.dir.join(file_name(key, size))) {
            Ok(bytes) => Some((Bytes::from(bytes), size)),
            Err(_) => {
                self.entries.invalidate(key);
                None
            }
        }
    }

    /// Keeps `bytes` as the range `key` of an object of `size` bytes.
    fn put(&self, key: &str, size: u64, bytes: &[u8]) {
        let name = file_name(key, size);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written =
            std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, self.dir.join(&name)));
        match written {
            Ok(()) => {
                self.entries
                    .insert(key.to_string(), (bytes.len() as u64, size));
                self.report();
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!("could not keep a read in the cache: {e}");
            }
        }
    }

    /// Bytes of the cached ranges, after evicting what is over the bound.
    fn bytes(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }

    /// Evicts what is over the bound and shows the size at `/metrics`.
    fn report(&self) {
        crate::telemetry::get()
            .read_cache_bytes
            .set(i64::try_from(self.bytes()).unwrap_or(i64::MAX));
    }
}

/// An object store whose ranged reads go through a [`RangeFiles`] cache.
#[derive(Debug)]
pub struct CachedObjects {
    inner: Arc<dyn ObjectStore>,
    files: RangeFiles,
}

impl CachedObjects {
    /// `inner` with its ranged reads cached in `dir`, at most `max_bytes`.
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        dir: &LocalPath,
        max_bytes: u64,
    ) -> std::io::Result<CachedObjects> {
        Ok(CachedObjects {
            inner,
            files: RangeFiles::open(dir, max_bytes)?,
        })
    }

    /// Bytes the cache holds now.
    #[cfg(test)]
    fn cached_bytes(&self) -> u64 {
        self.files.bytes()
    }

    /// The cache key of a plain ranged read, `None` for reads that are not cached.
    fn key(location: &Path, options: &GetOptions) -> Option<String> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        let range = match options.range.as_ref()? {
            GetRange::Bounded(r) => format!("{}-{}", r.start, r.end),
            GetRange::Offset(o) => format!("{o}-"),
            GetRange::Suffix(n) => format!("-{n}"),
        };
        plain.then(|| {
            let digest = Sha256::digest(format!("{location}\n{range}").as_bytes());
            hex::encode(&digest[..20])
        })
    }

    /// A ranged answer made of cached bytes.
    fn answer(location: &Path, options: &GetOptions, bytes: Bytes, size: u64) -> GetResult {
        let len = bytes.len() as u64;
        let start = match options.range.as_ref() {
            Some(GetRange::Bounded(r)) => r.start,
            Some(GetRange::Offset(o)) => *o,
            Some(GetRange::Suffix(_)) | None => size.saturating_sub(len),
        };
        GetResult {
            payload: GetResultPayload::Stream(futures::stream::once(async { Ok(bytes) }).boxed()),
            meta: ObjectMeta {
                location: location.clone(),
                last_modified: chrono::DateTime::UNIX_EPOCH,
                size,
                e_tag: None,
                version: None,
            },
            range: Range {
                start,
                end: start + len,
            },
            attributes: Default::default(),
            extensions: Default::default(),
        }
    }
}

impl fmt::Display for CachedObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (reads cached in {})",
            self.inner,
            self.files.dir.display()
        )
    }
}

#[async_trait::async_trait]
impl ObjectStore for CachedObjects {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let Some(key) = Self::key(location, &options) else {
            return self.inner.get_opts(location, options).await;
        };
        if let Some((bytes, size)) = self.files.get(&key) {
            return Ok(Self::answer(location, &options, bytes, size));
        }
        let fetched = self.inner.get_opts(location, options.clone()).await?;
        let size = fetched.meta.size;
        let bytes = fetched.bytes().await?;
        self.files.put(&key, size, &bytes);
        Ok(Self::answer(location, &options, bytes, size))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::ObjectStoreExt;

    fn remote(dir: &LocalPath) -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new_with_prefix(dir).expect("local store"))
    }

    #[tokio::test]
    async fn a_range_read_twice_is_fetched_once_and_the_bound_holds_across_restarts() {
        let bucket = tempfile::tempdir().expect("temp dir");
        let cache_dir = tempfile::tempdir().expect("temp dir");
        let objects = remote(bucket.path());
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let path = Path::from("traces/a.parquet");
        objects
            .put(&path, PutPayload::from(bytes.clone()))
            .await
            .expect("put");

        let cached = CachedObjects::new(objects.clone(), cache_dir.path(), 3_000).expect("cache");
        let first = cached.get_range(&path, 100..1_100).await.expect("read");
        assert_eq!(&first[..], &bytes[100..1_100]);
        // Gone from the bucket: the same range still answers, from the cache.
        objects.delete(&path).await.expect("delete");
        let again = cached
            .get_range(&path, 100..1_100)
            .await
            .expect("cached read");
        assert_eq!(again, first);
        let suffix = cached
            .get_opts(
                &path,
                GetOptions {
                    range: Some(GetRange::Suffix(8)),
                    ..Default::default()
                },
            )
            .await;
        assert!(suffix.is_err(), "an uncached range of a deleted object");
        assert!(cached.get_range(&path, 0..10).await.is_err());

        // More than the bound: the least recently used ranges go, with their files.
        objects
            .put(&path, PutPayload::from(bytes.clone()))
            .await
            .expect("put");
        for start in (0..5_000u64).step_by(1_000) {
            let read = cached
                .get_range(&path, start..start + 1_000)
                .await
                .expect("read");
            assert_eq!(&read[..], &bytes[start as usize..start as usize + 1_000]);
        }
        assert!(cached.cached_bytes() <= 3_000, "{}", cached.cached_bytes());
        let on_disk: u64 = std::fs::read_dir(cache_dir.path())
            .expect("cache dir")
            .flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum();
        assert!(on_disk <= 3_000, "{on_disk} bytes on disk");
        drop(cached);

        // A restart takes the files back: the newest range answers without the bucket.
        let reopened = CachedObjects::new(objects.clone(), cache_dir.path(), 3_000).expect("cache");
        assert_eq!(reopened.cached_bytes(), on_disk);
        objects.delete(&path).await.expect("delete");
        let kept = reopened.get_range(&path, 4_000..5_000).await.expect("kept");
        assert_eq!(&kept[..], &bytes[4_000..5_000]);
    }
}
