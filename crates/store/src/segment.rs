//! Segments: a growing segment in memory, and sealed segments in immutable files whose
//! vectors are memory-mapped.
//!
//! Sealed file `segments/<id>.seg` (little-endian):
//!
//! ```text
//! [8]  magic "FDBSEG01"
//! u32  format version (1)
//! u32  header length H
//! [H]  header, JSON: { id, rows, dim, metric, pk, columns: [{name, offset, len, crc}],
//!                      vectors: {offset, len, crc} }
//! u32  CRC-32 of the header
//! ...  sections at the offsets given; the vector section (`rows × dim` f32) starts on a
//!      64-byte boundary so it can be used in place from the mapping
//! ```
//!
//! The header and the key and scalar sections are checked on open; the vector section's
//! CRC is checked by [`Segment::verify`] (reading 512 MB on every open would make reopening
//! slow).

use crate::codec::{Reader, Writer};
use crate::data::{ColumnData, PkColumn, Rows};
use crate::error::{IoContext, Result, StoreError};
use crate::wal::sync_dir;
use facedb_index::{FlatSketch, VectorIndex};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"FDBSEG01";
const VERSION: u32 = 1;

/// Vector storage of a segment.
pub(crate) enum Vectors {
    /// A growing segment's rows (appended to in place).
    Owned(Vec<f32>),
    /// A sealed segment whose file is not written yet: shared with the thread writing it.
    Frozen(Arc<Vec<f32>>),
    /// A sealed segment's vectors, mapped from its file.
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

/// A cheap handle on a sealed segment's vectors that outlives the collection's lock, for
/// background index builds.
#[derive(Clone)]
pub(crate) struct SharedVectors {
    map: Arc<Mmap>,
    offset: usize,
    len: usize,
}

impl SharedVectors {
    pub(crate) fn as_slice(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[self.offset..self.offset + self.len * 4])
    }
}

impl Vectors {
    /// A shareable handle on mapped vectors (`None` for in-memory ones).
    pub(crate) fn shared(&self) -> Option<SharedVectors> {
        match self {
            Vectors::Owned(_) | Vectors::Frozen(_) => None,
            Vectors::Mapped { map, offset, len } => Some(SharedVectors {
                map: map.clone(),
                offset: *offset,
                len: *len,
            }),
        }
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        match self {
            Vectors::Owned(v) => v,
            Vectors::Frozen(v) => v,
            Vectors::Mapped { map, offset, len } => {
                bytemuck::cast_slice(&map[*offset..*offset + len * 4])
            }
        }
    }
}

/// Room at the end of a growing segment's vectors ([`Segment::spare_vectors`]).
pub(crate) struct Spare {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: a `Spare` is the only access to memory past the vectors' length, used by one
// thread at a time (it is moved, not shared).
unsafe impl Send for Spare {}

impl Spare {
    /// Writes `src` (exactly the room's `n` values) into the room.
    pub(crate) fn fill(self, src: &[f32]) {
        assert_eq!(src.len(), self.len, "spare room of another size");
        // SAFETY: the room is `len` values of the vectors' allocation past their length,
        // which no reference covers, and the allocation lives as long as the segment's
        // owner keeps it unchanged (the contract of `spare_vectors`).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr, self.len) };
    }
}

/// Faults in, on a background thread (nice +10), the pages of the `bytes` bytes at `addr`
/// for writing, without changing their contents (`MADV_POPULATE_WRITE`, Linux 5.14): the
/// room a growing segment's next batch will be copied into ([`Segment::room_after`]). A
/// batch's 5 MB copy into fresh pages takes 3.5 ms here, into faulted-in pages 1 ms; faulting
/// them in takes 1.6 ms, done here between two requests: the thread starts 2 ms after the
/// request (the write's reply leaves first) and works in 256 KiB calls (each holds the
/// process's memory-map lock, which a thread mapping memory, e.g. a new thread's stack,
/// waits for).
///
/// Requests are dropped while the thread is busy. The range is only a hint: if its memory
/// was freed or moved meanwhile, the call fails or faults in pages of whatever is mapped
/// there now, unchanged, and either is harmless.
pub(crate) fn fault_in_background(addr: usize, bytes: usize) {
    use std::sync::mpsc::{sync_channel, SyncSender};
    use std::sync::OnceLock;
    /// The worker's queue: one `(addr, bytes)` request at most.
    type Requests = parking_lot::Mutex<SyncSender<(usize, usize)>>;
    static WORKER: OnceLock<Option<Requests>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = sync_channel::<(usize, usize)>(1);
        std::thread::Builder::new()
            .name("facedb-fault-in".into())
            .spawn(move || {
                crate::collection::lower_priority();
                for (addr, bytes) in rx {
                    std::thread::sleep(FAULT_IN_DELAY);
                    let end = addr.saturating_add(bytes);
                    let mut at = addr;
                    while at < end {
                        let next = end.min(at + FAULT_IN_PIECE);
                        populate(at, next - at);
                        at = next;
                    }
                }
            })
            .ok()
            .map(|_| parking_lot::Mutex::new(tx))
    });
    if let Some(tx) = worker {
        let _ = tx.lock().try_send((addr, bytes));
    }
}

