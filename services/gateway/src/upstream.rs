//! The services behind the gateway: one gRPC channel per service, and calls
//! made with dynamic messages decoded by their descriptors, so the gateway
//! has no code per RPC and serves a service added later unchanged.

use std::{collections::HashMap, time::Duration};

use bytes::Buf;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::{Channel, Endpoint},
};

/// The Banso services in the descriptor pool (every `banso.*` service, not
/// the event or type packages, which declare none).
pub fn services(pool: &DescriptorPool) -> impl Iterator<Item = prost_reflect::ServiceDescriptor> + '_ {
    pool.services().filter(|s| s.full_name().starts_with("banso."))
}

/// The short name of a service, the second part of its package:
/// `banso.accounts.v1.AccountsService` → `accounts`. It names the service's
/// address setting and its Kubernetes Service (`banso-accounts`).
pub fn short_name(service_full_name: &str) -> &str {
    service_full_name.split('.').nth(1).unwrap_or(service_full_name)
}

/// One channel per service, by full name.
#[derive(Clone, Debug, Default)]
pub struct Upstreams {
    channels: HashMap<String, Channel>,
    max_message_bytes: usize,
}

impl Upstreams {
    /// Every service of `pool` reached through `channel` (`banso up`: the
    /// process's own gRPC server).
    pub fn all_at(pool: &DescriptorPool, channel: Channel, max_message_bytes: usize) -> Self {
        let channels = services(pool).map(|s| (s.full_name().to_owned(), channel.clone())).collect();
        Upstreams { channels, max_message_bytes }
    }

    /// Each service at its URL: `urls` maps short names (`accounts`) to
    /// `http://host:port`. Channels connect lazily and reconnect on their
    /// own, so the gateway starts before the services it fronts.
    pub fn from_urls(
        pool: &DescriptorPool,
        urls: &HashMap<String, String>,
        connect_timeout: Duration,
        max_message_bytes: usize,
    ) -> anyhow::Result<Self> {
        let mut channels = HashMap::new();
        for s in services(pool) {
            let short = short_name(s.full_name());
            let Some(url) = urls.get(short) else { continue };
            let endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| anyhow::anyhow!("upstream {short}: {url:?} is not a URL: {e}"))?
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30));
            channels.insert(s.full_name().to_owned(), endpoint.connect_lazy());
        }
        Ok(Upstreams { channels, max_message_bytes })
    }

    /// The channel to the service `full_name`, if it is served.
    pub fn channel(&self, service_full_name: &str) -> Option<Channel> {
        self.channels.get(service_full_name).cloned()
    }

    /// The channel for a gRPC path `/banso.accounts.v1.AccountsService/GetAccount`.
    pub fn channel_for_path(&self, grpc_path: &str) -> Option<Channel> {
        let service = grpc_path.strip_prefix('/')?.split('/').next()?;
        self.channel(service)
    }

    /// The full names of the services reached.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    fn client(&self, method: &MethodDescriptor) -> Result<(tonic::client::Grpc<Channel>, PathAndQuery), Status> {
        let service = method.parent_service();
        let channel = self.channel(service.full_name()).ok_or_else(|| {
            Status::unimplemented(format!("service {} is not reached by this gateway", service.name()))
        })?;
        let grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes);
        let path = PathAndQuery::try_from(format!("/{}/{}", service.full_name(), method.name()))
            .map_err(|e| Status::internal(format!("method path: {e}")))?;
        Ok((grpc, path))
    }

    /// Calls a unary method.
    pub async fn unary(
        &self,
        method: &MethodDescriptor,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<tonic::Response<DynamicMessage>, Status> {
        let (mut grpc, path) = self.client(method)?;
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("{} is unreachable: {e}", method.parent_service().name())))?;
        grpc.unary(request, path, DynamicCodec::new(method.output())).await
    }

    /// Calls a client-streaming method with the messages of `stream`.
    pub async fn client_streaming<S>(
        &self,
        method: &MethodDescriptor,
        request: tonic::Request<S>,
    ) -> Result<tonic::Response<DynamicMessage>, Status>
    where
        S: futures::Stream<Item = DynamicMessage> + Send + 'static,
    {
        let (mut grpc, path) = self.client(method)?;
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("{} is unreachable: {e}", method.parent_service().name())))?;
        grpc.client_streaming(request, path, DynamicCodec::new(method.output())).await
    }
}

/// Encodes any dynamic message; decodes replies as one message type.
#[derive(Clone)]
pub struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(response: MessageDescriptor) -> Self {
        DynamicCodec { response }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.response.clone())
    }
}

pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst).map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.0.clone(), bytes)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding the reply: {e}")))
    }
}
