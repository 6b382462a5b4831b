//! T2-T6: units of work over documents, runs and the queue.

use std::time::Duration;

use serde_json::json;
use storage_ports::JobQueueExt as _;
use storage_ports::TransactionsExt as _;
use storage_ports::{
    CollectionName, Dequeue, DocumentId, Error, ErrorKind, JobId, NewJob, QueueName, Timestamp,
};

use crate::check::{expect_kind, id, Ctx, TestResult};
use crate::runs::new_run;
use crate::{ensure, ensure_eq};

const LEASE: Duration = Duration::from_secs(30);

/// T2: a document created, one replaced, one deleted, a run and a job, all written
/// in one unit, become visible together.
pub async fn t2_a_unit_commits_documents_a_run_and_a_job_together(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t2c")?;
    let q: QueueName = id("t2q")?;
    let (kept, gone): (DocumentId, DocumentId) = (id("kept")?, id("gone")?);
    let docs = &ctx.set.documents;
    docs.create(&ctx.tenant, &c, Some(kept.clone()), json!({"n": 0}))
        .await?;
    docs.create(&ctx.tenant, &c, Some(gone.clone()), json!({}))
        .await?;
    let run = new_run("t2", Timestamp::now());
    let rid = run.run_id.clone();
    let (c2, q2, kept2, gone2) = (c.clone(), q.clone(), kept.clone(), gone.clone());
    let (created, enqueued) = ctx
        .set
        .transactions
        .unit_of_work(&ctx.tenant, move |tx| {
            Box::pin(async move {
                let doc = tx.create_document(&c2, None, json!({"new": true})).await?;
                tx.replace_document(&c2, &kept2, 1, json!({"n": 1})).await?;
                tx.delete_document(&c2, &gone2, Some(1)).await?;
                tx.start_run(run).await?;
                let job = tx
                    .enqueue(&q2, NewJob::new(json!({"doc": doc.id.as_str()})))
                    .await?;
                Ok::<_, Error>((doc, job))
            })
        })
        .await?;
    ensure_eq!(
        docs.get(&ctx.tenant, &c, &created.id).await?,
        created,
        "created document"
    );
    let kept_now = docs.get(&ctx.tenant, &c, &kept).await?;
    ensure_eq!(
        (kept_now.revision, kept_now.body),
        (2, json!({"n": 1})),
        "replaced document"
    );
    expect_kind(
        docs.get(&ctx.tenant, &c, &gone).await,
        ErrorKind::NotFound,
        "document deleted in the unit",
    )?;
    ensure_eq!(
        ctx.set.runs.get(&ctx.tenant, &rid).await?.run_id,
        rid,
        "run"
    );
    let jobs = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LEASE))
        .await?;
    ensure_eq!(
        jobs.iter()
            .map(|j| j.lease.job_id.clone())
            .collect::<Vec<_>>(),
        vec![enqueued.job_id],
        "job"
    );
    Ok(())
}

/// T2: reads through a unit see the unit's own writes, in order.
pub async fn t2_a_unit_reads_its_own_writes(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t2r")?;
    let d: DocumentId = id("d")?;
    let (c2, d2) = (c.clone(), d.clone());
    ctx.set
        .transactions
        .unit_of_work(&ctx.tenant, move |tx| {
            Box::pin(async move {
                let created = tx
                    .create_document(&c2, Some(d2.clone()), json!({"v": 1}))
                    .await?;
                let seen = tx.get_document(&c2, &d2).await?;
                let replaced = tx.replace_document(&c2, &d2, 1, json!({"v": 2})).await?;
                let seen_after = tx.get_document(&c2, &d2).await?;
                tx.delete_document(&c2, &d2, Some(2)).await?;
                let after_delete = tx.get_document(&c2, &d2).await;
                tx.create_document(&c2, Some(d2.clone()), json!({"v": 3}))
                    .await?;
                Ok::<_, Error>((created, seen, replaced, seen_after, after_delete))
            })
        })
        .await
        .map_err(crate::Failure::from)
        .and_then(|(created, seen, replaced, seen_after, after_delete)| {
            ensure_eq!(seen, created, "read after create");
            ensure_eq!(seen_after, replaced, "read after replace");
            ensure_eq!(replaced.revision, 2, "revision after replace");
            expect_kind(after_delete, ErrorKind::NotFound, "read after delete")?;
            Ok(())
        })?;
    let doc = ctx.set.documents.get(&ctx.tenant, &c, &d).await?;
    ensure_eq!(
        (doc.revision, doc.body),
        (1, json!({"v": 3})),
        "committed document"
    );
    Ok(())
}

