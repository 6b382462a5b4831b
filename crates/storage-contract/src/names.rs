//! N1-N5: names, payloads, timestamps, limits and errors, on every port.

use serde_json::{json, Value};
use storage_ports::JobQueueExt as _;
use storage_ports::{
    CollectionName, CredentialKey, DocumentId, ErrorKind, JobId, MetricName, NewJob,
    NewWorkflowVersion, NodeId, QueueName, RunId, RunStep, TenantId, Timestamp, WorkflowId,
};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::runs::{complete_run, new_run, node};
use crate::{ensure, ensure_eq};

/// A payload with every shape N2 names.
#[must_use]
pub fn tricky_payload() -> Value {
    json!({
        "nested": {"b": [1, {"c": null, "d": [true, false]}], "a": "x"},
        "unicode": "héllo ✓ 日本語 Ελληνικά",
        "emoji": "🚀👩‍💻🏳️‍🌈",
        "null": null,
        "i64_min": i64::MIN, "i64_max": i64::MAX, "u64_max": u64::MAX,
        "float": 1.234_567_890_123_456_7_f64, "negative_float": -0.000_123_45_f64, "big_float": 1.0e300_f64,
        "multi_line": "line one\nline two\r\n\ttabbed",
        "sql": "'; DROP TABLE runs; -- \" ` \\",
        "redis": "*1\r\n$4\r\nPING\r\n {tenant}:key",
        "yaml": "key: [a, {b: c}]\n- item\n--- !!str &anchor *alias",
        "empty_object": {}, "empty_array": [], "empty_string": ""
    })
}

fn rejects<T: TryFrom<String, Error = storage_ports::Error>>(
    what: &str,
    bad: &str,
    rule_part: &str,
) -> TestResult {
    match T::try_from(bad.to_owned()) {
        Ok(_) => Err(Failure(format!("{what} {bad:?} was accepted"))),
        Err(e) => {
            ensure_eq!(e.kind(), ErrorKind::InvalidInput, "{what} {bad:?}");
            ensure!(
                e.to_string().contains(rule_part),
                "the error for {what} {bad:?} does not name the rule: {e}"
            );
            Ok(())
        }
    }
}

/// N1: tenant ids follow `[a-z0-9][a-z0-9_-]{0,63}`.
pub async fn n1_tenant_ids_follow_their_rule(_: Ctx) -> TestResult {
    for bad in [
        "",
        "Acme",
        "-a",
        "a/b",
        "../x",
        "a\\b",
        "a\0b",
        "a b",
        &"a".repeat(65),
    ] {
        rejects::<TenantId>("tenant id", bad, "[a-z0-9][a-z0-9_-]{0,63}")?;
    }
    for good in ["a", "acme-1", "0_x", &"a".repeat(64)] {
        ensure!(
            TenantId::new(good).is_ok(),
            "tenant id {good:?} was refused"
        );
    }
    Ok(())
}

/// N1: workflow ids are 1-128 of `[A-Za-z0-9._-]`, not `.` or `..`.
pub async fn n1_workflow_ids_reject_traversal_and_separators(_: Ctx) -> TestResult {
    for bad in [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "a\0b",
        "a:b",
        "a b",
        &"x".repeat(129),
    ] {
        rejects::<WorkflowId>("workflow id", bad, "[A-Za-z0-9._-]")?;
    }
    for good in ["etl", "ETL.v2", "a-b_c.d", ".hidden", &"x".repeat(128)] {
        ensure!(
            WorkflowId::new(good).is_ok(),
            "workflow id {good:?} was refused"
        );
    }
    Ok(())
}

/// N1: every other id kind rejects traversal, separators, NUL, empty and too long.
pub async fn n1_every_id_kind_rejects_bad_input_naming_the_rule(_: Ctx) -> TestResult {
    let long = "x".repeat(200);
    for bad in ["", "../x", "a/b", "a\\b", "a\0b", long.as_str()] {
        rejects::<RunId>("run id", bad, "rule")?;
        rejects::<NodeId>("node id", bad, "rule")?;
        rejects::<CredentialKey>("credential key", bad, "rule")?;
        rejects::<QueueName>("queue name", bad, "rule")?;
        rejects::<JobId>("job id", bad, "rule")?;
        rejects::<CollectionName>("collection name", bad, "rule")?;
        rejects::<DocumentId>("document id", bad, "rule")?;
        rejects::<MetricName>("metric name", bad, "rule")?;
    }
    Ok(())
}

/// N2: definitions round-trip exactly.
pub async fn n2_payloads_round_trip_as_workflow_definitions(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("n2")?;
    let stored = ctx
        .set
        .workflows
        .put(
            &ctx.tenant,
            NewWorkflowVersion::next(wf.clone(), tricky_payload()),
        )
        .await?;
    let back = ctx
        .set
        .workflows
        .get(&ctx.tenant, &wf, stored.meta.version)
        .await?;
    ensure_eq!(
        back.definition,
        tricky_payload(),
        "definition after a round trip"
    );
    Ok(())
}

