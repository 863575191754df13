//! Type checking against a schema, constant folding and literal coercion.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, UnaryOp};
use crate::checked::{CheckedExpr, FieldRef, JsonTest, Predicate, Value, ValueSet};
use crate::error::ExprError;
use crate::like::LikePattern;
use crate::parser::parse;
use crate::schema::{FieldKind, ScalarType, SchemaView};

/// Checks a syntax tree against a schema and returns the typed, folded expression.
///
/// Rules (Milvus 2.3 where it has one):
/// - fields must exist (or be keys of the schema's dynamic JSON field) and be scalar;
/// - a literal compared with a field is coerced to the field's type: integers to floats
///   for `Float` / `Double` fields (rounded to `f32` for `Float`); a float literal against
///   an integer field is a [`ExprError::TypeMismatch`] (Milvus: "cannot cast value to
///   Int64"); strings only with VarChar, booleans only with Bool;
/// - integer literals outside an integer field's range fold the comparison to a constant
///   (`int8_field < 1000` is true for every row, `int8_field == 1000` for none);
/// - constant sub-expressions fold (`1 + 2`, `2 ** 10`, `-(3)`); integer overflow and
///   division by zero are errors;
/// - `field arith constant op constant` (and `constant + field`, `constant - field`,
///   `constant * field`) is supported with every comparison operator;
/// - `field op field` needs both numeric, both VarChar or both Bool.
///
/// # Errors
/// [`ExprError::UnknownField`], [`ExprError::VectorField`], [`ExprError::TypeMismatch`],
/// [`ExprError::InvalidOperand`], [`ExprError::NonConstant`], [`ExprError::NotBoolean`],
/// [`ExprError::DivisionByZero`], [`ExprError::Overflow`], [`ExprError::Unsupported`], each
/// with the byte offset of the operand at fault.
pub fn check<S: SchemaView + ?Sized>(expr: &Expr, schema: &S) -> Result<CheckedExpr, ExprError> {
    let c = Checker { schema };
    let predicate = c.predicate(expr)?;
    Ok(CheckedExpr { predicate })
}

/// Parses and checks in one step: [`crate::parse`] then [`check`].
///
/// # Errors
/// Every error of [`crate::parse`] and [`check`].
pub fn compile<S: SchemaView + ?Sized>(input: &str, schema: &S) -> Result<CheckedExpr, ExprError> {
    check(&parse(input)?, schema)
}

struct Checker<'s, S: ?Sized> {
    schema: &'s S,
}

/// A checked operand and its offset.
#[derive(Debug)]
struct Operand {
    kind: OpKind,
    offset: usize,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, one per syntax node
enum OpKind {
    Const(Value),
    List(Vec<(Value, usize)>),
    Field(FieldRef),
    Json(FieldRef, Vec<String>),
    Arith {
        field: FieldRef,
        arith: ArithOp,
        operand: Value,
        field_on_left: bool,
    },
    Pred(Predicate),
}

fn konst(v: Value, offset: usize) -> Result<Operand, ExprError> {
    Ok(Operand {
        kind: OpKind::Const(v),
        offset,
    })
}

fn pred(p: Predicate, offset: usize) -> Result<Operand, ExprError> {
    Ok(Operand {
        kind: OpKind::Pred(p),
        offset,
    })
}

fn type_mismatch(offset: usize, left: &str, right: &str) -> ExprError {
    ExprError::TypeMismatch {
        offset,
        left: left.to_string(),
        right: right.to_string(),
    }
}

fn invalid(offset: usize, reason: impl Into<String>) -> ExprError {
    ExprError::InvalidOperand {
        offset,
        reason: reason.into(),
    }
}

fn unsupported(offset: usize, what: impl Into<String>) -> ExprError {
    ExprError::Unsupported {
        offset,
        what: what.into(),
    }
}

impl<S: SchemaView + ?Sized> Checker<'_, S> {
    fn resolve(&self, name: &str, path: &[String], offset: usize) -> Result<Operand, ExprError> {
        Ok(Operand {
            kind: self.resolve_kind(name, path, offset)?,
            offset,
        })
    }

