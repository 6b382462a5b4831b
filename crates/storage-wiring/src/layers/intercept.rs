//! The one mechanism every layer uses: a layer is an [`Intercept`], which receives
//! each port call as a [`Call`] (what the operation is, for which tenant, on which
//! backend) and the [`Next`] step (the inner call, startable again for a retry).
//! [`super::Layered`] implements every port once on top of any `Intercept`, so a
//! layer writes only what it changes: a timeout wraps the future, a retry starts it
//! again, tracing opens a span around it. A layer that cares about some operations
//! only looks at [`Call::op`] and passes the rest through with `next.run().await`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use storage_ports::{Error, Operation, Result, TenantId};

/// The future of one attempt of a port call.
pub type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One port call as a layer sees it: names and ids only, never an argument value.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// What the operation is (declared beside the port method in `storage-ports`).
    pub op: Operation,
    /// The tenant, for calls that have one.
    pub tenant: Option<&'a TenantId>,
    /// The name of the backend that answers it.
    pub backend: &'a str,
    /// Whether the caller named what the call writes (see
    /// [`storage_ports::Repeat::WhenKeyed`]).
    pub keyed: bool,
}

impl Call<'_> {
    /// Whether repeating this call after a failure of unknown effect is safe.
    #[must_use]
    pub fn may_repeat(&self) -> bool {
        self.op.may_repeat(self.keyed)
    }

    /// The tenant's name, or `-` for calls without one (labels and span fields).
    #[must_use]
    pub fn tenant_label(&self) -> &str {
        self.tenant.map_or("-", TenantId::as_str)
    }
}

/// The inner call: each [`Next::run`] starts one attempt of it.
pub struct Next<'a, T> {
    start: Box<dyn FnMut() -> CallFuture<'a, T> + Send + 'a>,
}

impl<'a, T> Next<'a, T> {
    /// The inner call started by `start`.
    pub fn new(start: impl FnMut() -> CallFuture<'a, T> + Send + 'a) -> Self {
        Self {
            start: Box::new(start),
        }
    }

    /// A call that can be started once only (its argument is borrowed mutably for one
    /// attempt, like a prune's archive). A second start fails with a `Backend` error
    /// instead of running twice; such calls are declared [`storage_ports::Repeat::Never`]
    /// so that no layer asks.
    pub fn once(start: impl FnOnce() -> CallFuture<'a, T> + Send + 'a) -> Self
    where
        T: 'a,
    {
        let mut start = Some(start);
        Self::new(move || match start.take() {
            Some(start) => start(),
            None => Box::pin(async {
                Err(Error::backend(
                    "a call that runs once was started again by a layer",
                ))
            }),
        })
    }

    /// Starts one attempt.
    pub fn run(&mut self) -> CallFuture<'a, T> {
        (self.start)()
    }
}

impl<T> fmt::Debug for Next<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Next")
    }
}

/// A layer: what happens around every port call.
pub trait Intercept: Send + Sync + fmt::Debug + 'static {
    /// Runs `call` through `next`: at least once, again only when
    /// [`Call::may_repeat`] allows.
    fn intercept<'a, T: Send + 'a>(
        &'a self,
        call: Call<'a>,
        next: Next<'a, T>,
    ) -> impl Future<Output = Result<T>> + Send + 'a;
}