/// N2: run inputs, node inputs/outputs and outputs round-trip exactly.
pub async fn n2_payloads_round_trip_in_run_logs(ctx: Ctx) -> TestResult {
    let mut run = complete_run("n2", storage_ports::RunStatus::Succeeded, Timestamp::now());
    run.run.inputs = tricky_payload();
    run.run.output = Some(tricky_payload());
    if let Some(RunStep::Node(n)) = run.steps.first_mut() {
        n.inputs = tricky_payload();
        n.outputs = tricky_payload();
    }
    ctx.set
        .runs
        .store_complete(&ctx.tenant, run.clone())
        .await?;
    let back = ctx
        .set
        .runs
        .get_complete(&ctx.tenant, &run.run.run_id)
        .await?;
    ensure_eq!(back, run, "run after a round trip");
    Ok(())
}

/// N2: job payloads round-trip exactly.
pub async fn n2_payloads_round_trip_as_job_payloads(ctx: Ctx) -> TestResult {
    let q: QueueName = id("n2")?;
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(tricky_payload()))
        .await?;
    let jobs = ctx
        .set
        .queue
        .dequeue(
            &ctx.tenant,
            &q,
            storage_ports::Dequeue::one(std::time::Duration::from_secs(30)),
        )
        .await?;
    ensure_eq!(
        jobs.first().map(|j| j.payload.clone()),
        Some(tricky_payload()),
        "job payload"
    );
    Ok(())
}

/// N2: documents round-trip exactly.
pub async fn n2_payloads_round_trip_as_documents(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("n2")?;
    let d = ctx
        .set
        .documents
        .create(&ctx.tenant, &c, None, tricky_payload())
        .await?;
    let back = ctx.set.documents.get(&ctx.tenant, &c, &d.id).await?;
    ensure_eq!(back.body, tricky_payload(), "document body");
    Ok(())
}

/// N3: timestamps keep their microseconds.
pub async fn n3_timestamps_round_trip_to_the_microsecond(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("n3")?;
    let at = Timestamp::from_micros(1_763_900_000_123_457);
    let mut new = NewWorkflowVersion::next(wf.clone(), json!({"n": 3}));
    new.created_at = Some(at);
    ctx.set.workflows.put(&ctx.tenant, new).await?;
    ensure_eq!(
        ctx.set
            .workflows
            .get(&ctx.tenant, &wf, 1)
            .await?
            .meta
            .created_at,
        at,
        "created_at"
    );
    if ctx.caps.runs {
        let run = new_run("n3", at);
        let rid = run.run_id.clone();
        ctx.set.runs.start(&ctx.tenant, run).await?;
        ensure_eq!(
            ctx.set.runs.get(&ctx.tenant, &rid).await?.started_at,
            at,
            "started_at"
        );
        ctx.set
            .runs
            .append(
                &ctx.tenant,
                &rid,
                node("a", Timestamp::from_micros(at.as_micros() + 1)),
            )
            .await?;
        let back = ctx.set.runs.get_complete(&ctx.tenant, &rid).await?;
        ensure_eq!(
            back.steps.first().map(RunStep::at),
            Some(Timestamp::from_micros(at.as_micros() + 1)),
            "node time"
        );
    }
    Ok(())
}

/// N4: a definition above the limit is refused with size and limit; nothing is written.
pub async fn n4_oversized_definition_is_refused_and_nothing_written(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("n4")?;
    let big =
        json!({"blob": "x".repeat(storage_ports::rules::limits::DEFAULT_MAX_PAYLOAD_BYTES + 1)});
    let e = expect_kind(
        ctx.set
            .workflows
            .put(&ctx.tenant, NewWorkflowVersion::next(wf.clone(), big))
            .await,
        ErrorKind::InvalidInput,
        "oversized put",
    )?;
    let msg = e.to_string();
    ensure!(
        msg.contains("16777216") && msg.contains("bytes"),
        "the error must state size and limit: {msg}"
    );
    ensure!(
        ctx.set
            .workflows
            .versions(&ctx.tenant, &wf)
            .await?
            .is_empty(),
        "an oversized put left a version behind"
    );
    Ok(())
}

/// N4: a job payload above the limit is refused; the queue stays empty.
pub async fn n4_oversized_job_is_refused(ctx: Ctx) -> TestResult {
    let q: QueueName = id("n4")?;
    let big = json!("y".repeat(storage_ports::rules::limits::DEFAULT_MAX_PAYLOAD_BYTES + 1));
    expect_kind(
        ctx.set
            .queue
            .enqueue(&ctx.tenant, &q, NewJob::new(big))
            .await,
        ErrorKind::InvalidInput,
        "oversized job",
    )?;
    let s = ctx.set.queue.stats(&ctx.tenant, &q).await?;
    ensure_eq!(s.pending + s.scheduled, 0, "jobs after a refused enqueue");
    Ok(())
}

