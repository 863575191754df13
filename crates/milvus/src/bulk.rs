//! The bulk-write RPCs (`Insert`, `Upsert`) decoded from the HTTP/2 frames they came in.
//!
//! Through the generated server, a 10,000 × 128 insert (5 MB) was copied three times before
//! the store saw it: tonic gathers the DATA frames into its buffer, prost decodes a packed
//! `FloatArray` one `f32` at a time (each step a `BytesMut::advance` that is not inlined,
//! about 2 ns per float), and a decoder needing the message as one mutable slice copied
//! that buffer again. Here:
//!
//! - [`BulkWrites`] reads the request's body ahead (the frames are kept, not copied). When
//!   it is exactly one uncompressed gRPC message within [`MAX_MESSAGE_BYTES`], the message
//!   is decoded from those frames and handed to the handler in the request's extensions;
//!   tonic itself then reads an empty message. Any other body (compressed, several
//!   messages, a length that does not match, too large, a read error) is handed to tonic
//!   as it came, frame for frame, and tonic answers it as before.
//! - The decoder walks the request's wire format (tags and lengths only, across frame
//!   boundaries) to the `fields_data[i].vectors.float_vector.data` payloads. prost decodes
//!   the rest with each payload's tag read as an unknown field number, which it skips in one
//!   step, and each `data` is filled with one copy of its little-endian bytes. Anything but
//!   the plain layout (repeated or merged vector fields, unpacked floats, a payload not a
//!   multiple of 4 bytes) is left to prost alone, which gives the same message or the same
//!   error.
//!
//! [`BulkWrites`] sits between the authentication interceptor and the generated
//! `MilvusServiceServer`: it answers the two bulk-write paths itself, with the same handlers
//! ([`MilvusService`]'s `insert` / `upsert`) and the same message size limits, and passes every
//! other path to the generated server.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http_body::Frame;

use milvus::proto::milvus::milvus_service_server::MilvusService as MilvusRpc;
use milvus::proto::milvus::{InsertRequest, MutationResult, UpsertRequest};
use milvus::proto::schema::{field_data, vector_field, FieldData};
use prost::bytes::{Buf, Bytes};
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

/// Decodes `U` from tonic's buffered message (the fallback path of [`BulkWrites`]).
struct SliceDecoder<U>(PhantomData<U>);

impl<U: BulkRequest> Decoder for SliceDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let n = buf.remaining();
        // tonic buffered the whole message: taking it is a split of its buffer, not a copy.
        let bytes = buf.copy_to_bytes(n);
        decode_bulk(&Chunks::new(vec![bytes])).map(Some)
    }
}

/// Decodes a bulk-write request from its bytes (in any number of chunks), filling each
/// float vector payload with one copy.
#[allow(clippy::result_large_err)] // tonic::Status, what the Decoder trait returns
fn decode_bulk<U: BulkRequest>(msg: &Chunks) -> Result<U, Status> {
    // As tonic's own prost decoder: a malformed message is INTERNAL.
    let bad = |e: prost::DecodeError| Status::internal(e.to_string());
    let payloads = if cfg!(target_endian = "little") {
        float_payloads(msg).unwrap_or_default()
    } else {
        Vec::new()
    };
    let tags: Vec<usize> = payloads.iter().map(|p| p.tag).collect();
    let mut decoded = U::decode(msg.reader(&tags)).map_err(bad)?;
    let fields = decoded.fields_data();
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
            // little-endian targets).
            a.data = msg.floats(p.data);
        }
    }
    Ok(decoded)
}

/// A message's bytes as the chunks they arrived in (HTTP/2 DATA frames), read in place.
struct Chunks {
    parts: Vec<Bytes>,
    /// Offset of each part in the message.
    starts: Vec<usize>,
    len: usize,
}

impl Chunks {
    /// The same bytes without the first `n`.
    fn skip(self, mut n: usize) -> Chunks {
        let mut parts = self.parts;
        parts.retain_mut(|p| {
            let cut = n.min(p.len());
            n -= cut;
            *p = p.slice(cut..);
            !p.is_empty()
        });
        Chunks::new(parts)
    }

