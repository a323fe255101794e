//! The OTLP receivers of contract section 1: gRPC and HTTP (protobuf, JSON, gzip), for
//! logs and traces (stored) and metrics (counted).

pub mod grpc;
pub mod http;
pub mod metrics;
mod rpc_status;
pub mod traces;

pub use rpc_status::{RpcStatus, retry_info_details};
