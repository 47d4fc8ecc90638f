//! Object storage for published data: a local directory by default, `s3://`, `gs://`, `az://` by URL.
//!
//! Writes are synchronous from the caller's point of view (node threads call them) and durable on
//! return: for the local filesystem the file and its directory are fsynced, for cloud stores a
//! successful PUT is durable by the store's contract.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use divoc_pipeline::EngineError;

/// How long one operation on a cloud store is retried before the caller gets the error: object
/// stores answer 5xx and drop connections during deployments and failovers, and object_store's
/// own retries (10 within about 2 s) end before a restart does. Backoff doubles from 200 ms to
/// 10 s. Every write is an idempotent overwrite of a key named by its content's epoch, so a
/// repeated attempt is safe.
const CLOUD_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(300);
const CLOUD_BACKOFF_FIRST: std::time::Duration = std::time::Duration::from_millis(200);
const CLOUD_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Objects from this size on go to a cloud store as a multipart upload: a single PUT is capped
/// (5 GiB on S3) and a failed part is retried alone instead of the whole object.
pub const MULTIPART_FROM_BYTES: usize = 32 << 20;
const MULTIPART_PART_BYTES: usize = 8 << 20;

/// Whether an error may go away by itself (not a missing object or a refused precondition).
fn is_transient(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::UnknownConfigurationKey { .. }
    )
}

/// A handle to the output store. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Set for the local filesystem so writes can be fsynced.
    local_root: Option<PathBuf>,
    runtime: tokio::runtime::Handle,
    url: String,
}

