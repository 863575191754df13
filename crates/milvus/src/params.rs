//! Request parameters on the Milvus wire: `Search`'s `search_params` key-value pairs and
//! placeholder group, `Query`'s `query_params`, and index parameters.

use std::collections::HashMap;

use milvus::proto::common::{KeyValuePair, PlaceholderGroup, PlaceholderType};
use prost::Message;

use crate::schema::{Field, FieldKind, Fields};
use crate::status::{Error, Result};

/// Largest top-k, nq and `offset + limit` Milvus accepts.
pub const MAX_TOPK: i64 = 16384;

/// Distance metric of a search (as Milvus names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Squared Euclidean distance (smaller is better).
    L2,
    /// Inner product (larger is better).
    Ip,
    /// Cosine similarity (larger is better).
    Cosine,
}

impl MetricKind {
    /// Parses a Milvus metric name (case-insensitive).
    ///
    /// # Errors
    /// [`Error::Rejected`] for other metrics (facedb has no binary metrics).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "L2" => Ok(Self::L2),
            "IP" => Ok(Self::Ip),
            "COSINE" => Ok(Self::Cosine),
            other => Err(Error::Rejected(format!(
                "metric type {other} not found or not supported, supported: [L2 IP COSINE]"
            ))),
        }
    }

    /// Milvus's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::L2 => "L2",
            Self::Ip => "IP",
            Self::Cosine => "COSINE",
        }
    }
}

/// The key-value pairs of a request as a map (later keys win, as in Milvus).
pub fn kv_map(kvs: &[KeyValuePair]) -> HashMap<&str, &str> {
    kvs.iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect()
}

/// Parsed `search_params`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    /// The vector field searched.
    pub anns_field: String,
    /// Results per query (`limit`), 1..=16384.
    pub topk: usize,
    /// Results skipped per query before `topk` are returned.
    pub offset: usize,
    /// Metric asked for, if any (else the index's).
    pub metric: Option<MetricKind>,
    /// Range search: `radius` (outer bound) from `params`.
    pub radius: Option<f32>,
    /// Range search: `range_filter` (inner bound) from `params`.
    pub range_filter: Option<f32>,
    /// Decimal places scores are rounded to; -1 keeps them.
    pub round_decimal: i32,
    /// Index search parameters from `params`: `nprobe` (IVF), `ef` (HNSW) and facedb's
    /// `rerank` (candidates re-scored exactly = `topk × rerank`).
    pub knobs: facedb_store::SearchKnobs,
}

fn parse_i64(key: &str, v: &str) -> Result<i64> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| Error::Rejected(format!("{key} [{v}] is invalid, should be an integer")))
}

