//! Request bodies under the listener's limits: the whole body within a deadline, each
//! chunk charged to the memory budget as it arrives. And response bodies that keep a
//! request's charges and "under way" mark until they are sent.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::budget::{OverBudget, RequestCharge};
use super::metrics::ListenerMetrics;

/// How long a sender refused for the memory budget is asked to wait.
pub const OVER_BUDGET_RETRY: Duration = Duration::from_secs(1);

/// Why a request body stopped. Each carries the gRPC status it becomes, as its source,
/// where tonic looks for one when a body fails.
#[derive(Debug, thiserror::Error)]
pub enum BodyLimitError {
    #[error(
        "the request body did not arrive within {after:?} (listeners.body_timeout); send it at once or in smaller requests"
    )]
    Timeout {
        after: Duration,
        #[source]
        status: tonic::Status,
    },
    #[error("{over}")]
    OverBudget {
        over: OverBudget,
        #[source]
        status: tonic::Status,
    },
    #[error("reading the request body: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
}

impl BodyLimitError {
    fn timeout(after: Duration) -> BodyLimitError {
        let status = tonic::Status::deadline_exceeded(format!(
            "the request body did not arrive within {after:?} (listeners.body_timeout)"
        ));
        BodyLimitError::Timeout { after, status }
    }

    fn over_budget(over: OverBudget) -> BodyLimitError {
        let (code, message) = (tonic::Code::ResourceExhausted, over.to_string());
        let details = crate::otlp::retry_info_details(code, &message, OVER_BUDGET_RETRY);
        BodyLimitError::OverBudget {
            over,
            status: tonic::Status::with_details(code, message, details),
        }
    }
}

impl BodyLimitError {
    /// The limit error inside an error a handler got from reading the body, if any.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyLimitError> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<BodyLimitError>() {
                return Some(found);
            }
            current = error.source();
        }
        None
    }
}

pub struct LimitedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    charge: RequestCharge,
    listener: &'static str,
    metrics: ListenerMetrics,
}

impl<B> LimitedBody<B> {
    pub fn new(
        inner: B,
        timeout: Duration,
        charge: RequestCharge,
        listener: &'static str,
        metrics: ListenerMetrics,
    ) -> Self {
        LimitedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            timeout,
            charge,
            listener,
            metrics,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = BodyLimitError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(over) = this.charge.take(data.len())
                {
                    return Poll::Ready(Some(Err(BodyLimitError::over_budget(over))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(BodyLimitError::Read(error.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.metrics.limited(this.listener, "body_timeout");
                    Poll::Ready(Some(Err(BodyLimitError::timeout(this.timeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds `guard` until it is sent or dropped.
pub struct Guarded<B, G> {
    inner: B,
    _guard: G,
}

impl<B, G> Guarded<B, G> {
    pub fn new(inner: B, guard: G) -> Self {
        Guarded { inner, _guard: guard }
    }
}

impl<B: Body + Unpin, G: Unpin> Body for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