    fn resolve_kind(
        &self,
        name: &str,
        path: &[String],
        offset: usize,
    ) -> Result<OpKind, ExprError> {
        match self.schema.field_type(name) {
            Some(FieldKind::Vector) => Err(ExprError::VectorField {
                offset,
                name: name.to_string(),
            }),
            Some(FieldKind::Scalar(ScalarType::Json)) => Ok(OpKind::Json(
                FieldRef {
                    name: name.to_string(),
                    ty: ScalarType::Json,
                    offset,
                },
                path.to_vec(),
            )),
            Some(FieldKind::Scalar(ty)) => {
                if !path.is_empty() {
                    return Err(invalid(
                        offset,
                        format!("field {name} of type {ty} cannot be indexed with [..]"),
                    ));
                }
                Ok(OpKind::Field(FieldRef {
                    name: name.to_string(),
                    ty,
                    offset,
                }))
            }
            None => {
                if let Some(dynamic) = self.schema.dynamic_field() {
                    if self.schema.field_type(dynamic) == Some(FieldKind::Scalar(ScalarType::Json))
                    {
                        let mut full = vec![name.to_string()];
                        full.extend_from_slice(path);
                        return Ok(OpKind::Json(
                            FieldRef {
                                name: dynamic.to_string(),
                                ty: ScalarType::Json,
                                offset,
                            },
                            full,
                        ));
                    }
                }
                Err(ExprError::UnknownField {
                    offset,
                    name: name.to_string(),
                })
            }
        }
    }

    /// Checks one node. The match only dispatches: every node kind has its own function, so
    /// that the frames on the recursion path stay small (also in debug builds).
    fn operand(&self, e: &Expr) -> Result<Operand, ExprError> {
        let offset = e.offset;
        // Every arm returns its callee's result directly (no `?`): in debug builds each `?`
        // keeps its own temporaries in this frame, which is on the recursion path.
        match &e.kind {
            ExprKind::Int(v) => konst(Value::Int(*v), offset),
            ExprKind::Float(v) => konst(Value::Float(*v), offset),
            ExprKind::Str(s) => konst(Value::Str(s.clone()), offset),
            ExprKind::Bool(b) => konst(Value::Bool(*b), offset),
            ExprKind::List(items) => self.list(items, offset),
            ExprKind::Field(name) => self.resolve(name, &[], offset),
            ExprKind::JsonPath { field, path } => self.resolve(field, path, offset),
            ExprKind::Unary { op, operand } => self.unary(*op, operand, offset),
            ExprKind::Not(inner) => self.not(inner, offset),
            ExprKind::Arith {
                op,
                op_offset,
                lhs,
                rhs,
            } => self.arith_node(*op, *op_offset, lhs, rhs, offset),
            ExprKind::Compare {
                op,
                op_offset,
                lhs,
                rhs,
            } => self.compare_node(*op, *op_offset, lhs, rhs, offset),
            ExprKind::Range {
                field,
                lower,
                lower_op,
                upper_op,
                upper,
            } => self.range_node(field, lower, *lower_op, *upper_op, upper, offset),
            ExprKind::In {
                lhs, list, negated, ..
            } => self.term_node(lhs, list, *negated, offset),
            ExprKind::Like { lhs, pattern, .. } => self.like_node(lhs, pattern, offset),
            ExprKind::And(items) => self.logic(items, true, offset),
            ExprKind::Or(items) => self.logic(items, false, offset),
            ExprKind::Call { name, args } => self.call_node(name, args, offset),
        }
    }

    fn not(&self, inner: &Expr, offset: usize) -> Result<Operand, ExprError> {
        pred(negate(self.predicate(inner)?), offset)
    }

    fn call_node(&self, name: &str, args: &[Expr], offset: usize) -> Result<Operand, ExprError> {
        pred(self.call(name, args, offset)?, offset)
    }

