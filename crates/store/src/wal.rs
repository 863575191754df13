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
//! A file may end in zeros written ahead of its records (see [`Wal`]); they carry no record.
//!
//! Recovery reads the files in order, each up to its first all-zero remainder. A record cut
//! short at the end of the last file (a torn write) or whose checksum fails with nothing but
//! zeros after it is dropped with a warning and the file truncated there; damage followed by
//! more data is reported as corruption.
//!
//! Group commit: writers append under a short lock, then call [`Wal::sync`]; one of them
//! fsyncs for every record appended so far and the others find their LSN already durable.

use crate::error::{IoContext, Result, StoreError};
use parking_lot::{Condvar, Mutex};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"FDBWAL01";
const HEADER: usize = 16;
/// Largest record accepted on replay (guards against a garbage length field).
const MAX_RECORD: u64 = 1 << 34;

/// The second record of at least this many bytes turns on zeroing ahead (see [`Wal`]):
/// smaller writes are dominated by their fsync, and a collection that only ever writes small
/// batches, or one large batch, keeps files that end at their last record.
const ZERO_AHEAD_MIN_RECORD: u64 = 1 << 20;
/// Zeros are kept this many times the largest record ahead of the write position...
const ZERO_AHEAD_RECORDS: u64 = 8;
/// ...up to this many bytes.
const MAX_ZERO_AHEAD: u64 = 64 << 20;
/// Bytes zeroed per step: an append reaching into the range being zeroed waits for it.
const ZERO_STEP: u64 = 4 << 20;

struct Tail {
    seq: u64,
    file: Arc<File>,
    last_lsn: u64,
    /// Byte offset of the next record: the end of the file's records.
    pos: u64,
    /// The file's bytes `pos..zeroed` are zeros written ahead (synced when fsync is on).
    zeroed: u64,
    /// The range the zeroing thread is writing now; no record is written into it.
    zeroing: Option<(u64, u64)>,
    /// How many bytes of zeros to keep ahead of `pos` (0 until a second large record came).
    ahead: u64,
    /// Records of at least `ZERO_AHEAD_MIN_RECORD` bytes appended since the log was opened.
    large_records: u64,
    /// The zeroing thread waits for work: it zeroes up to `pos + ahead`, then rests until
    /// fewer than `ahead / 2` bytes of zeros are left.
    resting: bool,
}

impl Tail {
    /// Cuts the file back to its records when zeros were written after them; returns
    /// whether there were any.
    fn cut_zeros(&mut self) -> std::io::Result<bool> {
        if self.zeroed <= self.pos {
            return Ok(false);
        }
        self.file.set_len(self.pos)?;
        self.zeroed = self.pos;
        Ok(true)
    }
}

/// What the log and its zeroing thread share.
struct Shared {
    dir: PathBuf,
    tail: Mutex<Tail>,
    /// Signalled when `pos` moves (the zeroing thread may have work) and when a zeroing step
    /// ends (appends and `rotate` may go on).
    changed: Condvar,
    stop: AtomicBool,
    fsync: bool,
}