    fn new(parts: Vec<Bytes>) -> Self {
        let parts: Vec<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0;
        for p in &parts {
            starts.push(len);
            len += p.len();
        }
        Chunks { parts, starts, len }
    }

    /// The part holding byte `i` and `i`'s offset in it.
    fn locate(&self, i: usize) -> (usize, usize) {
        let k = self.starts.partition_point(|s| *s <= i) - 1;
        (k, i - self.starts[k])
    }

    /// Calls `f` with each slice of `range`, in order.
    fn for_each_slice<'a>(&'a self, range: std::ops::Range<usize>, mut f: impl FnMut(&'a [u8])) {
        let mut i = range.start;
        while i < range.end {
            let (k, off) = self.locate(i);
            let n = (self.parts[k].len() - off).min(range.end - i);
            f(&self.parts[k][off..off + n]);
            i += n;
        }
    }

    /// The little-endian `f32` values of `range` (a multiple of 4 bytes), in one copy.
    fn floats(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let n = range.len() / 4;
        let mut out: Vec<f32> = Vec::with_capacity(n);
        let dst = out.as_mut_ptr() as *mut u8;
        let mut at = 0;
        self.for_each_slice(range.start..range.start + n * 4, |s| {
            // SAFETY: `at + s.len() <= n * 4` bytes, the capacity of `out`; source and
            // destination do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), dst.add(at), s.len()) };
            at += s.len();
        });
        // SAFETY: all `n * 4` bytes were written above, and any bits are a valid f32.
        unsafe { out.set_len(n) };
        out
    }

    /// The message as a `Buf` for prost, with the byte at each offset of `skip` (sorted)
    /// replaced by [`SKIPPED_TAG`].
    fn reader(&self, skip: &[usize]) -> Pieces<'_> {
        let mut parts = Vec::with_capacity(self.parts.len() + 2 * skip.len());
        let mut from = 0;
        for &t in skip.iter().chain(std::iter::once(&self.len)) {
            self.for_each_slice(from..t, |s| parts.push(s));
            if t < self.len {
                parts.push(std::slice::from_ref(&SKIPPED_TAG));
            }
            from = t + 1;
        }
        Pieces {
            parts,
            next: 0,
            remaining: self.len,
        }
    }
}

/// A `Buf` over borrowed slices.
struct Pieces<'a> {
    parts: Vec<&'a [u8]>,
    next: usize,
    remaining: usize,
}

impl Buf for Pieces<'_> {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.get(self.next).copied().unwrap_or(&[])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end");
        self.remaining -= cnt;
        while cnt > 0 {
            let p = &mut self.parts[self.next];
            if cnt < p.len() {
                *p = &p[cnt..];
                return;
            }
            cnt -= p.len();
            self.next += 1;
        }
        while self.parts.get(self.next).is_some_and(|p| p.is_empty()) {
            self.next += 1;
        }
    }
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

/// Bytes the wire-format walker reads one at a time: a slice, or a message in chunks.
trait WireBytes {
    /// Byte `i`, `None` past the end.
    fn byte(&self, i: usize) -> Option<u8>;
    /// Number of bytes.
    fn size(&self) -> usize;
}

impl WireBytes for [u8] {
    fn byte(&self, i: usize) -> Option<u8> {
        self.get(i).copied()
    }
    fn size(&self) -> usize {
        self.len()
    }
}

impl WireBytes for Chunks {
    fn byte(&self, i: usize) -> Option<u8> {
        if i >= self.len {
            return None;
        }
        let (k, off) = self.locate(i);
        Some(self.parts[k][off])
    }
    fn size(&self) -> usize {
        self.len
    }
}

/// Reads protobuf wire format: tags, varints, lengths (no values are decoded).
struct Wire<'a, W: WireBytes + ?Sized> {
    b: &'a W,
    pos: usize,
    end: usize,
}

