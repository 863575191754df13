//! What Milvus keeps about a collection that the embedded store does not: the exact schema the
//! client sent (so `DescribeCollection` round-trips it), the collection id and creation time,
//! consistency level, shard count, properties, index descriptions and the loaded state.
//!
//! Kept in one JSON file, `<data>/milvus-meta.json` (a name no collection can have), replaced
//! atomically (write a temporary file, fsync, rename, fsync the directory) on every change.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::status::{Error, Result};

/// File name of the sidecar inside the data directory.
pub const META_FILE: &str = "milvus-meta.json";

/// Version of the sidecar's JSON layout.
const META_VERSION: u32 = 1;

/// One index as `CreateIndex` asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Index name (Milvus default: `_default_idx_<field id>`).
    pub index_name: String,
    /// Index id (a hybrid timestamp, unique per server).
    pub index_id: i64,
    /// Field the index is on.
    pub field_name: String,
    /// The `extra_params` key-value pairs exactly as the client sent them
    /// (`index_type`, `metric_type`, `params` JSON, ...).
    pub params: Vec<(String, String)>,
}

impl IndexMeta {
    /// The value of parameter `key`, if the client sent it.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Milvus metadata of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    /// Collection id (a hybrid timestamp, unique per server).
    pub id: i64,
    /// Hybrid timestamp of creation.
    pub created_ts: u64,
    /// Creation time, unix milliseconds.
    pub created_utc_ms: u64,
    /// The protobuf `schema.CollectionSchema` as the client sent it, with field ids assigned
    /// (100, 101, ... as Milvus does), prost-encoded, base64 in the file.
    #[serde(with = "b64")]
    pub schema: Vec<u8>,
    /// `common.ConsistencyLevel` asked at creation (all levels behave as Strong).
    pub consistency_level: i32,
    /// Shard count asked at creation (reported back; facedb has no shards).
    pub shards_num: i32,
    /// Collection properties as sent.
    pub properties: Vec<(String, String)>,
    /// Whether `LoadCollection` was called (and no `ReleaseCollection` since).
    pub loaded: bool,
    /// Indexes, at most one per field.
    pub indexes: Vec<IndexMeta>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MetaFile {
    version: u32,
    collections: BTreeMap<String, CollectionMeta>,
}

/// The sidecar file and its in-memory copy. Not synchronised: the service holds it under a lock.
#[derive(Debug)]
pub struct MetaStore {
    path: Option<PathBuf>,
    file: MetaFile,
}

impl MetaStore {
    /// Opens (or starts) the sidecar of data directory `dir`; `None` keeps it in memory only.
    ///
    /// # Errors
    /// [`Error::Internal`] when the file exists but cannot be read or parsed.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        let path = dir.map(|d| d.join(META_FILE));
        let file = match &path {
            Some(p) if p.exists() => {
                let bytes = fs::read(p)
                    .map_err(|e| Error::Internal(format!("read {}: {e}", p.display())))?;
                let f: MetaFile = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("parse {}: {e}", p.display())))?;
                if f.version != META_VERSION {
                    return Err(Error::Internal(format!(
                        "{}: unknown version {}",
                        p.display(),
                        f.version
                    )));
                }
                f
            }
            _ => MetaFile {
                version: META_VERSION,
                collections: BTreeMap::new(),
            },
        };
        Ok(Self { path, file })
    }

    /// The metadata of collection `name`.
    pub fn get(&self, name: &str) -> Option<&CollectionMeta> {
        self.file.collections.get(name)
    }

    /// Names of all collections with metadata.
    #[cfg(test)]
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.file.collections.keys().map(String::as_str)
    }

    /// Sets (or replaces) the metadata of `name` and persists the file.
    ///
    /// # Errors
    /// [`Error::Internal`] when the file cannot be written; the in-memory copy is unchanged then.
    pub fn put(&mut self, name: &str, meta: CollectionMeta) -> Result<()> {
        let old = self.file.collections.insert(name.to_string(), meta);
        if let Err(e) = self.persist() {
            match old {
                Some(o) => self.file.collections.insert(name.to_string(), o),
                None => self.file.collections.remove(name),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Removes the metadata of `name` (if any) and persists the file.
    ///
    /// # Errors
    /// [`Error::Internal`] when the file cannot be written; the in-memory copy is unchanged then.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        if let Some(old) = self.file.collections.remove(name) {
            if let Err(e) = self.persist() {
                self.file.collections.insert(name.to_string(), old);
                return Err(e);
            }
        }
        Ok(())
    }

    fn persist(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |what: &str, e: std::io::Error| Error::Internal(format!("{what}: {e}"));
        let json = serde_json::to_vec_pretty(&self.file)
            .map_err(|e| Error::Internal(format!("encode metadata: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| io("create data directory", e))?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = fs::File::create(&tmp).map_err(|e| io("create metadata file", e))?;
            f.write_all(&json)
                .map_err(|e| io("write metadata file", e))?;
            f.sync_all().map_err(|e| io("sync metadata file", e))?;
        }
        fs::rename(&tmp, path).map_err(|e| io("replace metadata file", e))?;
        if let Ok(d) = fs::File::open(dir) {
            // Directory fsync makes the rename durable; not all platforms allow it.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

mod b64 {
    use super::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// Milvus hybrid timestamps: `physical_ms << 18 | logical`, strictly increasing per process.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicU64,
}

/// Bits of the logical part of a hybrid timestamp (Milvus `LogicalBits`).
pub const LOGICAL_BITS: u32 = 18;

impl Clock {
    /// A new hybrid timestamp, greater than every earlier one of this clock.
    pub fn now(&self) -> u64 {
        let physical = unix_ms() << LOGICAL_BITS;
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = physical.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// Milliseconds since the unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: i64) -> CollectionMeta {
        CollectionMeta {
            id,
            created_ts: 5,
            created_utc_ms: 6,
            schema: vec![1, 2, 3, 0, 255],
            consistency_level: 1,
            shards_num: 2,
            properties: vec![("k".into(), "v".into())],
            loaded: true,
            indexes: vec![IndexMeta {
                index_name: "_default_idx_102".into(),
                index_id: 9,
                field_name: "metrics".into(),
                params: vec![
                    ("index_type".into(), "FLAT".into()),
                    ("metric_type".into(), "L2".into()),
                    ("params".into(), "{}".into()),
                ],
            }],
        }
    }

    #[test]
    fn persists_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MetaStore::open(Some(dir.path())).unwrap();
        m.put("people", sample(42)).unwrap();
        m.put("other", sample(43)).unwrap();
        m.remove("other").unwrap();
        let m2 = MetaStore::open(Some(dir.path())).unwrap();
        assert_eq!(m2.get("people"), Some(&sample(42)));
        assert_eq!(m2.get("other"), None);
        assert_eq!(m2.names().collect::<Vec<_>>(), vec!["people"]);
        assert_eq!(
            m2.get("people").unwrap().indexes[0].param("metric_type"),
            Some("L2")
        );
    }

    #[test]
    fn rejects_garbage_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(META_FILE), b"{not json").unwrap();
        assert!(matches!(
            MetaStore::open(Some(dir.path())),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn clock_is_strictly_increasing() {
        let c = Clock::default();
        let a = c.now();
        let b = c.now();
        assert!(b > a);
        assert!(a >> LOGICAL_BITS > 1_600_000_000_000);
    }
}
