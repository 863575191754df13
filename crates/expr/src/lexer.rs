//! Tokenizer for the Milvus 2.3 filter grammar (the lexer rules of `Plan.g4`).

use crate::error::ExprError;

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Ident(String),
    /// `field["key"][0]...`: the field name and the path as JSON-pointer tokens.
    JsonIdent(String, Vec<String>),
    And,
    Or,
    Not,
    In,
    Like,
    Exists,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Pow,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    BitNot,
}

/// A token with its byte span in the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, ExprError> {
    let mut lx = Lexer {
        src: input,
        bytes: input.as_bytes(),
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    out: Vec<Token>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Lexer<'a> {
    fn peek_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn push(&mut self, tok: Tok, start: usize, end: usize) {
        self.out.push(Token { tok, start, end });
        self.pos = end;
    }

    fn run(&mut self) -> Result<(), ExprError> {
        while self.pos < self.bytes.len() {
            let start = self.pos;
            let b = self.bytes[start];
            let next = self.peek_at(start + 1);
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => self.push(Tok::LParen, start, start + 1),
                b')' => self.push(Tok::RParen, start, start + 1),
                b'[' => self.push(Tok::LBracket, start, start + 1),
                b']' => self.push(Tok::RBracket, start, start + 1),
                b',' => self.push(Tok::Comma, start, start + 1),
                b'<' => match next {
                    Some(b'=') => self.push(Tok::Le, start, start + 2),
                    Some(b'<') => self.push(Tok::Shl, start, start + 2),
                    _ => self.push(Tok::Lt, start, start + 1),
                },
                b'>' => match next {
                    Some(b'=') => self.push(Tok::Ge, start, start + 2),
                    Some(b'>') => self.push(Tok::Shr, start, start + 2),
                    _ => self.push(Tok::Gt, start, start + 1),
                },
                b'=' => match next {
                    Some(b'=') => self.push(Tok::EqEq, start, start + 2),
                    _ => {
                        return Err(ExprError::UnexpectedChar {
                            offset: start,
                            ch: '=',
                        })
                    }
                },
                b'!' => match next {
                    Some(b'=') => self.push(Tok::Ne, start, start + 2),
                    _ => self.push(Tok::Not, start, start + 1),
                },
                b'&' => match next {
                    Some(b'&') => self.push(Tok::And, start, start + 2),
                    _ => self.push(Tok::BitAnd, start, start + 1),
                },
                b'|' => match next {
                    Some(b'|') => self.push(Tok::Or, start, start + 2),
                    _ => self.push(Tok::BitOr, start, start + 1),
                },
                b'^' => self.push(Tok::BitXor, start, start + 1),
                b'~' => self.push(Tok::BitNot, start, start + 1),
                b'+' => self.push(Tok::Plus, start, start + 1),
                b'-' => self.push(Tok::Minus, start, start + 1),
                b'*' => match next {
                    Some(b'*') => self.push(Tok::Pow, start, start + 2),
                    _ => self.push(Tok::Star, start, start + 1),
                },
                b'/' => self.push(Tok::Slash, start, start + 1),
                b'%' => self.push(Tok::Percent, start, start + 1),
                b'"' | b'\'' => {
                    let (s, end) = self.string_literal(start)?;
                    self.push(Tok::Str(s), start, end);
                }
                b'0'..=b'9' => self.number(start)?,
                b'.' if next.is_some_and(|c| c.is_ascii_digit()) => self.number(start)?,
                b'$' if self.src[start..].starts_with("$meta")
                    && !self.peek_at(start + 5).is_some_and(is_ident_char) =>
                {
                    self.identifier(start, start + 5)?
                }
                _ if is_ident_start(b) => {
                    let mut end = start + 1;
                    while self.peek_at(end).is_some_and(is_ident_char) {
                        end += 1;
                    }
                    self.identifier(start, end)?
                }
                _ => {
                    let ch = self.src[start..].chars().next().unwrap_or('\u{fffd}');
                    return Err(ExprError::UnexpectedChar { offset: start, ch });
                }
            }
        }
        Ok(())
    }

    /// An identifier or keyword spanning `start..end`; a `[` right after it (no whitespace)
    /// starts a JSON path, as in Milvus's `JSONIdentifier` token.
    fn identifier(&mut self, start: usize, end: usize) -> Result<(), ExprError> {
        let word = &self.src[start..end];
        let kw = match word {
            "and" | "AND" => Some(Tok::And),
            "or" | "OR" => Some(Tok::Or),
            "not" | "NOT" => Some(Tok::Not),
            "in" | "IN" => Some(Tok::In),
            "like" | "LIKE" => Some(Tok::Like),
            "exists" | "EXISTS" => Some(Tok::Exists),
            "true" | "True" | "TRUE" => Some(Tok::Bool(true)),
            "false" | "False" | "FALSE" => Some(Tok::Bool(false)),
            _ => None,
        };
        if let Some(tok) = kw {
            self.push(tok, start, end);
            return Ok(());
        }
        if self.peek_at(end) != Some(b'[') {
            self.push(Tok::Ident(word.to_string()), start, end);
            return Ok(());
        }
        let mut path = Vec::new();
        let mut pos = end;
        while self.peek_at(pos) == Some(b'[') {
            let open = pos;
            pos += 1;
            let key = match self.peek_at(pos) {
                Some(b'"') | Some(b'\'') => {
                    let (s, after) = self.string_literal(pos)?;
                    pos = after;
                    s
                }
                Some(c) if c.is_ascii_digit() => {
                    let digits_start = pos;
                    while self.peek_at(pos).is_some_and(|c| c.is_ascii_digit()) {
                        pos += 1;
                    }
                    let digits = &self.src[digits_start..pos];
                    if digits.len() > 1 && digits.starts_with('0') {
                        return Err(ExprError::BadLiteral {
                            offset: digits_start,
                            reason: "JSON array index must be a decimal constant".into(),
                        });
                    }
                    digits.to_string()
                }
                _ => {
                    return Err(ExprError::BadLiteral {
                        offset: open,
                        reason: format!(
                            "malformed JSON path after {word}: expected a string or a decimal index in [..]"
                        ),
                    })
                }
            };
            if self.peek_at(pos) != Some(b']') {
                return Err(ExprError::BadLiteral {
                    offset: open,
                    reason: format!("malformed JSON path after {word}: missing ]"),
                });
            }
            pos += 1;
            path.push(key);
        }
        self.push(Tok::JsonIdent(word.to_string(), path), start, pos);
        Ok(())
    }

    /// Integer (decimal, octal `017`, hex `0x1F`, binary `0b101`) or floating constant
    /// (`1.5`, `.5`, `1.`, `1e3`, `0x1.8p1`), as Milvus's `IntegerConstant` / `FloatingConstant`.
    fn number(&mut self, start: usize) -> Result<(), ExprError> {
        let b = self.bytes;
        let bad = |reason: &str| ExprError::BadLiteral {
            offset: start,
            reason: reason.to_string(),
        };
        let mut pos = start;
        let radix_prefix = if b[start] == b'0' {
            match self.peek_at(start + 1) {
                Some(b'x') | Some(b'X') => Some(16),
                Some(b'b') | Some(b'B') => Some(2),
                _ => None,
            }
        } else {
            None
        };
        let tok = if radix_prefix == Some(16) {
            pos += 2;
            let digits_start = pos;
            while self.peek_at(pos).is_some_and(|c| c.is_ascii_hexdigit()) {
                pos += 1;
            }
            let int_digits = &self.src[digits_start..pos];
            let mut frac_digits = "";
            let mut is_float = false;
            if self.peek_at(pos) == Some(b'.') {
                is_float = true;
                pos += 1;
                let fs = pos;
                while self.peek_at(pos).is_some_and(|c| c.is_ascii_hexdigit()) {
                    pos += 1;
                }
                frac_digits = &self.src[fs..pos];
            }
            if matches!(self.peek_at(pos), Some(b'p') | Some(b'P')) {
                is_float = true;
            }
            if is_float {
                // Hexadecimal floating constant: mantissa, then a mandatory binary exponent.
                if int_digits.is_empty() && frac_digits.is_empty() {
                    return Err(bad("hexadecimal floating constant without digits"));
                }
                if !matches!(self.peek_at(pos), Some(b'p') | Some(b'P')) {
                    return Err(bad("hexadecimal floating constant needs a p exponent"));
                }
                pos += 1;
                let es = pos;
                if matches!(self.peek_at(pos), Some(b'+') | Some(b'-')) {
                    pos += 1;
                }
                let ds = pos;
                while self.peek_at(pos).is_some_and(|c| c.is_ascii_digit()) {
                    pos += 1;
                }
                if ds == pos {
                    return Err(bad("hexadecimal floating constant exponent without digits"));
                }
                let exp: i32 = self.src[es..pos]
                    .parse::<i64>()
                    .map(|e| e.clamp(-100_000, 100_000) as i32)
                    .map_err(|_| bad("bad exponent"))?;
                let mut mant = 0f64;
                for c in int_digits.chars().chain(frac_digits.chars()) {
                    mant = mant * 16.0 + f64::from(c.to_digit(16).unwrap_or(0));
                }
                let scale = exp.saturating_sub(4 * frac_digits.len() as i32);
                let v = mant * 2f64.powi(scale);
                if !v.is_finite() {
                    return Err(bad("floating constant out of range"));
                }
                Tok::Float(v)
            } else {
                if int_digits.is_empty() {
                    return Err(bad("hexadecimal constant without digits"));
                }
                Tok::Int(
                    i64::from_str_radix(int_digits, 16)
                        .map_err(|_| bad("integer constant out of range for int64"))?,
                )
            }
        } else if radix_prefix == Some(2) {
            pos += 2;
            let ds = pos;
            while self.peek_at(pos).is_some_and(|c| c == b'0' || c == b'1') {
                pos += 1;
            }
            if ds == pos {
                return Err(bad("binary constant without digits"));
            }
            Tok::Int(
                i64::from_str_radix(&self.src[ds..pos], 2)
                    .map_err(|_| bad("integer constant out of range for int64"))?,
            )
        } else {
            while self.peek_at(pos).is_some_and(|c| c.is_ascii_digit()) {
                pos += 1;
            }
            let int_end = pos;
            let mut is_float = false;
            if self.peek_at(pos) == Some(b'.') {
                is_float = true;
                pos += 1;
                while self.peek_at(pos).is_some_and(|c| c.is_ascii_digit()) {
                    pos += 1;
                }
            }
            if matches!(self.peek_at(pos), Some(b'e') | Some(b'E')) {
                let mut p = pos + 1;
                if matches!(self.peek_at(p), Some(b'+') | Some(b'-')) {
                    p += 1;
                }
                if self.peek_at(p).is_some_and(|c| c.is_ascii_digit()) {
                    while self.peek_at(p).is_some_and(|c| c.is_ascii_digit()) {
                        p += 1;
                    }
                    is_float = true;
                    pos = p;
                } else {
                    return Err(bad("exponent without digits"));
                }
            }
            let text = &self.src[start..pos];
            if is_float {
                let v: f64 = text
                    .parse()
                    .map_err(|_| bad("malformed floating constant"))?;
                if !v.is_finite() {
                    return Err(bad("floating constant out of range"));
                }
                Tok::Float(v)
            } else {
                let digits = &self.src[start..int_end];
                if digits.len() > 1 && digits.starts_with('0') {
                    // C / Go octal constant.
                    if let Some((i, _)) = digits
                        .bytes()
                        .enumerate()
                        .find(|(_, c)| !(b'0'..=b'7').contains(c))
                    {
                        return Err(ExprError::BadLiteral {
                            offset: start + i,
                            reason: "invalid digit in octal constant".into(),
                        });
                    }
                    Tok::Int(
                        i64::from_str_radix(&digits[1..], 8)
                            .map_err(|_| bad("integer constant out of range for int64"))?,
                    )
                } else {
                    Tok::Int(
                        digits
                            .parse::<i64>()
                            .map_err(|_| bad("integer constant out of range for int64"))?,
                    )
                }
            }
        };
        if self
            .peek_at(pos)
            .is_some_and(|c| is_ident_char(c) || c == b'.')
        {
            return Err(ExprError::BadLiteral {
                offset: start,
                reason: "malformed number (unexpected character after it)".into(),
            });
        }
        self.push(tok, start, pos);
        Ok(())
    }

    /// A single- or double-quoted string starting at `start` (the quote). Returns the
    /// unescaped text and the offset after the closing quote. Escapes as in C / Go:
    /// `\' \" \\ \? \a \b \f \n \r \t \v`, octal `\ooo` (3 digits), `\xHH` (2 digits),
    /// `\uXXXX`, `\UXXXXXXXX`.
    /// `\%` and `\_` are kept with their backslash so that `like` sees an escaped wildcard.
    fn string_literal(&self, start: usize) -> Result<(String, usize), ExprError> {
        let quote = self.bytes[start];
        let mut out: Vec<u8> = Vec::new();
        let mut pos = start + 1;
        loop {
            let Some(c) = self.peek_at(pos) else {
                return Err(ExprError::UnterminatedString { offset: start });
            };
            match c {
                b'\r' | b'\n' => return Err(ExprError::UnterminatedString { offset: start }),
                _ if c == quote => {
                    pos += 1;
                    break;
                }
                b'\\' => {
                    let esc_at = pos;
                    let bad = |reason: &str| ExprError::BadLiteral {
                        offset: esc_at,
                        reason: reason.to_string(),
                    };
                    let Some(e) = self.peek_at(pos + 1) else {
                        return Err(ExprError::UnterminatedString { offset: start });
                    };
                    pos += 2;
                    match e {
                        b'\'' | b'"' | b'\\' | b'?' => out.push(e),
                        b'a' => out.push(0x07),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'v' => out.push(0x0b),
                        b'%' | b'_' => {
                            out.push(b'\\');
                            out.push(e);
                        }
                        b'0'..=b'7' => {
                            // Exactly three octal digits, as Go's strconv.Unquote (which
                            // Milvus uses) requires.
                            let ds = pos - 1;
                            for _ in 0..2 {
                                if !matches!(self.peek_at(pos), Some(b'0'..=b'7')) {
                                    return Err(bad("octal escape needs exactly 3 digits"));
                                }
                                pos += 1;
                            }
                            let byte = u8::from_str_radix(&self.src[ds..pos], 8)
                                .map_err(|_| bad("octal escape out of range (max \\377)"))?;
                            out.push(byte);
                        }
                        b'x' => {
                            // Exactly two hex digits, as Go.
                            let ds = pos;
                            for _ in 0..2 {
                                if !self.peek_at(pos).is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err(bad("\\x escape needs exactly 2 hex digits"));
                                }
                                pos += 1;
                            }
                            let v = u8::from_str_radix(&self.src[ds..pos], 16)
                                .map_err(|_| bad("bad \\x escape"))?;
                            out.push(v);
                        }
                        b'u' | b'U' => {
                            let n = if e == b'u' { 4 } else { 8 };
                            let ds = pos;
                            for _ in 0..n {
                                if !self.peek_at(pos).is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err(bad("\\u / \\U escape needs 4 / 8 hex digits"));
                                }
                                pos += 1;
                            }
                            let ch = u32::from_str_radix(&self.src[ds..pos], 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| bad("escape is not a Unicode scalar value"))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        b'\r' | b'\n' => {
                            return Err(ExprError::UnterminatedString { offset: start })
                        }
                        _ => return Err(bad("unknown escape sequence in string literal")),
                    }
                }
                _ => {
                    // Copy one whole UTF-8 character.
                    let ch_len = self.src[pos..].chars().next().map_or(1, char::len_utf8);
                    out.extend_from_slice(&self.bytes[pos..pos + ch_len]);
                    pos += ch_len;
                }
            }
        }
        let s = String::from_utf8(out).map_err(|_| ExprError::BadLiteral {
            offset: start,
            reason: "string literal is not valid UTF-8 after unescaping".into(),
        })?;
        Ok((s, pos))
    }
}

impl Tok {
    /// How the token is shown in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Int(v) => format!("integer {v}"),
            Tok::Float(v) => format!("float {v}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Bool(b) => format!("boolean {b}"),
            Tok::Ident(s) => format!("identifier '{s}'"),
            Tok::JsonIdent(s, _) => format!("JSON path on '{s}'"),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::In => "in",
            Tok::Like => "like",
            Tok::Exists => "exists",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Pow => "**",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::BitAnd => "&",
            Tok::BitOr => "|",
            Tok::BitXor => "^",
            Tok::BitNot => "~",
            _ => "?",
        }
    }
}