impl<'a, W: WireBytes + ?Sized> Wire<'a, W> {
    fn new(b: &'a W, range: std::ops::Range<usize>) -> Self {
        Self {
            b,
            pos: range.start,
            end: range.end,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            if self.pos >= self.end {
                return None;
            }
            let byte = self.b.byte(self.pos)?;
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
fn value<W: WireBytes + ?Sized>(
    b: &W,
    range: std::ops::Range<usize>,
) -> Option<std::ops::Range<usize>> {
    let mut w = Wire::new(b, range);
    let len = usize::try_from(w.varint()?).ok()?;
    Some(w.pos..w.pos + len)
}

/// The one field of the message at `range` whose number `is_member` accepts (a oneof, or a
/// field that must not repeat): `Some(None)` when there is none, `None` when there are
/// several (prost merges or overrides them) or the bytes are malformed.
fn single<W: WireBytes + ?Sized>(
    b: &W,
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
fn float_payloads<W: WireBytes + ?Sized>(b: &W) -> Option<Vec<Payload>> {
    let mut out = Vec::new();
    let entries = Wire::new(b, 0..b.size()).fields()?;
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
fn packed_floats<W: WireBytes + ?Sized>(
    b: &W,
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
        Some((1, LEN, tag, r)) if b.byte(tag) == Some(DATA_TAG) => {
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
        Box::pin(async move { MilvusRpc::insert(&svc, predecoded(req)?).await })
    }
}

impl UnaryService<UpsertRequest> for UpsertSvc {
    type Response = MutationResult;
    type Future = BoxFuture<tonic::Response<MutationResult>, Status>;
    fn call(&mut self, req: tonic::Request<UpsertRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move { MilvusRpc::upsert(&svc, predecoded(req)?).await })
    }
}

/// A request decoded from the HTTP/2 frames before tonic saw it (see [`BulkWrites`]),
/// handed to the service in the request's extensions.
struct Predecoded<U>(Arc<Mutex<Option<Result<U, Status>>>>);

impl<U> Clone for Predecoded<U> {
    fn clone(&self) -> Self {
        Predecoded(self.0.clone())
    }
}

/// The request itself, or the one decoded ahead of tonic (or its decoding error).
#[allow(clippy::result_large_err)] // tonic::Status, what services return
fn predecoded<U: Send + 'static>(req: tonic::Request<U>) -> Result<tonic::Request<U>, Status> {
    let (meta, mut ext, msg) = req.into_parts();
    let msg = match ext.remove::<Predecoded<U>>() {
        Some(p) => {
            let taken = p.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            taken.unwrap_or_else(|| Err(Status::internal("request taken twice")))?
        }
        None => msg,
    };
    Ok(tonic::Request::from_parts(meta, ext, msg))
}

/// A request body as tonic reads it: the frames read ahead, then an error met while
/// reading them, then the rest of the original body.
struct Replay<B> {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<StdError>,
    rest: Option<Pin<Box<B>>>,
}

impl<B> Body for Replay<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StdError>>> {
        let this = &mut *self;
        if let Some(f) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(f)));
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match &mut this.rest {
            Some(b) => b
                .as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
            None => Poll::Ready(None),
        }
    }
}

/// Reads a request body ahead, up to the message size limit: the body to hand tonic (the
/// same frames), and the message when the body is exactly one uncompressed gRPC message
/// within the limit.
async fn read_ahead<B>(body: B) -> (Replay<B>, Option<Chunks>)
where
    B: Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    let mut body = Box::pin(body);
    let mut frames = VecDeque::new();
    let mut total = 0usize;
    loop {
        match std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            None => break,
            Some(Ok(f)) => {
                total += f.data_ref().map_or(0, |d| d.len());
                frames.push_back(f);
                if total > MAX_MESSAGE_BYTES + GRPC_PREFIX || frames.len() > MAX_READ_AHEAD_FRAMES {
                    let rest = Some(body);
                    return (
                        Replay {
                            frames,
                            error: None,
                            rest,
                        },
                        None,
                    );
                }
            }
            Some(Err(e)) => {
                let error = Some(e.into());
                return (
                    Replay {
                        frames,
                        error,
                        rest: None,
                    },
                    None,
                );
            }
        }
    }
    let data: Option<Vec<Bytes>> = frames.iter().map(|f| f.data_ref().cloned()).collect();
    let msg = data.and_then(|d| grpc_message(Chunks::new(d)));
    (
        Replay {
            frames,
            error: None,
            rest: None,
        },
        msg,
    )
}

