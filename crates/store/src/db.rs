//! The database: a directory of collections with a catalog.

use crate::collection::{write_file_atomic, Collection};
use crate::error::{IoContext, Result, StoreError};
use crate::schema::CollectionSchema;
use crate::Options;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Serialize, Deserialize, Default, Clone)]
struct Catalog {
    version: u32,
    next_id: u64,
    collections: Vec<CatalogEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct CatalogEntry {
    /// Directory under the database root (unique per creation, so a dropped collection's
    /// leftovers never mix with a new one of the same name).
    dir: String,
    created_at_ms: u64,
    schema: CollectionSchema,
}

struct Inner {
    catalog: Catalog,
    open: HashMap<String, Arc<Collection>>,
}

/// Extra attempts, 10 ms apart, at taking a busy directory lock (see [`Database::open_with`]).
const LOCK_RETRIES: u32 = 20;

/// An embedded facedb database in one directory (`catalog.json` plus one folder per
/// collection). Share it with `Arc<Database>`; every method takes `&self`.
pub struct Database {
    dir: PathBuf,
    opts: Options,
    inner: Mutex<Inner>,
    /// `<dir>/LOCK`, held (exclusive `flock`) while the database is open: a second process
    /// or a second `Database` on the same directory is refused instead of losing writes.
    _lock: fs::File,
}

impl Drop for Database {
    /// Stops the collections' background segment writers before the directory lock is
    /// released, so that no file is written once another process may open the directory.
    fn drop(&mut self) {
        for c in self.inner.get_mut().open.values() {
            c.close();
        }
    }
}

impl Database {
    /// Opens the database in `dir`, creating the directory if needed, with default options
    /// (fsync on every acknowledged write).
    ///
    /// # Errors
    /// I/O errors, or [`StoreError::Corrupt`] when `catalog.json` cannot be read.
    pub fn open(dir: impl AsRef<Path>) -> Result<Database> {
        Database::open_with(dir, Options::default())
    }

    /// Opens with explicit [`Options`].
    ///
    /// # Errors
    /// As [`Database::open`].
    pub fn open_with(dir: impl AsRef<Path>, opts: Options) -> Result<Database> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).ctx(&dir)?;
        let cpath = dir.join("catalog.json");
        let catalog = if cpath.exists() {
            let b = fs::read(&cpath).ctx(&cpath)?;
            serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                path: cpath.display().to_string(),
                reason: e.to_string(),
            })?
        } else {
            Catalog {
                version: 1,
                next_id: 1,
                collections: vec![],
            }
        };
        let lock_path = dir.join("LOCK");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx(&lock_path)?;
        // A lock just released may still be held for a moment: a process forked by this one
        // (any thread spawning a command) shares the lock's open file until it execs. So a
        // busy lock is retried for up to 200 ms before the directory is reported in use.
        let mut tries = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if tries < LOCK_RETRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked {
                        path: dir.display().to_string(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(StoreError::Io {
                        path: lock_path.display().to_string(),
                        source: e,
                    })
                }
            }
        }
        Ok(Database {
            dir,
            opts,
            inner: Mutex::new(Inner {
                catalog,
                open: HashMap::new(),
            }),
            _lock: lock,
        })
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn save(&self, c: &Catalog) -> Result<()> {
        let b = serde_json::to_vec_pretty(c).map_err(|e| StoreError::Corrupt {
            path: "catalog.json".into(),
            reason: e.to_string(),
        })?;
        write_file_atomic(&self.dir.join("catalog.json"), &b)
    }

    /// Creates a collection.
    ///
    /// # Errors
    /// [`StoreError::InvalidSchema`], [`StoreError::CollectionExists`], I/O errors.
    pub fn create_collection(&self, schema: CollectionSchema) -> Result<Arc<Collection>> {
        schema.validate()?;
        let mut inner = self.inner.lock();
        if inner
            .catalog
            .collections
            .iter()
            .any(|e| e.schema.name == schema.name)
        {
            return Err(StoreError::CollectionExists { name: schema.name });
        }
        let mut cat = inner.catalog.clone();
        let dirname = format!("c{:06}_{}", cat.next_id, schema.name);
        cat.next_id += 1;
        let created_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let path = self.dir.join(&dirname);
        if path.exists() {
            fs::remove_dir_all(&path).ctx(&path)?;
        }
        let coll = Collection::open(&path, schema.clone(), self.opts.clone())?;
        cat.collections.push(CatalogEntry {
            dir: dirname,
            created_at_ms,
            schema: schema.clone(),
        });
        self.save(&cat)?;
        inner.catalog = cat;
        inner.open.insert(schema.name, coll.clone());
        Ok(coll)
    }

    /// Opens a collection by name (first use opens its files and replays its WAL).
    ///
    /// # Errors
    /// [`StoreError::CollectionNotFound`]; errors from opening the files.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        let mut inner = self.inner.lock();
        if let Some(c) = inner.open.get(name) {
            return Ok(c.clone());
        }
        let e = inner
            .catalog
            .collections
            .iter()
            .find(|e| e.schema.name == name)
            .cloned()
            .ok_or_else(|| StoreError::CollectionNotFound {
                name: name.to_string(),
            })?;
        let coll = Collection::open(&self.dir.join(&e.dir), e.schema, self.opts.clone())?;
        inner.open.insert(name.to_string(), coll.clone());
        Ok(coll)
    }

    /// True when the collection exists.
    pub fn has_collection(&self, name: &str) -> bool {
        self.inner
            .lock()
            .catalog
            .collections
            .iter()
            .any(|e| e.schema.name == name)
    }

    /// Names of all collections, in creation order.
    pub fn list_collections(&self) -> Vec<String> {
        self.inner
            .lock()
            .catalog
            .collections
            .iter()
            .map(|e| e.schema.name.clone())
            .collect()
    }

    /// Schema and creation time (unix milliseconds) of a collection.
    ///
    /// # Errors
    /// [`StoreError::CollectionNotFound`].
    pub fn describe_collection(&self, name: &str) -> Result<(CollectionSchema, u64)> {
        let inner = self.inner.lock();
        inner
            .catalog
            .collections
            .iter()
            .find(|e| e.schema.name == name)
            .map(|e| (e.schema.clone(), e.created_at_ms))
            .ok_or_else(|| StoreError::CollectionNotFound {
                name: name.to_string(),
            })
    }

    /// Drops a collection and deletes its files.
    ///
    /// # Errors
    /// [`StoreError::CollectionNotFound`], I/O errors.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let mut inner = self.inner.lock();
        let mut cat = inner.catalog.clone();
        let pos = cat
            .collections
            .iter()
            .position(|e| e.schema.name == name)
            .ok_or_else(|| StoreError::CollectionNotFound {
                name: name.to_string(),
            })?;
        let e = cat.collections.remove(pos);
        self.save(&cat)?;
        inner.catalog = cat;
        if let Some(c) = inner.open.remove(name) {
            c.close();
        }
        let path = self.dir.join(&e.dir);
        let _ = fs::remove_dir_all(&path);
        Ok(())
    }
}
