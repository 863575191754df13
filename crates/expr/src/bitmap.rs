//! A fixed-length row bitmap.

use std::ops::{BitAnd, BitOr, Not};

/// A bitmap over `len` rows: bit `i` set means row `i` matches.
///
/// Stored as `ceil(len / 64)` little-endian `u64` words: row `i` is bit `i % 64` of word
/// `i / 64`. Bits past `len` in the last word are always zero, so [`Bitmap::count_ones`] and
/// word-wise comparisons are exact.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitmap")
            .field("len", &self.len)
            .field("ones", &self.iter_ones().take(64).collect::<Vec<_>>())
            .finish()
    }
}

fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

impl Bitmap {
    /// `len` rows, none set.
    pub fn zeros(len: usize) -> Bitmap {
        Bitmap {
            words: vec![0; words_for(len)],
            len,
        }
    }

    /// `len` rows, all set.
    pub fn ones(len: usize) -> Bitmap {
        let mut b = Bitmap {
            words: vec![u64::MAX; words_for(len)],
            len,
        };
        b.clear_tail();
        b
    }

    /// Builds a bitmap from words; bits past `len` are cleared.
    ///
    /// # Panics
    /// If `words.len() != ceil(len / 64)` (a caller bug, not user input).
    pub fn from_words(words: Vec<u64>, len: usize) -> Bitmap {
        assert_eq!(
            words.len(),
            words_for(len),
            "word count must be ceil(len / 64)"
        );
        let mut b = Bitmap { words, len };
        b.clear_tail();
        b
    }

    /// `len` rows with the rows yielded by `rows` set; rows `>= len` are ignored.
    pub fn from_rows(len: usize, rows: impl IntoIterator<Item = usize>) -> Bitmap {
        let mut b = Bitmap::zeros(len);
        for r in rows {
            if r < len {
                b.set(r, true);
            }
        }
        b
    }

    /// Builds a bitmap of `len` rows from a per-row predicate, 64 rows per word.
    pub fn from_fn(len: usize, mut f: impl FnMut(usize) -> bool) -> Bitmap {
        let mut words = vec![0u64; words_for(len)];
        for (w, word) in words.iter_mut().enumerate() {
            let base = w * 64;
            let n = (len - base).min(64);
            let mut acc = 0u64;
            for i in 0..n {
                acc |= u64::from(f(base + i)) << i;
            }
            *word = acc;
        }
        Bitmap { words, len }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the bitmap has no rows (not: no row set; see [`Bitmap::none`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `true` when no row is set.
    pub fn none(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// `true` when every row is set.
    pub fn all(&self) -> bool {
        self.count_ones() == self.len
    }

    /// The words, `ceil(len / 64)` of them.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Whether row `i` is set (`false` past the end).
    pub fn get(&self, i: usize) -> bool {
        i < self.len && (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Sets or clears row `i`.
    ///
    /// # Panics
    /// If `i >= len` (a caller bug).
    pub fn set(&mut self, i: usize, value: bool) {
        assert!(i < self.len, "row {i} out of range {}", self.len);
        let bit = 1u64 << (i % 64);
        if value {
            self.words[i / 64] |= bit;
        } else {
            self.words[i / 64] &= !bit;
        }
    }

    /// Number of set rows.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The set rows in increasing order.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut rest = w;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let t = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(wi * 64 + t)
            })
        })
    }

    /// `self &= other`.
    ///
    /// # Panics
    /// If the lengths differ (a caller bug).
    pub fn and_assign(&mut self, other: &Bitmap) {
        assert_eq!(self.len, other.len, "bitmap lengths differ");
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// `self |= other`.
    ///
    /// # Panics
    /// If the lengths differ (a caller bug).
    pub fn or_assign(&mut self, other: &Bitmap) {
        assert_eq!(self.len, other.len, "bitmap lengths differ");
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// `self &= !other` (rows set here and not in `other`).
    ///
    /// # Panics
    /// If the lengths differ (a caller bug).
    pub fn and_not_assign(&mut self, other: &Bitmap) {
        assert_eq!(self.len, other.len, "bitmap lengths differ");
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// Flips every row in place.
    pub fn negate(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.clear_tail();
    }

    /// Intersection.
    ///
    /// # Panics
    /// If the lengths differ (a caller bug).
    pub fn and(&self, other: &Bitmap) -> Bitmap {
        let mut out = self.clone();
        out.and_assign(other);
        out
    }

    /// Union.
    ///
    /// # Panics
    /// If the lengths differ (a caller bug).
    pub fn or(&self, other: &Bitmap) -> Bitmap {
        let mut out = self.clone();
        out.or_assign(other);
        out
    }

    /// Complement.
    pub fn not(&self) -> Bitmap {
        let mut out = self.clone();
        out.negate();
        out
    }

    fn clear_tail(&mut self) {
        let rem = self.len % 64;
        if rem != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }
}

impl BitAnd for &Bitmap {
    type Output = Bitmap;
    fn bitand(self, rhs: &Bitmap) -> Bitmap {
        Bitmap::and(self, rhs)
    }
}

impl BitOr for &Bitmap {
    type Output = Bitmap;
    fn bitor(self, rhs: &Bitmap) -> Bitmap {
        Bitmap::or(self, rhs)
    }
}

impl Not for &Bitmap {
    type Output = Bitmap;
    fn not(self) -> Bitmap {
        Bitmap::not(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut b = Bitmap::zeros(130);
        assert_eq!(b.words().len(), 3);
        b.set(0, true);
        b.set(64, true);
        b.set(129, true);
        assert_eq!(b.count_ones(), 3);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert!(b.get(129) && !b.get(128) && !b.get(500));
        let n = !&b;
        assert_eq!(n.count_ones(), 127);
        assert_eq!(n.words()[2] >> 2, 0, "tail bits stay clear");
        assert_eq!((&b & &n).count_ones(), 0);
        assert_eq!((&b | &n).count_ones(), 130);
        assert!((&b | &n).all());
        let mut c = Bitmap::ones(130);
        c.and_not_assign(&b);
        assert_eq!(c, n);
        assert_eq!(Bitmap::ones(64).count_ones(), 64);
        assert_eq!(Bitmap::ones(0).count_ones(), 0);
        assert!(Bitmap::zeros(0).is_empty());
        assert_eq!(
            Bitmap::from_rows(10, [1, 3, 99])
                .iter_ones()
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(Bitmap::from_fn(70, |i| i % 7 == 0).count_ones(), 10);
        let w = Bitmap::from_words(vec![u64::MAX], 3);
        assert_eq!(w.count_ones(), 3);
    }
}
