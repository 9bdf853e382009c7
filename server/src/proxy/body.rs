//! Bodies that count what crosses the proxy: request bodies (with the plan's size limit)
//! and response bodies, which record the finished exchange in the site's meter when they
//! end, fail or are dropped (a visitor who hangs up still cost the bytes sent so far).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use platform::traffic::usage::{Exchange, SiteMeter};
use tokio::sync::OwnedSemaphorePermit;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The one body type the proxy sends and forwards.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// What a request body has counted so far, shared with the response side.
#[derive(Debug, Default)]
pub struct RequestTally {
    pub bytes: AtomicU64,
    /// The body went over the limit (the proxy answers 413).
    pub too_large: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("request body larger than {0} bytes")]
pub struct TooLarge(pub u64);

/// A request body on its way to the site, counted and cut at `limit` bytes.
pub struct CountedRequest<B> {
    inner: B,
    tally: Arc<RequestTally>,
    limit: u64,
}

impl<B> CountedRequest<B> {
    pub fn new(inner: B, tally: Arc<RequestTally>, limit: u64) -> Self {
        Self {
            inner,
            tally,
            limit,
        }
    }
}

impl<B> Body for CountedRequest<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = this
                        .tally
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if total > this.limit {
                        this.tally.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(TooLarge(this.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            other => other.map(|_| None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Records one exchange in the site's meter, once, when the response is done with.
pub struct Recorder {
    pub meter: Arc<SiteMeter>,
    pub started: Instant,
    pub status: u16,
    pub page_view: bool,
    /// The status is the site's answer, not one of the proxy's own pages.
    pub site_answered: bool,
    pub request: Arc<RequestTally>,
    /// Held until the response is finished: streaming responses count against the site's
    /// concurrency limit too.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Recorder {
    pub fn record(self, bytes_out: u64) {
        let exchange = Exchange {
            status: self.status,
            bytes_in: self.request.bytes.load(Ordering::Relaxed),
            bytes_out,
            latency: self.started.elapsed(),
            page_view: self.page_view,
            site_answered: self.site_answered,
        };
        self.meter.record(&exchange);
        platform::infra::metrics::PROXY.record(
            exchange.status,
            exchange.bytes_in,
            exchange.bytes_out,
            exchange.latency,
        );
    }
}

/// A response body on its way to the visitor, counted; its exchange is recorded when it
/// ends, fails, or is dropped.
pub struct MeteredResponse {
    inner: ProxyBody,
    sent: u64,
    recorder: Option<Recorder>,
}

impl MeteredResponse {
    pub fn new(inner: ProxyBody, recorder: Recorder) -> Self {
        let mut body = Self {
            inner,
            sent: 0,
            recorder: Some(recorder),
        };
        // An empty body is never polled to its end by some paths: record it now.
        if body.inner.is_end_stream() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            recorder.record(self.sent);
        }
    }
}

impl Drop for MeteredResponse {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for MeteredResponse {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(_) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