    fn list(&self, items: &[Expr], offset: usize) -> Result<Operand, ExprError> {
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let o = self.operand(item)?;
            match o.kind {
                OpKind::Const(v) => values.push((v, o.offset)),
                _ => return Err(ExprError::NonConstant { offset: o.offset }),
            }
        }
        Ok(Operand {
            kind: OpKind::List(values),
            offset,
        })
    }

    fn unary(&self, op: UnaryOp, operand: &Expr, offset: usize) -> Result<Operand, ExprError> {
        let o = self.operand(operand)?;
        let kind = match (op, o.kind) {
            (UnaryOp::Plus, OpKind::Const(v @ (Value::Int(_) | Value::Float(_)))) => {
                OpKind::Const(v)
            }
            (UnaryOp::Neg, OpKind::Const(Value::Int(v))) => OpKind::Const(Value::Int(
                v.checked_neg().ok_or(ExprError::Overflow { offset })?,
            )),
            (UnaryOp::Neg, OpKind::Const(Value::Float(v))) => OpKind::Const(Value::Float(-v)),
            (_, OpKind::Field(_) | OpKind::Json(..) | OpKind::Arith { .. }) => {
                return Err(unsupported(offset, "unary + / - on a field"))
            }
            _ => {
                return Err(invalid(
                    o.offset,
                    "unary + / - applies to numeric constants only",
                ))
            }
        };
        Ok(Operand { kind, offset })
    }

    fn arith_node(
        &self,
        op: ArithOp,
        op_offset: usize,
        lhs: &Expr,
        rhs: &Expr,
        offset: usize,
    ) -> Result<Operand, ExprError> {
        let l = self.operand(lhs)?;
        let r = self.operand(rhs)?;
        let kind = self.arith(op, op_offset, l, r)?;
        Ok(Operand { kind, offset })
    }

    fn compare_node(
        &self,
        op: CmpOp,
        op_offset: usize,
        lhs: &Expr,
        rhs: &Expr,
        offset: usize,
    ) -> Result<Operand, ExprError> {
        let l = self.operand(lhs)?;
        let r = self.operand(rhs)?;
        pred(self.compare(op, op_offset, l, r)?, offset)
    }

    fn range_node(
        &self,
        field: &Expr,
        lower: &Expr,
        lower_op: CmpOp,
        upper_op: CmpOp,
        upper: &Expr,
        offset: usize,
    ) -> Result<Operand, ExprError> {
        let f = self.operand(field)?;
        let lo = self.operand(lower)?;
        let hi = self.operand(upper)?;
        pred(self.range(f, lo, lower_op, upper_op, hi)?, offset)
    }

    fn term_node(
        &self,
        lhs: &Expr,
        list: &Expr,
        negated: bool,
        offset: usize,
    ) -> Result<Operand, ExprError> {
        let l = self.operand(lhs)?;
        let list = self.operand(list)?;
        pred(self.term(l, list, negated)?, offset)
    }

    fn like_node(&self, lhs: &Expr, pattern: &str, offset: usize) -> Result<Operand, ExprError> {
        let l = self.operand(lhs)?;
        pred(like(l, pattern)?, offset)
    }

    fn logic(&self, items: &[Expr], is_and: bool, offset: usize) -> Result<Operand, ExprError> {
        let preds = items
            .iter()
            .map(|i| self.predicate(i))
            .collect::<Result<Vec<_>, _>>()?;
        pred(if is_and { and(preds) } else { or(preds) }, offset)
    }

    /// Checks `e` as a boolean predicate.
    fn predicate(&self, e: &Expr) -> Result<Predicate, ExprError> {
        let o = self.operand(e)?;
        match o.kind {
            OpKind::Pred(p) => Ok(p),
            OpKind::Const(Value::Bool(b)) => Ok(Predicate::Const(b)),
            OpKind::Field(field) if field.ty == ScalarType::Bool => Ok(Predicate::Compare {
                field,
                op: CmpOp::Eq,
                value: Value::Bool(true),
            }),
            _ => Err(ExprError::NotBoolean { offset: o.offset }),
        }
    }

    fn arith(
        &self,
        op: ArithOp,
        op_offset: usize,
        l: Operand,
        r: Operand,
    ) -> Result<OpKind, ExprError> {
        match (l.kind, r.kind) {
            (OpKind::Const(a), OpKind::Const(b)) => Ok(OpKind::Const(fold_arith(
                op, op_offset, a, l.offset, b, r.offset,
            )?)),
            (OpKind::Field(field), OpKind::Const(c)) => {
                let operand = arith_operand(&field, op, op_offset, c, r.offset)?;
                Ok(OpKind::Arith {
                    field,
                    arith: op,
                    operand,
                    field_on_left: true,
                })
            }
            (OpKind::Const(c), OpKind::Field(field)) => {
                if matches!(op, ArithOp::Div | ArithOp::Mod) {
                    return Err(unsupported(
                        op_offset,
                        format!("a field as the right operand of {op}"),
                    ));
                }
                let operand = arith_operand(&field, op, op_offset, c, l.offset)?;
                Ok(OpKind::Arith {
                    field,
                    arith: op,
                    operand,
                    field_on_left: false,
                })
            }
            (OpKind::Field(_), OpKind::Field(_)) => {
                Err(unsupported(op_offset, "arithmetic between two fields"))
            }
            (OpKind::Json(..), _) | (_, OpKind::Json(..)) => {
                Err(unsupported(op_offset, "arithmetic on a JSON field"))
            }
            (OpKind::Arith { .. }, _) | (_, OpKind::Arith { .. }) => Err(unsupported(
                op_offset,
                "nested arithmetic on a field (only `field op constant` is supported)",
            )),
            (OpKind::List(_), _) => Err(invalid(l.offset, "a list is only allowed after in")),
            (_, OpKind::List(_)) => Err(invalid(r.offset, "a list is only allowed after in")),
            (OpKind::Pred(_), _) => Err(invalid(l.offset, "arithmetic on a boolean predicate")),
            (_, OpKind::Pred(_)) => Err(invalid(r.offset, "arithmetic on a boolean predicate")),
        }
    }

    fn compare(
        &self,
        op: CmpOp,
        op_offset: usize,
        l: Operand,
        r: Operand,
    ) -> Result<Predicate, ExprError> {
        let (lo, ro) = (l.offset, r.offset);
        match (l.kind, r.kind) {
            (OpKind::List(_), _) => Err(invalid(lo, "a list is only allowed after in")),
            (_, OpKind::List(_)) => Err(invalid(ro, "a list is only allowed after in")),
            (OpKind::Pred(_), _) => Err(invalid(
                lo,
                "a comparison operand must be a field, a constant or field arithmetic, not a predicate",
            )),
            (_, OpKind::Pred(_)) => Err(invalid(
                ro,
                "a comparison operand must be a field, a constant or field arithmetic, not a predicate",
            )),
            (OpKind::Const(a), OpKind::Const(b)) => Ok(Predicate::Const(compare_consts(op, &a, &b, ro)?)),
            (OpKind::Field(f), OpKind::Const(v)) => field_compare(f, op, v, ro),
            (OpKind::Const(v), OpKind::Field(f)) => field_compare(f, op.flip(), v, lo),
            (OpKind::Field(a), OpKind::Field(b)) => {
                let ok = (a.ty.is_numeric() && b.ty.is_numeric()) || a.ty == b.ty;
                if !ok {
                    return Err(type_mismatch(ro, a.ty.name(), b.ty.name()));
                }
                Ok(Predicate::FieldCompare {
                    left: a,
                    op,
                    right: b,
                })
            }
            (OpKind::Json(field, path), OpKind::Const(value)) => Ok(json_compare(field, path, op, value)),
            (OpKind::Const(value), OpKind::Json(field, path)) => {
                Ok(json_compare(field, path, op.flip(), value))
            }
            (
                OpKind::Arith {
                    field,
                    arith,
                    operand,
                    field_on_left,
                },
                OpKind::Const(v),
            ) => arith_compare(field, arith, operand, field_on_left, op, v, ro),
            (
                OpKind::Const(v),
                OpKind::Arith {
                    field,
                    arith,
                    operand,
                    field_on_left,
                },
            ) => arith_compare(field, arith, operand, field_on_left, op.flip(), v, lo),
            (OpKind::Json(..), _) | (_, OpKind::Json(..)) => Err(unsupported(
                op_offset,
                "comparing a JSON path with anything but a constant",
            )),
            (OpKind::Arith { .. }, _) | (_, OpKind::Arith { .. }) => Err(unsupported(
                op_offset,
                "comparing field arithmetic with anything but a constant",
            )),
        }
    }

    fn range(
        &self,
        f: Operand,
        lower: Operand,
        lower_op: CmpOp,
        upper_op: CmpOp,
        upper: Operand,
    ) -> Result<Predicate, ExprError> {
        let lo_off = lower.offset;
        let hi_off = upper.offset;
        let OpKind::Const(lv) = lower.kind else {
            return Err(ExprError::NonConstant { offset: lo_off });
        };
        let OpKind::Const(uv) = upper.kind else {
            return Err(ExprError::NonConstant { offset: hi_off });
        };
        // Normalize to (low bound, high bound) on the field.
        let upward = matches!(lower_op, CmpOp::Lt | CmpOp::Le);
        let ((low, low_incl, low_off), (high, high_incl, high_off)) = if upward {
            (
                (lv, lower_op == CmpOp::Le, lo_off),
                (uv, upper_op == CmpOp::Le, hi_off),
            )
        } else {
            (
                (uv, upper_op == CmpOp::Ge, hi_off),
                (lv, lower_op == CmpOp::Ge, lo_off),
            )
        };
        match f.kind {
            OpKind::Field(field) => {
                let low = coerce(&field, low, low_off)?;
                let high = coerce(&field, high, high_off)?;
                if let Some((tmin, tmax)) = field.ty.int_range() {
                    // A bound below the type's range lets every value pass on that side; one
                    // above it none (and the mirror for the upper bound).
                    let lo = match low {
                        Coerced::Int(a) if low_incl => Some(a),
                        Coerced::Int(a) => a.checked_add(1),
                        Coerced::Below => Some(tmin),
                        _ => None,
                    };
                    let hi = match high {
                        Coerced::Int(b) if high_incl => Some(b),
                        Coerced::Int(b) => b.checked_sub(1),
                        Coerced::Above => Some(tmax),
                        _ => None,
                    };
                    let (Some(lo), Some(hi)) = (lo, hi) else {
                        return Ok(Predicate::Const(false));
                    };
                    let (lo, hi) = (lo.max(tmin), hi.min(tmax));
                    if lo > hi {
                        return Ok(Predicate::Const(false));
                    }
                    let lower = if lo == tmin {
                        Bound::Unbounded
                    } else {
                        Bound::Included(Value::Int(lo))
                    };
                    let upper = if hi == tmax {
                        Bound::Unbounded
                    } else {
                        Bound::Included(Value::Int(hi))
                    };
                    if lower == Bound::Unbounded && upper == Bound::Unbounded {
                        return Ok(Predicate::Const(true));
                    }
                    return Ok(Predicate::Range {
                        field,
                        lower,
                        upper,
                    });
                }
                let (Coerced::Value(a), Coerced::Value(b)) = (low, high) else {
                    return Ok(Predicate::Const(false));
                };
                let lower = if low_incl {
                    Bound::Included(a)
                } else {
                    Bound::Excluded(a)
                };
                let upper = if high_incl {
                    Bound::Included(b)
                } else {
                    Bound::Excluded(b)
                };
                Ok(Predicate::Range {
                    field,
                    lower,
                    upper,
                })
            }
            OpKind::Json(field, path) => {
                let compatible = matches!(
                    (&low, &high),
                    (Value::Str(_), Value::Str(_))
                        | (Value::Bool(_), Value::Bool(_))
                        | (
                            Value::Int(_) | Value::Float(_),
                            Value::Int(_) | Value::Float(_)
                        )
                );
                if !compatible {
                    return Err(type_mismatch(high_off, low.type_name(), high.type_name()));
                }
                let lower = if low_incl {
                    Bound::Included(low)
                } else {
                    Bound::Excluded(low)
                };
                let upper = if high_incl {
                    Bound::Included(high)
                } else {
                    Bound::Excluded(high)
                };
                Ok(Predicate::Json {
                    field,
                    path,
                    test: JsonTest::Range { lower, upper },
                })
            }
            _ => Err(invalid(f.offset, "the middle of a range must be a field")),
        }
    }

    fn term(&self, l: Operand, list: Operand, negated: bool) -> Result<Predicate, ExprError> {
        let OpKind::List(values) = list.kind else {
            return Err(invalid(list.offset, "in needs a list"));
        };
        match l.kind {
            OpKind::Field(field) => {
                let set = match field.ty {
                    ScalarType::Bool => {
                        let (mut has_true, mut has_false) = (false, false);
                        for (v, off) in values {
                            match v {
                                Value::Bool(true) => has_true = true,
                                Value::Bool(false) => has_false = true,
                                other => return Err(type_mismatch(off, "Bool", other.type_name())),
                            }
                        }
                        ValueSet::Bool {
                            has_true,
                            has_false,
                        }
                    }
                    ScalarType::VarChar => {
                        let mut out = Vec::with_capacity(values.len());
                        for (v, off) in values {
                            match v {
                                Value::Str(s) => out.push(s),
                                other => {
                                    return Err(type_mismatch(off, "VarChar", other.type_name()))
                                }
                            }
                        }
                        out.sort_unstable();
                        out.dedup();
                        ValueSet::Str(out)
                    }
                    ty if ty.is_integer() => {
                        let mut out = Vec::with_capacity(values.len());
                        for (v, off) in values {
                            // Values out of the type's range match no row: dropped.
                            if let Coerced::Int(i) = coerce(&field, v, off)? {
                                out.push(i);
                            }
                        }
                        out.sort_unstable();
                        out.dedup();
                        ValueSet::Int(out)
                    }
                    ty if ty.is_float() => {
                        let mut out = Vec::with_capacity(values.len());
                        for (v, off) in values {
                            if let Coerced::Value(Value::Float(x)) = coerce(&field, v, off)? {
                                out.push(x);
                            }
                        }
                        out.sort_unstable_by(f64::total_cmp);
                        out.dedup();
                        ValueSet::Float(out)
                    }
                    _ => return Err(invalid(l.offset, "in on this field type")),
                };
                if set.is_empty() {
                    return Ok(Predicate::Const(negated));
                }
                Ok(Predicate::In {
                    field,
                    set,
                    negated,
                })
            }
            OpKind::Json(field, path) => {
                let p = Predicate::Json {
                    field,
                    path,
                    test: JsonTest::In(values.into_iter().map(|(v, _)| v).collect()),
                };
                Ok(if negated { negate(p) } else { p })
            }
            OpKind::Const(_) => Err(invalid(l.offset, "the left side of in must be a field")),
            _ => Err(invalid(l.offset, "the left side of in must be a field")),
        }
    }

    fn call(&self, name: &str, args: &[Expr], offset: usize) -> Result<Predicate, ExprError> {
        let lower = name.to_ascii_lowercase();
        let kind = match name {
            "json_contains" | "JSON_CONTAINS" => 0,
            "json_contains_all" | "JSON_CONTAINS_ALL" => 1,
            "json_contains_any" | "JSON_CONTAINS_ANY" => 2,
            _ => {
                return Err(unsupported(
                    offset,
                    if lower.starts_with("array_") {
                        format!("{name} (ARRAY fields)")
                    } else {
                        format!("function {name}")
                    },
                ))
            }
        };
        if args.len() != 2 {
            return Err(invalid(offset, format!("{name} takes 2 arguments")));
        }
        let target = self.operand(&args[0])?;
        let (field, path) = match target.kind {
            OpKind::Json(f, p) => (f, p),
            _ => {
                return Err(invalid(
                    target.offset,
                    format!("the first argument of {name} must be a JSON field or path"),
                ))
            }
        };
        let arg = self.operand(&args[1])?;
        let test = match (kind, arg.kind) {
            (0, OpKind::Const(v)) => JsonTest::Contains(v),
            (1, OpKind::List(vs)) => {
                JsonTest::ContainsAll(vs.into_iter().map(|(v, _)| v).collect())
            }
            (2, OpKind::List(vs)) => {
                JsonTest::ContainsAny(vs.into_iter().map(|(v, _)| v).collect())
            }
            (0, _) => return Err(ExprError::NonConstant { offset: arg.offset }),
            _ => {
                return Err(invalid(
                    arg.offset,
                    format!("the second argument of {name} must be a list"),
                ))
            }
        };
        Ok(Predicate::Json { field, path, test })
    }
}

