//! `like` patterns, compiled once.

use memchr::memmem;

/// How a compiled [`LikePattern`] matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LikeKind {
    /// No wildcards: the string equals the text.
    Exact(String),
    /// `text%`: the string starts with the text.
    Prefix(String),
    /// `%text`: the string ends with the text.
    Suffix(String),
    /// `%text%`: the string contains the text.
    Contains(String),
    /// Only `%`s: every string matches.
    Any,
    /// Anything else (several `%`-separated parts, or `_`).
    General,
}

/// One element of a general pattern.
#[derive(Debug, Clone)]
enum Piece {
    /// Literal bytes (a whole number of UTF-8 characters).
    Lit(Vec<u8>),
    /// `_`: exactly one character.
    One,
}

/// A `like` pattern: `%` matches any run of characters (also none), `_` exactly one
/// character; `\%`, `\_` and `\\` match a literal `%`, `_` and `\`.
///
/// The pattern is analysed once; prefix, suffix, infix (a precompiled substring finder) and
/// exact patterns have fast paths, everything else a backtracking-free segment matcher
/// (each `%`-separated segment has a fixed length in characters, so the leftmost match of
/// each segment is the right one).
///
/// Source: Milvus "Filtering: Basic Operators / LIKE"; Milvus 2.3 itself only treats `%`
/// as a wildcard on its prefix fast path and `_` as one on its regex path; facedb treats
/// `_` as the SQL single-character wildcard everywhere.
#[derive(Debug, Clone)]
pub struct LikePattern {
    source: String,
    kind: LikeKind,
    finder: Option<Box<memmem::Finder<'static>>>,
    /// Segments between `%`s (general kind only).
    segments: Vec<Vec<Piece>>,
}

impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl LikePattern {
    /// Compiles a pattern (already unescaped as a string literal).
    pub fn new(pattern: &str) -> LikePattern {
        // Split into segments separated by unescaped `%`.
        let mut segments: Vec<Vec<Piece>> = vec![Vec::new()];
        let mut chars = pattern.chars().peekable();
        let push_lit = |segs: &mut Vec<Vec<Piece>>, c: char| {
            let seg = segs.last_mut().expect("at least one segment");
            let mut buf = [0u8; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            if let Some(Piece::Lit(v)) = seg.last_mut() {
                v.extend_from_slice(bytes);
            } else {
                seg.push(Piece::Lit(bytes.to_vec()));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('%' | '_' | '\\')) => {
                        chars.next();
                        push_lit(&mut segments, n);
                    }
                    _ => push_lit(&mut segments, '\\'),
                },
                '%' => segments.push(Vec::new()),
                '_' => segments.last_mut().expect("segment").push(Piece::One),
                _ => push_lit(&mut segments, c),
            }
        }
        let has_one = segments.iter().flatten().any(|p| matches!(p, Piece::One));
        let lit = |seg: &Vec<Piece>| -> String {
            seg.iter()
                .map(|p| match p {
                    Piece::Lit(v) => String::from_utf8_lossy(v).into_owned(),
                    Piece::One => String::new(),
                })
                .collect()
        };
        let n = segments.len();
        let kind = if has_one {
            LikeKind::General
        } else if n == 1 {
            LikeKind::Exact(lit(&segments[0]))
        } else if segments.iter().all(Vec::is_empty) {
            LikeKind::Any
        } else if segments[1..].iter().all(Vec::is_empty) {
            LikeKind::Prefix(lit(&segments[0]))
        } else if segments[..n - 1].iter().all(Vec::is_empty) {
            LikeKind::Suffix(lit(&segments[n - 1]))
        } else if segments[0].is_empty()
            && segments[n - 1].is_empty()
            && segments[1..n - 1].iter().filter(|s| !s.is_empty()).count() == 1
        {
            LikeKind::Contains(
                segments[1..n - 1]
                    .iter()
                    .find(|s| !s.is_empty())
                    .map(lit)
                    .unwrap_or_default(),
            )
        } else {
            LikeKind::General
        };
        let finder = match &kind {
            LikeKind::Contains(t) => Some(Box::new(memmem::Finder::new(t.as_bytes()).into_owned())),
            _ => None,
        };
        LikePattern {
            source: pattern.to_string(),
            kind,
            finder,
            segments,
        }
    }

    /// The pattern text as given to [`LikePattern::new`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which fast path the pattern uses.
    pub fn kind(&self) -> &LikeKind {
        &self.kind
    }

    /// Whether `s` matches the whole pattern.
    #[inline]
    pub fn matches(&self, s: &str) -> bool {
        match &self.kind {
            LikeKind::Exact(t) => s == t,
            LikeKind::Prefix(t) => s.as_bytes().starts_with(t.as_bytes()),
            LikeKind::Suffix(t) => s.as_bytes().ends_with(t.as_bytes()),
            LikeKind::Contains(_) => self
                .finder
                .as_ref()
                .is_some_and(|f| f.find(s.as_bytes()).is_some()),
            LikeKind::Any => true,
            LikeKind::General => self.matches_general(s.as_bytes()),
        }
    }

    fn matches_general(&self, s: &[u8]) -> bool {
        let segs = &self.segments;
        let n = segs.len();
        if n == 1 {
            return match_at(&segs[0], s, 0) == Some(s.len());
        }
        // First segment anchored at the start.
        let Some(mut pos) = match_at(&segs[0], s, 0) else {
            return false;
        };
        // Last segment anchored at the end: find the start where it must begin.
        let last = &segs[n - 1];
        let last_chars = seg_chars(last);
        let Some(last_start) = start_of_last_chars(s, last_chars) else {
            return false;
        };
        if last_start < pos || match_at(last, s, last_start) != Some(s.len()) {
            return false;
        }
        // Middle segments: leftmost match each, within [pos, last_start).
        let limit = &s[..last_start];
        for seg in &segs[1..n - 1] {
            if seg.is_empty() {
                continue;
            }
            match find_leftmost(seg, limit, pos) {
                Some(end) => pos = end,
                None => return false,
            }
        }
        true
    }
}

