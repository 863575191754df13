//! A self-describing byte container for index files, readable in place.
//!
//! An index serialises itself into named sections with [`BlobWriter`]; the store writes the
//! bytes to a file next to the segment, memory-maps it on open and hands the mapping back
//! as a [`Blob`]. [`BlobReader`] then gives typed slices ([`Slab`]) that point into the
//! mapping without copying: a 1M-row graph opens in the time it takes to check its CRCs.
//!
//! Layout (little-endian):
//!
//! ```text
//! [8]  magic "FDBIDX01"
//! u32  format version (1)
//! u32  header length H
//! [H]  header: UTF-8 JSON {"kind": "...", "meta": {name: u64 or f64 ...},
//!                          "sections": [{"name", "offset", "len", "crc"}]}
//! u32  CRC-32 of the header
//! ...  sections, each starting on a 64-byte boundary
//! ```

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use crate::ann::IndexError;

const MAGIC: &[u8; 8] = b"FDBIDX01";
const VERSION: u32 = 1;
const ALIGN: usize = 64;

/// Bytes an index lives in: an owned buffer or a memory map (anything that derefs to bytes).
pub type Blob = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Plain-old-data element types a [`Slab`] may hold.
pub trait Pod: bytemuck::Pod + Send + Sync + 'static {}
impl<T: bytemuck::Pod + Send + Sync + 'static> Pod for T {}

/// A read-only array of `T`: owned, or a window into a [`Blob`] (no copy).
#[derive(Clone)]
pub enum Slab<T: Pod> {
    /// Built in memory.
    Owned(Arc<Vec<T>>),
    /// `len` elements at byte `offset` of a blob (aligned for `T`, checked on creation).
    Shared {
        /// The backing bytes.
        blob: Blob,
        /// Byte offset of the first element.
        offset: usize,
        /// Number of elements.
        len: usize,
    },
}

impl<T: Pod> Slab<T> {
    /// An owned slab.
    pub fn owned(v: Vec<T>) -> Self {
        Slab::Owned(Arc::new(v))
    }
}

impl<T: Pod> Deref for Slab<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Slab::Owned(v) => v,
            Slab::Shared { blob, offset, len } => {
                let bytes = &(**blob).as_ref()[*offset..*offset + *len * std::mem::size_of::<T>()];
                bytemuck::cast_slice(bytes)
            }
        }
    }
}

impl<T: Pod> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slab[{}]", self.len())
    }
}

/// Collects named sections and small numeric metadata, then lays them out as one blob.
#[derive(Default)]
pub struct BlobWriter {
    kind: String,
    meta: BTreeMap<String, f64>,
    sections: Vec<(String, Vec<u8>)>,
}

impl BlobWriter {
    /// A writer for an index of the given kind (`"HNSW"`, `"IVF_FLAT"`, ...).
    pub fn new(kind: &str) -> Self {
        BlobWriter {
            kind: kind.to_string(),
            ..Default::default()
        }
    }

    /// Records a number (integers up to 2^53 are exact).
    pub fn meta(&mut self, name: &str, v: f64) -> &mut Self {
        self.meta.insert(name.to_string(), v);
        self
    }

    /// Adds a section holding `data` as raw little-endian elements.
    pub fn section<T: Pod>(&mut self, name: &str, data: &[T]) -> &mut Self {
        self.sections
            .push((name.to_string(), bytemuck::cast_slice(data).to_vec()));
        self
    }

    /// The serialised blob.
    pub fn finish(&self) -> Vec<u8> {
        // Offsets depend on the header length, which depends on the offsets' digits:
        // lay out with a header size guess and retry until it is stable.
        let mut guess = 256usize;
        loop {
            let mut off = (8 + 4 + 4 + guess + 4).div_ceil(ALIGN) * ALIGN;
            let mut secs = Vec::new();
            for (name, bytes) in &self.sections {
                secs.push(serde_json::json!({
                    "name": name,
                    "offset": off,
                    "len": bytes.len(),
                    "crc": crc32fast::hash(bytes),
                }));
                off = (off + bytes.len()).div_ceil(ALIGN) * ALIGN;
            }
            let header = serde_json::json!({
                "kind": self.kind,
                "meta": self.meta,
                "sections": secs,
            });
            let mut h = serde_json::to_vec(&header).expect("json");
            if h.len() > guess {
                guess = h.len().next_power_of_two();
                continue;
            }
            h.resize(guess, b' ');
            let mut out = Vec::with_capacity(off);
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&VERSION.to_le_bytes());
            out.extend_from_slice(&(h.len() as u32).to_le_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(&crc32fast::hash(&h).to_le_bytes());
            for (_, bytes) in &self.sections {
                out.resize(out.len().div_ceil(ALIGN) * ALIGN, 0);
                out.extend_from_slice(bytes);
            }
            return out;
        }
    }
}

/// Bytes stored in 64-byte-aligned blocks.
struct Aligned {
    blocks: Vec<[u64; 8]>,
    len: usize,
}

impl Aligned {
    fn copy_of(bytes: &[u8]) -> Aligned {
        let mut blocks = vec![[0u64; 8]; bytes.len().div_ceil(ALIGN)];
        bytemuck::cast_slice_mut::<[u64; 8], u8>(&mut blocks)[..bytes.len()].copy_from_slice(bytes);
        Aligned {
            blocks,
            len: bytes.len(),
        }
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice::<[u64; 8], u8>(&self.blocks)[..self.len]
    }
}

#[derive(serde::Deserialize)]
struct SectionEntry {
    name: String,
    offset: usize,
    len: usize,
    crc: u32,
}

#[derive(serde::Deserialize)]
struct Header {
    kind: String,
    meta: BTreeMap<String, f64>,
    sections: Vec<SectionEntry>,
}