/// Parses `search_params` against the collection's fields.
///
/// Keys (as pymilvus sends them): `anns_field` (may be absent when the collection has one vector
/// field), `topk`, `offset`, `metric_type`, `round_decimal`, `params` (JSON object: `nprobe`,
/// `ef` and facedb's `rerank` reach the index, checked against its ranges by the store; other
/// keys are accepted and ignored; `radius` and `range_filter` make a range search),
/// `ignore_growing` (accepted, every row is searched).
///
/// # Errors
/// [`Error::Rejected`] with Milvus 2.3.5's messages: top-k outside 1..=16384
/// ("topk [0] is invalid, top k should be in range [1, 16384], but got 0"), unknown or
/// non-vector `anns_field`, bad `params` JSON, `round_decimal` outside -1..=6, negative offset,
/// `offset + topk` above 16384, `group_by_field` (not supported).
pub fn parse_search_params(kvs: &[KeyValuePair], fields: &Fields) -> Result<SearchParams> {
    let m = kv_map(kvs);
    let anns_field = match m
        .get("anns_field")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(name) => {
            let f = fields.get(name).ok_or_else(|| {
                Error::Rejected(format!(
                    "failed to create query plan: failed to get field schema by name: fieldName({name}) not found"
                ))
            })?;
            if !f.kind.is_vector() {
                return Err(Error::Rejected(format!(
                    "failed to create query plan: field ({name}) to search is not of vector data type"
                )));
            }
            name.to_string()
        }
        None => {
            let mut v = fields.vectors();
            match (v.next(), v.next()) {
                (Some(f), None) => f.name.clone(),
                _ => {
                    return Err(Error::Rejected(
                        "multiple anns_fields exist, please specify a anns_field in search_params"
                            .into(),
                    ))
                }
            }
        }
    };
    let topk_raw = m
        .get("topk")
        .ok_or_else(|| Error::Rejected("topk not found in search_params".into()))?;
    let topk = topk_raw.trim().parse::<i64>().map_err(|_| {
        Error::Rejected(format!(
            "topk [{topk_raw}] is invalid, top k should be in range [1, {MAX_TOPK}], but got {topk_raw}"
        ))
    })?;
    if !(1..=MAX_TOPK).contains(&topk) {
        return Err(Error::Rejected(format!(
            "topk [{topk}] is invalid, top k should be in range [1, {MAX_TOPK}], but got {topk}"
        )));
    }
    let offset = match m.get("offset") {
        Some(v) => parse_i64("offset", v)?,
        None => 0,
    };
    if offset < 0 {
        return Err(Error::Rejected(format!(
            "offset [{offset}] is invalid, should be gte than 0"
        )));
    }
    if offset > 0 && topk + offset > MAX_TOPK {
        return Err(Error::Rejected(format!(
            "topk+offset [{}] is invalid, should be in range [1, {MAX_TOPK}], but got {}",
            topk + offset,
            topk + offset
        )));
    }
    let metric = match m
        .get("metric_type")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(MetricKind::parse(s)?),
        None => None,
    };
    let round_decimal = match m.get("round_decimal") {
        Some(v) => parse_i64("round_decimal", v)?,
        None => -1,
    };
    if !(-1..=6).contains(&round_decimal) {
        return Err(Error::Rejected(format!(
            "round_decimal {round_decimal} is invalid, should be -1 or an integer in range [0, 6]"
        )));
    }
    if m.get("group_by_field").is_some_and(|v| !v.is_empty()) {
        return Err(Error::Unsupported("search with group_by_field".into()));
    }
    let (mut radius, mut range_filter) = (None, None);
    let mut knobs = facedb_store::SearchKnobs::default();
    if let Some(raw) = m.get("params").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| Error::Rejected(format!("search params {raw} is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::Rejected(format!("search params {raw} is not a JSON object")))?;
        let num = |key: &str| -> Result<Option<f32>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x
                    .as_f64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                    .map(|f| Some(f as f32))
                    .ok_or_else(|| Error::Rejected(format!("{key} {x} is not a number"))),
            }
        };
        radius = num("radius")?;
        range_filter = num("range_filter")?;
        let int = |key: &str| -> Result<Option<usize>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x
                    .as_i64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| {
                        Error::Rejected(format!("{key} [{x}] is invalid, should be an integer"))
                    })
                    .and_then(|v| match usize::try_from(v) {
                        Ok(v) if v > 0 => Ok(Some(v)),
                        _ => Err(Error::Rejected(format!(
                            "param '{key}' ({v}) should be a positive integer"
                        ))),
                    }),
            }
        };
        knobs.nprobe = int("nprobe")?;
        knobs.ef = int("ef")?;
        knobs.rerank = int("rerank")?;
        if range_filter.is_some() && radius.is_none() {
            return Err(Error::Rejected(
                "range_filter is set but radius is missing in search params".into(),
            ));
        }
    }
    Ok(SearchParams {
        anns_field,
        topk: topk as usize,
        offset: offset as usize,
        metric,
        radius,
        range_filter,
        round_decimal: round_decimal as i32,
        knobs,
    })
}

