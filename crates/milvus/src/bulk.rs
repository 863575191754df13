//! The bulk-write RPCs (`Insert`, `Upsert`) decoded from one contiguous slice.
//!
//! The generated server decodes every request with prost through tonic's `DecodeBuf`, a `Buf`
//! over a `BytesMut`. A packed `FloatArray` is decoded one `f32` at a time, and each step
//! goes through `BytesMut::advance`, which is not inlined: for a 10,000 × 128 insert (5 MB)
//! that was about a quarter of the server's CPU. tonic buffers a whole message before
//! decoding it, so the message is one contiguous chunk: decoding prost from that `&[u8]`
//! gives the same message (the same prost code, the same errors) several times faster.
//!
//! [`BulkWrites`] sits between the authentication interceptor and the generated
//! `MilvusServiceServer`: it answers the two bulk-write paths itself, with the same handlers
//! ([`MilvusService`]'s `insert` / `upsert`) and the same message size limits, and passes every
//! other path to the generated server.

use std::convert::Infallible;
use std::marker::PhantomData;

use milvus::proto::milvus::milvus_service_server::MilvusService as MilvusRpc;
use milvus::proto::milvus::{InsertRequest, MutationResult, UpsertRequest};
use prost::bytes::Buf;
use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, ProstCodec};
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
    U: Message + Default + Send + 'static,
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

/// Decodes `U` from the message's bytes as a `&[u8]` (copied into one buffer first in the
/// unexpected case that they are not contiguous).
struct SliceDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for SliceDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let n = buf.remaining();
        // As tonic's own prost decoder: a malformed message is INTERNAL.
        let bad = |e: prost::DecodeError| Status::internal(e.to_string());
        let msg = if buf.chunk().len() == n {
            let m = U::decode(buf.chunk()).map_err(bad)?;
            buf.advance(n);
            m
        } else {
            let bytes = buf.copy_to_bytes(n);
            U::decode(&bytes[..]).map_err(bad)?
        };
        Ok(Some(msg))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
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
    U: Message + Default + Send + 'static,
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
