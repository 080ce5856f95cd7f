//! The body deadline: a request's body must arrive whole within a total
//! time from when its head did.
//!
//! tower-http's `RequestBodyTimeoutLayer` is an idle timeout per frame: a
//! body sent one byte every 20 s never trips it, and 256 of them held the
//! API shut (issue 20, item 9). [`DeadlineBody`] counts from the start
//! instead; past the deadline reading the body fails with [`BodyDeadline`],
//! which the handlers answer with 408, and hyper closes the connection (a
//! body not read to its end cannot be followed by another request).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use http_body::{Frame, SizeHint};

use super::ApiState;

/// The body did not arrive within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub(crate) struct BodyDeadline(pub Duration);

/// A body that fails once its deadline passes.
pub(crate) struct DeadlineBody {
    inner: Body,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    /// `inner`, due within `limit` from now.
    pub(crate) fn new(inner: Body, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyDeadline(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: puts every request's body under the API's body deadline.
pub(crate) async fn apply(State(st): State<Arc<ApiState>>, req: Request) -> Request {
    let limit = st.body_timeout;
    req.map(|body| Body::new(DeadlineBody::new(body, limit)))
}

/// Whether `e` (or what caused it) is a missed body deadline.
pub(crate) fn missed(e: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(BodyDeadline(d)) = e.downcast_ref::<BodyDeadline>() {
            return Some(*d);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use futures_util::StreamExt as _;
    use http_body_util::BodyExt as _;

    use super::{DeadlineBody, missed};

    /// A body that sends a byte now and then never ends; the deadline ends
    /// it however often bytes come.
    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_fails_at_its_deadline() {
        let trickle = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"x")),
                n + 1,
            ))
        })
        .take(1000);
        let mut body = DeadlineBody::new(Body::from_stream(trickle), Duration::from_secs(5));
        let mut got = 0;
        let err = loop {
            match body.frame().await {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => break e,
                None => panic!("the body ended instead of missing its deadline"),
            }
        };
        assert!(got < 10, "{got} frames came before the deadline");
        assert_eq!(missed(&err), Some(Duration::from_secs(5)), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_body_is_read_whole() {
        let mut body = DeadlineBody::new(Body::from("hello"), Duration::from_secs(5));
        let bytes = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&bytes[..], b"hello");
    }
}
