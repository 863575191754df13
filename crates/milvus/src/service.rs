//! The `MilvusService` gRPC trait implemented over [`Core`].
//!
//! Every handler answers with a Milvus status, never a gRPC error (except authentication,
//! which Milvus also answers with `UNAUTHENTICATED`): the work runs on tokio's blocking pool,
//! and a failure there (even a panic) becomes an error status on the same connection. RPCs not
//! implemented here keep the generated default, gRPC `UNIMPLEMENTED`, which pymilvus reports.

use std::path::Path;
use std::sync::Arc;

use milvus::proto::common::{CompactionState, ServerInfo, Status};
use milvus::proto::milvus::milvus_service_server::MilvusService as MilvusRpc;
use milvus::proto::milvus::{
    AllocTimestampRequest, AllocTimestampResponse, BoolResponse, CheckHealthRequest,
    CheckHealthResponse, ConnectRequest, ConnectResponse, CreateCollectionRequest,
    CreateIndexRequest, DeleteRequest, DescribeCollectionRequest, DescribeCollectionResponse,
    DescribeIndexRequest, DescribeIndexResponse, DropCollectionRequest, DropIndexRequest,
    FlushRequest, FlushResponse, GetCollectionStatisticsRequest, GetCollectionStatisticsResponse,
    GetCompactionStateRequest, GetCompactionStateResponse, GetFlushStateRequest,
    GetFlushStateResponse, GetLoadStateRequest, GetLoadStateResponse, GetLoadingProgressRequest,
    GetLoadingProgressResponse, GetPersistentSegmentInfoRequest, GetPersistentSegmentInfoResponse,
    GetQuerySegmentInfoRequest, GetQuerySegmentInfoResponse, GetVersionRequest, GetVersionResponse,
    HasCollectionRequest, HasPartitionRequest, InsertRequest, ListDatabasesRequest,
    ListDatabasesResponse, LoadCollectionRequest, ManualCompactionRequest,
    ManualCompactionResponse, MutationResult, QueryRequest, QueryResults, ReleaseCollectionRequest,
    SearchRequest, SearchResults, ShowCollectionsRequest, ShowCollectionsResponse,
    ShowPartitionsRequest, ShowPartitionsResponse, UpsertRequest,
};
use tonic::{Request, Response};

use crate::core::{Core, DEFAULT_PARTITION};
use crate::status::{status_of, success, Error, Result};

/// The Milvus API level facedb speaks (the reference server's, Milvus 2.3.5).
pub const MILVUS_API_VERSION: &str = "v2.3.5";

/// The version string `GetVersion` answers: the Milvus API level, then facedb's version.
pub fn server_version() -> String {
    format!("{MILVUS_API_VERSION}-facedb-{}", env!("CARGO_PKG_VERSION"))
}

/// The Milvus gRPC service over one facedb data directory.
#[derive(Clone)]
pub struct MilvusService {
    core: Arc<Core>,
}

// The trait's own signature returns `tonic::Status` by value; nothing to box here.
#[allow(clippy::result_large_err)]
type RpcResult<T> = std::result::Result<Response<T>, tonic::Status>;

impl MilvusService {
    /// Opens the store in `dir` (created if missing).
    ///
    /// # Errors
    /// [`Error::Internal`] when the store or the Milvus metadata cannot be opened.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, facedb_store::Options::default())
    }

    /// Opens the store in `dir` (created if missing) with the given store options.
    ///
    /// # Errors
    /// [`Error::Internal`] when the store or the Milvus metadata cannot be opened.
    pub fn open_with(dir: &Path, opts: facedb_store::Options) -> Result<Self> {
        Ok(Self {
            core: Arc::new(Core::open(dir, opts)?),
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Core) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || f(&core))
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("request failed: {e}"))))
    }
}

#[allow(clippy::result_large_err)] // the gRPC trait's error type
fn status_reply(r: Result<()>) -> RpcResult<Status> {
    Ok(Response::new(status_of(&r)))
}

#[tonic::async_trait]
impl MilvusRpc for MilvusService {
    async fn connect(&self, _req: Request<ConnectRequest>) -> RpcResult<ConnectResponse> {
        Ok(Response::new(ConnectResponse {
            status: Some(success()),
            server_info: Some(ServerInfo {
                build_tags: server_version(),
                deploy_mode: "STANDALONE".into(),
                ..Default::default()
            }),
            identifier: self.core.identifier(),
        }))
    }

    async fn get_version(&self, _req: Request<GetVersionRequest>) -> RpcResult<GetVersionResponse> {
        Ok(Response::new(GetVersionResponse {
            status: Some(success()),
            version: server_version(),
        }))
    }

    async fn check_health(
        &self,
        _req: Request<CheckHealthRequest>,
    ) -> RpcResult<CheckHealthResponse> {
        Ok(Response::new(CheckHealthResponse {
            status: Some(success()),
            is_healthy: true,
            ..Default::default()
        }))
    }

