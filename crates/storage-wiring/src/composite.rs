//! Operations over a wiring that mixes backends: capabilities per concern from the
//! backend that keeps it, health of every backend, stats summed per concern.

use std::sync::Arc;

use async_trait::async_trait;
use storage_ports::{
    Capabilities, Error, Health, Operations, Result, SchemaStatus, StoreStats, TenantId,
};

use crate::config::Concern;

/// The operations port of a mixed wiring.
#[derive(Debug)]
pub(crate) struct CompositeOperations {
    /// Each distinct backend once, with the concerns it keeps.
    pub backends: Vec<(Arc<dyn Operations>, Vec<Concern>)>,
    /// Whether runs and the queue share one backend that offers transactions.
    pub transactions: bool,
}

#[async_trait]
impl Operations for CompositeOperations {
    fn capabilities(&self) -> Capabilities {
        let names: Vec<String> = self
            .backends
            .iter()
            .map(|(o, _)| o.capabilities().backend)
            .collect();
        let mut c = Capabilities::none(names.join("+"));
        for (ops, concerns) in &self.backends {
            let b = ops.capabilities();
            for concern in concerns {
                match concern {
                    Concern::Workflows => c.workflows = b.workflows,
                    Concern::Runs => {
                        c.runs = b.runs;
                        c.run_watch = b.run_watch;
                    }
                    Concern::Metrics => c.metrics = b.metrics,
                    Concern::Credentials => c.credentials = b.credentials,
                    Concern::Queue => {
                        c.queue = b.queue;
                        c.queue_wait = b.queue_wait;
                        c.queue_pause = b.queue_pause;
                        c.queue_snooze = b.queue_snooze;
                        c.queue_cancel = b.queue_cancel;
                        c.queue_history = b.queue_history;
                        c.queue_progress = b.queue_progress;
                        c.queue_unique = b.queue_unique;
                        c.queue_limits = b.queue_limits;
                        c.queue_schedules = b.queue_schedules;
                    }
                    Concern::Documents => c.documents = b.documents,
                }
            }
        }
        c.transactions = self.transactions;
        c
    }

    async fn health(&self) -> Health {
        let mut ok = true;
        let mut details = Vec::new();
        for (ops, _) in &self.backends {
            let h = ops.health().await;
            ok &= h.ok;
            details.push(format!("{}: {}", h.backend, h.detail));
        }
        Health {
            backend: self.capabilities().backend,
            ok,
            detail: details.join("; "),
        }
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let mut total = StoreStats::default();
        for (ops, concerns) in &self.backends {
            let s = ops.stats(tenant).await?;
            for c in concerns {
                match c {
                    Concern::Workflows => {
                        total.workflows = s.workflows;
                        total.workflow_versions = s.workflow_versions;
                    }
                    Concern::Runs => {
                        total.runs = s.runs;
                        total.run_events = s.run_events;
                    }
                    Concern::Metrics => {
                        total.metric_records = s.metric_records;
                        total.patterns = s.patterns;
                    }
                    Concern::Credentials => total.credentials = s.credentials,
                    Concern::Queue => total.jobs = s.jobs,
                    Concern::Documents => total.documents = s.documents,
                }
            }
        }
        Ok(total)
    }

    async fn schema(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(
            "mixed",
            "one schema status for several backends; ask each backend",
        ))
    }

    async fn migrate(&self) -> Result<SchemaStatus> {
        Err(Error::unsupported(
            "mixed",
            "one migration for several backends; migrate each backend",
        ))
    }

    /// The union over the backends that keep data (credentials name no tenants). One
    /// backend that cannot list them makes the union unknowable: `Unsupported`.
    async fn tenants(&self) -> Result<Vec<TenantId>> {
        let mut all = std::collections::BTreeSet::new();
        for (ops, concerns) in &self.backends {
            if concerns.iter().all(|c| *c == Concern::Credentials) {
                continue;
            }
            all.extend(ops.tenants().await?);
        }
        Ok(all.into_iter().collect())
    }
}
