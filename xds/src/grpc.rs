//! The gRPC edge of the ADS server, written out instead of using the generated
//! `AggregatedDiscoveryServiceServer` so that each stream's codec buffers start small: the
//! generated service allocates 8 KiB for decoding and 8 KiB for encoding per stream, which
//! dominates memory per stream once thousands of nodes are connected, while xDS requests are a
//! few hundred bytes. The buffers still grow for large responses.

use std::convert::Infallible;
use std::task::{Context, Poll};

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tonic::codec::{BufferSettings, Codec};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::server::{AdsServer, ResponseStream};

const STREAM_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Initial codec buffer per stream (tonic's default is 8 KiB).
const BUFFER_BYTES: usize = 1024;
/// How much is encoded before yielding to the transport (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Prost codec with small initial buffers.
#[derive(Debug, Clone, Copy, Default)]
struct AdsCodec;

impl Codec for AdsCodec {
    type Encode = DiscoveryResponse;
    type Decode = DiscoveryRequest;
    type Encoder = ProstEncoder<DiscoveryResponse>;
    type Decoder = ProstDecoder<DiscoveryRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }
}

/// The tonic service for `envoy.service.discovery.v3.AggregatedDiscoveryService`. Delta
/// xDS and unknown methods answer `UNIMPLEMENTED`.
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
        Box::pin(async move { Ok(Response::new(server.open_stream(request.into_inner()))) })
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
        if request.uri().path() != STREAM_PATH {
            let status = Status::unimplemented(format!(
                "{} is not served; use state-of-the-world StreamAggregatedResources",
                request.uri().path()
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let method = StreamMethod(self.server.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(AdsCodec).max_decoding_message_size(MAX_REQUEST_BYTES);
            Ok(grpc.streaming(method, request).await)
        })
    }
}