/// How long [`fault_in_background`] waits before it starts.
const FAULT_IN_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// Bytes faulted in per call by [`fault_in_background`].
const FAULT_IN_PIECE: usize = 256 << 10;

/// Faults in the pages of `bytes` bytes at `addr` for writing, leaving their contents.
fn populate(addr: usize, bytes: usize) {
    const PAGE: usize = 4096;
    let start = addr & !(PAGE - 1);
    let end = addr.saturating_add(bytes);
    #[cfg(target_os = "linux")]
    // SAFETY: MADV_POPULATE_WRITE faults pages in as a write would, without writing: no
    // memory's contents change, whatever the range holds; an unmapped or read-only range
    // makes the call fail, which is ignored.
    unsafe {
        let _ = libc::madvise(
            start as *mut libc::c_void,
            end - start,
            libc::MADV_POPULATE_WRITE,
        );
    }
}

/// A set of rows: keys, scalar columns (schema order), vectors and a delete bitmap.
pub(crate) struct Segment {
    pub id: u64,
    pub pks: PkColumn,
    pub scalars: Vec<ColumnData>,
    pub vectors: Vectors,
    pub dim: usize,
    /// Bit set = row deleted.
    pub deleted: Vec<u64>,
    pub deleted_count: usize,
    /// Scalar indexes, built on first use (sealed segments only).
    pub indexes: crate::scalar_index::SegmentIndexes,
    /// Vector index of a sealed segment, once built (or loaded from `<id>.idx`).
    pub ann: Option<Arc<dyn VectorIndex>>,
    /// 8-bit sketch of a sealed segment's vectors for exact search without an index
    /// ([`FlatSketch`]), built in the background; memory only.
    pub sketch: Option<Arc<FlatSketch>>,
}

#[derive(Serialize, Deserialize)]
struct Section {
    offset: u64,
    len: u64,
    crc: u32,
}

#[derive(Serialize, Deserialize)]
struct Header {
    id: u64,
    rows: u64,
    dim: u32,
    /// Metric of a built index, "" for none (FLAT scans need none).
    metric: String,
    pk: Section,
    columns: Vec<Section>,
    vectors: Section,
}