/// What a failed unit must not have left: its document, its run and its job.
async fn nothing_visible(
    ctx: &Ctx,
    c: &CollectionName,
    d: &DocumentId,
    run: &storage_ports::RunId,
    q: &QueueName,
    what: &str,
) -> TestResult {
    expect_kind(
        ctx.set.documents.get(&ctx.tenant, c, d).await,
        ErrorKind::NotFound,
        &format!("document of {what}"),
    )?;
    expect_kind(
        ctx.set.runs.get(&ctx.tenant, run).await,
        ErrorKind::NotFound,
        &format!("run of {what}"),
    )?;
    let stats = ctx.set.queue.stats(&ctx.tenant, q).await?;
    ensure_eq!(
        (stats.pending, stats.scheduled, stats.running),
        (0, 0, 0),
        "jobs of {what}"
    );
    Ok(())
}

/// T3: when the host's work returns an error, nothing of the unit is written and the
/// host gets its error back.
pub async fn t3_an_error_in_the_work_rolls_everything_back(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t3e")?;
    let q: QueueName = id("t3e")?;
    let d: DocumentId = id("d")?;
    let run = new_run("t3e", Timestamp::now());
    let rid = run.run_id.clone();
    let (c2, q2, d2) = (c.clone(), q.clone(), d.clone());
    let r: Result<(), Error> = ctx
        .set
        .transactions
        .unit_of_work(&ctx.tenant, move |tx| {
            Box::pin(async move {
                tx.create_document(&c2, Some(d2), json!({})).await?;
                tx.start_run(run).await?;
                tx.enqueue(&q2, NewJob::new(json!(1))).await?;
                Err(Error::invalid_input("the host refuses the plan"))
            })
        })
        .await;
    let e = expect_kind(r, ErrorKind::InvalidInput, "the host's error")?;
    ensure!(
        e.message().contains("refuses the plan"),
        "the host's own error comes back, got: {e}"
    );
    nothing_visible(&ctx, &c, &d, &rid, &q, "a unit whose work failed").await
}

/// T3: a unit dropped without commit, or rolled back, writes nothing, and the store
/// takes writes again at once.
pub async fn t3_a_dropped_or_rolled_back_unit_writes_nothing(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t3d")?;
    let q: QueueName = id("t3d")?;
    let d: DocumentId = id("d")?;
    for how in ["dropped", "rolled back"] {
        let run = new_run("t3d", Timestamp::now());
        let rid = run.run_id.clone();
        let mut tx = ctx.set.transactions.begin(&ctx.tenant).await?;
        tx.create_document(&c, Some(d.clone()), json!({})).await?;
        tx.start_run(run).await?;
        tx.enqueue(&q, NewJob::new(json!(1))).await?;
        if how == "dropped" {
            drop(tx);
        } else {
            tx.rollback().await?;
        }
        nothing_visible(&ctx, &c, &d, &rid, &q, &format!("a {how} unit")).await?;
        // The unit's hold on the backend (SQLite's writer) ended with it.
        let other: DocumentId = id(&format!("after-{}", how.len()))?;
        tokio::time::timeout(
            Duration::from_secs(10),
            ctx.set
                .documents
                .create(&ctx.tenant, &c, Some(other), json!({})),
        )
        .await
        .map_err(|_| crate::Failure(format!("a write after a {how} unit waited 10 s")))??;
    }
    Ok(())
}