/// A constant coerced to a field type.
enum Coerced {
    /// An integer within the field type's range.
    Int(i64),
    /// Integer below the field type's range.
    Below,
    /// Integer above the field type's range.
    Above,
    /// Any other coerced value.
    Value(Value),
}

fn coerce(field: &FieldRef, v: Value, v_offset: usize) -> Result<Coerced, ExprError> {
    let ty = field.ty;
    if let Some((lo, hi)) = ty.int_range() {
        return match v {
            Value::Int(i) if i < lo => Ok(Coerced::Below),
            Value::Int(i) if i > hi => Ok(Coerced::Above),
            Value::Int(i) => Ok(Coerced::Int(i)),
            other => Err(type_mismatch(v_offset, ty.name(), other.type_name())),
        };
    }
    let ok = match (ty, v) {
        (ScalarType::Float, Value::Int(i)) => Value::Float(f64::from(i as f32)),
        (ScalarType::Float, Value::Float(x)) => Value::Float(f64::from(x as f32)),
        (ScalarType::Double, Value::Int(i)) => Value::Float(i as f64),
        (ScalarType::Double, Value::Float(x)) => Value::Float(x),
        (ScalarType::VarChar, v @ Value::Str(_)) => v,
        (ScalarType::Bool, v @ Value::Bool(_)) => v,
        (_, other) => return Err(type_mismatch(v_offset, ty.name(), other.type_name())),
    };
    Ok(Coerced::Value(ok))
}