impl Segment {
    pub(crate) fn new_growing(
        id: u64,
        pk_empty: PkColumn,
        scalars: Vec<ColumnData>,
        dim: usize,
    ) -> Self {
        Segment {
            id,
            pks: pk_empty,
            scalars,
            vectors: Vectors::Owned(Vec::new()),
            dim,
            deleted: Vec::new(),
            deleted_count: 0,
            indexes: Default::default(),
            ann: None,
            sketch: None,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.pks.len()
    }

    pub(crate) fn live_rows(&self) -> usize {
        self.rows() - self.deleted_count
    }

    pub(crate) fn is_deleted(&self, row: usize) -> bool {
        self.deleted
            .get(row >> 6)
            .is_some_and(|w| (w >> (row & 63)) & 1 == 1)
    }

    pub(crate) fn mark_deleted(&mut self, row: usize) -> bool {
        let words = self.rows().div_ceil(64);
        if self.deleted.len() < words {
            self.deleted.resize(words, 0);
        }
        let w = &mut self.deleted[row >> 6];
        let bit = 1u64 << (row & 63);
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.deleted_count += 1;
        true
    }

    /// Rows not deleted, as an "allowed" bitmap for the index (`None` = all rows).
    pub(crate) fn live_bitmap(&self) -> Option<Vec<u64>> {
        if self.deleted_count == 0 {
            return None;
        }
        let n = self.rows();
        let mut w: Vec<u64> = (0..n.div_ceil(64))
            .map(|i| !self.deleted.get(i).copied().unwrap_or(0))
            .collect();
        if !n.is_multiple_of(64) {
            if let Some(last) = w.last_mut() {
                *last &= (1u64 << (n % 64)) - 1;
            }
        }
        Some(w)
    }

    pub(crate) fn vector(&self, row: usize) -> &[f32] {
        &self.vectors.as_slice()[row * self.dim..(row + 1) * self.dim]
    }

    /// Appends validated rows (growing segments only).
    pub(crate) fn append(&mut self, rows: &Rows) {
        self.append_keys_and_scalars(rows);
        match &mut self.vectors {
            Vectors::Owned(v) => v.extend_from_slice(&rows.vectors),
            Vectors::Frozen(_) | Vectors::Mapped { .. } => {
                unreachable!("append to a sealed segment")
            }
        }
    }

    fn append_keys_and_scalars(&mut self, rows: &Rows) {
        for pk in &rows.pks {
            self.pks.push(pk);
        }
        let n = rows.len();
        for (c, src) in self.scalars.iter_mut().zip(&rows.scalars) {
            c.extend_rows(src, 0..n);
        }
    }

    /// Room for `n` more vectors (`n` values) at the end of a growing segment's vectors,
    /// to be filled outside the collection's state lock with [`Spare::fill`] and made
    /// visible by [`Segment::append_staged`]. Until then the rows are not part of the
    /// segment (its length is unchanged), so searches never see them.
    ///
    /// Room for one more batch of the same size is kept after this one, which
    /// [`fault_in_background`] can fault in before it comes. When the vectors must grow,
    /// they are given room for `up_to` values at once (the size at which the segment is
    /// sealed): address space only, whose pages are faulted in as they are used, and the
    /// vectors are never moved again. Grown by doubling instead, a segment copied its vectors
    /// each time, and the copy at 40 MB took 33 ms of one insert.
    ///
    /// Only the writer (holding the collection's write lock, which every change of the
    /// growing segment takes) may hold a `Spare`, and only until its next change of the
    /// segment.
    pub(crate) fn spare_vectors(&mut self, n: usize, up_to: usize) -> Spare {
        match &mut self.vectors {
            Vectors::Owned(v) => {
                let wanted = v.len().saturating_add(n.saturating_mul(2));
                if v.capacity() < wanted {
                    v.reserve_exact(wanted.max(up_to) - v.len());
                }
                // SAFETY: `len + n <= capacity` after the reserve.
                let ptr = unsafe { v.as_mut_ptr().add(v.len()) };
                Spare { ptr, len: n }
            }
            Vectors::Frozen(_) | Vectors::Mapped { .. } => {
                unreachable!("spare room in a sealed segment")
            }
        }
    }

    /// The address and byte length of the growing segment's room for up to `n` more values
    /// past its vectors (`None` when there is none, or the segment is sealed).
    pub(crate) fn room_after(&self, n: usize) -> Option<(usize, usize)> {
        match &self.vectors {
            Vectors::Owned(v) => {
                let values = n.min(v.capacity() - v.len());
                (values > 0).then(|| (v.as_ptr() as usize + v.len() * 4, values * 4))
            }
            Vectors::Frozen(_) | Vectors::Mapped { .. } => None,
        }
    }

    /// As [`Segment::append`], for rows whose vectors were written by [`Spare::fill`] of a
    /// [`Segment::spare_vectors`] taken since the segment's last change.
    ///
    /// # Safety
    /// The `rows.vectors.len()` values after the segment's vectors must have been filled.
    pub(crate) unsafe fn append_staged(&mut self, rows: &Rows) {
        self.append_keys_and_scalars(rows);
        match &mut self.vectors {
            Vectors::Owned(v) => {
                let n = rows.vectors.len();
                assert!(
                    v.capacity() - v.len() >= n,
                    "staged vectors beyond the spare room"
                );
                // SAFETY: within capacity (asserted); initialised by the caller's contract.
                unsafe { v.set_len(v.len() + n) };
            }
            Vectors::Frozen(_) | Vectors::Mapped { .. } => {
                unreachable!("append to a sealed segment")
            }
        }
    }

    /// Seals a growing segment in memory: its vectors become shareable with the thread that
    /// writes its file ([`Segment::file_head`], [`write_file`]). Searches and deletes keep
    /// working on it meanwhile.
    pub(crate) fn freeze(&mut self) {
        if let Vectors::Owned(v) = &mut self.vectors {
            self.vectors = Vectors::Frozen(Arc::new(std::mem::take(v)));
        }
    }

    /// The frozen vectors (a sealed segment not yet written), shared.
    pub(crate) fn frozen_vectors(&self) -> Option<Arc<Vec<f32>>> {
        match &self.vectors {
            Vectors::Frozen(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Whether the segment's file is written (its vectors are mapped from it).
    pub(crate) fn is_persisted(&self) -> bool {
        matches!(self.vectors, Vectors::Mapped { .. })
    }

    /// Serves the vectors from the segment's written file (same rows, same order).
    pub(crate) fn use_file_vectors(&mut self, file: Segment) {
        self.vectors = file.vectors;
    }

    /// The bytes of the segment's file before its vector section: magic, version, header
    /// (with `vector_crc`, the CRC-32 of the vector bytes), key and scalar sections, and zero
    /// padding up to the 64-byte aligned vector offset.
    pub(crate) fn file_head(&self, vector_crc: u32) -> Result<Vec<u8>> {
        let path = seg_path(Path::new(""), self.id);
        // Sections before the vectors.
        let mut body = Writer::default();
        let mut sections = Vec::new();
        let mut put = |w: &mut Writer, f: &dyn Fn(&mut Writer)| {
            let start = w.buf.len();
            f(w);
            let s = Section {
                offset: start as u64,
                len: (w.buf.len() - start) as u64,
                crc: crc32fast::hash(&w.buf[start..]),
            };
            sections.push(s);
        };
        put(&mut body, &|w| w.column(&self.pks.to_column()));
        for c in &self.scalars {
            put(&mut body, &|w| w.column(c));
        }
        let mut header = Header {
            id: self.id,
            rows: self.rows() as u64,
            dim: self.dim as u32,
            metric: String::new(),
            pk: Section {
                offset: 0,
                len: 0,
                crc: 0,
            },
            columns: Vec::new(),
            vectors: Section {
                offset: 0,
                len: (self.rows() * self.dim * 4) as u64,
                crc: vector_crc,
            },
        };
        // Header length depends on offsets; offsets depend on header length: iterate to a fixpoint.
        let mut hlen = 0usize;
        let json = loop {
            let base = (8 + 4 + 4 + hlen + 4) as u64;
            let mut secs = sections.iter().map(|s| Section {
                offset: s.offset + base,
                len: s.len,
                crc: s.crc,
            });
            header.pk = secs.next().expect("pk section");
            header.columns = secs.collect();
            let vec_off = (base + body.buf.len() as u64).div_ceil(64) * 64;
            header.vectors.offset = vec_off;
            let json = serde_json::to_vec(&header).map_err(|e| StoreError::Corrupt {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            if json.len() == hlen {
                break json;
            }
            hlen = json.len();
        };
        let mut out = Vec::with_capacity(8 + 12 + json.len() + body.buf.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        out.extend_from_slice(&body.buf);
        out.resize(header.vectors.offset as usize, 0);
        Ok(out)
    }

    /// Writes the segment to `dir/<id>.seg` (see [`write_file`]) and returns it reopened
    /// from the file (vectors mapped), with its deletes.
    pub(crate) fn seal(&self, dir: &Path) -> Result<Segment> {
        let vectors = self.vectors.as_slice();
        let head = self.file_head(crc32fast::hash(bytemuck::cast_slice(vectors)))?;
        write_file(dir, self.id, &head, vectors)?;
        let mut s = Segment::open(dir, self.id)?;
        s.deleted = self.deleted.clone();
        s.deleted_count = self.deleted_count;
        Ok(s)
    }

    /// Opens a sealed segment file (no deletes applied: the manifest holds those).
    pub(crate) fn open(dir: &Path, id: u64) -> Result<Segment> {
        let path = seg_path(dir, id);
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        let file = File::open(&path).ctx(&path)?;
        // SAFETY: sealed segment files are immutable once renamed into place; facedb never
        // writes to them again (compaction writes new files).
        let map = unsafe { Mmap::map(&file) }.ctx(&path)?;
        if map.len() < 20 || &map[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let mut r = Reader::new(&map);
        r.take(8).map_err(|e| corrupt(&e))?;
        let version = r.u32().map_err(|e| corrupt(&e))?;
        if version != VERSION {
            return Err(corrupt(&format!("unsupported segment version {version}")));
        }
        let hlen = r.u32().map_err(|e| corrupt(&e))? as usize;
        let json = r.take(hlen).map_err(|e| corrupt(&e))?;
        let crc = r.u32().map_err(|e| corrupt(&e))?;
        if crc32fast::hash(json) != crc {
            return Err(corrupt("header checksum mismatch"));
        }
        let h: Header = serde_json::from_slice(json).map_err(|e| corrupt(&e.to_string()))?;
        let section = |s: &Section| -> Result<&[u8]> {
            let end = s
                .offset
                .checked_add(s.len)
                .filter(|e| *e <= map.len() as u64)
                .ok_or_else(|| corrupt("section out of file"))?;
            let b = &map[s.offset as usize..end as usize];
            Ok(b)
        };
        let checked = |s: &Section| -> Result<ColumnData> {
            let b = section(s)?;
            if crc32fast::hash(b) != s.crc {
                return Err(corrupt("column checksum mismatch"));
            }
            Reader::new(b).column().map_err(|e| corrupt(&e))
        };
        let pks = match checked(&h.pk)? {
            ColumnData::Int64(v) => PkColumn::Int(v),
            ColumnData::VarChar(v) => PkColumn::Str(v),
            _ => return Err(corrupt("bad primary key column")),
        };
        let mut scalars = Vec::new();
        for s in &h.columns {
            scalars.push(checked(s)?);
        }
        let dim = h.dim as usize;
        let vlen = (h.rows as usize)
            .checked_mul(dim)
            .ok_or_else(|| corrupt("size overflow"))?;
        section(&h.vectors)?;
        if h.vectors.len as usize != vlen * 4
            || !h.vectors.offset.is_multiple_of(64)
            || pks.len() != h.rows as usize
        {
            return Err(corrupt("inconsistent sizes"));
        }
        if scalars.iter().any(|c| c.len() != h.rows as usize) {
            return Err(corrupt("column length differs from row count"));
        }
        Ok(Segment {
            id,
            pks,
            scalars,
            vectors: Vectors::Mapped {
                map: Arc::new(map),
                offset: h.vectors.offset as usize,
                len: vlen,
            },
            dim,
            deleted: Vec::new(),
            deleted_count: 0,
            indexes: Default::default(),
            ann: None,
            sketch: None,
        })
    }

    /// Checks the vector section's CRC (reads the whole file).
    pub(crate) fn verify(&self) -> bool {
        match &self.vectors {
            Vectors::Owned(_) | Vectors::Frozen(_) => true,
            Vectors::Mapped { map, .. } => {
                let Ok(hlen) = <[u8; 4]>::try_from(&map[12..16]) else {
                    return false;
                };
                let hlen = u32::from_le_bytes(hlen) as usize;
                let Ok(h) = serde_json::from_slice::<Header>(&map[16..16 + hlen]) else {
                    return false;
                };
                let b =
                    &map[h.vectors.offset as usize..(h.vectors.offset + h.vectors.len) as usize];
                crc32fast::hash(b) == h.vectors.crc
            }
        }
    }
}

/// Writes segment file `dir/<id>.seg` from its head ([`Segment::file_head`]) and vectors:
/// a temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_file(dir: &Path, id: u64, head: &[u8], vectors: &[f32]) -> Result<()> {
    fs::create_dir_all(dir).ctx(dir)?;
    let path = seg_path(dir, id);
    let tmp = dir.join(format!("{id}.seg.tmp"));
    let mut f = File::create(&tmp).ctx(&tmp)?;
    f.write_all(head).ctx(&tmp)?;
    let vector_bytes = bytemuck::cast_slice(vectors);
    crate::wal::write_handed_over(&f, vector_bytes, head.len() as u64, PACE_PIECE, true)
        .ctx(&tmp)?;
    f.sync_all().ctx(&tmp)?;
    drop(f);
    fs::rename(&tmp, &path).ctx(&path)?;
    sync_dir(dir)
}

/// Bytes of a segment file written and handed to the disk at a time, at most two in flight
/// (`wal::write_handed_over`): a 268 MB segment written at once sat in the disk queue ahead
/// of the next inserts' WAL fdatasync (waits of 94-105 ms instead of 1.5 ms).
const PACE_PIECE: usize = 2 << 20;

pub(crate) fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.seg"))
}

/// The vector index file of segment `id`: `segments/<id>.idx` (see `facedb_index::blob`).
pub(crate) fn idx_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.idx"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{PrimaryKey, Rows};

    const PAGE: usize = 4096;

    /// Pages of `bytes` bytes at the page-aligned `addr` that are resident (`mincore`).
    fn resident_pages(addr: usize, bytes: usize) -> usize {
        let pages = bytes.div_ceil(PAGE);
        let mut v = vec![0u8; pages];
        // SAFETY: `v` has one byte per page of the range, as mincore requires.
        let r = unsafe { libc::mincore(addr as *mut libc::c_void, bytes, v.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore failed");
        v.iter().filter(|b| *b & 1 == 1).count()
    }

    /// A fresh anonymous mapping of `bytes` bytes (no page resident yet).
    fn fresh_map(bytes: usize, prot: libc::c_int) -> usize {
        // SAFETY: a new private anonymous mapping; no memory is passed in.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p as usize
    }

    #[test]
    fn a_paced_write_writes_every_piece_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paced");
        let head = b"head of 13 b.";
        let body: Vec<u8> = (0..PACE_PIECE * 2 + 4099)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut f = File::create(&path).unwrap();
        f.write_all(head).unwrap();
        crate::wal::write_handed_over(&f, &body, head.len() as u64, PACE_PIECE, true).unwrap();
        drop(f);
        let got = fs::read(&path).unwrap();
        assert_eq!(got.len(), head.len() + body.len());
        assert!(got[..head.len()] == head[..] && got[head.len()..] == body[..]);
    }

    #[test]
    fn populate_faults_pages_in_without_changing_them_and_ignores_bad_ranges() {
        let values: Vec<f32> = (0..300_001).map(|i| i as f32 * 0.25 - 7.0).collect();
        let before = values.clone();
        populate(values.as_ptr() as usize + 12, values.len() * 4 - 20);
        populate(values.as_ptr() as usize, values.len() * 4);
        assert!(values == before, "populate changed the contents");

        let bytes = 64 * PAGE;
        let fresh = fresh_map(bytes, libc::PROT_READ | libc::PROT_WRITE);
        assert_eq!(resident_pages(fresh, bytes), 0);
        populate(fresh + 3 * PAGE + 100, 10 * PAGE);
        assert_eq!(resident_pages(fresh, bytes), 11, "pages 3..=13 faulted in");

        // Read-only and unmapped ranges make the call fail; nothing else happens.
        let ro = fresh_map(bytes, libc::PROT_READ);
        populate(ro, bytes);
        // SAFETY: both mappings were made above and are not used after this.
        unsafe {
            assert_eq!(libc::munmap(ro as *mut libc::c_void, bytes), 0);
            assert_eq!(libc::munmap(fresh as *mut libc::c_void, bytes), 0);
        }
        populate(fresh, bytes);
        populate(ro, bytes);
    }

    #[test]
    fn the_room_after_a_batch_is_faulted_in_in_the_background() {
        let dim = 4;
        let mut seg = Segment::new_growing(7, PkColumn::Int(Vec::new()), Vec::new(), dim);
        // Large enough for the allocator to map it afresh (no page resident).
        let n = 300_000;
        let rows = Rows {
            pks: (0..n as i64 / dim as i64).map(PrimaryKey::Int).collect(),
            scalars: Vec::new(),
            vectors: (0..n).map(|i| i as f32).collect(),
        };
        let spare = seg.spare_vectors(n, 5 * n);
        spare.fill(&rows.vectors);
        // SAFETY: the spare room was filled with the rows' vectors just above.
        unsafe { seg.append_staged(&rows) };
        let Vectors::Owned(v) = &seg.vectors else {
            panic!("a growing segment owns its vectors")
        };
        assert_eq!(v.len(), n);
        assert_eq!(
            v.capacity(),
            5 * n,
            "room up to the seal size was reserved at once"
        );
        let first_ptr = v.as_ptr();
        let (addr, bytes) = seg.room_after(n).expect("room after the vectors");
        assert_eq!(addr, v.as_ptr() as usize + n * 4);
        assert_eq!(bytes, n * 4);
        assert_eq!(seg.room_after(usize::MAX).unwrap().1, 4 * n * 4);

        // The whole pages of the room: none resident yet, all of them once faulted in.
        let first = addr.div_ceil(PAGE) * PAGE;
        let pages = (addr + bytes - first) / PAGE;
        assert_eq!(resident_pages(first, pages * PAGE), 0);
        fault_in_background(addr, bytes);
        let mut resident = 0;
        for _ in 0..500 {
            resident = resident_pages(first, pages * PAGE);
            if resident == pages {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(resident, pages);
        assert!(
            seg.vectors.as_slice() == &rows.vectors[..],
            "the vectors are unchanged"
        );

        // Three more batches fit without moving the vectors; a fifth one beyond the
        // reserved size grows them, keeping room for one more.
        for k in 1..=4 {
            let _room = seg.spare_vectors(n, 5 * n);
            let Vectors::Owned(v) = &mut seg.vectors else {
                unreachable!()
            };
            if k < 4 {
                assert_eq!(v.as_ptr(), first_ptr, "batch {k} moved the vectors");
            }
            v.extend_from_slice(&rows.vectors);
        }
        let Vectors::Owned(v) = &seg.vectors else {
            unreachable!()
        };
        assert_eq!(v.len(), 5 * n);
        assert!(v.capacity() >= 6 * n);

        seg.freeze();
        assert_eq!(seg.room_after(n), None, "a sealed segment has no room");
    }
}