/// N3: the first and last times every backend keeps exactly round-trip, stay
/// queryable (newest first) and keep their order; one microsecond outside is
/// `InvalidInput` and nothing is written.
pub async fn n3_times_at_the_storable_bounds_round_trip_and_outside_are_refused(
    ctx: Ctx,
) -> TestResult {
    let (lo, hi) = (Timestamp::MIN_STORABLE, Timestamp::MAX_STORABLE);
    let beyond = [
        Timestamp::from_micros(hi.as_micros() + 1),
        Timestamp::from_micros(lo.as_micros() - 1),
    ];
    let (first, last) = (new_run("n3-bounds", lo), new_run("n3-bounds", hi));
    let (lo_id, hi_id) = (first.run_id.clone(), last.run_id.clone());
    ctx.set.runs.start(&ctx.tenant, first).await?;
    ctx.set.runs.start(&ctx.tenant, last).await?;
    ensure_eq!(
        (
            ctx.set.runs.get(&ctx.tenant, &lo_id).await?.started_at,
            ctx.set.runs.get(&ctx.tenant, &hi_id).await?.started_at
        ),
        (lo, hi),
        "boundary start times"
    );
    let page = ctx
        .set
        .runs
        .query(
            &ctx.tenant,
            storage_ports::RunQuery {
                limit: 10,
                ..storage_ports::RunQuery::default()
            },
        )
        .await?;
    let ids: Vec<&RunId> = page.items.iter().map(|r| &r.run_id).collect();
    ensure_eq!(ids, vec![&hi_id, &lo_id], "query, newest first");
    for at in beyond {
        let run = new_run("n3-bounds", at);
        let rid = run.run_id.clone();
        expect_kind(
            ctx.set.runs.start(&ctx.tenant, run).await,
            ErrorKind::InvalidInput,
            "a start time no backend keeps exactly",
        )?;
        expect_kind(
            ctx.set.runs.get(&ctx.tenant, &rid).await,
            ErrorKind::NotFound,
            "the refused run",
        )?;
        expect_kind(
            ctx.set
                .runs
                .append(&ctx.tenant, &hi_id, node("late", at))
                .await,
            ErrorKind::InvalidInput,
            "a node time no backend keeps exactly",
        )?;
    }
    ensure!(
        ctx.set.runs.events(&ctx.tenant, &hi_id, 1).await?.len() == 1,
        "a refused append left an event"
    );
    Ok(())
}

/// N4 on every long field of a run: a run error's message and context, a node's error
/// text above the payload limit, and short names (node type, variable name) above
/// 256 bytes are `InvalidInput`, and nothing is written.
pub async fn n4_every_long_run_field_is_bounded(ctx: Ctx) -> TestResult {
    let big = "e".repeat(storage_ports::rules::limits::DEFAULT_MAX_PAYLOAD_BYTES + 1);
    let long_name = "n".repeat(storage_ports::rules::limits::SHORT_TEXT_MAX_BYTES + 1);
    let run = new_run("n4-fields", Timestamp::now());
    let rid = run.run_id.clone();
    ctx.set.runs.start(&ctx.tenant, run).await?;
    let mut failing = storage_ports::RunOutcome::failed(
        storage_ports::RunError {
            kind: "timeout".into(),
            message: big.clone(),
            node_id: None,
            context: Value::Null,
        },
        Timestamp::now(),
    );
    expect_kind(
        ctx.set
            .runs
            .finish(&ctx.tenant, &rid, failing.clone())
            .await,
        ErrorKind::InvalidInput,
        "a run error message above the limit",
    )?;
    if let Some(e) = failing.error.as_mut() {
        e.message = "short".into();
        e.context = json!({ "dump": big.clone() });
    }
    expect_kind(
        ctx.set
            .runs
            .finish(&ctx.tenant, &rid, failing.clone())
            .await,
        ErrorKind::InvalidInput,
        "a run error context above the limit",
    )?;
    let mut step = node("a", Timestamp::now());
    if let RunStep::Node(n) = &mut step {
        n.error = Some(big.clone());
    }
    expect_kind(
        ctx.set.runs.append(&ctx.tenant, &rid, step.clone()).await,
        ErrorKind::InvalidInput,
        "a node error above the limit",
    )?;
    if let RunStep::Node(n) = &mut step {
        n.error = None;
        n.node_type = long_name.clone();
    }
    expect_kind(
        ctx.set.runs.append(&ctx.tenant, &rid, step).await,
        ErrorKind::InvalidInput,
        "a node type above 256 bytes",
    )?;
    let snapshot = RunStep::Snapshot(storage_ports::VariableSnapshot {
        name: long_name,
        old_value: Value::Null,
        new_value: json!(1),
        at: Timestamp::now(),
    });
    expect_kind(
        ctx.set.runs.append(&ctx.tenant, &rid, snapshot).await,
        ErrorKind::InvalidInput,
        "a variable name above 256 bytes",
    )?;
    let head = ctx.set.runs.get(&ctx.tenant, &rid).await?;
    ensure_eq!(
        head.status,
        storage_ports::RunStatus::Running,
        "a refused finish changed the run"
    );
    ensure_eq!(
        ctx.set.runs.events(&ctx.tenant, &rid, 1).await?.len(),
        1,
        "refused appends left events (only Started may be there)"
    );
    Ok(())
}