fn field_compare(
    field: FieldRef,
    op: CmpOp,
    v: Value,
    v_offset: usize,
) -> Result<Predicate, ExprError> {
    let value = match coerce(&field, v, v_offset)? {
        Coerced::Int(i) => {
            let (lo, hi) = field.ty.int_range().unwrap_or((i64::MIN, i64::MAX));
            // Comparisons every value (or no value) of the type satisfies fold.
            let folded = match op {
                CmpOp::Lt if i <= lo => Some(false),
                CmpOp::Ge if i <= lo => Some(true),
                CmpOp::Gt if i >= hi => Some(false),
                CmpOp::Le if i >= hi => Some(true),
                _ => None,
            };
            if let Some(b) = folded {
                return Ok(Predicate::Const(b));
            }
            Value::Int(i)
        }
        Coerced::Below => {
            return Ok(Predicate::Const(matches!(
                op,
                CmpOp::Ne | CmpOp::Gt | CmpOp::Ge
            )))
        }
        Coerced::Above => {
            return Ok(Predicate::Const(matches!(
                op,
                CmpOp::Ne | CmpOp::Lt | CmpOp::Le
            )))
        }
        Coerced::Value(v) => v,
    };
    Ok(Predicate::Compare { field, op, value })
}

fn json_compare(field: FieldRef, path: Vec<String>, op: CmpOp, value: Value) -> Predicate {
    match op {
        CmpOp::Ne => negate(Predicate::Json {
            field,
            path,
            test: JsonTest::Compare {
                op: CmpOp::Eq,
                value,
            },
        }),
        _ => Predicate::Json {
            field,
            path,
            test: JsonTest::Compare { op, value },
        },
    }
}

