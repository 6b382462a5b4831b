//! Every key flowstore writes, in one place. Each starts with `<prefix>:{<tenant>}:`
//! (the prefix is `flowstore` unless configured);
//! the braces are a Redis Cluster hash tag, so all of a tenant's keys share one slot
//! and multi-key scripts stay legal. No operation ever lists keys (no SCAN or KEYS):
//! whatever must be enumerated has an index key of its own.

use storage_ports::{CollectionName, QueueName, RunId, TenantId, WorkflowId};

/// The key builder of one tenant.
pub(crate) struct Keys(String);

impl Keys {
    pub(crate) fn of(prefix: &str, tenant: &TenantId) -> Self {
        // Tenant ids and prefixes are [A-Za-z0-9_-]: nothing in them can close the
        // hash tag.
        Self(format!("{prefix}:{{{tenant}}}:"))
    }

    fn k(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}{rest}", self.0)
    }

    /// The prefix, for scripts that derive per-item keys.
    pub(crate) fn prefix(&self) -> &str {
        &self.0
    }

    // Workflows: a hash of version -> JSON, the high-water mark, and a lex index.
    pub(crate) fn wf_versions(&self, w: &WorkflowId) -> String {
        self.k(format_args!("wf:{w}:versions"))
    }
    pub(crate) fn wf_high_water(&self, w: &WorkflowId) -> String {
        self.k(format_args!("wf:{w}:hw"))
    }
    pub(crate) fn workflows(&self) -> String {
        self.k(format_args!("workflows"))
    }

    // Runs: a hash per run (head JSON, status, workflow, next sequence), a stream of
    // events per run, and sorted-set indexes by start time.
    pub(crate) fn run(&self, r: &RunId) -> String {
        self.k(format_args!("run:{r}"))
    }
    pub(crate) fn run_events(&self, r: &RunId) -> String {
        self.k(format_args!("run:{r}:events"))
    }
    pub(crate) fn runs(&self) -> String {
        self.k(format_args!("runs"))
    }
    pub(crate) fn runs_by_workflow(&self, w: &WorkflowId) -> String {
        self.k(format_args!("runs:wf:{w}"))
    }
    pub(crate) fn runs_by_status(&self, s: &str) -> String {
        self.k(format_args!("runs:st:{s}"))
    }
    pub(crate) fn runs_by_workflow_status(&self, w: &WorkflowId, s: &str) -> String {
        self.k(format_args!("runs:wf:{w}:st:{s}"))
    }

    // Metrics.
    pub(crate) fn metric_records(&self) -> String {
        self.k(format_args!("m:records"))
    }
    pub(crate) fn metric_aggregates(&self, w: &WorkflowId) -> String {
        self.k(format_args!("m:agg:{w}"))
    }
    pub(crate) fn metric_values(&self, w: &WorkflowId) -> String {
        self.k(format_args!("m:values:{w}"))
    }
    pub(crate) fn metric_points(&self, w: &WorkflowId, name: &str) -> String {
        self.k(format_args!("m:points:{w}:{name}"))
    }
    pub(crate) fn patterns(&self) -> String {
        self.k(format_args!("m:patterns"))
    }

    // Queue: per queue, a hash per job and sorted sets by state.
    pub(crate) fn queue(&self, q: &QueueName) -> String {
        self.k(format_args!("q:{q}:"))
    }
    pub(crate) fn queues(&self) -> String {
        self.k(format_args!("queues"))
    }
    pub(crate) fn counters(&self) -> String {
        self.k(format_args!("counters"))
    }

    // Schedules (Q19): specs, next ticks of running ones, next ticks of paused ones.
    pub(crate) fn schedules(&self) -> String {
        self.k(format_args!("sched"))
    }
    pub(crate) fn schedules_next(&self) -> String {
        self.k(format_args!("sched:next"))
    }
    pub(crate) fn schedules_held(&self) -> String {
        self.k(format_args!("sched:held"))
    }

    // Documents: a hash per document and a lex index per collection.
    pub(crate) fn document(&self, c: &CollectionName, id: &str) -> String {
        self.k(format_args!("doc:{c}:{id}"))
    }
    pub(crate) fn collection(&self, c: &CollectionName) -> String {
        self.k(format_args!("docs:{c}"))
    }
    pub(crate) fn collections(&self) -> String {
        self.k(format_args!("collections"))
    }
}