/// Number of characters a segment matches.
fn seg_chars(seg: &[Piece]) -> usize {
    seg.iter()
        .map(|p| match p {
            Piece::Lit(v) => v.iter().filter(|&&b| !is_continuation(b)).count(),
            Piece::One => 1,
        })
        .sum()
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Width of the UTF-8 character starting with byte `b`.
fn char_width(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Byte offset where the last `k` characters of `s` start.
fn start_of_last_chars(s: &[u8], k: usize) -> Option<usize> {
    let mut pos = s.len();
    for _ in 0..k {
        if pos == 0 {
            return None;
        }
        pos -= 1;
        while pos > 0 && is_continuation(s[pos]) {
            pos -= 1;
        }
    }
    Some(pos)
}

/// Matches `seg` at byte offset `pos` of `s`; returns the end offset.
fn match_at(seg: &[Piece], s: &[u8], mut pos: usize) -> Option<usize> {
    for p in seg {
        match p {
            Piece::Lit(v) => {
                if s.get(pos..pos + v.len())? != v.as_slice() {
                    return None;
                }
                pos += v.len();
            }
            Piece::One => {
                let b = *s.get(pos)?;
                pos += char_width(b);
                if pos > s.len() {
                    return None;
                }
            }
        }
    }
    Some(pos)
}

/// Leftmost match of `seg` in `s` starting at a character boundary at or after `from`.
fn find_leftmost(seg: &[Piece], s: &[u8], from: usize) -> Option<usize> {
    let mut start = from;
    while start <= s.len() {
        if let Some(end) = match_at(seg, s, start) {
            return Some(end);
        }
        if start == s.len() {
            break;
        }
        start += char_width(s[start]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        LikePattern::new(p).matches(s)
    }

    #[test]
    fn kinds() {
        assert_eq!(
            LikePattern::new("abc").kind(),
            &LikeKind::Exact("abc".into())
        );
        assert_eq!(
            LikePattern::new("abc%").kind(),
            &LikeKind::Prefix("abc".into())
        );
        assert_eq!(
            LikePattern::new("%abc").kind(),
            &LikeKind::Suffix("abc".into())
        );
        assert_eq!(
            LikePattern::new("%abc%").kind(),
            &LikeKind::Contains("abc".into())
        );
        assert_eq!(LikePattern::new("%%").kind(), &LikeKind::Any);
        assert_eq!(LikePattern::new("%").kind(), &LikeKind::Any);
        assert_eq!(LikePattern::new("a%b").kind(), &LikeKind::General);
        assert_eq!(LikePattern::new("a_").kind(), &LikeKind::General);
        assert_eq!(
            LikePattern::new("a\\%").kind(),
            &LikeKind::Exact("a%".into())
        );
        assert_eq!(LikePattern::new("").kind(), &LikeKind::Exact(String::new()));
    }

    #[test]
    fn matching() {
        assert!(m("xiao%", "xiaoming"));
        assert!(!m("xiaoz%", "xiaoming"));
        assert!(m("%ming", "xiaoming"));
        assert!(m("%aom%", "xiaoming"));
        assert!(!m("%zz%", "xiaoming"));
        assert!(m("x%o%g", "xiaoming"));
        assert!(!m("x%o%z", "xiaoming"));
        assert!(m("x_ao%", "xiaoming"));
        assert!(m("_", "é"));
        assert!(!m("_", "ab"));
        assert!(!m("_", ""));
        assert!(m("%", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a%a", "aa"));
        assert!(!m("a%a", "a"));
        assert!(m("%a%a%", "banana"));
        assert!(m("b_n_n_", "banana"));
        assert!(!m("b_n_n", "banana"));
        assert!(m("100\\%", "100%"));
        assert!(!m("100\\%", "1000"));
        assert!(m("a\\_b", "a_b"));
        assert!(!m("a\\_b", "axb"));
        assert!(m("%é_", "caféx"));
        assert!(m("_%_", "ab"));
        assert!(!m("_%_", "a"));
    }
}