/// Reads a blob written by [`BlobWriter`]; every CRC is checked on [`BlobReader::open`].
pub struct BlobReader {
    blob: Blob,
    header: Header,
}

impl BlobReader {
    /// Parses the header and checks the CRC of the header and of every section.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] for a wrong magic or version, a truncated blob, a section out
    /// of bounds or a CRC mismatch.
    pub fn open(blob: Blob) -> Result<BlobReader, IndexError> {
        // Sections are 64-byte aligned relative to the blob's start; a blob whose start is
        // not (an arbitrary `Vec<u8>`) is copied once into an aligned buffer, so typed
        // slices never see a misaligned address. Memory maps are page aligned.
        let blob = if !((*blob).as_ref().as_ptr() as usize).is_multiple_of(ALIGN) {
            Arc::new(Aligned::copy_of((*blob).as_ref())) as Blob
        } else {
            blob
        };
        let bytes = (*blob).as_ref();
        let bad = |why: &str| IndexError::Corrupt(why.to_string());
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("not a facedb index file (bad magic)"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version != VERSION {
            return Err(bad(&format!("unsupported index format version {version}")));
        }
        let hlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        if bytes.len() < 16 + hlen + 4 {
            return Err(bad("truncated header"));
        }
        let h = &bytes[16..16 + hlen];
        let crc = u32::from_le_bytes(bytes[16 + hlen..20 + hlen].try_into().unwrap());
        if crc32fast::hash(h) != crc {
            return Err(bad("header CRC mismatch"));
        }
        let header: Header = serde_json::from_slice(h).map_err(|e| bad(&format!("header: {e}")))?;
        for s in &header.sections {
            let end = s
                .offset
                .checked_add(s.len)
                .ok_or_else(|| bad("section size"))?;
            if end > bytes.len() || s.offset % ALIGN != 0 {
                return Err(bad(&format!("section {} out of bounds", s.name)));
            }
            if crc32fast::hash(&bytes[s.offset..end]) != s.crc {
                return Err(bad(&format!("section {} CRC mismatch", s.name)));
            }
        }
        Ok(BlobReader { blob, header })
    }

    /// The index kind recorded by the writer.
    pub fn kind(&self) -> &str {
        &self.header.kind
    }

    /// A metadata number.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] when absent.
    pub fn meta(&self, name: &str) -> Result<f64, IndexError> {
        self.header
            .meta
            .get(name)
            .copied()
            .ok_or_else(|| IndexError::Corrupt(format!("missing metadata {name}")))
    }

    /// A metadata number as `usize`.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] when absent or not a non-negative integer.
    pub fn meta_usize(&self, name: &str) -> Result<usize, IndexError> {
        let v = self.meta(name)?;
        if v < 0.0 || v.fract() != 0.0 {
            return Err(IndexError::Corrupt(format!("metadata {name} = {v}")));
        }
        Ok(v as usize)
    }

    /// True when the blob has a section called `name` (sections added in later versions
    /// of a format are optional).
    pub fn has_section(&self, name: &str) -> bool {
        self.header.sections.iter().any(|s| s.name == name)
    }

    /// A section as a slab of `T`, in place.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] when absent or its length is not a multiple of `T`'s size.
    pub fn section<T: Pod>(&self, name: &str) -> Result<Slab<T>, IndexError> {
        let s = self
            .header
            .sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| IndexError::Corrupt(format!("missing section {name}")))?;
        let size = std::mem::size_of::<T>();
        if s.len % size != 0 {
            return Err(IndexError::Corrupt(format!("section {name} size")));
        }
        Ok(Slab::Shared {
            blob: self.blob.clone(),
            offset: s.offset,
            len: s.len / size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let mut w = BlobWriter::new("TEST");
        w.meta("n", 3.0).meta("x", 0.5);
        w.section("a", &[1.0f32, 2.0, 3.0])
            .section("b", &[7u32; 100]);
        let bytes = w.finish();
        let r = BlobReader::open(Arc::new(bytes.clone())).unwrap();
        assert_eq!(r.kind(), "TEST");
        assert_eq!(r.meta_usize("n").unwrap(), 3);
        assert_eq!(r.meta("x").unwrap(), 0.5);
        assert_eq!(&*r.section::<f32>("a").unwrap(), &[1.0, 2.0, 3.0]);
        assert_eq!(r.section::<u32>("b").unwrap().len(), 100);
        assert!(r.section::<u32>("zz").is_err());
        // Flip one byte of the last section: its CRC catches it.
        let mut bad = bytes.clone();
        let l = bad.len();
        bad[l - 1] ^= 1;
        assert!(matches!(
            BlobReader::open(Arc::new(bad)),
            Err(IndexError::Corrupt(_))
        ));
        assert!(BlobReader::open(Arc::new(bytes[..20].to_vec())).is_err());
    }

    /// A blob starting at an odd address is copied to an aligned buffer, not a panic.
    #[test]
    fn misaligned_blob_is_read() {
        let mut w = BlobWriter::new("TEST");
        w.section("a", &[1.5f32, 2.5, 3.5]).section("b", &[9u64; 3]);
        let bytes = w.finish();
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        struct Window(Vec<u8>);
        impl AsRef<[u8]> for Window {
            fn as_ref(&self) -> &[u8] {
                &self.0[1..]
            }
        }
        let r = BlobReader::open(Arc::new(Window(shifted))).unwrap();
        assert_eq!(&*r.section::<f32>("a").unwrap(), &[1.5, 2.5, 3.5]);
        assert_eq!(&*r.section::<u64>("b").unwrap(), &[9, 9, 9]);
    }
}
