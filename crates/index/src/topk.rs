//! Bounded top-k selection: keeps the `k` best candidates seen so far.
//!
//! Candidates are ranked by a *key* where smaller is better (squared L2 as it is, inner
//! product and cosine negated, see [`crate::Metric::key`]); equal keys are ordered by a
//! caller-given tie-break on row numbers (the store breaks ties by primary key, as results
//! are specified "best first, ties broken by primary key").

use std::cmp::Ordering;

/// Orders two rows of one segment when their keys are equal (`Less` = `a` ranks first).
pub type TieBreak<'a> = &'a (dyn Fn(u32, u32) -> Ordering + Sync);

/// Row order: the default tie-break.
pub fn by_row(a: u32, b: u32) -> Ordering {
    a.cmp(&b)
}

/// One candidate: its key (smaller is better) and its row in the scanned block of vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Ranking key: squared L2, or minus the similarity for IP and COSINE.
    pub key: f32,
    /// Row number within the searched vectors.
    pub row: u32,
}

/// A bounded max-heap on (key, tie-break): the root is the worst kept candidate.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: Vec<Candidate>,
}

impl TopK {
    /// An empty selection keeping at most `k` candidates.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k.min(4096)),
        }
    }

    /// Capacity `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of kept candidates.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Keys strictly above this can never enter; a key equal to it may (tie-break decides).
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap[0].key
        }
    }

    #[inline(always)]
    fn worse(a: &Candidate, b: &Candidate, tb: TieBreak<'_>) -> bool {
        // true when a ranks after b
        match a.key.partial_cmp(&b.key) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Less) => false,
            _ => tb(a.row, b.row) == Ordering::Greater,
        }
    }

    /// Offers a candidate; keeps it if it ranks among the best `k`.
    #[inline]
    pub fn push(&mut self, key: f32, row: u32, tb: TieBreak<'_>) {
        if self.k == 0 {
            return;
        }
        let c = Candidate { key, row };
        if self.heap.len() < self.k {
            self.heap.push(c);
            self.sift_up(self.heap.len() - 1, tb);
        } else if Self::worse(&self.heap[0], &c, tb) {
            self.heap[0] = c;
            self.sift_down(0, tb);
        }
    }

    fn sift_up(&mut self, mut i: usize, tb: TieBreak<'_>) {
        while i > 0 {
            let p = (i - 1) / 2;
            if Self::worse(&self.heap[i], &self.heap[p], tb) {
                self.heap.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize, tb: TieBreak<'_>) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let mut m = l;
            if r < n && Self::worse(&self.heap[r], &self.heap[l], tb) {
                m = r;
            }
            if Self::worse(&self.heap[m], &self.heap[i], tb) {
                self.heap.swap(i, m);
                i = m;
            } else {
                break;
            }
        }
    }

    /// Moves every candidate of `other` into `self`.
    pub fn merge(&mut self, other: TopK, tb: TieBreak<'_>) {
        for c in other.heap {
            self.push(c.key, c.row, tb);
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self, tb: TieBreak<'_>) -> Vec<Candidate> {
        let mut v = self.heap;
        v.sort_by(|a, b| {
            a.key
                .partial_cmp(&b.key)
                .unwrap_or(Ordering::Equal)
                .then_with(|| tb(a.row, b.row))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_k_smallest_with_row_tiebreak() {
        let mut t = TopK::new(3);
        for (k, r) in [
            (5.0, 0),
            (1.0, 1),
            (3.0, 2),
            (1.0, 3),
            (0.5, 4),
            (3.0, 5),
            (1.0, 0),
        ] {
            t.push(k, r, &by_row);
        }
        let v: Vec<(f32, u32)> = t
            .into_sorted(&by_row)
            .iter()
            .map(|c| (c.key, c.row))
            .collect();
        assert_eq!(v, vec![(0.5, 4), (1.0, 0), (1.0, 1)]);
    }

    #[test]
    fn zero_k_keeps_nothing() {
        let mut t = TopK::new(0);
        t.push(1.0, 1, &by_row);
        assert!(t.is_empty());
    }
}