/// The write-ahead log of one collection.
///
/// Once a second record of 1 MiB or more arrives, a thread keeps zeros written (and, with
/// fsync, synced) ahead of the write position, up to 8 such records and at most 64 MiB, as
/// PostgreSQL does for its WAL segments (`wal_init_zero`). A record then overwrites page-cache
/// pages and disk blocks that already exist: the write is a plain copy (about 1 ms per 5 MB
/// here, against 5 ms when the kernel must find fresh pages for an appended record) and its
/// fdatasync writes the data alone, with no block allocation or size change to journal.
/// Recovery takes an all-zero remainder as the end of the log; a clean close, and every
/// rotation, cut the file back to its records.
pub(crate) struct Wal {
    shared: Arc<Shared>,
    sync_lock: Mutex<()>,
    durable_lsn: AtomicU64,
    zeroer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tests: leave the zeros after the records at drop, as a crash would.
    #[cfg(test)]
    keep_zeros: AtomicBool,
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
    /// and calls `apply(seq, lsn, payload)` for every record with `lsn > checkpoint`, in
    /// order (`seq`: the file the record is in).
    pub(crate) fn open(
        dir: &Path,
        first_seq: u64,
        checkpoint: u64,
        fsync: bool,
        mut apply: impl FnMut(u64, u64, &[u8]) -> Result<()>,
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
                apply(*s, lsn, payload)
            })?;
            if valid < data.len() {
                let f = OpenOptions::new().write(true).open(&path).ctx(&path)?;
                f.set_len(valid as u64).ctx(&path)?;
                f.sync_all().ctx(&path)?;
            }
        }
        rec.replayed = replayed;
        let seq = live.last().copied().unwrap_or(first_seq);
        let (file, pos) = open_tail(dir, seq)?;
        let wal = Wal {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                tail: Mutex::new(Tail {
                    seq,
                    file: Arc::new(file),
                    last_lsn,
                    pos,
                    zeroed: pos,
                    zeroing: None,
                    ahead: 0,
                    large_records: 0,
                    resting: false,
                }),
                changed: Condvar::new(),
                stop: AtomicBool::new(false),
                fsync,
            }),
            sync_lock: Mutex::new(()),
            durable_lsn: AtomicU64::new(last_lsn),
            zeroer: Mutex::new(None),
            #[cfg(test)]
            keep_zeros: AtomicBool::new(false),
        };
        Ok((wal, rec))
    }

    /// Sequence number of the file records are appended to.
    pub(crate) fn tail_seq(&self) -> u64 {
        self.shared.tail.lock().seq
    }

    /// LSN of the last appended record.
    pub(crate) fn last_lsn(&self) -> u64 {
        self.shared.tail.lock().last_lsn
    }

    /// Appends one record (not yet durable: call [`Wal::sync`]). Returns its LSN.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_parts(&[payload])
    }

    /// Appends one record whose payload is the concatenation of `parts` (written from where
    /// they lie, without copying them together first). Not yet durable: call [`Wal::sync`].
    /// Returns its LSN.
    ///
    /// A failed write leaves the log as it was: the next record is written at the same place.
    pub(crate) fn append_parts(&self, parts: &[&[u8]]) -> Result<u64> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if len + 8 > u32::MAX as u64 {
            return Err(StoreError::InvalidParameter(format!(
                "a single write of {len} bytes is larger than the 4 GiB WAL record limit"
            )));
        }
        let record = HEADER as u64 + len;
        let sh = &*self.shared;
        let mut t = sh.tail.lock();
        while let Some((a, b)) = t.zeroing {
            if t.pos + record <= a || t.pos >= b {
                break;
            }
            sh.changed.wait(&mut t);
        }
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
        let path = sh.dir.join(file_name(t.seq));
        let early = sh.fsync && record >= ZERO_AHEAD_MIN_RECORD;
        let mut at = t.pos;
        t.file.write_all_at(&header, at).ctx(&path)?;
        at += HEADER as u64;
        for p in parts {
            if early {
                write_handed_over(&t.file, p, at, WRITEBACK_PIECE, false).ctx(&path)?;
            } else {
                t.file.write_all_at(p, at).ctx(&path)?;
            }
            at += p.len() as u64;
        }
        t.pos = at;
        t.zeroed = t.zeroed.max(at);
        t.last_lsn = lsn;
        if record >= ZERO_AHEAD_MIN_RECORD {
            t.large_records += 1;
            if t.large_records >= 2 {
                t.ahead = t
                    .ahead
                    .max((record * ZERO_AHEAD_RECORDS).min(MAX_ZERO_AHEAD));
            }
        }
        if t.ahead > 0 && t.zeroed < t.pos + t.ahead / 2 {
            drop(t);
            self.start_zeroing();
            sh.changed.notify_all();
        }
        Ok(lsn)
    }

    /// Starts the zeroing thread if it is not running yet.
    fn start_zeroing(&self) {
        let mut z = self.zeroer.lock();
        if z.is_none() {
            let sh = self.shared.clone();
            match std::thread::Builder::new()
                .name("facedb-wal-zero".into())
                .spawn(move || zero_ahead(&sh))
            {
                Ok(h) => *z = Some(h),
                // Without the thread, records are appended to fresh pages as before.
                Err(e) => log::warn!("WAL zeroing thread not started: {e}"),
            }
        }
    }

    /// Makes every record up to `lsn` durable (fsync), sharing the fsync with concurrent
    /// writers (group commit).
    pub(crate) fn sync(&self, lsn: u64) -> Result<()> {
        if !self.shared.fsync || self.durable_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let _g = self.sync_lock.lock();
        if self.durable_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let (file, upto, seq) = {
            let t = self.shared.tail.lock();
            (t.file.clone(), t.last_lsn, t.seq)
        };
        file.sync_data().ctx(self.shared.dir.join(file_name(seq)))?;
        self.durable_lsn.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Starts a new file; later records go there. Returns the new sequence number.
    /// The old file is cut back to its records; with fsync on, it is synced first (its
    /// records stay durable).
    pub(crate) fn rotate(&self) -> Result<u64> {
        let sh = &*self.shared;
        let _g = self.sync_lock.lock();
        let mut t = sh.tail.lock();
        while t.zeroing.is_some() {
            sh.changed.wait(&mut t);
        }
        let path = sh.dir.join(file_name(t.seq));
        let _ = t.cut_zeros().ctx(&path)?;
        // Without fsync (Options::fsync false) nothing waits for the old file's records:
        // syncing its unsynced tail (up to a whole segment of rows) would stall this write.
        if sh.fsync {
            t.file.sync_data().ctx(&path)?;
            self.durable_lsn.fetch_max(t.last_lsn, Ordering::AcqRel);
        }
        let seq = t.seq + 1;
        let (file, pos) = open_tail(&sh.dir, seq)?;
        t.file = Arc::new(file);
        t.seq = seq;
        t.pos = pos;
        t.zeroed = pos;
        drop(t);
        sh.changed.notify_all();
        Ok(seq)
    }

    /// Deletes files older than `seq` (their records are in the manifest's segments).
    pub(crate) fn remove_before(&self, seq: u64) -> Result<()> {
        for s in list(&self.shared.dir)? {
            if s < seq {
                let p = self.shared.dir.join(file_name(s));
                fs::remove_file(&p).ctx(&p)?;
            }
        }
        Ok(())
    }

    /// Tests: drop without cutting the zeros off, as after a crash.
    #[cfg(test)]
    fn drop_as_crash(self) {
        self.keep_zeros.store(true, Ordering::Relaxed);
    }
}

