//! Calling any method of a running server by its descriptor: requests and
//! replies travel as encoded bytes, so a suite can send messages built at
//! run time ([`prost_reflect::DynamicMessage`]) to methods it never names.

use std::{str::FromStr as _, time::Duration};

use bytes::{Buf as _, BufMut as _, Bytes};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, ServiceDescriptor};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    metadata::MetadataValue,
    transport::Channel,
};

/// Every Banso proto, as the server's reflection serves them.
pub fn pool() -> DescriptorPool {
    DescriptorPool::decode(banso_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
}

/// A codec that passes encoded messages through untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The gRPC path of a method: `/<package>.<Service>/<Method>`.
pub fn path(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// Calls `method` with `messages` (one for a unary method, the whole
/// stream for a client-streaming one) and `token` as the bearer token (none
/// when `None`). Returns the reply messages (a server stream is read to its
/// end) or the status. A call that takes longer than `timeout` is a
/// DEADLINE_EXCEEDED status made here.
pub async fn call(
    channel: &Channel,
    method: &MethodDescriptor,
    messages: Vec<Bytes>,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Bytes>, Status> {
    let run = async {
        let mut grpc = tonic::client::Grpc::new(channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        grpc.ready().await.map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let path = PathAndQuery::from_str(&path(method)).map_err(|e| Status::internal(e.to_string()))?;
        fn with_token<T>(token: Option<&str>, mut req: tonic::Request<T>) -> tonic::Request<T> {
            if let Some(t) = token {
                let v: MetadataValue<_> = format!("Bearer {t}").parse().expect("a JWT is valid metadata");
                req.metadata_mut().insert("authorization", v);
            }
            req
        }
        match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => {
                let one = messages.into_iter().next().unwrap_or_default();
                let reply = grpc.unary(with_token(token, tonic::Request::new(one)), path, RawCodec).await?;
                Ok(vec![reply.into_inner()])
            }
            (true, false) => {
                let stream = futures::stream::iter(messages);
                let reply =
                    grpc.client_streaming(with_token(token, tonic::Request::new(stream)), path, RawCodec).await?;
                Ok(vec![reply.into_inner()])
            }
            (client, true) => {
                let stream =
                    futures::stream::iter(if client { messages } else { messages.into_iter().take(1).collect() });
                let mut replies =
                    grpc.streaming(with_token(token, tonic::Request::new(stream)), path, RawCodec).await?.into_inner();
                let mut out = Vec::new();
                while let Some(m) = replies.message().await? {
                    out.push(m);
                }
                Ok(out)
            }
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(Status::new(Code::DeadlineExceeded, format!("no answer within {timeout:?} (client-side)"))),
    }
}

/// Encodes a dynamic message for [`call`].
pub fn encode(msg: &DynamicMessage) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

/// The gRPC services of the descriptor set that the server behind `channel`
/// serves, as its reflection lists them (so a new service is found without
/// naming it).
pub async fn served_services(channel: &Channel, pool: &DescriptorPool) -> Vec<ServiceDescriptor> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies =
        client.server_reflection_info(futures::stream::iter([req])).await.expect("reflection answers").into_inner();
    let reply = replies.message().await.expect("reflection answers").expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("reflection did not list services: {reply:?}")
    };
    let mut services: Vec<ServiceDescriptor> =
        list.service.iter().filter_map(|s| pool.get_service_by_name(&s.name)).collect();
    services.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    services
}