impl Storage {
    /// Opens the store named by `url` (a plain path means the local filesystem; it is created).
    pub fn open(
        url: &str,
        options: &BTreeMap<String, String>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, EngineError> {
        divoc_pipeline::config::check_storage_url(url).map_err(EngineError::Config)?;
        let local = match url.split_once("://") {
            None => Some(PathBuf::from(url)),
            Some(("file", rest)) => Some(PathBuf::from(rest)),
            Some(_) => None,
        };
        if let Some(dir) = local {
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
            let root = std::fs::canonicalize(&dir).map_err(|e| EngineError::io(&dir, e))?;
            let store = LocalFileSystem::new_with_prefix(&root).map_err(store_err)?;
            return Ok(Self {
                store: Arc::new(store),
                local_root: Some(root),
                runtime,
                url: url.to_owned(),
            });
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| EngineError::Config(format!("storage.url {url:?}: {e}")))?;
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, options.iter()).map_err(store_err)?;
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            Arc::from(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(Self {
            store,
            local_root: None,
            runtime,
            url: url.to_owned(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Local directory backing the store, if it is the local filesystem.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Writes `bytes` at `key`, durably. Overwrites (replays write identical bytes to identical keys).
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<(), EngineError> {
        let path = ObjectPath::from(key);
        let store = self.store.clone();
        if self.local_root.is_none() && bytes.len() >= MULTIPART_FROM_BYTES {
            self.retrying("multipart put", || {
                let (store, path, bytes) = (store.clone(), path.clone(), bytes.clone());
                async move {
                    let upload = store.put_multipart(&path).await?;
                    let mut writer = object_store::WriteMultipart::new_with_chunk_size(
                        upload,
                        MULTIPART_PART_BYTES,
                    );
                    writer.put(bytes);
                    writer.finish().await
                }
            })
            .map_err(store_err)?;
            return Ok(());
        }
        self.retrying("put", || {
            let (store, path, bytes) = (store.clone(), path.clone(), bytes.clone());
            async move { store.put(&path, PutPayload::from(bytes)).await }
        })
        .map_err(store_err)?;
        if let Some(root) = &self.local_root {
            let file = root.join(key);
            sync_path(&file)?;
            if let Some(dir) = file.parent() {
                sync_path(dir)?;
            }
        }
        Ok(())
    }

    /// Writes many objects concurrently. Local files are NOT fsynced here: pass the keys to
    /// [`Storage::sync_keys`] before relying on them (operators do it at the epoch barrier, so one
    /// batch of fsyncs covers a whole epoch instead of two per object). Cloud stores are durable
    /// on return.
    pub fn put_many_unsynced(&self, objects: Vec<(String, Bytes)>) -> Result<(), EngineError> {
        use futures::StreamExt;
        let store = self.store.clone();
        self.retrying("put", || {
            let (store, objects) = (store.clone(), objects.clone());
            async move {
                futures::stream::iter(objects.into_iter().map(|(key, bytes)| {
                    let store = store.clone();
                    async move {
                        store
                            .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
                            .await
                    }
                }))
                .buffer_unordered(32)
                .try_collect::<Vec<_>>()
                .await
            }
        })
        .map_err(store_err)?;
        Ok(())
    }

    /// Makes objects written by [`Storage::put_many_unsynced`] durable: fsyncs each local file and
    /// each distinct parent directory once. A no-op for cloud stores.
    pub fn sync_keys(&self, keys: &[String]) -> Result<(), EngineError> {
        use rayon::prelude::*;
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let files: Vec<PathBuf> = keys.iter().map(|k| root.join(k)).collect();
        files.par_iter().try_for_each(|f| sync_path(f))?;
        let dirs: std::collections::BTreeSet<&std::path::Path> =
            files.iter().filter_map(|f| f.parent()).collect();
        dirs.into_par_iter().try_for_each(sync_path)
    }

    pub fn get(&self, key: &str) -> Result<Option<Bytes>, EngineError> {
        let path = ObjectPath::from(key);
        let store = self.store.clone();
        match self.retrying("get", || {
            let (store, path) = (store.clone(), path.clone());
            async move { store.get(&path).await?.bytes().await }
        }) {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Lists keys under `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, EngineError> {
        let p = ObjectPath::from(prefix);
        let store = self.store.clone();
        let mut keys: Vec<String> = self
            .retrying("list", || {
                let (store, p) = (store.clone(), p.clone());
                async move {
                    store
                        .list(Some(&p))
                        .map_ok(|m| m.location.to_string())
                        .try_collect()
                        .await
                }
            })
            .map_err(store_err)?;
        keys.sort();
        Ok(keys)
    }

    /// Lists keys under `prefix` with their sizes in bytes, sorted by key.
    pub fn list_sizes(&self, prefix: &str) -> Result<Vec<(String, u64)>, EngineError> {
        let p = ObjectPath::from(prefix);
        let store = self.store.clone();
        let mut keys: Vec<(String, u64)> = self
            .retrying("list", || {
                let (store, p) = (store.clone(), p.clone());
                async move {
                    store
                        .list(Some(&p))
                        .map_ok(|m| (m.location.to_string(), m.size))
                        .try_collect()
                        .await
                }
            })
            .map_err(store_err)?;
        keys.sort();
        Ok(keys)
    }

    /// Moves an object (atomic on the local filesystem; copy + delete on most cloud stores),
    /// durably, overwriting the destination. Returns false when `from` does not exist (e.g. it
    /// was moved before a crash).
    pub fn rename(&self, from: &str, to: &str) -> Result<bool, EngineError> {
        let (src, dst) = (ObjectPath::from(from), ObjectPath::from(to));
        let store = self.store.clone();
        match self.retrying("rename", || {
            let (store, src, dst) = (store.clone(), src.clone(), dst.clone());
            async move { store.rename(&src, &dst).await }
        }) {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(store_err(e)),
        }
        if let Some(root) = &self.local_root {
            for dir in [root.join(to), root.join(from)]
                .iter()
                .filter_map(|p| p.parent().map(std::path::Path::to_path_buf))
                .collect::<std::collections::BTreeSet<_>>()
            {
                if dir.exists() {
                    sync_path(&dir)?;
                }
            }
        }
        Ok(true)
    }

    /// Removes what interrupted writes left directly under `prefix` (not recursive): the local
    /// store writes `<key>#<n>` and renames it into place, so a kill between the two leaves the
    /// temporary behind, invisible to [`Storage::list`]. Returns how many were removed. Cloud
    /// stores leave nothing visible (an unfinished upload never becomes an object).
    pub fn remove_interrupted_uploads(&self, prefix: &str) -> Result<usize, EngineError> {
        let Some(root) = &self.local_root else {
            return Ok(0);
        };
        let dir = root.join(prefix.trim_matches('/'));
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(EngineError::io(&dir, e)),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io(&dir, e))?;
            let name = entry.file_name();
            if is_upload_temporary(&name.to_string_lossy()) {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(EngineError::io(&path, e)),
                }
            }
        }
        if removed > 0 {
            sync_path(&dir)?;
        }
        Ok(removed)
    }

    /// Deletes an object; a missing one is not an error.
    pub fn delete(&self, key: &str) -> Result<(), EngineError> {
        let path = ObjectPath::from(key);
        let store = self.store.clone();
        match self.retrying("delete", || {
            let (store, path) = (store.clone(), path.clone());
            async move { store.delete(&path).await }
        }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or a cloud store stayed unavailable for
    /// [`CLOUD_RETRY_FOR`]; the local filesystem is not retried (its errors are real).
    fn retrying<T, F, Fut>(&self, what: &str, op: F) -> Result<T, object_store::Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, object_store::Error>>,
    {
        let started = std::time::Instant::now();
        let mut backoff = CLOUD_BACKOFF_FIRST;
        loop {
            match self.block_on(op()) {
                Err(e)
                    if self.local_root.is_none()
                        && is_transient(&e)
                        && started.elapsed() + backoff < CLOUD_RETRY_FOR =>
                {
                    tracing::warn!(operation = what, error = %e, retry_in_ms = backoff.as_millis() as u64, "object store unavailable; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(CLOUD_BACKOFF_MAX);
                }
                other => return other,
            }
        }
    }

    fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        // Node threads are plain OS threads; inside a runtime worker we must not block it.
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(|| self.runtime.block_on(fut)),
            Err(_) => self.runtime.block_on(fut),
        }
    }
}

fn sync_path(p: &std::path::Path) -> Result<(), EngineError> {
    std::fs::File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| EngineError::io(p, e))
}

fn store_err(e: object_store::Error) -> EngineError {
    EngineError::external("object store", e)
}

/// `name#<digits>`: the local object store's temporary for a write in progress.
fn is_upload_temporary(name: &str) -> bool {
    matches!(name.rsplit_once('#'), Some((stem, n))
        if !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A local store in a fresh temporary directory, with the runtime it blocks on (sink tests).
#[cfg(test)]
pub(crate) struct TestStore {
    pub storage: Storage,
    /// Where the store's objects are.
    pub root: PathBuf,
    _rt: tokio::runtime::Runtime,
    /// The temporary directory; `dir.path()` has room for state beside `out/`.
    pub dir: tempfile::TempDir,
}

#[cfg(test)]
impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let root = dir.path().join("out");
        let storage = Storage::open(
            &root.display().to_string(),
            &Default::default(),
            rt.handle().clone(),
        )
        .expect("local store");
        TestStore {
            storage,
            root,
            _rt: rt,
            dir,
        }
    }
}
