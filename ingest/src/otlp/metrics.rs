//! OTLP metrics (`MetricsService/Export`, `POST /v1/metrics`): accepted and counted, not
//! stored. Agents send their metrics to the same endpoint as their logs (Claude Code
//! and Codex export both when pointed at one `OTEL_EXPORTER_OTLP_ENDPOINT`); refusing
//! them makes the agent report export errors and retry. Each data point is counted in
//! `cordon_otlp_metric_points{transport}`; nothing of them is kept.

use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

use crate::error::IngestError;
use crate::ingestor::{Ingestor, Transport};

pub const METRICS_PATH: &str = "/v1/metrics";
pub const METRICS_EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// The data points of every metric in `request`.
pub fn count_points(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .map(|metric| match &metric.data {
            Some(Data::Gauge(gauge)) => gauge.data_points.len(),
            Some(Data::Sum(sum)) => sum.data_points.len(),
            Some(Data::Histogram(histogram)) => histogram.data_points.len(),
            Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
            Some(Data::Summary(summary)) => summary.data_points.len(),
            None => 0,
        })
        .sum()
}

/// Decodes a metrics request, counts its points and answers OTLP's success.
pub fn accept(
    ingestor: &Ingestor,
    transport: Transport,
    request: Result<ExportMetricsServiceRequest, IngestError>,
) -> Result<ExportMetricsServiceResponse, IngestError> {
    let request = request?;
    let points = count_points(&request);
    ingestor
        .metrics()
        .metric_points
        .get_or_create(&vec![("transport", transport.label())])
        .inc_by(points as u64);
    Ok(ExportMetricsServiceResponse { partial_success: None })
}

/// A metrics request in protobuf.
pub fn decode_protobuf(body: &[u8]) -> Result<ExportMetricsServiceRequest, IngestError> {
    ExportMetricsServiceRequest::decode(body).map_err(|error| {
        IngestError::Undecodable(format!(
            "body is not an OTLP ExportMetricsServiceRequest (protobuf): {error}"
        ))
    })
}

/// A metrics request in OTLP JSON.
pub fn decode_json(body: &[u8]) -> Result<ExportMetricsServiceRequest, IngestError> {
    serde_json::from_slice(body).map_err(|error| {
        IngestError::Undecodable(format!(
            "body is not an OTLP ExportMetricsServiceRequest (JSON): {error}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    };

    use super::*;

    #[test]
    fn every_data_point_is_counted_and_garbage_is_refused() {
        let points = |n| (0..n).map(|_| NumberDataPoint::default()).collect::<Vec<_>>();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            data: Some(Data::Sum(Sum {
                                data_points: points(3),
                                ..Default::default()
                            })),
                            ..Default::default()
                        },
                        Metric {
                            data: Some(Data::Gauge(Gauge { data_points: points(2) })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(count_points(&decode_protobuf(&request.encode_to_vec()).unwrap()), 5);
        assert!(decode_protobuf(b"\xff\xff not protobuf").is_err());
        assert!(decode_json(b"{\"resourceMetrics\": 7}").is_err());
    }
}