/// Frames read ahead at most: a body cut into more (tiny frames) is handed to tonic, which
/// gathers it into one buffer, rather than kept as that many pieces. 4096 frames of the
/// 1 MiB this server allows (`HTTP2_MAX_FRAME_BYTES`) hold any message; at HTTP/2's default
/// 16 KiB, 64 MiB.
const MAX_READ_AHEAD_FRAMES: usize = 4096;

/// Bytes of a gRPC message's prefix: a compression flag and a big-endian `u32` length.
const GRPC_PREFIX: usize = 5;

/// The message of a body that is exactly one uncompressed gRPC message of at most
/// [`MAX_MESSAGE_BYTES`]; `None` otherwise (tonic then reads the body, with its errors).
fn grpc_message(body: Chunks) -> Option<Chunks> {
    let p: Vec<u8> = (0..GRPC_PREFIX)
        .map(|i| body.byte(i))
        .collect::<Option<_>>()?;
    let len = u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize;
    (p[0] == 0 && len == body.len - GRPC_PREFIX && len <= MAX_MESSAGE_BYTES)
        .then(|| body.skip(GRPC_PREFIX))
}

/// Answers a bulk write: the request's body is read ahead and decoded here when it is one
/// plain message, so tonic only sees an empty message (and copies 5 bytes instead of the
/// whole request); anything else goes through tonic as it came.
async fn bulk<U, S, B>(svc: S, req: http::Request<B>) -> http::Response<tonic::body::Body>
where
    U: BulkRequest + Send + 'static,
    S: UnaryService<U, Response = MutationResult>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    let (mut parts, body) = req.into_parts();
    let (replay, msg) = read_ahead(body).await;
    let body = match msg {
        Some(m) => {
            let decoded = decode_bulk::<U>(&m);
            drop((m, replay));
            parts
                .extensions
                .insert(Predecoded(Arc::new(Mutex::new(Some(decoded)))));
            Replay {
                frames: VecDeque::from([Frame::data(Bytes::from_static(&[0; GRPC_PREFIX]))]),
                error: None,
                rest: None,
            }
        }
        None => replay,
    };
    grpc::<MutationResult, U>()
        .unary(svc, http::Request::from_parts(parts, body))
        .await
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
    B: Body<Data = Bytes> + Send + 'static,
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
            INSERT => Box::pin(async move { Ok(bulk(InsertSvc(service), req).await) }),
            UPSERT => Box::pin(async move { Ok(bulk(UpsertSvc(service), req).await) }),
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

    /// Our decode and prost's own, on the same bytes. Ours runs on the bytes as one chunk
    /// and cut into chunks of 1, 3 and 7 bytes and in two halves, with the same result.
    fn both(bytes: &[u8]) -> (Result<InsertRequest, String>, Result<InsertRequest, String>) {
        let ours = |parts: Vec<Bytes>| {
            decode_bulk::<InsertRequest>(&Chunks::new(parts)).map_err(|s| {
                assert_eq!(s.code(), tonic::Code::Internal);
                s.message().to_string()
            })
        };
        let whole = ours(vec![Bytes::copy_from_slice(bytes)]);
        for size in [1, 3, 7, bytes.len().div_ceil(2).max(1)] {
            let parts = bytes.chunks(size).map(Bytes::copy_from_slice).collect();
            assert_eq!(ours(parts), whole, "chunks of {size}");
        }
        let prost = InsertRequest::decode(bytes).map_err(|e| e.to_string());
        (whole, prost)
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
        let found = float_payloads(&bytes[..]).unwrap();
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
            assert_eq!(float_payloads(&bytes[..]), None, "{name}");
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
        assert_eq!(float_payloads(&odd[..]), None);
        let (ours, prost) = both(&odd);
        assert!(prost.is_err());
        assert_eq!(ours.unwrap_err(), prost.unwrap_err());
    }

    /// A body of the given frames (and errors).
    struct Frames(VecDeque<Result<Frame<Bytes>, std::io::Error>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    fn framed(flag: u8, msg: &[u8], len: usize) -> Vec<u8> {
        [&[flag][..], &(len as u32).to_be_bytes(), msg].concat()
    }

    /// Reads `body` ahead: the message found, and what tonic is then handed.
    async fn ahead(
        parts: Vec<Result<Vec<u8>, &str>>,
    ) -> (Option<Vec<u8>>, Vec<Result<Vec<u8>, String>>) {
        let body = Frames(
            parts
                .into_iter()
                .map(|p| {
                    p.map(|b| Frame::data(Bytes::from(b)))
                        .map_err(std::io::Error::other)
                })
                .collect(),
        );
        let (mut replay, msg) = read_ahead(body).await;
        let msg = msg.map(|m| {
            let mut v = Vec::new();
            m.for_each_slice(0..m.len, |s| v.extend_from_slice(s));
            v
        });
        let mut handed = Vec::new();
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut replay).poll_frame(cx)).await {
            handed.push(
                f.map(|f| f.into_data().unwrap_or_default().to_vec())
                    .map_err(|e| e.to_string()),
            );
        }
        (msg, handed)
    }

    #[tokio::test]
    async fn only_one_plain_grpc_message_is_read_ahead_and_tonic_gets_the_same_frames() {
        let msg = request(vec![vector_field("v", 2, vec![1.0, 2.0, 3.0, 4.0])]).encode_to_vec();
        let whole = framed(0, &msg, msg.len());
        let (a, b) = whole.split_at(3); // a prefix split across frames
        let (found, handed) = ahead(vec![Ok(a.to_vec()), Ok(b.to_vec())]).await;
        assert_eq!(found.as_deref(), Some(&msg[..]));
        assert_eq!(handed, vec![Ok(a.to_vec()), Ok(b.to_vec())]);
        // Compressed, a length that disagrees with the body, two messages, a body error:
        // nothing is decoded here, and tonic reads the same bytes (and the error).
        for body in [
            framed(1, &msg, msg.len()),
            framed(0, &msg, msg.len() + 1),
            framed(0, &msg, msg.len() - 1),
            [framed(0, &msg, msg.len()), framed(0, &msg, msg.len())].concat(),
            vec![0, 0],
        ] {
            let (found, handed) = ahead(vec![Ok(body.clone())]).await;
            assert_eq!(found, None);
            assert_eq!(handed, vec![Ok(body)]);
        }
        let (found, handed) = ahead(vec![Ok(whole.clone()), Err("reset")]).await;
        assert_eq!(found, None);
        assert_eq!(handed, vec![Ok(whole), Err("reset".to_string())]);
    }

    #[tokio::test]
    async fn a_body_in_too_many_frames_is_left_to_tonic() {
        let msg = request(vec![vector_field("v", 2, vec![1.0; 1200])]).encode_to_vec();
        let whole = framed(0, &msg, msg.len());
        assert!(whole.len() > MAX_READ_AHEAD_FRAMES);
        let parts: Vec<Result<Vec<u8>, &str>> = whole.chunks(1).map(|b| Ok(b.to_vec())).collect();
        let (found, handed) = ahead(parts).await;
        assert_eq!(found, None);
        let handed: Vec<u8> = handed.into_iter().flat_map(|f| f.unwrap()).collect();
        assert_eq!(handed, whole);
    }

    #[test]
    fn a_message_over_the_limit_is_left_to_tonic() {
        let len = MAX_MESSAGE_BYTES + 1;
        let prefix = framed(0, &[], len);
        let body = Chunks::new(vec![Bytes::from(prefix), Bytes::from(vec![0u8; len])]);
        assert!(grpc_message(body).is_none());
    }
}