fn arith_operand(
    field: &FieldRef,
    op: ArithOp,
    op_offset: usize,
    c: Value,
    c_offset: usize,
) -> Result<Value, ExprError> {
    if !field.ty.is_numeric() {
        return Err(invalid(
            field.offset,
            format!("arithmetic on field {} of type {}", field.name, field.ty),
        ));
    }
    if op == ArithOp::Pow {
        return Err(unsupported(op_offset, "** on a field (only on constants)"));
    }
    // Integer fields compute exactly in 128 bits: the operand keeps its full i64 value.
    let v = if field.ty.is_integer() {
        match c {
            Value::Int(i) => Value::Int(i),
            other => return Err(type_mismatch(c_offset, field.ty.name(), other.type_name())),
        }
    } else {
        match coerce(field, c, c_offset)? {
            Coerced::Value(v) => v,
            _ => return Err(type_mismatch(c_offset, field.ty.name(), "Int64")),
        }
    };
    let zero = match v {
        Value::Int(i) => i == 0,
        Value::Float(x) => x == 0.0,
        _ => false,
    };
    if zero && matches!(op, ArithOp::Div | ArithOp::Mod) {
        return Err(ExprError::DivisionByZero { offset: c_offset });
    }
    Ok(v)
}

fn arith_compare(
    field: FieldRef,
    arith: ArithOp,
    operand: Value,
    field_on_left: bool,
    op: CmpOp,
    v: Value,
    v_offset: usize,
) -> Result<Predicate, ExprError> {
    let value = if field.ty.is_integer() {
        match v {
            Value::Int(i) => Value::Int(i),
            other => return Err(type_mismatch(v_offset, field.ty.name(), other.type_name())),
        }
    } else {
        match coerce(&field, v, v_offset)? {
            Coerced::Value(v) => v,
            _ => return Err(type_mismatch(v_offset, field.ty.name(), "Int64")),
        }
    };
    Ok(Predicate::Arith {
        field,
        arith,
        operand,
        field_on_left,
        op,
        value,
    })
}