impl Drop for Wal {
    /// Stops the zeroing thread and cuts the file back to its records.
    fn drop(&mut self) {
        let sh = &*self.shared;
        sh.stop.store(true, Ordering::Release);
        sh.changed.notify_all();
        if let Some(h) = self.zeroer.lock().take() {
            let _ = h.join();
        }
        #[cfg(test)]
        if self.keep_zeros.load(Ordering::Relaxed) {
            return;
        }
        let mut t = sh.tail.lock();
        let cut = t.cut_zeros().and_then(|zeros| {
            if zeros && sh.fsync {
                t.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = cut {
            // Harmless: recovery takes the zeros as the end of the log.
            log::warn!(
                "{}: zeros after the last WAL record not cut: {e}",
                sh.dir.display()
            );
        }
    }
}

/// Starts the writeback of `len` bytes of `file` at `off` to the disk
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`); with `wait`, waits first for any writeback of
/// that range already under way, and then for this one to end. A hint for pacing the disk:
/// durability comes only from fsync, and its errors are ignored (fsync reports them).
pub(crate) fn writeback(file: &File, off: u64, len: usize, wait: bool) {
    #[cfg(target_os = "linux")]
    {
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(file);
        // SAFETY: a plain system call on an open descriptor; no memory is passed.
        unsafe {
            libc::sync_file_range(fd, off as libc::off64_t, len as libc::off64_t, flags);
        }
    }
}

/// Bytes of a large WAL record written and handed to the disk at a time.
const WRITEBACK_PIECE: usize = 512 << 10;

/// Writes `buf` at `at` in `piece`-byte pieces, each handed to the disk as soon as it is
/// written ([`writeback`], which does not wait), so the disk writes while the rest is still
/// being copied and the fsync that follows finds little left: a 5 MB WAL record is durable in
/// 2.5 ms instead of 3.2 ms here. With `paced`, the piece before each one is also waited for,
/// so at most two pieces are in flight (RocksDB's `bytes_per_sync`, PostgreSQL's
/// `checkpoint_flush_after`): a large file written this way never queues more than that
/// ahead of another file's fsync. Durability still comes from the caller's fsync alone.
pub(crate) fn write_handed_over(
    file: &File,
    buf: &[u8],
    at: u64,
    piece: usize,
    paced: bool,
) -> std::io::Result<()> {
    let mut off = at;
    let mut previous: Option<(u64, usize)> = None;
    for p in buf.chunks(piece) {
        file.write_all_at(p, off)?;
        writeback(file, off, p.len(), false);
        if let Some((o, n)) = previous.filter(|_| paced) {
            writeback(file, o, n, true);
        }
        previous = Some((off, p.len()));
        off += p.len() as u64;
    }
    Ok(())
}

/// The zeroing thread (at nice +10, beside the writers): keeps `ahead` bytes of zeros after
/// the write position, `ZERO_STEP` at a time, until the log is dropped. A write error stops
/// it (appends then extend the file themselves, and meet the error if it lasts).
fn zero_ahead(sh: &Shared) {
    crate::collection::lower_priority();
    let zeros = vec![0u8; 1 << 20];
    loop {
        let (file, start, end) = {
            let mut t = sh.tail.lock();
            loop {
                if sh.stop.load(Ordering::Acquire) {
                    return;
                }
                let wanted = if t.resting { t.ahead / 2 } else { t.ahead };
                if t.ahead > 0 && t.zeroed < t.pos + wanted {
                    break;
                }
                t.resting = true;
                sh.changed.wait(&mut t);
            }
            t.resting = false;
            let start = t.zeroed.max(t.pos);
            let end = (t.pos + t.ahead).min(start + ZERO_STEP);
            t.zeroing = Some((start, end));
            (t.file.clone(), start, end)
        };
        let mut at = start;
        let mut res = Ok(());
        while at < end && res.is_ok() {
            let n = (end - at).min(zeros.len() as u64) as usize;
            res = file.write_all_at(&zeros[..n], at);
            at += n as u64;
        }
        if res.is_ok() && sh.fsync {
            res = file.sync_data();
        }
        let mut t = sh.tail.lock();
        t.zeroing = None;
        // `rotate` waits for the step to end: the file zeroed is still the tail's.
        match res {
            Ok(()) => t.zeroed = t.zeroed.max(end),
            Err(e) => {
                log::warn!("{}: WAL zeroing stopped: {e}", sh.dir.display());
                t.ahead = 0;
                drop(t);
                sh.changed.notify_all();
                return;
            }
        }
        drop(t);
        sh.changed.notify_all();
    }
}

/// Opens (or creates, with its magic) the file `seq` for writing at its end; returns the
/// file and that end.
fn open_tail(dir: &Path, seq: u64) -> Result<(File, u64)> {
    let path = dir.join(file_name(seq));
    let exists = path.exists();
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .ctx(&path)?;
    let mut len = f.metadata().ctx(&path)?.len();
    if !exists || len == 0 {
        f.write_all_at(MAGIC, 0).ctx(&path)?;
        f.sync_all().ctx(&path)?;
        sync_dir(dir)?;
        len = MAGIC.len() as u64;
    }
    Ok((f, len))
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
        // Zeros written ahead of the records (see `Wal`): the end of the log.
        // (`all_zero` stops at the first non-zero byte: a record's length, in its header.)
        if all_zero(&data[pos..]) {
            return Ok(pos);
        }
        let torn = |what: &str, rec: &mut WalRecovery| {
            // The bytes written, without the zeros written ahead of them.
            let written = data[pos..]
                .iter()
                .rposition(|b| *b != 0)
                .map_or(0, |i| i + 1);
            let zeros = match rest - written {
                0 => String::new(),
                z => format!(", then {z} zero bytes"),
            };
            let msg = format!(
                "{}: {what} at byte {pos} dropped ({written} bytes{zeros})",
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
            // Nothing but zeros after it: the record was being written over the zeros.
            if is_last && all_zero(&data[end..]) {
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

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1.25 MiB (zeroing ahead turns on), a pattern of `i`; odd `i` end in 64 KiB of zeros,
    /// which must not read as the end of the log.
    fn payload(i: u64) -> Vec<u8> {
        let n = (5 << 18) + i as usize * 7;
        let mut p: Vec<u8> = (0..n)
            .map(|j| (j as u64).wrapping_mul(31).wrapping_add(i * 17) as u8 | 1)
            .collect();
        if i % 2 == 1 {
            p[n - (64 << 10)..].fill(0);
        }
        p
    }

    fn open(dir: &Path) -> (Wal, WalRecovery, Vec<(u64, Vec<u8>)>) {
        let mut got = Vec::new();
        let (wal, rec) = Wal::open(dir, 0, 0, true, |_, lsn, p| {
            got.push((lsn, p.to_vec()));
            Ok(())
        })
        .unwrap();
        (wal, rec, got)
    }

    /// Waits until the zeroing thread has written zeros after the records and rests;
    /// returns (end of the records, end of the zeros).
    fn wait_for_zeros(wal: &Wal) -> (u64, u64) {
        for _ in 0..1000 {
            let t = wal.shared.tail.lock();
            if t.resting && t.zeroing.is_none() && t.zeroed >= t.pos + t.ahead / 2 {
                return (t.pos, t.zeroed);
            }
            drop(t);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no zeros written ahead");
    }

    fn file_len(dir: &Path, seq: u64) -> u64 {
        fs::metadata(dir.join(file_name(seq))).unwrap().len()
    }

    fn check(got: &[(u64, Vec<u8>)], n: u64) {
        assert_eq!(got.len() as u64, n);
        for (k, (lsn, p)) in got.iter().enumerate() {
            assert_eq!(*lsn, k as u64 + 1);
            assert!(*p == payload(*lsn), "payload of record {lsn} differs");
        }
    }

    /// Reopens the log: no warning, and records 1..=n replayed with their own bytes.
    fn reopen_clean(dir: &Path, n: u64) -> Wal {
        let (wal, rec, got) = open(dir);
        assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
        check(&got, n);
        wal
    }

    fn write(wal: &Wal, lsns: std::ops::RangeInclusive<u64>) {
        for i in lsns {
            let lsn = wal.append(&payload(i)).unwrap();
            assert_eq!(lsn, i);
            wal.sync(lsn).unwrap();
        }
    }

    #[test]
    fn records_written_over_zeros_replay_after_a_crash_and_a_clean_close_cuts_the_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, rec, got) = open(dir.path());
        assert_eq!((rec.replayed, got.len()), (0, 0));
        write(&wal, 1..=6);
        let (pos, zeroed) = wait_for_zeros(&wal);
        // At least 4 records of 1.25 MiB ahead (8 kept, refilled at 4), then more records
        // written over them.
        assert!(zeroed >= pos + 4 * (5 << 18), "{pos} {zeroed}");
        write(&wal, 7..=12);
        let (pos, zeroed) = wait_for_zeros(&wal);
        assert_eq!(file_len(dir.path(), 0), zeroed);
        wal.drop_as_crash();

        let wal = reopen_clean(dir.path(), 12);
        assert_eq!(file_len(dir.path(), 0), pos, "recovery cuts the zeros");
        write(&wal, 13..=14);
        let (pos, _) = wait_for_zeros(&wal);
        drop(wal);
        assert_eq!(file_len(dir.path(), 0), pos, "a clean close cuts the zeros");
        let _wal = reopen_clean(dir.path(), 14);
    }

    /// What a crash can leave of the last record written over zeros: its start without its
    /// end, or (its first page lost) its end without its header.
    #[test]
    fn a_record_torn_over_zeros_is_dropped_and_damage_before_records_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        write(&wal, 1..=4);
        let (pos4, _) = wait_for_zeros(&wal);
        write(&wal, 5..=5);
        let (pos5, zeroed) = wait_for_zeros(&wal);
        wal.drop_as_crash();
        let path = dir.path().join(file_name(0));
        let clean = fs::read(&path).unwrap();
        assert_eq!(clean.len() as u64, zeroed);

        let mut torn = clean.clone();
        torn[pos5 as usize - 100_000..pos5 as usize].fill(0);
        fs::write(&path, &torn).unwrap();
        let (wal, rec, got) = open(dir.path());
        check(&got, 4);
        assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
        assert!(rec.warnings[0].contains("checksum"), "{:?}", rec.warnings);
        let written = pos5 - pos4 - 100_000;
        assert!(
            rec.warnings[0].contains(&format!("({written} bytes, then ")),
            "{:?}",
            rec.warnings
        );
        drop(wal);
        assert_eq!(file_len(dir.path(), 0), pos4);

        let mut headless = clean.clone();
        headless[pos4 as usize..pos4 as usize + 4096].fill(0);
        fs::write(&path, &headless).unwrap();
        let (wal, rec, got) = open(dir.path());
        check(&got, 4);
        assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
        drop(wal);

        // A flipped byte in record 2, with valid records and zeros after it.
        let mut bad = clean.clone();
        bad[8 + HEADER + 1000] ^= 0x40;
        fs::write(&path, &bad).unwrap();
        let err = Wal::open(dir.path(), 0, 0, true, |_, _, _| Ok(())).err();
        assert!(
            matches!(err, Some(StoreError::Corrupt { ref reason, .. }) if reason.contains("more records")),
            "{err:?}"
        );
    }

    #[test]
    fn one_large_record_leaves_no_zeros_and_a_second_one_starts_them() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        write(&wal, 1..=1);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let pos = wal.shared.tail.lock().pos;
        assert_eq!(
            file_len(dir.path(), 0),
            pos,
            "zeros after a single large record"
        );
        assert!(wal.zeroer.lock().is_none(), "the zeroing thread started");
        write(&wal, 2..=2);
        let (pos, zeroed) = wait_for_zeros(&wal);
        assert!(zeroed >= pos + 4 * (5 << 18), "{pos} {zeroed}");
        drop(wal);
        let _wal = reopen_clean(dir.path(), 2);
    }

    #[test]
    fn rotation_cuts_the_old_file_back_to_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        write(&wal, 1..=3);
        let (pos, zeroed) = wait_for_zeros(&wal);
        assert!(zeroed > pos);
        assert_eq!(wal.rotate().unwrap(), 1);
        assert_eq!(file_len(dir.path(), 0), pos);
        write(&wal, 4..=6);
        let (_, zeroed) = wait_for_zeros(&wal);
        assert_eq!(file_len(dir.path(), 1), zeroed);
        wal.drop_as_crash();
        let _wal = reopen_clean(dir.path(), 6);
    }

    /// Writers on four threads (group commit) while the zeroing thread runs: every record
    /// replays, in LSN order, with its own bytes.
    #[test]
    fn concurrent_appends_beside_the_zeroing_thread_keep_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        let written = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        // The payload is chosen under the tail lock's order: record k gets
                        // payload(k), so replay can check bytes against LSNs.
                        let mut w = written.lock();
                        let next = w.len() as u64 + 1;
                        let lsn = wal.append(&payload(next)).unwrap();
                        w.push(lsn);
                        drop(w);
                        wal.sync(lsn).unwrap();
                    }
                });
            }
        });
        assert_eq!(*written.lock(), (1..=40).collect::<Vec<u64>>());
        wal.drop_as_crash();
        let _wal = reopen_clean(dir.path(), 40);
    }
}
