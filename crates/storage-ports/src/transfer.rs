//! Export and import through the ports alone (spec O4).
//!
//! [`copy_tenant`] reads every concern of one tenant from a source [`StoreSet`] and
//! writes it into a destination, using only trait methods, so any pair of backends
//! works. It is idempotent: a record already present with the same content is skipped,
//! so a copy that was interrupted can simply be run again. [`digest_tenant`] computes a
//! per-concern count and content digest on either side to verify the copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, Result};
use crate::ids::TenantId;
use crate::queue::JobQueueExt;
use crate::rules::content_hash::canonical_json;
use crate::rules::cursor::PageRequest;
use crate::run::RunQuery;
use crate::store_set::StoreSet;
use crate::workflow::NewWorkflowVersion;
use crate::DocumentFilter;

/// Which concerns to copy or digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Concerns {
    /// Workflow versions.
    pub workflows: bool,
    /// Runs with their steps and events.
    pub runs: bool,
    /// Metric records and patterns.
    pub metrics: bool,
    /// Pending jobs.
    pub queue: bool,
    /// Documents.
    pub documents: bool,
}

impl Concerns {
    /// Every concern a transfer knows.
    pub const ALL: Self = Self {
        workflows: true,
        runs: true,
        metrics: true,
        queue: true,
        documents: true,
    };

    /// The concerns both sets offer.
    #[must_use]
    pub fn shared(a: &StoreSet, b: &StoreSet) -> Self {
        let (a, b) = (a.capabilities(), b.capabilities());
        Self {
            workflows: a.workflows && b.workflows,
            runs: a.runs && b.runs,
            metrics: a.metrics && b.metrics,
            queue: a.queue && b.queue,
            documents: a.documents && b.documents,
        }
    }
}

/// Count and digest of one concern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcernDigest {
    /// Records.
    pub count: u64,
    /// SHA-256 over the canonical JSON of every record, in a fixed order.
    pub digest: String,
}

/// Digests per concern name.
pub type TenantDigest = BTreeMap<&'static str, ConcernDigest>;

fn digest_of(records: &[Value]) -> ConcernDigest {
    let mut h = Sha256::new();
    for r in records {
        h.update(canonical_json(r).as_bytes());
        h.update(b"\n");
    }
    ConcernDigest {
        count: records.len() as u64,
        digest: crate::rules::hex::encode(&h.finalize()),
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Reads every record of the chosen concerns, each as canonical JSON, in a fixed order.
async fn records(
    set: &StoreSet,
    tenant: &TenantId,
    c: Concerns,
) -> Result<BTreeMap<&'static str, Vec<Value>>> {
    let mut out = BTreeMap::new();
    if c.workflows {
        let mut v = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let p = set.workflows.list(tenant, page).await?;
            for meta in &p.items {
                for ver in set.workflows.versions(tenant, &meta.workflow_id).await? {
                    if let Some(wv) = unless_damaged(
                        set.workflows
                            .get(tenant, &ver.workflow_id, ver.version)
                            .await,
                    )? {
                        v.push(to_value(&wv));
                    }
                }
            }
            match p.next {
                Some(next) => page = PageRequest::after(500, next),
                None => break,
            }
        }
        out.insert("workflows", v);
    }
    if c.runs {
        let mut v = Vec::new();
        let mut cursor = None;
        loop {
            let p = set
                .runs
                .query(
                    tenant,
                    RunQuery {
                        limit: 500,
                        cursor,
                        ..RunQuery::default()
                    },
                )
                .await?;
            for run in &p.items {
                if let Some(c) = unless_damaged(set.runs.get_complete(tenant, &run.run_id).await)? {
                    v.push(to_value(&c));
                }
            }
            match p.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        out.insert("runs", v);
    }
    if c.metrics {
        let recs = set.metrics_transfer.export_records(tenant).await?;
        out.insert("metric_records", recs.iter().map(to_value).collect());
        let mut pats = set.metrics.patterns(tenant, None).await?;
        pats.sort_by(|a, b| {
            (&a.workflow_id, &a.kind, &a.key).cmp(&(&b.workflow_id, &b.kind, &b.key))
        });
        out.insert("patterns", pats.iter().map(to_value).collect());
    }
    if c.queue {
        let jobs = set.job_transfer.export_jobs(tenant).await?;
        out.insert("jobs", jobs.iter().map(to_value).collect());
    }
    if c.documents {
        let mut v = Vec::new();
        for coll in set.documents.collections(tenant).await? {
            let mut page = PageRequest::first(500);
            loop {
                let p = set
                    .documents
                    .list(tenant, &coll, &DocumentFilter::all(), page)
                    .await?;
                // Revision and write time belong to the store, not the content.
                v.extend(
                    p.items
                        .iter()
                        .map(|d| json!({"collection": coll, "id": d.id, "body": d.body})),
                );
                match p.next {
                    Some(next) => page = PageRequest::after(500, next),
                    None => break,
                }
            }
        }
        out.insert("documents", v);
    }
    Ok(out)
}

/// Count and digest per concern of `tenant` in `set`.
///
/// # Errors
/// The first backend error.
pub async fn digest_tenant(set: &StoreSet, tenant: &TenantId, c: Concerns) -> Result<TenantDigest> {
    Ok(records(set, tenant, c)
        .await?
        .into_iter()
        .map(|(k, v)| (k, digest_of(&v)))
        .collect())
}

/// What a copy wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Records written per concern.
    pub written: BTreeMap<String, u64>,
    /// Records already present per concern (a resumed copy).
    pub already_present: BTreeMap<String, u64>,
    /// Records listed but not copied because they cannot be read (W10), per concern:
    /// the ids, each of which reads as `CorruptData` saying why. Records a listing
    /// skipped itself (logged by the adapter) are in neither count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_damaged: BTreeMap<String, Vec<String>>,
}