fn like(l: Operand, pattern: &str) -> Result<Predicate, ExprError> {
    match l.kind {
        OpKind::Field(field) if field.ty == ScalarType::VarChar => Ok(Predicate::Like {
            field,
            pattern: LikePattern::new(pattern),
        }),
        OpKind::Field(field) => Err(invalid(
            l.offset,
            format!(
                "like applies to VarChar and JSON fields, not to {} of type {}",
                field.name, field.ty
            ),
        )),
        OpKind::Json(field, path) => Ok(Predicate::Json {
            field,
            path,
            test: JsonTest::Like(LikePattern::new(pattern)),
        }),
        OpKind::Const(Value::Str(s)) => Ok(Predicate::Const(LikePattern::new(pattern).matches(&s))),
        _ => Err(invalid(l.offset, "like applies to VarChar and JSON fields")),
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

fn fold_arith(
    op: ArithOp,
    op_offset: usize,
    a: Value,
    a_off: usize,
    b: Value,
    b_off: usize,
) -> Result<Value, ExprError> {
    for (v, off) in [(&a, a_off), (&b, b_off)] {
        if matches!(v, Value::Str(_) | Value::Bool(_)) {
            return Err(invalid(
                off,
                format!("arithmetic {op} on a {} constant", v.type_name()),
            ));
        }
    }
    let overflow = ExprError::Overflow { offset: op_offset };
    let finite = |x: f64| {
        if x.is_finite() {
            Ok(Value::Float(x))
        } else {
            Err(ExprError::Overflow { offset: op_offset })
        }
    };
    match (op, &a, &b) {
        (ArithOp::Pow, _, _) => finite(num(&a).unwrap_or(0.0).powf(num(&b).unwrap_or(0.0))),
        (ArithOp::Mod, Value::Int(x), Value::Int(y)) => {
            if *y == 0 {
                return Err(ExprError::DivisionByZero { offset: b_off });
            }
            Ok(Value::Int(x.wrapping_rem(*y)))
        }
        (ArithOp::Mod, _, _) => Err(invalid(
            if matches!(a, Value::Int(_)) {
                b_off
            } else {
                a_off
            },
            "% needs integer operands",
        )),
        (ArithOp::Div, Value::Int(x), Value::Int(y)) => {
            if *y == 0 {
                return Err(ExprError::DivisionByZero { offset: b_off });
            }
            x.checked_div(*y).map(Value::Int).ok_or(overflow)
        }
        (ArithOp::Add, Value::Int(x), Value::Int(y)) => {
            x.checked_add(*y).map(Value::Int).ok_or(overflow)
        }
        (ArithOp::Sub, Value::Int(x), Value::Int(y)) => {
            x.checked_sub(*y).map(Value::Int).ok_or(overflow)
        }
        (ArithOp::Mul, Value::Int(x), Value::Int(y)) => {
            x.checked_mul(*y).map(Value::Int).ok_or(overflow)
        }
        _ => {
            let (x, y) = (num(&a).unwrap_or(0.0), num(&b).unwrap_or(0.0));
            match op {
                ArithOp::Add => finite(x + y),
                ArithOp::Sub => finite(x - y),
                ArithOp::Mul => finite(x * y),
                ArithOp::Div => {
                    if y == 0.0 {
                        return Err(ExprError::DivisionByZero { offset: b_off });
                    }
                    finite(x / y)
                }
                ArithOp::Mod | ArithOp::Pow => Err(overflow),
            }
        }
    }
}

fn compare_consts(op: CmpOp, a: &Value, b: &Value, b_off: usize) -> Result<bool, ExprError> {
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            num(a).unwrap_or(0.0).partial_cmp(&num(b).unwrap_or(0.0))
        }
        _ => return Err(type_mismatch(b_off, a.type_name(), b.type_name())),
    };
    Ok(match ord {
        None => op == CmpOp::Ne,
        Some(o) => match op {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        },
    })
}

