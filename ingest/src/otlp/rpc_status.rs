//! `google.rpc.Status` with `RetryInfo`, which OTLP uses to tell a producer when to retry.
//! Three small messages, declared here rather than pulling in a crate of all of them.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;

/// `google.rpc.Status`: the body of an OTLP/HTTP error response.
#[derive(Clone, PartialEq, Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    #[serde(skip)]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

fn retry_info(delay: Duration) -> ProtoAny {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    ProtoAny {
        type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
        value: info.encode_to_vec(),
    }
}

/// The `grpc-status-details-bin` payload for a status that carries `RetryInfo`.
pub fn retry_info_details(code: tonic::Code, message: &str, delay: Duration) -> Bytes {
    let status = RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details: vec![retry_info(delay)],
    };
    Bytes::from(status.encode_to_vec())
}

impl RpcStatus {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        RpcStatus {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }
}
