//! Write-ahead log: every mutation is appended here, and fsynced, before it is acknowledged.
//!
//! Files `wal/<seq>.log` start with the 8-byte magic `FDBWAL01`, then records:
//!
//! ```text
//! u32 len      bytes of (lsn + payload)
//! u32 crc32    CRC-32 (IEEE) of (lsn + payload)
//! u64 lsn      log sequence number, +1 per record across files
//! [u8] payload the operation (see collection.rs)
//! ```
//!
//! Recovery reads the files in order. A record cut short at the end of the last file (a torn
//! write) or whose checksum fails with nothing valid after it is dropped with a warning and
//! the file truncated there; damage followed by more data is reported as corruption.
//!
//! Group commit: writers append under a short lock, then call [`Wal::sync`]; one of them
//! fsyncs for every record appended so far and the others find their LSN already durable.

use crate::error::{IoContext, Result, StoreError};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"FDBWAL01";
const HEADER: usize = 16;
/// Largest record accepted on replay (guards against a garbage length field).
const MAX_RECORD: u64 = 1 << 34;

struct Tail {
    seq: u64,
    file: Arc<File>,
    last_lsn: u64,
}

/// The write-ahead log of one collection.
pub(crate) struct Wal {
    dir: PathBuf,
    tail: Mutex<Tail>,
    sync_lock: Mutex<()>,
    durable_lsn: AtomicU64,
    fsync: bool,
}

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct WalRecovery {
    /// Records replayed (LSN above the checkpoint).
    pub replayed: u64,
    /// Warnings about dropped torn or corrupt tail records.
    pub warnings: Vec<String>,
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

fn file_name(seq: u64) -> String {
    format!("{seq:08}.log")
}

fn list(dir: &Path) -> Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for e in fs::read_dir(dir).ctx(dir)? {
        let e = e.ctx(dir)?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(s) = name
            .strip_suffix(".log")
            .and_then(|s| s.parse::<u64>().ok())
        {
            seqs.push(s);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

impl Wal {
    /// Opens the log in `dir`, deleting files before `first_seq` (covered by the manifest),
    /// and calls `apply(lsn, payload)` for every record with `lsn > checkpoint`, in order.
    pub(crate) fn open(
        dir: &Path,
        first_seq: u64,
        checkpoint: u64,
        fsync: bool,
        mut apply: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<(Wal, WalRecovery)> {
        fs::create_dir_all(dir).ctx(dir)?;
        let mut rec = WalRecovery::default();
        let seqs = list(dir)?;
        let mut last_lsn = checkpoint;
        let mut replayed = 0u64;
        let mut live = Vec::new();
        for s in seqs {
            if s < first_seq {
                let p = dir.join(file_name(s));
                fs::remove_file(&p).ctx(&p)?;
            } else {
                live.push(s);
            }
        }
        let n_live = live.len();
        for (i, s) in live.iter().enumerate() {
            let path = dir.join(file_name(*s));
            let data = fs::read(&path).ctx(&path)?;
            let is_last = i + 1 == n_live;
            let valid = scan(&path, &data, is_last, &mut rec, |lsn, payload| {
                if lsn <= last_lsn && lsn <= checkpoint {
                    return Ok(()); // already in the sealed segments: idempotent replay
                }
                if lsn != last_lsn + 1 {
                    return Err(StoreError::Corrupt {
                        path: path.display().to_string(),
                        reason: format!("LSN {lsn} follows {last_lsn}"),
                    });
                }
                last_lsn = lsn;
                replayed += 1;
                apply(lsn, payload)
            })?;
            if valid < data.len() {
                let f = OpenOptions::new().write(true).open(&path).ctx(&path)?;
                f.set_len(valid as u64).ctx(&path)?;
                f.sync_all().ctx(&path)?;
            }
        }
        rec.replayed = replayed;
        let seq = live.last().copied().unwrap_or(first_seq);
        let file = open_append(dir, seq)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            tail: Mutex::new(Tail {
                seq,
                file: Arc::new(file),
                last_lsn,
            }),
            sync_lock: Mutex::new(()),
            durable_lsn: AtomicU64::new(last_lsn),
            fsync,
        };
        Ok((wal, rec))
    }

    /// LSN of the last appended record.
    pub(crate) fn last_lsn(&self) -> u64 {
        self.tail.lock().last_lsn
    }

    /// Appends one record (not yet durable: call [`Wal::sync`]). Returns its LSN.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_parts(&[payload])
    }

    /// Appends one record whose payload is the concatenation of `parts` (written from where
    /// they lie, without copying them together first). Not yet durable: call [`Wal::sync`].
    /// Returns its LSN.
    pub(crate) fn append_parts(&self, parts: &[&[u8]]) -> Result<u64> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if len + 8 > u32::MAX as u64 {
            return Err(StoreError::InvalidParameter(format!(
                "a single write of {len} bytes is larger than the 4 GiB WAL record limit"
            )));
        }
        let mut t = self.tail.lock();
        let lsn = t.last_lsn + 1;
        let mut h = crc32fast::Hasher::new();
        h.update(&lsn.to_le_bytes());
        for p in parts {
            h.update(p);
        }
        let mut header = [0u8; HEADER];
        header[0..4].copy_from_slice(&((8 + len) as u32).to_le_bytes());
        header[4..8].copy_from_slice(&h.finalize().to_le_bytes());
        header[8..16].copy_from_slice(&lsn.to_le_bytes());
        let path = self.dir.join(file_name(t.seq));
        let mut f = &*t.file;
        f.write_all(&header).ctx(&path)?;
        for p in parts {
            f.write_all(p).ctx(&path)?;
        }
        t.last_lsn = lsn;
        Ok(lsn)
    }

    /// Makes every record up to `lsn` durable (fsync), sharing the fsync with concurrent
    /// writers (group commit).
    pub(crate) fn sync(&self, lsn: u64) -> Result<()> {
        if !self.fsync || self.durable_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let _g = self.sync_lock.lock();
        if self.durable_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let (file, upto, seq) = {
            let t = self.tail.lock();
            (t.file.clone(), t.last_lsn, t.seq)
        };
        file.sync_data().ctx(self.dir.join(file_name(seq)))?;
        self.durable_lsn.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Starts a new file; later records go there. Returns the new sequence number.
    /// With fsync on, the old file is synced first (its records stay durable).
    pub(crate) fn rotate(&self) -> Result<u64> {
        let _g = self.sync_lock.lock();
        let mut t = self.tail.lock();
        // Without fsync (Options::fsync false) nothing waits for the old file's records:
        // syncing its unsynced tail (up to a whole segment of rows) would stall this write.
        if self.fsync {
            t.file.sync_data().ctx(self.dir.join(file_name(t.seq)))?;
            self.durable_lsn.fetch_max(t.last_lsn, Ordering::AcqRel);
        }
        let seq = t.seq + 1;
        t.file = Arc::new(open_append(&self.dir, seq)?);
        t.seq = seq;
        Ok(seq)
    }

    /// Deletes files older than `seq` (their records are in the manifest's segments).
    pub(crate) fn remove_before(&self, seq: u64) -> Result<()> {
        for s in list(&self.dir)? {
            if s < seq {
                let p = self.dir.join(file_name(s));
                fs::remove_file(&p).ctx(&p)?;
            }
        }
        Ok(())
    }
}

fn open_append(dir: &Path, seq: u64) -> Result<File> {
    let path = dir.join(file_name(seq));
    let exists = path.exists();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ctx(&path)?;
    if !exists || f.metadata().ctx(&path)?.len() == 0 {
        f.write_all(MAGIC).ctx(&path)?;
        f.sync_all().ctx(&path)?;
        sync_dir(dir)?;
    }
    Ok(f)
}

/// Walks the records of one file; returns the length of its valid prefix.
fn scan(
    path: &Path,
    data: &[u8],
    is_last: bool,
    rec: &mut WalRecovery,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<usize> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    if data.len() < MAGIC.len() {
        // A file created but not yet written (crash right after create) is empty.
        if is_last {
            if !data.is_empty() {
                rec.warnings
                    .push(format!("{}: torn file header dropped", path.display()));
            }
            return Ok(0);
        }
        return Err(corrupt("file shorter than its header".into()));
    }
    if &data[..8] != MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    let mut pos = 8;
    while pos < data.len() {
        let rest = data.len() - pos;
        let torn = |what: &str, rec: &mut WalRecovery| {
            let msg = format!(
                "{}: {what} at byte {pos} dropped ({rest} bytes)",
                path.display()
            );
            log::warn!("{msg}");
            rec.warnings.push(msg);
        };
        if rest < HEADER {
            if !is_last {
                return Err(corrupt(format!(
                    "torn record header at byte {pos} in a sealed log file"
                )));
            }
            torn("torn record header", rec);
            return Ok(pos);
        }
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap_or_default()) as u64;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap_or_default());
        if !(8..=MAX_RECORD).contains(&len) || (pos + 8) as u64 + len > data.len() as u64 {
            if !is_last {
                return Err(corrupt(format!("bad record length at byte {pos}")));
            }
            torn("torn record", rec);
            return Ok(pos);
        }
        let body = &data[pos + 8..pos + 8 + len as usize];
        let end = pos + 8 + len as usize;
        if crc32fast::hash(body) != crc {
            if is_last && end == data.len() {
                torn("corrupt last record (checksum mismatch)", rec);
                return Ok(pos);
            }
            return Err(corrupt(format!(
                "checksum mismatch at byte {pos} with more records after it"
            )));
        }
        let lsn = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
        f(lsn, &body[8..])?;
        pos = end;
    }
    Ok(pos)
}