/// T3: when the host's work panics, the unit is dropped while unwinding: nothing is
/// written, and the panic reaches the host's task.
pub async fn t3_a_panic_in_the_work_rolls_back(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t3p")?;
    let q: QueueName = id("t3p")?;
    let d: DocumentId = id("d")?;
    let run = new_run("t3p", Timestamp::now());
    let rid = run.run_id.clone();
    let (set, tenant) = (ctx.set.clone(), ctx.tenant.clone());
    let (c2, q2, d2) = (c.clone(), q.clone(), d.clone());
    let task = tokio::spawn(async move {
        set.transactions
            .unit_of_work(&tenant, move |tx| {
                Box::pin(async move {
                    let doc = tx.create_document(&c2, Some(d2), json!({})).await?;
                    tx.start_run(run).await?;
                    tx.enqueue(&q2, NewJob::new(json!(1))).await?;
                    if doc.revision == 1 {
                        panic!("T3: a host bug inside a unit of work (expected by the test)");
                    }
                    Ok::<_, Error>(())
                })
            })
            .await
    });
    match task.await {
        Err(e) if e.is_panic() => {}
        other => {
            return Err(crate::Failure(format!(
                "the panic did not reach the host's task: {other:?}"
            )))
        }
    }
    nothing_visible(&ctx, &c, &d, &rid, &q, "a unit that panicked").await?;
    let d3: DocumentId = id("after")?;
    tokio::time::timeout(
        Duration::from_secs(10),
        ctx.set
            .documents
            .create(&ctx.tenant, &c, Some(d3), json!({})),
    )
    .await
    .map_err(|_| crate::Failure("a write after a panicked unit waited 10 s".into()))??;
    Ok(())
}

/// T4: while a unit is open, readers outside it see none of its writes; after commit
/// they see all of them.
pub async fn t4_uncommitted_writes_are_invisible_to_other_readers(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t4i")?;
    let q: QueueName = id("t4i")?;
    let d: DocumentId = id("d")?;
    let run = new_run("t4i", Timestamp::now());
    let rid = run.run_id.clone();
    let mut tx = ctx.set.transactions.begin(&ctx.tenant).await?;
    tx.create_document(&c, Some(d.clone()), json!({"open": true}))
        .await?;
    tx.start_run(run).await?;
    tx.enqueue(&q, NewJob::new(json!(1))).await?;
    let seen = nothing_visible(&ctx, &c, &d, &rid, &q, "an open unit").await;
    tx.commit().await?;
    seen?;
    ensure_eq!(
        ctx.set.documents.get(&ctx.tenant, &c, &d).await?.body,
        json!({"open": true}),
        "document after commit"
    );
    ctx.set.runs.get(&ctx.tenant, &rid).await?;
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.pending,
        1,
        "jobs after commit"
    );
    Ok(())
}

/// T4: concurrent units that read a counter and write it back at the revision they
/// read lose no update: each either commits its increment or fails the precondition.
pub async fn t4_concurrent_units_lose_no_update(ctx: Ctx) -> TestResult {
    const UNITS: usize = 4;
    let c: CollectionName = id("t4c")?;
    let d: DocumentId = id("counter")?;
    ctx.set
        .documents
        .create(&ctx.tenant, &c, Some(d.clone()), json!({"n": 0}))
        .await?;
    let mut tasks = Vec::new();
    for _ in 0..UNITS {
        let (set, tenant, c, d) = (ctx.set.clone(), ctx.tenant.clone(), c.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            set.transactions
                .unit_of_work(&tenant, move |tx| {
                    Box::pin(async move {
                        let doc = tx.get_document(&c, &d).await?;
                        let n = doc.body["n"].as_u64().unwrap_or(0);
                        tokio::task::yield_now().await;
                        tx.replace_document(&c, &d, doc.revision, json!({"n": n + 1}))
                            .await?;
                        Ok::<_, Error>(())
                    })
                })
                .await
        }));
    }
    let mut committed = 0u64;
    for t in tasks {
        match t
            .await
            .map_err(|e| crate::Failure(format!("unit task: {e}")))?
        {
            Ok(()) => committed += 1,
            Err(e) if e.kind() == ErrorKind::PreconditionFailed => {}
            Err(e) => return Err(crate::Failure(format!("a racing unit failed: {e}"))),
        }
    }
    let doc = ctx.set.documents.get(&ctx.tenant, &c, &d).await?;
    ensure!(committed >= 1, "no unit committed");
    ensure_eq!(
        (doc.body["n"].as_u64(), doc.revision),
        (Some(committed), committed + 1),
        "counter after {committed} committed units"
    );
    Ok(())
}

