//! Little-endian binary encoding of columns and rows, shared by the WAL and segment files.

use crate::data::{ColumnData, PrimaryKey, Rows};

/// Append-only byte writer.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
    pub fn raw<T: bytemuck::Pod>(&mut self, v: &[T]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(bytemuck::cast_slice(v));
    }

    pub fn column(&mut self, c: &ColumnData) {
        match c {
            ColumnData::Bool(v) => {
                self.u8(0);
                self.u64(v.len() as u64);
                self.buf.extend(v.iter().map(|b| *b as u8));
            }
            ColumnData::Int8(v) => {
                self.u8(1);
                self.raw(v);
            }
            ColumnData::Int16(v) => {
                self.u8(2);
                self.raw(v);
            }
            ColumnData::Int32(v) => {
                self.u8(3);
                self.raw(v);
            }
            ColumnData::Int64(v) => {
                self.u8(4);
                self.raw(v);
            }
            ColumnData::Float(v) => {
                self.u8(5);
                self.raw(v);
            }
            ColumnData::Double(v) => {
                self.u8(6);
                self.raw(v);
            }
            ColumnData::VarChar(v) => {
                self.u8(7);
                self.u64(v.len() as u64);
                for s in v {
                    self.bytes(s.as_bytes());
                }
            }
            ColumnData::Json(v) => {
                self.u8(8);
                self.u64(v.len() as u64);
                for s in v {
                    self.bytes(s);
                }
            }
            ColumnData::FloatVector { dim, data } => {
                self.u8(9);
                self.u32(*dim as u32);
                self.raw(data);
            }
        }
    }

    pub fn pks(&mut self, pks: &[PrimaryKey]) {
        self.u64(pks.len() as u64);
        let all_int = pks.iter().all(|p| matches!(p, PrimaryKey::Int(_)));
        self.u8(if all_int { 0 } else { 1 });
        for p in pks {
            match p {
                PrimaryKey::Int(v) => self.buf.extend_from_slice(&v.to_le_bytes()),
                PrimaryKey::Str(s) => self.bytes(s.as_bytes()),
            }
        }
    }

    /// Everything of [`Writer::rows`] but the vector bytes, which follow it directly (the WAL
    /// writes them from the batch itself instead of copying them here).
    pub fn rows_head(&mut self, r: &Rows) {
        self.pks(&r.pks);
        self.u32(r.scalars.len() as u32);
        for c in &r.scalars {
            self.column(c);
        }
        self.u64(r.vectors.len() as u64);
    }

    #[cfg(test)]
    pub fn rows(&mut self, r: &Rows) {
        self.rows_head(r);
        self.buf.extend_from_slice(bytemuck::cast_slice(&r.vectors));
    }
}

/// Cursor over bytes; every read is bounds-checked and fails with a message.
pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("truncated record")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "bad u32")?,
        ))
    }
    pub fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "bad u64")?,
        ))
    }
    pub fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> R<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }
    pub fn raw<T: bytemuck::Pod>(&mut self) -> R<Vec<T>> {
        let n = self.u64()? as usize;
        let size = n
            .checked_mul(std::mem::size_of::<T>())
            .ok_or("length overflow")?;
        let b = self.take(size)?;
        let mut out = vec![T::zeroed(); n];
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(b);
        Ok(out)
    }
    fn count(&mut self) -> R<usize> {
        let n = self.u64()? as usize;
        if n > self.buf.len() - self.pos {
            return Err("count larger than record".into());
        }
        Ok(n)
    }

    pub fn column(&mut self) -> R<ColumnData> {
        Ok(match self.u8()? {
            0 => {
                let n = self.count()?;
                ColumnData::Bool(self.take(n)?.iter().map(|b| *b != 0).collect())
            }
            1 => ColumnData::Int8(self.raw()?),
            2 => ColumnData::Int16(self.raw()?),
            3 => ColumnData::Int32(self.raw()?),
            4 => ColumnData::Int64(self.raw()?),
            5 => ColumnData::Float(self.raw()?),
            6 => ColumnData::Double(self.raw()?),
            7 => {
                let n = self.count()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string()?);
                }
                ColumnData::VarChar(v)
            }
            8 => {
                let n = self.count()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.bytes()?.to_vec());
                }
                ColumnData::Json(v)
            }
            9 => {
                let dim = self.u32()? as usize;
                ColumnData::FloatVector {
                    dim,
                    data: self.raw()?,
                }
            }
            t => return Err(format!("unknown column tag {t}")),
        })
    }

    pub fn pks(&mut self) -> R<Vec<PrimaryKey>> {
        let n = self.count()?;
        let kind = self.u8()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(match kind {
                0 => PrimaryKey::Int(i64::from_le_bytes(
                    self.take(8)?.try_into().map_err(|_| "bad pk")?,
                )),
                _ => PrimaryKey::Str(self.string()?),
            });
        }
        Ok(v)
    }

    pub fn rows(&mut self) -> R<Rows> {
        let pks = self.pks()?;
        let ns = self.u32()? as usize;
        let mut scalars = Vec::with_capacity(ns.min(64));
        for _ in 0..ns {
            scalars.push(self.column()?);
        }
        let vectors = self.raw()?;
        Ok(Rows {
            pks,
            scalars,
            vectors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_truncation_is_an_error() {
        let rows = Rows {
            pks: vec![PrimaryKey::Str("a".into()), PrimaryKey::Str("bé".into())],
            scalars: vec![
                ColumnData::Bool(vec![true, false]),
                ColumnData::Int8(vec![-1, 2]),
                ColumnData::Int16(vec![300, -300]),
                ColumnData::Int32(vec![1 << 20, 5]),
                ColumnData::Int64(vec![i64::MIN, i64::MAX]),
                ColumnData::Float(vec![1.5, -0.0]),
                ColumnData::Double(vec![1e300, 2.0]),
                ColumnData::VarChar(vec!["x".into(), "".into()]),
                ColumnData::Json(vec![b"{}".to_vec(), b"[1]".to_vec()]),
            ],
            vectors: vec![1.0, 2.0, 3.0, 4.0],
        };
        let mut w = Writer::default();
        w.rows(&rows);
        let back = Reader::new(&w.buf).rows().unwrap();
        assert_eq!(back, rows);
        for cut in [0, 1, 9, w.buf.len() / 2, w.buf.len() - 1] {
            assert!(Reader::new(&w.buf[..cut]).rows().is_err(), "cut at {cut}");
        }
    }
}