/// Decodes a serialized `common.PlaceholderGroup` of float vectors into `nq x dim` row-major
/// values.
///
/// Each placeholder value holds one query vector as `dim` little-endian f32 (pymilvus's
/// `vectorFloatToBytes`).
///
/// # Errors
/// [`Error::Rejected`]: undecodable bytes, not exactly one placeholder, a non-float-vector
/// type, nq outside 1..=16384, or a vector whose length is not `dim` ("vector dimension
/// mismatch").
pub fn decode_placeholders(bytes: &[u8], field: &Field) -> Result<(usize, Vec<f32>)> {
    let FieldKind::FloatVector { dim } = field.kind else {
        return Err(Error::Rejected(format!(
            "failed to create query plan: field ({}) to search is not of vector data type",
            field.name
        )));
    };
    let group = PlaceholderGroup::decode(bytes)
        .map_err(|e| Error::Rejected(format!("invalid placeholder group: {e}")))?;
    if group.placeholders.len() != 1 {
        return Err(Error::Rejected(format!(
            "placeholder group must hold exactly one placeholder, got {}",
            group.placeholders.len()
        )));
    }
    let ph = &group.placeholders[0];
    if ph.r#type != PlaceholderType::FloatVector as i32 {
        let name = PlaceholderType::try_from(ph.r#type)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| ph.r#type.to_string());
        return Err(Error::Unsupported(format!(
            "placeholder type {name}; facedb searches float vectors"
        )));
    }
    let nq = ph.values.len();
    if nq == 0 || nq as i64 > MAX_TOPK {
        return Err(Error::Rejected(format!(
            "nq [{nq}] is invalid, nq (number of search vector per search request) should be in range [1, {MAX_TOPK}]"
        )));
    }
    let mut out = Vec::with_capacity(nq * dim);
    for (i, v) in ph.values.iter().enumerate() {
        if v.len() != dim * 4 {
            return Err(Error::Rejected(format!(
                "vector dimension mismatch: query vector {i} has {} float values, field {} has dim {dim}",
                v.len() as f64 / 4.0,
                field.name
            )));
        }
        out.extend(
            v.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok((nq, out))
}

/// Parsed `query_params` of `Query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryParams {
    /// Most rows returned; `None` = all matches.
    pub limit: Option<usize>,
    /// Rows skipped first.
    pub offset: usize,
}

/// Parses `query_params` (`limit`, `offset`; `ignore_growing` and
/// `reduce_stop_for_best` are accepted and change nothing).
///
/// # Errors
/// [`Error::Rejected`]: non-integer or negative values, `offset + limit` above 16384
/// (Milvus's "max query result window").
pub fn parse_query_params(kvs: &[KeyValuePair]) -> Result<QueryParams> {
    let m = kv_map(kvs);
    let limit = match m.get("limit") {
        Some(v) => Some(parse_i64("limit", v)?),
        None => None,
    };
    let offset = match m.get("offset") {
        Some(v) => parse_i64("offset", v)?,
        None => 0,
    };
    if let Some(l) = limit {
        if l <= 0 || offset < 0 || l + offset > MAX_TOPK {
            return Err(Error::Rejected(format!(
                "invalid max query result window, (offset+limit) should be in range [1, {MAX_TOPK}], but got {}",
                l + offset
            )));
        }
    } else if offset < 0 {
        return Err(Error::Rejected(format!(
            "offset [{offset}] is invalid, should be gte than 0"
        )));
    }
    Ok(QueryParams {
        limit: limit.map(|l| l as usize),
        offset: offset as usize,
    })
}

/// Rounds a score to `decimals` places as Milvus does (`round_decimal`); -1 keeps it.
pub fn round_score(x: f32, decimals: i32) -> f32 {
    if decimals < 0 {
        return x;
    }
    let m = 10f64.powi(decimals);
    ((x as f64 * m + 0.5).floor() / m) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Field;
    use milvus::proto::common::PlaceholderValue;

    fn kv(k: &str, v: &str) -> KeyValuePair {
        KeyValuePair {
            key: k.into(),
            value: v.into(),
        }
    }

    fn field(name: &str, kind: FieldKind, id: i64) -> Field {
        Field {
            id,
            name: name.into(),
            kind,
            is_primary: id == 100,
            auto_id: false,
            is_dynamic: false,
            description: String::new(),
        }
    }

    fn fields() -> Fields {
        Fields {
            fields: vec![
                field("id", FieldKind::Int64, 100),
                field("name", FieldKind::VarChar { max_length: 20 }, 101),
                field("metrics", FieldKind::FloatVector { dim: 3 }, 102),
            ],
            pk: 0,
            dynamic: false,
        }
    }

    #[test]
    fn pymilvus_227_params() {
        let p = parse_search_params(
            &[
                kv("anns_field", "metrics"),
                kv("topk", "10"),
                kv("metric_type", "L2"),
                kv("params", "{\"nprobe\":10}"),
                kv("round_decimal", "-1"),
                kv("offset", "0"),
                kv("ignore_growing", "False"),
            ],
            &fields(),
        )
        .unwrap();
        assert_eq!(p.anns_field, "metrics");
        assert_eq!((p.topk, p.offset, p.round_decimal), (10, 0, -1));
        assert_eq!(p.metric, Some(MetricKind::L2));
        assert_eq!((p.radius, p.range_filter), (None, None));
    }

    #[test]
    fn index_knobs_must_be_positive_integers() {
        let parse =
            |params: &str| parse_search_params(&[kv("topk", "3"), kv("params", params)], &fields());
        let p = parse("{\"nprobe\": 16, \"ef\": \"64\"}").unwrap();
        assert_eq!((p.knobs.nprobe, p.knobs.ef), (Some(16), Some(64)));
        for (params, msg) in [
            (
                "{\"nprobe\": -3}",
                "param 'nprobe' (-3) should be a positive integer",
            ),
            ("{\"ef\": 0}", "param 'ef' (0) should be a positive integer"),
            (
                "{\"nprobe\": 1.5}",
                "nprobe [1.5] is invalid, should be an integer",
            ),
        ] {
            match parse(params) {
                Err(Error::Rejected(m)) => assert_eq!(m, msg),
                other => panic!("{params}: {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_and_range() {
        let p = parse_search_params(
            &[
                kv("topk", "3"),
                kv("params", "{\"radius\": 5.5, \"range_filter\": 1}"),
            ],
            &fields(),
        )
        .unwrap();
        assert_eq!(p.anns_field, "metrics");
        assert_eq!(p.metric, None);
        assert_eq!((p.radius, p.range_filter), (Some(5.5), Some(1.0)));
    }

    #[test]
    fn topk_messages_match_milvus() {
        for (k, msg) in [
            (
                "0",
                "topk [0] is invalid, top k should be in range [1, 16384], but got 0",
            ),
            (
                "-1",
                "topk [-1] is invalid, top k should be in range [1, 16384], but got -1",
            ),
            (
                "16385",
                "topk [16385] is invalid, top k should be in range [1, 16384], but got 16385",
            ),
        ] {
            let e = parse_search_params(&[kv("topk", k)], &fields()).unwrap_err();
            assert_eq!(e.to_string(), msg);
        }
        assert_eq!(
            parse_search_params(&[kv("topk", "16384")], &fields())
                .unwrap()
                .topk,
            16384
        );
    }

    #[test]
    fn anns_field_errors() {
        let e = parse_search_params(&[kv("topk", "1"), kv("anns_field", "vec")], &fields())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to create query plan: failed to get field schema by name: fieldName(vec) not found"
        );
        let e = parse_search_params(&[kv("topk", "1"), kv("anns_field", "name")], &fields())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to create query plan: field (name) to search is not of vector data type"
        );
    }

    fn group(vectors: &[&[f32]]) -> Vec<u8> {
        PlaceholderGroup {
            placeholders: vec![PlaceholderValue {
                tag: "$0".into(),
                r#type: PlaceholderType::FloatVector as i32,
                values: vectors
                    .iter()
                    .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
                    .collect(),
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn placeholders() {
        let f = field("metrics", FieldKind::FloatVector { dim: 3 }, 102);
        let (nq, v) =
            decode_placeholders(&group(&[&[1.75, 72.0, 24.0], &[1.0, 2.0, 3.0]]), &f).unwrap();
        assert_eq!(nq, 2);
        assert_eq!(v, vec![1.75, 72.0, 24.0, 1.0, 2.0, 3.0]);
        let e = decode_placeholders(&group(&[&[1.0, 2.0, 3.0, 4.0]]), &f).unwrap_err();
        assert!(e.to_string().contains("vector dimension mismatch"));
        assert!(decode_placeholders(&group(&[]), &f).is_err());
        assert!(decode_placeholders(b"\xff\xff", &f).is_err());
    }

    #[test]
    fn query_params() {
        assert_eq!(
            parse_query_params(&[kv("limit", "3"), kv("offset", "1")]).unwrap(),
            QueryParams {
                limit: Some(3),
                offset: 1
            }
        );
        assert_eq!(
            parse_query_params(&[kv("ignore_growing", "False")]).unwrap(),
            QueryParams {
                limit: None,
                offset: 0
            }
        );
        assert!(parse_query_params(&[kv("limit", "16384"), kv("offset", "1")]).is_err());
        assert!(parse_query_params(&[kv("limit", "x")]).is_err());
    }

    #[test]
    fn rounding() {
        assert_eq!(round_score(10.002_499, 2), 10.0);
        assert_eq!(round_score(1.23456, 3), 1.235);
        assert_eq!(round_score(1.23456, -1), 1.23456);
    }
}