impl CopyReport {
    fn count(&mut self, concern: &str, written: bool) {
        let m = if written {
            &mut self.written
        } else {
            &mut self.already_present
        };
        *m.entry(concern.to_owned()).or_default() += 1;
    }

    fn damaged(&mut self, concern: &str, id: String) {
        self.skipped_damaged
            .entry(concern.to_owned())
            .or_default()
            .push(id);
    }
}

/// `None` for a record that cannot be read (W10): copies and digests go on without it.
fn unless_damaged<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::CorruptData => Ok(None),
        Err(e) => Err(e),
    }
}

fn present_or<T>(r: Result<T>) -> Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Copies `src_tenant` of `src` into `dst_tenant` of `dst`, concern by concern.
///
/// # Errors
/// The first error that is not "already present with the same content".
pub async fn copy_tenant(
    src: &StoreSet,
    src_tenant: &TenantId,
    dst: &StoreSet,
    dst_tenant: &TenantId,
    c: Concerns,
) -> Result<CopyReport> {
    copy_tenant_with_progress(src, src_tenant, dst, dst_tenant, c, &mut |_, _| {}).await
}

/// [`copy_tenant`], telling `progress(concern, records done so far)` as it goes.
///
/// # Errors
/// As [`copy_tenant`].
pub async fn copy_tenant_with_progress(
    src: &StoreSet,
    src_tenant: &TenantId,
    dst: &StoreSet,
    dst_tenant: &TenantId,
    c: Concerns,
    progress: &mut (dyn FnMut(&str, u64) + Send),
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut tell = |report: &CopyReport, concern: &str| {
        let n = report.written.get(concern).copied().unwrap_or(0)
            + report.already_present.get(concern).copied().unwrap_or(0);
        progress(concern, n);
    };
    if c.workflows {
        let mut page = PageRequest::first(500);
        loop {
            let p = src.workflows.list(src_tenant, page).await?;
            for meta in &p.items {
                for ver in src
                    .workflows
                    .versions(src_tenant, &meta.workflow_id)
                    .await?
                {
                    let Some(wv) = unless_damaged(
                        src.workflows
                            .get(src_tenant, &ver.workflow_id, ver.version)
                            .await,
                    )?
                    else {
                        report.damaged("workflows", format!("{}@{}", ver.workflow_id, ver.version));
                        continue;
                    };
                    let new = NewWorkflowVersion {
                        workflow_id: wv.meta.workflow_id.clone(),
                        version: Some(wv.meta.version),
                        parent: wv.meta.parent,
                        author: wv.meta.author.clone(),
                        created_at: Some(wv.meta.created_at),
                        definition: wv.definition,
                    };
                    // `put` of identical content is idempotent (W2).
                    dst.workflows.put(dst_tenant, new).await?;
                    report.count("workflows", true);
                }
                tell(&report, "workflows");
            }
            match p.next {
                Some(next) => page = PageRequest::after(500, next),
                None => break,
            }
        }
    }
    if c.runs {
        let mut cursor = None;
        loop {
            let p = src
                .runs
                .query(
                    src_tenant,
                    RunQuery {
                        limit: 200,
                        cursor,
                        ..RunQuery::default()
                    },
                )
                .await?;
            let mut batch = Vec::with_capacity(p.items.len());
            for run in &p.items {
                match unless_damaged(src.runs.get_complete(src_tenant, &run.run_id).await)? {
                    Some(c) => batch.push(c),
                    None => report.damaged("runs", run.run_id.to_string()),
                }
            }
            for r in dst.runs.store_complete_batch(dst_tenant, batch).await? {
                let written = present_or(r)?;
                report.count("runs", written);
            }
            tell(&report, "runs");
            match p.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if c.metrics {
        for rec in src.metrics_transfer.export_records(src_tenant).await? {
            let written = dst.metrics.record(dst_tenant, rec).await?;
            report.count("metric_records", written);
        }
        tell(&report, "metric_records");
        for pat in src.metrics.patterns(src_tenant, None).await? {
            dst.metrics_transfer.put_pattern(dst_tenant, pat).await?;
            report.count("patterns", true);
        }
    }
    if c.queue {
        for job in src.job_transfer.export_jobs(src_tenant).await? {
            let written = match job.dead {
                Some(dead) => present_or(
                    dst.job_transfer
                        .import_dead(dst_tenant, &job.queue, job.job, dead)
                        .await,
                )?,
                None => present_or(dst.queue.enqueue(dst_tenant, &job.queue, job.job).await)?,
            };
            report.count("jobs", written);
        }
        tell(&report, "jobs");
    }
    if c.documents {
        for coll in src.documents.collections(src_tenant).await? {
            let mut page = PageRequest::first(500);
            loop {
                let p = src
                    .documents
                    .list(src_tenant, &coll, &DocumentFilter::all(), page)
                    .await?;
                for d in p.items {
                    let written = present_or(
                        dst.documents
                            .create(dst_tenant, &coll, Some(d.id), d.body)
                            .await,
                    )?;
                    report.count("documents", written);
                }
                tell(&report, "documents");
                match p.next {
                    Some(next) => page = PageRequest::after(500, next),
                    None => break,
                }
            }
        }
    }
    Ok(report)
}