/// N4 on a job's failure text: above the payload limit it is `InvalidInput`, and the
/// lease still holds (the job is neither retried nor dead).
pub async fn n4_an_oversized_job_failure_text_is_refused(ctx: Ctx) -> TestResult {
    let q: QueueName = id("n4-fail")?;
    ctx.set
        .queue
        .enqueue(&ctx.tenant, &q, NewJob::new(json!(1)))
        .await?;
    let leased = ctx
        .set
        .queue
        .dequeue(
            &ctx.tenant,
            &q,
            storage_ports::Dequeue::one(std::time::Duration::from_secs(60)),
        )
        .await?;
    let lease = &leased
        .first()
        .ok_or_else(|| Failure("nothing dequeued".into()))?
        .lease;
    expect_kind(
        ctx.set
            .queue
            .fail(
                &ctx.tenant,
                lease,
                storage_ports::JobFailure {
                    error: "x".repeat(storage_ports::rules::limits::DEFAULT_MAX_PAYLOAD_BYTES + 1),
                    retry: false,
                },
            )
            .await,
        ErrorKind::InvalidInput,
        "a failure text above the limit",
    )?;
    ensure_eq!(
        ctx.set.queue.stats(&ctx.tenant, &q).await?.running,
        1,
        "the job after a refused fail"
    );
    ctx.set.queue.ack(&ctx.tenant, lease).await?;
    Ok(())
}

/// A payload nested `levels` deep (arrays in arrays).
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("core"), |inner, _| json!([inner]))
}

/// N2 at the depth limit: a document and run inputs nested as deep as
/// `MAX_PAYLOAD_DEPTH` round-trip; one level deeper is `InvalidInput` and nothing is
/// written, so nothing is ever stored that a JSON reader would refuse to read back.
pub async fn n2_payloads_nested_to_the_limit_round_trip_and_deeper_are_refused(
    ctx: Ctx,
) -> TestResult {
    let max = storage_ports::rules::limits::MAX_PAYLOAD_DEPTH;
    let c: CollectionName = id("n2-deep")?;
    let doc = ctx
        .set
        .documents
        .create(&ctx.tenant, &c, None, json!({ "deep": nested(max - 1) }))
        .await?;
    ensure_eq!(
        ctx.set.documents.get(&ctx.tenant, &c, &doc.id).await?.body,
        json!({ "deep": nested(max - 1) }),
        "a document at the depth limit"
    );
    expect_kind(
        ctx.set
            .documents
            .create(&ctx.tenant, &c, None, json!({ "deep": nested(max) }))
            .await,
        ErrorKind::InvalidInput,
        "a document one level deeper",
    )?;
    if ctx.caps.runs {
        let mut run = new_run("n2-deep", Timestamp::now());
        run.inputs = nested(max);
        let rid = run.run_id.clone();
        ctx.set.runs.start(&ctx.tenant, run).await?;
        ensure_eq!(
            ctx.set.runs.get(&ctx.tenant, &rid).await?.inputs,
            nested(max),
            "run inputs at the depth limit"
        );
        let mut deeper = new_run("n2-deep", Timestamp::now());
        deeper.inputs = nested(max + 1);
        expect_kind(
            ctx.set.runs.start(&ctx.tenant, deeper).await,
            ErrorKind::InvalidInput,
            "run inputs one level deeper",
        )?;
    }
    Ok(())
}

/// N5: errors carry a kind a host can match and say what was missing.
pub async fn n5_errors_are_typed_and_say_what(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("n5-missing")?;
    let e = expect_kind(
        ctx.set.workflows.get(&ctx.tenant, &wf, 7).await,
        ErrorKind::NotFound,
        "get of a missing version",
    )?;
    ensure!(
        e.to_string().contains("n5-missing"),
        "the message must name the workflow: {e}"
    );
    ensure!(!e.is_retryable(), "not-found must not be retryable");
    Ok(())
}