/// T5: an answer (a taken id, a stale revision, a missing document) leaves the unit
/// usable, and its other writes commit.
pub async fn t5_an_answer_leaves_the_unit_usable(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("t5")?;
    let q: QueueName = id("t5")?;
    let (taken, fresh, missing): (DocumentId, DocumentId, DocumentId) =
        (id("taken")?, id("fresh")?, id("missing")?);
    let job_id = JobId::generate();
    ctx.set
        .documents
        .create(&ctx.tenant, &c, Some(taken.clone()), json!({"v": 0}))
        .await?;
    ctx.set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!(0)).with_id(job_id.clone()),
        )
        .await?;
    let mut tx = ctx.set.transactions.begin(&ctx.tenant).await?;
    expect_kind(
        tx.create_document(&c, Some(taken.clone()), json!({})).await,
        ErrorKind::AlreadyExists,
        "create of a taken id in a unit",
    )?;
    expect_kind(
        tx.replace_document(&c, &taken, 9, json!({})).await,
        ErrorKind::PreconditionFailed,
        "replace at a stale revision in a unit",
    )?;
    expect_kind(
        tx.get_document(&c, &missing).await,
        ErrorKind::NotFound,
        "read of a missing document in a unit",
    )?;
    expect_kind(
        tx.enqueue(&q, NewJob::new(json!(1)).with_id(job_id)).await,
        ErrorKind::AlreadyExists,
        "enqueue of a taken job id in a unit",
    )?;
    tx.create_document(&c, Some(fresh.clone()), json!({"v": 1}))
        .await?;
    tx.commit().await?;
    ctx.set.documents.get(&ctx.tenant, &c, &fresh).await?;
    ensure_eq!(
        ctx.set
            .documents
            .get(&ctx.tenant, &c, &taken)
            .await?
            .revision,
        1,
        "the taken document"
    );
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.pending,
        1,
        "jobs"
    );
    Ok(())
}

/// T6, the seed's example: an execution document and the job that runs it are
/// created in one unit; a worker that takes the job finds its document. When the job
/// part fails, the document is not written either.
pub async fn t6_an_execution_document_and_its_job_commit_together(ctx: Ctx) -> TestResult {
    let executions: CollectionName = id("executions")?;
    let q: QueueName = id("t6")?;
    let (e2, q2) = (executions.clone(), q.clone());
    let execution = ctx
        .set
        .transactions
        .unit_of_work(&ctx.tenant, move |tx| {
            Box::pin(async move {
                let doc = tx
                    .create_document(&e2, None, json!({"plan": "nightly", "status": "queued"}))
                    .await?;
                tx.enqueue(&q2, NewJob::new(json!({"execution": doc.id.as_str()})))
                    .await?;
                Ok::<_, Error>(doc.id)
            })
        })
        .await?;
    let jobs = ctx
        .set
        .queue
        .dequeue(&ctx.tenant, &q, Dequeue::one(LEASE))
        .await?;
    let job = jobs
        .first()
        .ok_or_else(|| crate::Failure("the execution's job was not delivered".into()))?;
    let named: DocumentId = job.payload["execution"]
        .as_str()
        .and_then(|s| DocumentId::new(s).ok())
        .ok_or_else(|| crate::Failure(format!("job payload: {}", job.payload)))?;
    ensure_eq!(named, execution, "the job names its execution");
    let doc = ctx
        .set
        .documents
        .get(&ctx.tenant, &executions, &named)
        .await?;
    ensure_eq!(doc.body["status"], json!("queued"), "execution document");
    ctx.set.queue.ack(&ctx.tenant, &job.lease).await?;

    // The job part fails: its id is taken. The execution must not appear.
    let taken = JobId::generate();
    ctx.set
        .queue
        .enqueue(
            &ctx.tenant,
            &q,
            NewJob::new(json!(0)).with_id(taken.clone()),
        )
        .await?;
    let lost: DocumentId = id("lost")?;
    let (e3, q3, lost2) = (executions.clone(), q.clone(), lost.clone());
    let r = ctx
        .set
        .transactions
        .unit_of_work(&ctx.tenant, move |tx| {
            Box::pin(async move {
                tx.create_document(&e3, Some(lost2.clone()), json!({"status": "queued"}))
                    .await?;
                tx.enqueue(
                    &q3,
                    NewJob::new(json!({"execution": lost2.as_str()})).with_id(taken),
                )
                .await
            })
        })
        .await;
    expect_kind(r, ErrorKind::AlreadyExists, "the job part of the unit")?;
    expect_kind(
        ctx.set.documents.get(&ctx.tenant, &executions, &lost).await,
        ErrorKind::NotFound,
        "the execution of the failed unit",
    )?;
    Ok(())
}
