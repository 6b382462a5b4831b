//! A run watch (E7) for backends without push notifications: read the log from a
//! sequence, then poll for new events until the `Finished` event.
//!
//! Written once here so that every polling adapter ends the stream, resumes and reports
//! errors the same way. The pause between polls is the caller's (ports have no timer).

use std::collections::VecDeque;
use std::future::Future;

use crate::ids::{RunId, TenantId};
use crate::run::{EventStream, RunEvent, RunEventKind, RunStore};

/// Streams `run`'s events from `from_seq` on, calling `store.events` again after
/// `pause()` whenever nothing new has arrived. Ends after `Finished`, or after the first
/// error (which is yielded).
pub fn poll_watch<S, P, F>(
    store: S,
    tenant: TenantId,
    run: RunId,
    from_seq: u64,
    pause: P,
) -> EventStream
where
    S: RunStore + 'static,
    P: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    struct State<S, P> {
        store: S,
        tenant: TenantId,
        run: RunId,
        next: u64,
        buf: VecDeque<RunEvent>,
        done: bool,
        pause: P,
    }
    let state = State {
        store,
        tenant,
        run,
        next: from_seq.max(1),
        buf: VecDeque::new(),
        done: false,
        pause,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.buf.pop_front() {
                s.next = e.seq + 1;
                s.done = matches!(e.kind, RunEventKind::Finished { .. });
                return Some((Ok(e), s));
            }
            if s.done {
                return None;
            }
            match s.store.events(&s.tenant, &s.run, s.next).await {
                Ok(new) if new.is_empty() => (s.pause)().await,
                Ok(new) => s.buf.extend(new),
                Err(e) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
            }
        }
    }))
}
