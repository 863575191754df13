//! The bulk-write RPCs (`Insert`, `Upsert`) decoded from one contiguous slice.
//!
//! The generated server decodes every request with prost through tonic's `DecodeBuf`, a `Buf`
//! over a `BytesMut`. A packed `FloatArray` is decoded one `f32` at a time, and each step
//! goes through `BytesMut::advance`, which is not inlined: for a 10,000 × 128 insert (5 MB)
//! that was about a quarter of the server's CPU. tonic buffers a whole message before
//! decoding it, so the message is one contiguous chunk: decoding prost from that `&[u8]`
//! gives the same message (the same prost code, the same errors) several times faster.
//!
//! Decoding the packed floats one by one still cost about 2 ns per float (prost grows the
//! `Vec` as it goes). So the decoder first walks the request's wire format (tags and lengths
//! only) to the `fields_data[i].vectors.float_vector.data` payloads, renames those fields to
//! an unknown field number in the buffer, which prost then skips in one step, and fills each
//! `data` itself with one pass over the little-endian bytes. Anything but the plain layout
//! (repeated or merged vector fields, unpacked floats, a payload not a multiple of 4 bytes)
//! is left to prost alone, which gives the same message or the same error.
//!
//! [`BulkWrites`] sits between the authentication interceptor and the generated
//! `MilvusServiceServer`: it answers the two bulk-write paths itself, with the same handlers
//! ([`MilvusService`]'s `insert` / `upsert`) and the same message size limits, and passes every
//! other path to the generated server.

use std::convert::Infallible;
use std::marker::PhantomData;

use milvus::proto::milvus::milvus_service_server::MilvusService as MilvusRpc;
use milvus::proto::milvus::{InsertRequest, MutationResult, UpsertRequest};
use milvus::proto::schema::{field_data, vector_field, FieldData};
use prost::bytes::{Buf, BytesMut};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, ProstCodec};
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::Status;

use crate::server::MAX_MESSAGE_BYTES;
use crate::service::MilvusService;

const INSERT: &str = "/milvus.proto.milvus.MilvusService/Insert";
const UPSERT: &str = "/milvus.proto.milvus.MilvusService/Upsert";

/// prost's encoder, and a decoder reading the buffered message as one slice.
struct SliceCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SliceCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SliceCodec<T, U>
where
    T: Message + Send + 'static,
    U: BulkRequest + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = SliceDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SliceDecoder(PhantomData)
    }
}

/// A bulk-write request: its `fields_data` (field 5 of both `InsertRequest` and
/// `UpsertRequest`).
trait BulkRequest: Message + Default {
    fn fields_data(&mut self) -> &mut Vec<FieldData>;
}

impl BulkRequest for InsertRequest {
    fn fields_data(&mut self) -> &mut Vec<FieldData> {
        &mut self.fields_data
    }
}

impl BulkRequest for UpsertRequest {
    fn fields_data(&mut self) -> &mut Vec<FieldData> {
        &mut self.fields_data
    }
}

/// Decodes `U` from the message's bytes as one buffer (see the module documentation).
struct SliceDecoder<U>(PhantomData<U>);

impl<U: BulkRequest> Decoder for SliceDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let n = buf.remaining();
        // tonic buffered the whole message: taking it is a split of its buffer, not a copy.
        let bytes = buf.copy_to_bytes(n);
        let bytes = bytes
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        decode_bulk(bytes).map(Some)
    }
}

/// Decodes a bulk-write request, filling the float vector payloads in one pass each.
#[allow(clippy::result_large_err)] // tonic::Status, what the Decoder trait returns
fn decode_bulk<U: BulkRequest>(mut bytes: BytesMut) -> Result<U, Status> {
    // As tonic's own prost decoder: a malformed message is INTERNAL.
    let bad = |e: prost::DecodeError| Status::internal(e.to_string());
    let payloads = if cfg!(target_endian = "little") {
        float_payloads(&bytes).unwrap_or_default()
    } else {
        Vec::new()
    };
    for p in &payloads {
        bytes[p.tag] = SKIPPED_TAG;
    }
    let mut msg = U::decode(&bytes[..]).map_err(bad)?;
    let fields = msg.fields_data();
    for p in payloads {
        let vectors = fields
            .get_mut(p.field_data)
            .and_then(|f| match &mut f.field {
                Some(field_data::Field::Vectors(v)) => match &mut v.data {
                    Some(vector_field::Data::FloatVector(a)) => Some(a),
                    _ => None,
                },
                _ => None,
            });
        if let Some(a) = vectors {
            // Little-endian bytes are the f32 values (payloads are only looked for on
            // little-endian targets); one copy into an aligned Vec.
            a.data = bytemuck::pod_collect_to_vec(&bytes[p.data.clone()]);
        }
    }
    Ok(msg)
}

