//! The gRPC edge of the ADS server, written out instead of using the generated
//! `AggregatedDiscoveryServiceServer` so that each stream's codec buffers start small: the
//! generated service allocates 8 KiB for decoding and 8 KiB for encoding per stream, which
//! dominates memory per stream once thousands of nodes are connected, while xDS requests are a
//! few hundred bytes. The buffers still grow for large responses.

use std::convert::Infallible;
use std::task::{Context, Poll};

use std::marker::PhantomData;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tonic::codec::{BufferSettings, Codec};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::server::{AdsServer, DeltaResponseStream, ResponseStream};

const STREAM_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Initial codec buffer per stream (tonic's default is 8 KiB).
const BUFFER_BYTES: usize = 1024;
/// How much is encoded before yielding to the transport (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Prost codec with small initial buffers, for requests `Q` and responses `R`.
#[derive(Debug, Clone, Copy)]
struct AdsCodec<Q, R>(PhantomData<fn(Q) -> R>);

impl<Q, R> Default for AdsCodec<Q, R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Q, R> Codec for AdsCodec<Q, R>
where
    Q: prost::Message + Default + Send + 'static,
    R: prost::Message + Send + 'static,
{
    type Encode = R;
    type Decode = Q;
    type Encoder = ProstEncoder<R>;
    type Decoder = ProstDecoder<Q>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }
}

/// The tonic service for `envoy.service.discovery.v3.AggregatedDiscoveryService`, both state
/// of the world and Delta. Unknown methods answer `UNIMPLEMENTED`.
#[derive(Debug, Clone)]
pub struct AdsService {
    server: AdsServer,
}

impl AdsService {
    pub(crate) fn new(server: AdsServer) -> Self {
        Self { server }
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

struct StreamMethod(AdsServer);

impl StreamingService<DiscoveryRequest> for StreamMethod {
    type Response = DiscoveryResponse;
    type ResponseStream = ResponseStream;
    type Future = BoxFuture<Response<ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let server = self.0.clone();
        let certs = request.peer_certs();
        Box::pin(async move {
            Ok(Response::new(
                server.open_stream(certs, request.into_inner()),
            ))
        })
    }
}

struct DeltaMethod(AdsServer);

impl StreamingService<DeltaDiscoveryRequest> for DeltaMethod {
    type Response = DeltaDiscoveryResponse;
    type ResponseStream = DeltaResponseStream;
    type Future = BoxFuture<Response<DeltaResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DeltaDiscoveryRequest>>) -> Self::Future {
        let server = self.0.clone();
        let certs = request.peer_certs();
        Box::pin(async move {
            Ok(Response::new(
                server.open_delta_stream(certs, request.into_inner()),
            ))
        })
    }
}

impl<B> Service<http::Request<B>> for AdsService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.server.clone();
        match request.uri().path() {
            STREAM_PATH => Box::pin(async move {
                let codec = AdsCodec::<DiscoveryRequest, DiscoveryResponse>::default();
                let mut grpc = Grpc::new(codec).max_decoding_message_size(MAX_REQUEST_BYTES);
                Ok(grpc.streaming(StreamMethod(server), request).await)
            }),
            DELTA_PATH => Box::pin(async move {
                let codec = AdsCodec::<DeltaDiscoveryRequest, DeltaDiscoveryResponse>::default();
                let mut grpc = Grpc::new(codec).max_decoding_message_size(MAX_REQUEST_BYTES);
                Ok(grpc.streaming(DeltaMethod(server), request).await)
            }),
            other => {
                let status = Status::unimplemented(format!("{other} is not served"));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}
