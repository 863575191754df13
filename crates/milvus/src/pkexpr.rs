//! Recognises the primary-key expressions clients send most: `pk in [1, 2, 3]`,
//! `pk in ["a", 'b']`, `pk == 7` (what `MilvusClient.get/delete` and `Collection.delete`
//! build). They are answered by primary-key lookups, without the general filter engine.

use crate::schema::{Field, FieldKind};

/// A primary-key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PkValue {
    /// INT64 key.
    Int(i64),
    /// VARCHAR key.
    Str(String),
}

/// The keys named by `expr` when it has the form `pk in [..]` or `pk == lit` (spaces free,
/// optional surrounding parentheses) with literals of the key's type; `None` for any other
/// expression. Duplicates are removed, first occurrence kept.
pub fn primary_keys(expr: &str, pk: &Field) -> Option<Vec<PkValue>> {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
    };
    let is_int = match pk.kind {
        FieldKind::Int64 => true,
        FieldKind::VarChar { .. } => false,
        _ => return None,
    };
    let mut parens = 0;
    p.ws();
    while p.eat(b"(") {
        parens += 1;
        p.ws();
    }
    let name = p.ident()?;
    if name != pk.name {
        return None;
    }
    p.ws();
    let mut keys = Vec::new();
    if p.eat(b"==") {
        p.ws();
        keys.push(p.literal(is_int)?);
    } else if p.eat_word(b"in") {
        p.ws();
        if !p.eat(b"[") {
            return None;
        }
        p.ws();
        if !p.eat(b"]") {
            loop {
                p.ws();
                keys.push(p.literal(is_int)?);
                p.ws();
                if p.eat(b",") {
                    p.ws();
                    if p.eat(b"]") {
                        break;
                    }
                    continue;
                }
                if p.eat(b"]") {
                    break;
                }
                return None;
            }
        }
    } else {
        return None;
    }
    p.ws();
    for _ in 0..parens {
        if !p.eat(b")") {
            return None;
        }
        p.ws();
    }
    if p.i != p.s.len() {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    Some(keys)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, t: &[u8]) -> bool {
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    /// A keyword, case-insensitive, not followed by an identifier character.
    fn eat_word(&mut self, w: &[u8]) -> bool {
        let end = self.i + w.len();
        if end <= self.s.len()
            && self.s[self.i..end].eq_ignore_ascii_case(w)
            && !self
                .s
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.i = end;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&str> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i || self.s[start].is_ascii_digit() {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i]).ok()
    }

    fn literal(&mut self, is_int: bool) -> Option<PkValue> {
        if is_int {
            let start = self.i;
            let _sign = self.eat(b"-") || self.eat(b"+");
            let digits = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if digits == self.i {
                return None;
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            return text.parse::<i64>().ok().map(PkValue::Int);
        }
        let quote = *self.s.get(self.i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            if c == quote {
                break;
            }
            if c == b'\\' {
                let e = *self.s.get(self.i)?;
                self.i += 1;
                match e {
                    b'\\' | b'"' | b'\'' => out.push(e),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    _ => return None,
                }
            } else {
                out.push(c);
            }
        }
        String::from_utf8(out).ok().map(PkValue::Str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(kind: FieldKind) -> Field {
        Field {
            id: 100,
            name: "id".into(),
            kind,
            is_primary: true,
            auto_id: false,
            is_dynamic: false,
            description: String::new(),
        }
    }

    #[test]
    fn int_keys() {
        let f = pk(FieldKind::Int64);
        let ints = |v: &[i64]| Some(v.iter().map(|x| PkValue::Int(*x)).collect::<Vec<_>>());
        assert_eq!(primary_keys("id in [1,2,3]", &f), ints(&[1, 2, 3]));
        assert_eq!(
            primary_keys(" id  in [ 1 , -2, 2, 1 ] ", &f),
            ints(&[1, -2, 2])
        );
        assert_eq!(primary_keys("id == 7", &f), ints(&[7]));
        assert_eq!(primary_keys("(id in [4])", &f), ints(&[4]));
        assert_eq!(primary_keys("id IN []", &f), ints(&[]));
        assert_eq!(primary_keys("id in [1,]", &f), ints(&[1]));
        assert_eq!(primary_keys("id > 2", &f), None);
        assert_eq!(primary_keys("id in [1] and id in [2]", &f), None);
        assert_eq!(primary_keys("ids in [1]", &f), None);
        assert_eq!(primary_keys("id in ['1']", &f), None);
        assert_eq!(primary_keys("id in [99999999999999999999]", &f), None);
        assert_eq!(primary_keys("id in [1", &f), None);
        assert_eq!(primary_keys("idx in [1]", &f), None);
        assert_eq!(primary_keys("id inx [1]", &f), None);
    }

    #[test]
    fn string_keys() {
        let f = pk(FieldKind::VarChar { max_length: 10 });
        assert_eq!(
            primary_keys(r#"id in ['a', "b\"c", 'it\'s']"#, &f),
            Some(vec![
                PkValue::Str("a".into()),
                PkValue::Str("b\"c".into()),
                PkValue::Str("it's".into())
            ])
        );
        assert_eq!(primary_keys("id in [1]", &f), None);
        assert_eq!(primary_keys("id == 'x", &f), None);
    }
}