/// `FloatArray.data`'s tag (field 1, length-delimited) is rewritten to field 15,
/// length-delimited (same one-byte size): a field `FloatArray` does not have, which prost
/// skips without reading it.
const DATA_TAG: u8 = (1 << 3) | LEN;
const SKIPPED_TAG: u8 = (15 << 3) | LEN;

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// Where one packed float vector lies in a request.
#[derive(Debug, PartialEq)]
struct Payload {
    /// Index in `fields_data`.
    field_data: usize,
    /// Byte offset of the `FloatArray.data` tag.
    tag: usize,
    /// Bytes of the packed floats.
    data: std::ops::Range<usize>,
}

/// Reads protobuf wire format: tags, varints, lengths (no values are decoded).
struct Wire<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Wire<'a> {
    fn new(b: &'a [u8], range: std::ops::Range<usize>) -> Self {
        Self {
            b,
            pos: range.start,
            end: range.end,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b[..self.end].get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next field: (field number, wire type, offset of its tag, range of its value, a
    /// length-delimited one with its length prefix). `None` at the end or on malformed input.
    fn next(&mut self) -> Option<WireField> {
        if self.pos >= self.end {
            return None;
        }
        let at = self.pos;
        let key = self.varint()?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        let start = self.pos;
        match wire {
            VARINT => {
                self.varint()?;
            }
            I64 => self.pos += 8,
            I32 => self.pos += 4,
            LEN => {
                let len = usize::try_from(self.varint()?).ok()?;
                self.pos = self.pos.checked_add(len)?;
            }
            _ => return None,
        }
        if self.pos > self.end {
            return None;
        }
        Some((field, wire, at, start..self.pos))
    }

    /// Every field until the end, or `None` if the input is malformed.
    fn fields(mut self) -> Option<Vec<WireField>> {
        let mut out = Vec::new();
        while self.pos < self.end {
            out.push(self.next()?);
        }
        Some(out)
    }
}

/// A field as [`Wire::next`] gives it: (number, wire type, offset of its tag, range).
type WireField = (u64, u8, usize, std::ops::Range<usize>);

/// The value of the length-delimited field at `range` (as [`Wire::next`] gives it), without
/// its length prefix.
fn value(b: &[u8], range: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    let mut w = Wire::new(b, range);
    let len = usize::try_from(w.varint()?).ok()?;
    Some(w.pos..w.pos + len)
}

/// The one field of the message at `range` whose number `is_member` accepts (a oneof, or a
/// field that must not repeat): `Some(None)` when there is none, `None` when there are
/// several (prost merges or overrides them) or the bytes are malformed.
fn single(
    b: &[u8],
    range: std::ops::Range<usize>,
    is_member: impl Fn(u64) -> bool,
) -> Option<Option<WireField>> {
    let mut found = Wire::new(b, range)
        .fields()?
        .into_iter()
        .filter(|(f, ..)| is_member(*f));
    match (found.next(), found.next()) {
        (first, None) => Some(first),
        _ => None,
    }
}

/// The float vector payloads of a bulk-write request in the plain layout: each
/// `fields_data` entry (field 5) with at most one `vectors` (4) holding at most one
/// `float_vector` (2) holding one packed `data` (1). `None` for anything else, and for
/// malformed input (prost alone decodes those, with its errors).
fn float_payloads(b: &[u8]) -> Option<Vec<Payload>> {
    let mut out = Vec::new();
    let entries = Wire::new(b, 0..b.len()).fields()?;
    for (field_data, (_, wire, _, r)) in entries.into_iter().filter(|(f, ..)| *f == 5).enumerate() {
        if wire != LEN {
            return None;
        }
        if let Some((tag, data)) = packed_floats(b, value(b, r)?)? {
            out.push(Payload {
                field_data,
                tag,
                data,
            });
        }
    }
    Some(out)
}

/// In one `FieldData` at `fd`: the tag offset and bytes of `vectors.float_vector.data`;
/// `Some(None)` when the entry holds no float vectors, `None` for any other layout.
#[allow(clippy::type_complexity)]
fn packed_floats(
    b: &[u8],
    fd: std::ops::Range<usize>,
) -> Option<Option<(usize, std::ops::Range<usize>)>> {
    // FieldData: the oneof `field` is scalars (3), vectors (4) or struct_arrays (8).
    let vectors = match single(b, fd, |f| matches!(f, 3 | 4 | 8))? {
        Some((4, LEN, _, r)) => value(b, r)?,
        Some((4, ..)) => return None,
        _ => return Some(None),
    };
    // VectorField: the oneof `data` has fields 2 to 8; float_vector is 2.
    let floats = match single(b, vectors, |f| (2..=8).contains(&f))? {
        Some((2, LEN, _, r)) => value(b, r)?,
        Some((2, ..)) => return None,
        _ => return Some(None),
    };
    // FloatArray: `data` (1), one packed run.
    match single(b, floats, |f| f == 1)? {
        Some((1, LEN, tag, r)) if b[tag] == DATA_TAG => {
            let data = value(b, r)?;
            (data.len() % 4 == 0).then_some(Some((tag, data)))
        }
        Some(_) => None,
        None => Some(None),
    }
}

/// `Insert` and `Upsert` as unary services over [`MilvusService`]'s handlers.
struct InsertSvc(MilvusService);
struct UpsertSvc(MilvusService);

impl UnaryService<InsertRequest> for InsertSvc {
    type Response = MutationResult;
    type Future = BoxFuture<tonic::Response<MutationResult>, Status>;
    fn call(&mut self, req: tonic::Request<InsertRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move { MilvusRpc::insert(&svc, req).await })
    }
}

impl UnaryService<UpsertRequest> for UpsertSvc {
    type Response = MutationResult;
    type Future = BoxFuture<tonic::Response<MutationResult>, Status>;
    fn call(&mut self, req: tonic::Request<UpsertRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move { MilvusRpc::upsert(&svc, req).await })
    }
}