/// Negation with simplification: constants fold, double negation cancels, `==` and `!=`
/// swap (exact also for NaN), `in` and `not in` swap.
pub(crate) fn negate(p: Predicate) -> Predicate {
    match p {
        Predicate::Const(b) => Predicate::Const(!b),
        Predicate::Not(inner) => *inner,
        Predicate::In {
            field,
            set,
            negated,
        } => Predicate::In {
            field,
            set,
            negated: !negated,
        },
        Predicate::Compare {
            field,
            op: op @ (CmpOp::Eq | CmpOp::Ne),
            value,
        } => Predicate::Compare {
            field,
            op: if op == CmpOp::Eq {
                CmpOp::Ne
            } else {
                CmpOp::Eq
            },
            value,
        },
        other => Predicate::Not(Box::new(other)),
    }
}

/// Conjunction with flattening and constant folding.
pub(crate) fn and(items: Vec<Predicate>) -> Predicate {
    let mut out = Vec::with_capacity(items.len());
    for p in items {
        match p {
            Predicate::Const(true) => {}
            Predicate::Const(false) => return Predicate::Const(false),
            Predicate::And(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Predicate::Const(true),
        1 => out.pop().unwrap_or(Predicate::Const(true)),
        _ => Predicate::And(out),
    }
}

/// Disjunction with flattening and constant folding.
pub(crate) fn or(items: Vec<Predicate>) -> Predicate {
    let mut out = Vec::with_capacity(items.len());
    for p in items {
        match p {
            Predicate::Const(false) => {}
            Predicate::Const(true) => return Predicate::Const(true),
            Predicate::Or(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Predicate::Const(false),
        1 => out.pop().unwrap_or(Predicate::Const(false)),
        _ => Predicate::Or(out),
    }
}