    async fn list_databases(
        &self,
        _req: Request<ListDatabasesRequest>,
    ) -> RpcResult<ListDatabasesResponse> {
        Ok(Response::new(ListDatabasesResponse {
            status: Some(success()),
            db_names: vec!["default".into()],
            created_timestamp: vec![0],
            db_ids: vec![1],
        }))
    }

    async fn alloc_timestamp(
        &self,
        _req: Request<AllocTimestampRequest>,
    ) -> RpcResult<AllocTimestampResponse> {
        Ok(Response::new(AllocTimestampResponse {
            status: Some(success()),
            timestamp: self.core.timestamp(),
        }))
    }

    async fn create_collection(&self, req: Request<CreateCollectionRequest>) -> RpcResult<Status> {
        let req = req.into_inner();
        status_reply(self.run(move |c| c.create_collection(req)).await)
    }

    async fn drop_collection(&self, req: Request<DropCollectionRequest>) -> RpcResult<Status> {
        let name = req.into_inner().collection_name;
        status_reply(self.run(move |c| c.drop_collection(&name)).await)
    }

    async fn has_collection(&self, req: Request<HasCollectionRequest>) -> RpcResult<BoolResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| Ok(c.has_collection(&name))).await;
        Ok(Response::new(BoolResponse {
            status: Some(status_of(&r)),
            value: r.unwrap_or(false),
        }))
    }

    async fn describe_collection(
        &self,
        req: Request<DescribeCollectionRequest>,
    ) -> RpcResult<DescribeCollectionResponse> {
        let req = req.into_inner();
        let r = self
            .run(move |c| c.describe_collection(&req.collection_name, req.collection_id))
            .await;
        Ok(Response::new(r.unwrap_or_else(|e| {
            DescribeCollectionResponse {
                status: Some(e.describe_status()),
                ..Default::default()
            }
        })))
    }

    async fn show_collections(
        &self,
        req: Request<ShowCollectionsRequest>,
    ) -> RpcResult<ShowCollectionsResponse> {
        let t = req.into_inner().r#type;
        let r = self.run(move |c| c.show_collections(t)).await;
        Ok(Response::new(r.unwrap_or_else(|e| {
            ShowCollectionsResponse {
                status: Some(e.status()),
                ..Default::default()
            }
        })))
    }

    async fn get_collection_statistics(
        &self,
        req: Request<GetCollectionStatisticsRequest>,
    ) -> RpcResult<GetCollectionStatisticsResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| c.collection_statistics(&name)).await;
        Ok(Response::new(GetCollectionStatisticsResponse {
            status: Some(status_of(&r)),
            stats: r.unwrap_or_default(),
        }))
    }

    async fn show_partitions(
        &self,
        req: Request<ShowPartitionsRequest>,
    ) -> RpcResult<ShowPartitionsResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| c.info(&name).map(|i| i.meta)).await;
        Ok(Response::new(match r {
            Ok(m) => ShowPartitionsResponse {
                status: Some(success()),
                partition_names: vec![DEFAULT_PARTITION.into()],
                partition_i_ds: vec![m.id],
                created_timestamps: vec![m.created_ts],
                created_utc_timestamps: vec![m.created_utc_ms],
                ..Default::default()
            },
            Err(e) => ShowPartitionsResponse {
                status: Some(e.status()),
                ..Default::default()
            },
        }))
    }

    async fn has_partition(&self, req: Request<HasPartitionRequest>) -> RpcResult<BoolResponse> {
        let req = req.into_inner();
        let r = self
            .run(move |c| {
                c.info(&req.collection_name)
                    .map(|_| req.partition_name == DEFAULT_PARTITION)
            })
            .await;
        Ok(Response::new(BoolResponse {
            status: Some(status_of(&r)),
            value: r.unwrap_or(false),
        }))
    }

    async fn insert(&self, req: Request<InsertRequest>) -> RpcResult<MutationResult> {
        let req = req.into_inner();
        Ok(Response::new(mutation_reply(
            self.run(move |c| c.insert(req)).await,
        )))
    }

    async fn upsert(&self, req: Request<UpsertRequest>) -> RpcResult<MutationResult> {
        let req = req.into_inner();
        Ok(Response::new(mutation_reply(
            self.run(move |c| c.upsert(req)).await,
        )))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> RpcResult<MutationResult> {
        let req = req.into_inner();
        Ok(Response::new(mutation_reply(
            self.run(move |c| c.delete(req)).await,
        )))
    }

    async fn flush(&self, req: Request<FlushRequest>) -> RpcResult<FlushResponse> {
        let names = req.into_inner().collection_names;
        let r = self.run(move |c| c.flush(&names)).await;
        Ok(Response::new(r.unwrap_or_else(|e| FlushResponse {
            status: Some(e.status()),
            ..Default::default()
        })))
    }

    async fn get_flush_state(
        &self,
        _req: Request<GetFlushStateRequest>,
    ) -> RpcResult<GetFlushStateResponse> {
        // `Flush` persists before it answers, so every flush is complete.
        Ok(Response::new(GetFlushStateResponse {
            status: Some(success()),
            flushed: true,
        }))
    }

    async fn manual_compaction(
        &self,
        req: Request<ManualCompactionRequest>,
    ) -> RpcResult<ManualCompactionResponse> {
        let req = req.into_inner();
        let r = self
            .run(move |c| c.compact(req.collection_id, &req.collection_name))
            .await;
        Ok(Response::new(ManualCompactionResponse {
            status: Some(status_of(&r)),
            compaction_id: r.unwrap_or(0),
            compaction_plan_count: 1,
        }))
    }

    async fn get_compaction_state(
        &self,
        _req: Request<GetCompactionStateRequest>,
    ) -> RpcResult<GetCompactionStateResponse> {
        // `ManualCompaction` compacts before it answers.
        Ok(Response::new(GetCompactionStateResponse {
            status: Some(success()),
            state: CompactionState::Completed as i32,
            completed_plan_no: 1,
            ..Default::default()
        }))
    }

    async fn create_index(&self, req: Request<CreateIndexRequest>) -> RpcResult<Status> {
        let req = req.into_inner();
        status_reply(self.run(move |c| c.create_index(req)).await)
    }

    async fn get_persistent_segment_info(
        &self,
        req: Request<GetPersistentSegmentInfoRequest>,
    ) -> RpcResult<GetPersistentSegmentInfoResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| c.persistent_segments(&name)).await;
        Ok(Response::new(match r {
            Ok(infos) => GetPersistentSegmentInfoResponse {
                status: Some(success()),
                infos,
            },
            Err(e) => GetPersistentSegmentInfoResponse {
                status: Some(e.status()),
                infos: Vec::new(),
            },
        }))
    }

    async fn get_query_segment_info(
        &self,
        req: Request<GetQuerySegmentInfoRequest>,
    ) -> RpcResult<GetQuerySegmentInfoResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| c.query_segments(&name)).await;
        Ok(Response::new(match r {
            Ok(infos) => GetQuerySegmentInfoResponse {
                status: Some(success()),
                infos,
            },
            Err(e) => GetQuerySegmentInfoResponse {
                status: Some(e.status()),
                infos: Vec::new(),
            },
        }))
    }

    async fn describe_index(
        &self,
        req: Request<DescribeIndexRequest>,
    ) -> RpcResult<DescribeIndexResponse> {
        let req = req.into_inner();
        let r = self.run(move |c| c.describe_index(req)).await;
        Ok(Response::new(r.unwrap_or_else(|e| DescribeIndexResponse {
            status: Some(e.status()),
            ..Default::default()
        })))
    }

    async fn drop_index(&self, req: Request<DropIndexRequest>) -> RpcResult<Status> {
        let req = req.into_inner();
        status_reply(self.run(move |c| c.drop_index(req)).await)
    }

    async fn load_collection(&self, req: Request<LoadCollectionRequest>) -> RpcResult<Status> {
        let name = req.into_inner().collection_name;
        status_reply(self.run(move |c| c.load_collection(&name)).await)
    }

    async fn release_collection(
        &self,
        req: Request<ReleaseCollectionRequest>,
    ) -> RpcResult<Status> {
        let name = req.into_inner().collection_name;
        status_reply(self.run(move |c| c.release_collection(&name)).await)
    }

    async fn get_loading_progress(
        &self,
        req: Request<GetLoadingProgressRequest>,
    ) -> RpcResult<GetLoadingProgressResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| c.loading_progress(&name)).await;
        Ok(Response::new(GetLoadingProgressResponse {
            status: Some(status_of(&r)),
            progress: *r.as_ref().unwrap_or(&0),
            refresh_progress: r.unwrap_or(0),
        }))
    }

    async fn get_load_state(
        &self,
        req: Request<GetLoadStateRequest>,
    ) -> RpcResult<GetLoadStateResponse> {
        let name = req.into_inner().collection_name;
        let r = self.run(move |c| Ok(c.load_state(&name))).await;
        Ok(Response::new(GetLoadStateResponse {
            status: Some(status_of(&r)),
            state: r.map(|s| s as i32).unwrap_or(0),
        }))
    }

    async fn search(&self, req: Request<SearchRequest>) -> RpcResult<SearchResults> {
        let req = req.into_inner();
        let r = self.run(move |c| c.search(req)).await;
        Ok(Response::new(r.unwrap_or_else(|e| SearchResults {
            status: Some(e.status()),
            ..Default::default()
        })))
    }

    async fn query(&self, req: Request<QueryRequest>) -> RpcResult<QueryResults> {
        let req = req.into_inner();
        let r = self.run(move |c| c.query(req)).await;
        Ok(Response::new(r.unwrap_or_else(|e| QueryResults {
            status: Some(e.status()),
            ..Default::default()
        })))
    }
}

fn mutation_reply(r: Result<MutationResult>) -> MutationResult {
    r.unwrap_or_else(|e| MutationResult {
        status: Some(e.status()),
        ..Default::default()
    })
}