/// The generated Milvus server `S`, with `Insert` and `Upsert` answered by the slice decoder
/// (see the module documentation). Every other request goes to `S` unchanged.
#[derive(Clone)]
pub struct BulkWrites<S> {
    inner: S,
    service: MilvusService,
}

impl<S> BulkWrites<S> {
    /// Wraps `inner` (the generated server over `service`).
    pub fn new(inner: S, service: MilvusService) -> Self {
        Self { inner, service }
    }
}

impl<S: NamedService> NamedService for BulkWrites<S> {
    const NAME: &'static str = S::NAME;
}

fn grpc<T, U>() -> Grpc<SliceCodec<T, U>>
where
    T: Message + Send + 'static,
    U: BulkRequest + Send + 'static,
{
    Grpc::new(SliceCodec::default())
        .apply_max_message_size_config(Some(MAX_MESSAGE_BYTES), Some(MAX_MESSAGE_BYTES))
}

impl<S, B> Service<http::Request<B>> for BulkWrites<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let service = self.service.clone();
        match req.uri().path() {
            INSERT => Box::pin(async move {
                Ok(grpc::<MutationResult, InsertRequest>()
                    .unary(InsertSvc(service), req)
                    .await)
            }),
            UPSERT => Box::pin(async move {
                Ok(grpc::<MutationResult, UpsertRequest>()
                    .unary(UpsertSvc(service), req)
                    .await)
            }),
            _ => Box::pin(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milvus::proto::schema::{scalar_field, FloatArray, LongArray, ScalarField, VectorField};

    fn long_field(name: &str, v: Vec<i64>) -> FieldData {
        FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray { data: v })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn vector_field(name: &str, dim: i64, v: Vec<f32>) -> FieldData {
        FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(vector_field::Data::FloatVector(FloatArray { data: v })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn request(fields: Vec<FieldData>) -> InsertRequest {
        InsertRequest {
            collection_name: "c".into(),
            fields_data: fields,
            num_rows: 2,
            ..Default::default()
        }
    }

    /// Our decode and prost's own, on the same bytes.
    fn both(bytes: &[u8]) -> (Result<InsertRequest, String>, Result<InsertRequest, String>) {
        let ours = decode_bulk::<InsertRequest>(BytesMut::from(bytes)).map_err(|s| {
            assert_eq!(s.code(), tonic::Code::Internal);
            s.message().to_string()
        });
        let prost = InsertRequest::decode(bytes).map_err(|e| e.to_string());
        (ours, prost)
    }

    #[test]
    fn plain_requests_decode_as_prost_does_with_the_payloads_found() {
        let floats: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let req = request(vec![
            long_field("id", vec![1, 2]),
            vector_field("v", 6, floats.clone()),
            vector_field(
                "w",
                3,
                vec![f32::MIN_POSITIVE, -0.0, f32::MAX, 1.0, 2.0, 3.0],
            ),
            vector_field("empty", 4, vec![]),
        ]);
        let bytes = req.encode_to_vec();
        let found = float_payloads(&bytes).unwrap();
        assert_eq!(found.len(), 2, "{found:?}"); // an empty packed field is not encoded
        assert_eq!(found[0].field_data, 1);
        assert_eq!(found[1].field_data, 2);
        assert_eq!(found[0].data.len(), 12 * 4);
        let (ours, prost) = both(&bytes);
        assert_eq!(ours.unwrap(), req);
        assert_eq!(prost.unwrap(), req);
    }

    fn tag(field: u64, wire: u8) -> Vec<u8> {
        let mut b = Vec::new();
        prost::encoding::encode_varint((field << 3) | wire as u64, &mut b);
        b
    }

    fn len_field(field: u64, body: &[u8]) -> Vec<u8> {
        let mut b = tag(field, LEN);
        prost::encoding::encode_varint(body.len() as u64, &mut b);
        b.extend_from_slice(body);
        b
    }

    fn floats_le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|f| f.to_le_bytes()).collect()
    }

    /// A request whose one FieldData is `vectors` = VectorField bytes `vf`.
    fn with_vector_field(vf: &[u8]) -> Vec<u8> {
        let fd = len_field(4, vf);
        len_field(5, &fd)
    }

    #[test]
    fn unusual_layouts_are_left_to_prost() {
        let a = floats_le(&[1.0, 2.0]);
        let b = floats_le(&[3.0, 4.0]);
        // data split in two packed runs (prost appends them)
        let fa = [len_field(1, &a), len_field(1, &b)].concat();
        let split = with_vector_field(&len_field(2, &fa));
        // unpacked floats
        let fa: Vec<u8> = [1.0f32, 2.0]
            .iter()
            .flat_map(|f| [tag(1, I32), f.to_le_bytes().to_vec()].concat())
            .collect();
        let unpacked = with_vector_field(&len_field(2, &fa));
        // float_vector given twice (prost merges them)
        let twice = with_vector_field(
            &[
                len_field(2, &len_field(1, &a)),
                len_field(2, &len_field(1, &b)),
            ]
            .concat(),
        );
        // vectors given twice in one FieldData
        let fd = [
            len_field(4, &len_field(2, &len_field(1, &a))),
            len_field(4, &len_field(2, &len_field(1, &b))),
        ]
        .concat();
        let vectors_twice = len_field(5, &fd);
        for (name, bytes) in [
            ("split", split),
            ("unpacked", unpacked),
            ("twice", twice),
            ("vectors twice", vectors_twice),
        ] {
            assert_eq!(float_payloads(&bytes), None, "{name}");
            let (ours, prost) = both(&bytes);
            let (ours, prost) = (ours.unwrap(), prost.unwrap());
            assert_eq!(ours, prost, "{name}");
            let Some(field_data::Field::Vectors(v)) = &ours.fields_data[0].field else {
                panic!("{name}: no vectors");
            };
            let Some(vector_field::Data::FloatVector(fa)) = &v.data else {
                panic!("{name}: no floats");
            };
            let want: &[f32] = if name == "unpacked" {
                &[1.0, 2.0]
            } else {
                &[1.0, 2.0, 3.0, 4.0]
            };
            assert_eq!(fa.data, want, "{name}");
        }
    }

    #[test]
    fn malformed_requests_give_prosts_error() {
        let good = request(vec![vector_field("v", 2, vec![1.0, 2.0, 3.0, 4.0])]).encode_to_vec();
        // cut anywhere inside
        for cut in [1, 5, good.len() / 2, good.len() - 1] {
            let (ours, prost) = both(&good[..cut]);
            assert!(prost.is_err(), "cut {cut}");
            assert_eq!(ours.unwrap_err(), prost.unwrap_err(), "cut {cut}");
        }
        // packed floats whose length is not a multiple of 4
        let odd = with_vector_field(&len_field(2, &len_field(1, &[0, 0, 128, 63, 7])));
        assert_eq!(float_payloads(&odd), None);
        let (ours, prost) = both(&odd);
        assert!(prost.is_err());
        assert_eq!(ours.unwrap_err(), prost.unwrap_err());
    }
}
