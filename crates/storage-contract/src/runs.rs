//! E1-E11: run logs.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use storage_ports::{
    CompleteRun, ErrorKind, JsonLinesArchive, NewRun, NodeExecution, NodeStatus, RetentionPolicy,
    Run, RunError, RunEventKind, RunId, RunOutcome, RunQuery, RunStatus, RunStep, Timestamp,
    VariableSnapshot,
};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const HOUR: i64 = 3_600_000_000;

/// A run of `workflow` v1 to start.
#[must_use]
pub fn new_run(workflow: &str, started_at: Timestamp) -> NewRun {
    NewRun {
        run_id: RunId::generate(),
        workflow_id: storage_ports::WorkflowId::new(workflow).unwrap_or_else(|_| {
            storage_ports::WorkflowId::new("invalid").unwrap_or_else(|_| unreachable!())
        }),
        version: 1,
        inputs: json!({"order": 42}),
        started_at,
    }
}

/// A succeeded node step.
#[must_use]
pub fn node(node_id: &str, at: Timestamp) -> RunStep {
    RunStep::Node(NodeExecution {
        node_id: storage_ports::NodeId::new(node_id).unwrap_or_else(|_| unreachable!()),
        node_type: "http".into(),
        status: NodeStatus::Succeeded,
        inputs: json!({"url": "https://example.test"}),
        outputs: json!({"status": 200}),
        error: None,
        retries: 1,
        started_at: at,
        ended_at: Some(Timestamp::from_micros(at.as_micros() + 5)),
    })
}

/// A variable snapshot step.
#[must_use]
pub fn snapshot(name: &str, at: Timestamp) -> RunStep {
    RunStep::Snapshot(VariableSnapshot {
        name: name.into(),
        old_value: json!(null),
        new_value: json!({"v": name}),
        at,
    })
}

/// A whole finished run with two nodes and a snapshot.
#[must_use]
pub fn complete_run(workflow: &str, status: RunStatus, started_at: Timestamp) -> CompleteRun {
    let mut run = Run::started(new_run(workflow, started_at));
    let t = started_at.as_micros();
    let steps = vec![
        node("a", Timestamp::from_micros(t + 1)),
        snapshot("x", Timestamp::from_micros(t + 2)),
        node("b", Timestamp::from_micros(t + 3)),
    ];
    if status.is_terminal() {
        let end = Timestamp::from_micros(t + 10);
        run.apply(match status {
            RunStatus::Failed => RunOutcome::failed(run_error(), end),
            _ => RunOutcome {
                status,
                ended_at: end,
                output: Some(json!({"ok": true})),
                error: None,
            },
        });
    }
    CompleteRun { run, steps }
}

fn run_error() -> RunError {
    RunError {
        kind: "timeout".into(),
        message: "node b timed out".into(),
        node_id: storage_ports::NodeId::new("b").ok(),
        context: json!({"after_ms": 30000}),
    }
}

/// E1: a started run reads back as running.
pub async fn e1_started_run_reads_back_running(ctx: Ctx) -> TestResult {
    let new = new_run("e1", Timestamp::now());
    let started = ctx.set.runs.start(&ctx.tenant, new.clone()).await?;
    let back = ctx.set.runs.get(&ctx.tenant, &new.run_id).await?;
    ensure_eq!(back, started, "read back");
    ensure_eq!(back.status, RunStatus::Running, "status");
    ensure_eq!(
        (back.workflow_id, back.version, back.inputs, back.started_at),
        (new.workflow_id, new.version, new.inputs, new.started_at),
        "head"
    );
    Ok(())
}

/// E2: nodes and snapshots append and read back in order.
pub async fn e2_steps_append_and_read_back_in_order(ctx: Ctx) -> TestResult {
    let new = new_run("e2", Timestamp::now());
    let rid = new.run_id.clone();
    ctx.set.runs.start(&ctx.tenant, new).await?;
    let t = Timestamp::now().as_micros();
    let steps: Vec<RunStep> = (0..10_i64)
        .map(|i| {
            if i % 3 == 2 {
                snapshot(&format!("v{i}"), Timestamp::from_micros(t + i))
            } else {
                node(&format!("n{i}"), Timestamp::from_micros(t + i))
            }
        })
        .collect();
    for s in &steps {
        ctx.set.runs.append(&ctx.tenant, &rid, s.clone()).await?;
    }
    ensure_eq!(
        ctx.set.runs.get_complete(&ctx.tenant, &rid).await?.steps,
        steps,
        "steps"
    );
    Ok(())
}

/// E2: every append is an event with the next sequence number.
pub async fn e2_every_append_is_a_sequenced_event(ctx: Ctx) -> TestResult {
    let new = new_run("e2e", Timestamp::now());
    let rid = new.run_id.clone();
    ctx.set.runs.start(&ctx.tenant, new).await?;
    let t = Timestamp::now();
    ensure_eq!(
        ctx.set.runs.append(&ctx.tenant, &rid, node("a", t)).await?,
        2,
        "first append seq (1 is Started)"
    );
    ensure_eq!(
        ctx.set
            .runs
            .append(&ctx.tenant, &rid, snapshot("x", t))
            .await?,
        3,
        "second append seq"
    );
    ctx.set
        .runs
        .finish(&ctx.tenant, &rid, RunOutcome::succeeded(json!(1), t))
        .await?;
    let events = ctx.set.runs.events(&ctx.tenant, &rid, 1).await?;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    ensure_eq!(seqs, vec![1, 2, 3, 4], "event sequence");
    ensure!(
        matches!(events[0].kind, RunEventKind::Started),
        "first event must be Started"
    );
    ensure!(
        matches!(
            events[3].kind,
            RunEventKind::Finished {
                status: RunStatus::Succeeded
            }
        ),
        "last event must be Finished"
    );
    Ok(())
}

/// E3: finishing sets status, end time and the result or the structured error.
pub async fn e3_finish_sets_terminal_status_and_result(ctx: Ctx) -> TestResult {
    for (i, outcome) in [
        RunOutcome::succeeded(json!({"r": 1}), Timestamp::now()),
        RunOutcome::failed(run_error(), Timestamp::now()),
    ]
    .into_iter()
    .enumerate()
    {
        let new = new_run(&format!("e3-{i}"), Timestamp::now());
        let rid = new.run_id.clone();
        ctx.set.runs.start(&ctx.tenant, new).await?;
        ctx.set
            .runs
            .finish(&ctx.tenant, &rid, outcome.clone())
            .await?;
        let back = ctx.set.runs.get(&ctx.tenant, &rid).await?;
        ensure_eq!(
            (back.status, back.ended_at, back.output, back.error),
            (
                outcome.status,
                Some(outcome.ended_at),
                outcome.output,
                outcome.error
            ),
            "finished head"
        );
    }
    Ok(())
}

/// E3: after finishing, appends and finishes are `Immutable`.
pub async fn e3_finished_run_is_immutable(ctx: Ctx) -> TestResult {
    let new = new_run("e3i", Timestamp::now());
    let rid = new.run_id.clone();
    ctx.set.runs.start(&ctx.tenant, new).await?;
    ctx.set
        .runs
        .finish(
            &ctx.tenant,
            &rid,
            RunOutcome::succeeded(json!(1), Timestamp::now()),
        )
        .await?;
    expect_kind(
        ctx.set
            .runs
            .append(&ctx.tenant, &rid, node("late", Timestamp::now()))
            .await,
        ErrorKind::Immutable,
        "append after finish",
    )?;
    expect_kind(
        ctx.set
            .runs
            .finish(
                &ctx.tenant,
                &rid,
                RunOutcome::failed(run_error(), Timestamp::now()),
            )
            .await,
        ErrorKind::Immutable,
        "second finish",
    )?;
    ensure_eq!(
        ctx.set.runs.get(&ctx.tenant, &rid).await?.status,
        RunStatus::Succeeded,
        "status after refused finish"
    );
    Ok(())
}

/// E3: `Running` is not a way to finish.
pub async fn e3_finish_with_running_is_invalid(ctx: Ctx) -> TestResult {
    let new = new_run("e3r", Timestamp::now());
    let rid = new.run_id.clone();
    ctx.set.runs.start(&ctx.tenant, new).await?;
    let outcome = RunOutcome {
        status: RunStatus::Running,
        ended_at: Timestamp::now(),
        output: None,
        error: None,
    };
    expect_kind(
        ctx.set.runs.finish(&ctx.tenant, &rid, outcome).await,
        ErrorKind::InvalidInput,
        "finish as running",
    )?;
    Ok(())
}

/// E4: a complete run is stored in one call and reads back whole.
pub async fn e4_complete_run_in_one_call(ctx: Ctx) -> TestResult {
    let run = complete_run("e4", RunStatus::Failed, Timestamp::now());
    ctx.set
        .runs
        .store_complete(&ctx.tenant, run.clone())
        .await?;
    ensure_eq!(
        ctx.set
            .runs
            .get_complete(&ctx.tenant, &run.run.run_id)
            .await?,
        run,
        "complete run"
    );
    ensure_eq!(
        ctx.set.runs.events(&ctx.tenant, &run.run.run_id, 1).await?,
        run.events(),
        "events"
    );
    Ok(())
}

/// E4: storing a run id that exists is `AlreadyExists`.
pub async fn e4_existing_run_id_already_exists(ctx: Ctx) -> TestResult {
    let run = complete_run("e4c", RunStatus::Succeeded, Timestamp::now());
    ctx.set
        .runs
        .store_complete(&ctx.tenant, run.clone())
        .await?;
    let mut other = complete_run("e4c", RunStatus::Failed, Timestamp::now());
    other.run.run_id = run.run.run_id.clone();
    expect_kind(
        ctx.set.runs.store_complete(&ctx.tenant, other).await,
        ErrorKind::AlreadyExists,
        "existing id",
    )?;
    ensure_eq!(
        ctx.set
            .runs
            .get_complete(&ctx.tenant, &run.run.run_id)
            .await?,
        run,
        "original run"
    );
    Ok(())
}

async fn seed(ctx: &Ctx, base: i64) -> Result<Vec<CompleteRun>, Failure> {
    let mut runs = Vec::new();
    for i in 0..30_i64 {
        let status = [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ][usize::try_from(i % 3).unwrap_or(0)];
        let mut r = complete_run(
            if i % 2 == 0 { "even" } else { "odd" },
            status,
            Timestamp::from_micros(base + i * HOUR),
        );
        r.run.version = u32::try_from(1 + i % 2 * (i % 4)).unwrap_or(1);
        runs.push(r);
    }
    for r in ctx
        .set
        .runs
        .store_complete_batch(&ctx.tenant, runs.clone())
        .await?
    {
        r?;
    }
    Ok(runs)
}

/// E5: filters by workflow, version, status set and time range, newest first.
pub async fn e5_query_filters_newest_first(ctx: Ctx) -> TestResult {
    let base = Timestamp::now().as_micros() - 40 * HOUR;
    let runs = seed(&ctx, base).await?;
    let q = RunQuery {
        workflow_id: Some(id("even")?),
        statuses: vec![RunStatus::Succeeded, RunStatus::Failed],
        started_from: Some(Timestamp::from_micros(base + 4 * HOUR)),
        started_before: Some(Timestamp::from_micros(base + 25 * HOUR)),
        limit: 100,
        ..RunQuery::default()
    };
    let mut want: Vec<&Run> = runs
        .iter()
        .map(|r| &r.run)
        .filter(|r| q.matches(r))
        .collect();
    want.sort_by(|a, b| RunQuery::key(b).cmp(&RunQuery::key(a)));
    let got = ctx.set.runs.query(&ctx.tenant, q).await?;
    ensure!(!want.is_empty(), "the seed must match something");
    ensure_eq!(got.items.iter().collect::<Vec<_>>(), want, "query result");
    ensure!(got.next.is_none(), "no next page expected");
    Ok(())
}

/// E5: paging yields each matching run exactly once, also while runs are written.
pub async fn e5_paging_yields_each_once_while_writing(ctx: Ctx) -> TestResult {
    let base = Timestamp::now().as_micros() - 40 * HOUR;
    let runs = seed(&ctx, base).await?;
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut extra = 0;
    loop {
        let p = ctx
            .set
            .runs
            .query(
                &ctx.tenant,
                RunQuery {
                    limit: 7,
                    cursor,
                    ..RunQuery::default()
                },
            )
            .await?;
        seen.extend(p.items.iter().map(|r| r.run_id.clone()));
        // New runs arrive between pages, both newer and inside the range.
        extra += 1;
        let r = complete_run(
            "late",
            RunStatus::Succeeded,
            Timestamp::from_micros(base + 100 * HOUR + extra),
        );
        ctx.set.runs.store_complete(&ctx.tenant, r).await?;
        match p.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: BTreeSet<&RunId> = seen.iter().collect();
    ensure_eq!(unique.len(), seen.len(), "a run was yielded twice");
    for r in &runs {
        ensure!(
            unique.contains(&r.run.run_id),
            "run {} was never yielded",
            r.run.run_id
        );
    }
    Ok(())
}

/// E5: a cursor from another listing is invalid input.
pub async fn e5_foreign_cursor_is_invalid(ctx: Ctx) -> TestResult {
    let cursor = storage_ports::Cursor::encode("workflows", &"x");
    let r = ctx
        .set
        .runs
        .query(
            &ctx.tenant,
            RunQuery {
                limit: 5,
                cursor: Some(cursor),
                ..RunQuery::default()
            },
        )
        .await;
    expect_kind(r, ErrorKind::InvalidInput, "foreign cursor")?;
    let r = ctx
        .set
        .runs
        .query(
            &ctx.tenant,
            RunQuery {
                limit: 5,
                cursor: Some(storage_ports::Cursor::from_string("not-hex!")),
                ..RunQuery::default()
            },
        )
        .await;
    expect_kind(r, ErrorKind::InvalidInput, "garbage cursor")?;
    Ok(())
}

/// E6: the most recent runs of a version, with a limit.
pub async fn e6_recent_runs_of_a_version(ctx: Ctx) -> TestResult {
    let base = Timestamp::now().as_micros() - 40 * HOUR;
    let runs = seed(&ctx, base).await?;
    let q = RunQuery {
        workflow_id: Some(id("odd")?),
        version: Some(2),
        limit: 3,
        ..RunQuery::default()
    };
    let mut want: Vec<&Run> = runs
        .iter()
        .map(|r| &r.run)
        .filter(|r| q.matches(r))
        .collect();
    want.sort_by(|a, b| RunQuery::key(b).cmp(&RunQuery::key(a)));
    want.truncate(3);
    let got = ctx.set.runs.query(&ctx.tenant, q).await?;
    ensure!(!want.is_empty(), "the seed must match something");
    ensure_eq!(got.items.iter().collect::<Vec<_>>(), want, "recent runs");
    Ok(())
}

/// E7: events read from a sequence number on.
pub async fn e7_events_read_from_a_sequence(ctx: Ctx) -> TestResult {
    let run = complete_run("e7", RunStatus::Succeeded, Timestamp::now());
    ctx.set
        .runs
        .store_complete(&ctx.tenant, run.clone())
        .await?;
    let got = ctx.set.runs.events(&ctx.tenant, &run.run.run_id, 3).await?;
    ensure_eq!(
        got,
        run.events()
            .into_iter()
            .filter(|e| e.seq >= 3)
            .collect::<Vec<_>>(),
        "events from 3"
    );
    Ok(())
}

/// E7: a watcher receives events of a live run as they are appended, then ends.
pub async fn e7_watcher_receives_live_events(ctx: Ctx) -> TestResult {
    let new = new_run("e7w", Timestamp::now());
    let rid = new.run_id.clone();
    ctx.set.runs.start(&ctx.tenant, new).await?;
    let mut stream = ctx.set.runs.watch(&ctx.tenant, &rid, 1).await?;
    let (set, t, r) = (ctx.set.clone(), ctx.tenant.clone(), rid.clone());
    let writer = tokio::spawn(async move {
        for i in 0..3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            set.runs
                .append(&t, &r, node(&format!("n{i}"), Timestamp::now()))
                .await?;
        }
        set.runs
            .finish(&t, &r, RunOutcome::succeeded(json!(1), Timestamp::now()))
            .await
    });
    let mut seqs = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .map_err(|_| Failure("watcher got no event within 10 s".into()))?
    {
        seqs.push(e?.seq);
    }
    writer
        .await
        .map_err(|e| Failure(format!("writer panicked: {e}")))??;
    ensure_eq!(seqs, vec![1, 2, 3, 4, 5], "watched sequence");
    Ok(())
}

/// E8: deleting a run removes it with its steps and events.
pub async fn e8_delete_removes_steps_and_events(ctx: Ctx) -> TestResult {
    let run = complete_run("e8", RunStatus::Succeeded, Timestamp::now());
    let keep = complete_run("e8", RunStatus::Succeeded, Timestamp::now());
    ctx.set
        .runs
        .store_complete(&ctx.tenant, run.clone())
        .await?;
    ctx.set
        .runs
        .store_complete(&ctx.tenant, keep.clone())
        .await?;
    let before = ctx.set.operations.stats(&ctx.tenant).await?;
    ctx.set.runs.delete(&ctx.tenant, &run.run.run_id).await?;
    expect_kind(
        ctx.set.runs.get(&ctx.tenant, &run.run.run_id).await,
        ErrorKind::NotFound,
        "deleted run",
    )?;
    expect_kind(
        ctx.set.runs.events(&ctx.tenant, &run.run.run_id, 1).await,
        ErrorKind::NotFound,
        "events of deleted run",
    )?;
    ensure_eq!(
        ctx.set
            .runs
            .get_complete(&ctx.tenant, &keep.run.run_id)
            .await?,
        keep,
        "the other run"
    );
    let after = ctx.set.operations.stats(&ctx.tenant).await?;
    ensure_eq!(
        before.run_events - after.run_events,
        run.events().len() as u64,
        "event rows removed with the run"
    );
    Ok(())
}

/// E8: deleting a missing run is not-found.
pub async fn e8_delete_missing_is_not_found(ctx: Ctx) -> TestResult {
    expect_kind(
        ctx.set.runs.delete(&ctx.tenant, &RunId::generate()).await,
        ErrorKind::NotFound,
        "delete of nothing",
    )?;
    Ok(())
}

async fn remaining(ctx: &Ctx) -> Result<BTreeSet<RunId>, Failure> {
    let p = ctx
        .set
        .runs
        .query(
            &ctx.tenant,
            RunQuery {
                limit: 1000,
                ..RunQuery::default()
            },
        )
        .await?;
    Ok(p.items.into_iter().map(|r| r.run_id).collect())
}

async fn aged(ctx: &Ctx, now: i64) -> Result<Vec<CompleteRun>, Failure> {
    // Ages in hours: 1, 10, 30, 50 for each status, plus one running 100h old.
    let mut runs = Vec::new();
    for age in [1, 10, 30, 50] {
        for status in [RunStatus::Succeeded, RunStatus::Failed] {
            runs.push(complete_run(
                "ret",
                status,
                Timestamp::from_micros(now - age * HOUR),
            ));
        }
    }
    runs.push(complete_run(
        "ret",
        RunStatus::Running,
        Timestamp::from_micros(now - 100 * HOUR),
    ));
    for r in ctx
        .set
        .runs
        .store_complete_batch(&ctx.tenant, runs.clone())
        .await?
    {
        r?;
    }
    Ok(runs)
}

fn ids_where(runs: &[CompleteRun], now: i64, f: impl Fn(&Run, i64) -> bool) -> BTreeSet<RunId> {
    runs.iter()
        .filter(|r| f(&r.run, (now - r.run.started_at.as_micros()) / HOUR))
        .map(|r| r.run.run_id.clone())
        .collect()
}

/// E9: the age policy removes finished runs older than the limit, and nothing else.
pub async fn e9_age_policy_removes_old_runs_only(ctx: Ctx) -> TestResult {
    let now = Timestamp::now().as_micros();
    let runs = aged(&ctx, now).await?;
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(24 * 3600)),
        ..RetentionPolicy::default()
    };
    let report = ctx
        .set
        .runs
        .prune(
            &ctx.tenant,
            &policy,
            Timestamp::from_micros(now),
            false,
            None,
        )
        .await?;
    ensure_eq!(report.deleted, 4, "deleted");
    ensure_eq!(
        remaining(&ctx).await?,
        ids_where(&runs, now, |r, age| age < 24 || !r.status.is_terminal()),
        "kept runs"
    );
    Ok(())
}

/// E9: the count policy keeps the newest N finished runs per workflow.
pub async fn e9_count_policy_keeps_newest_per_workflow(ctx: Ctx) -> TestResult {
    let now = Timestamp::now().as_micros();
    let runs = aged(&ctx, now).await?;
    let other = complete_run(
        "other",
        RunStatus::Succeeded,
        Timestamp::from_micros(now - 200 * HOUR),
    );
    ctx.set
        .runs
        .store_complete(&ctx.tenant, other.clone())
        .await?;
    let policy = RetentionPolicy {
        keep_newest_per_workflow: Some(3),
        ..RetentionPolicy::default()
    };
    ctx.set
        .runs
        .prune(
            &ctx.tenant,
            &policy,
            Timestamp::from_micros(now),
            false,
            None,
        )
        .await?;
    // Newest three finished of "ret": 1h (both) and one of the two 10h runs.
    let mut finished: Vec<&Run> = runs
        .iter()
        .map(|r| &r.run)
        .filter(|r| r.status.is_terminal())
        .collect();
    finished.sort_by(|a, b| RunQuery::key(b).cmp(&RunQuery::key(a)));
    let mut want: BTreeSet<RunId> = finished
        .iter()
        .take(3)
        .map(|r| r.run_id.clone())
        .collect::<BTreeSet<_>>()
        .union(&ids_where(&runs, now, |r, _| !r.status.is_terminal()))
        .cloned()
        .collect();
    want.insert(other.run.run_id.clone());
    ensure_eq!(remaining(&ctx).await?, want, "kept runs");
    Ok(())
}

/// E9: failed runs are kept longer than the age limit says.
pub async fn e9_failed_runs_are_kept_longer(ctx: Ctx) -> TestResult {
    let now = Timestamp::now().as_micros();
    let runs = aged(&ctx, now).await?;
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(5 * 3600)),
        keep_failed_for: Some(Duration::from_secs(40 * 3600)),
        ..RetentionPolicy::default()
    };
    ctx.set
        .runs
        .prune(
            &ctx.tenant,
            &policy,
            Timestamp::from_micros(now),
            false,
            None,
        )
        .await?;
    let want = ids_where(&runs, now, |r, age| {
        !r.status.is_terminal() || age < 5 || (r.status == RunStatus::Failed && age <= 40)
    });
    ensure_eq!(remaining(&ctx).await?, want, "kept runs");
    Ok(())
}

/// E9: a dry run reports exactly what a real prune then deletes, deleting nothing.
pub async fn e9_dry_run_reports_without_deleting(ctx: Ctx) -> TestResult {
    let now = Timestamp::from_micros(Timestamp::now().as_micros());
    let runs = aged(&ctx, now.as_micros()).await?;
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(20 * 3600)),
        ..RetentionPolicy::default()
    };
    let dry = ctx
        .set
        .runs
        .prune(&ctx.tenant, &policy, now, true, None)
        .await?;
    ensure_eq!(dry.deleted, 0, "dry run deleted");
    ensure_eq!(
        remaining(&ctx).await?.len(),
        runs.len(),
        "runs after dry run"
    );
    let real = ctx
        .set
        .runs
        .prune(&ctx.tenant, &policy, now, false, None)
        .await?;
    ensure_eq!(dry.selected, real.selected, "dry run selection vs real");
    ensure_eq!(real.deleted, real.selected.len(), "deleted");
    Ok(())
}

/// E9: archiving writes the pruned runs as JSON lines before deleting them.
pub async fn e9_archive_holds_pruned_runs_before_delete(ctx: Ctx) -> TestResult {
    let now = Timestamp::now().as_micros();
    let runs = aged(&ctx, now).await?;
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(40 * 3600)),
        ..RetentionPolicy::default()
    };
    let mut archive = JsonLinesArchive::new(Vec::new());
    let report = ctx
        .set
        .runs
        .prune(
            &ctx.tenant,
            &policy,
            Timestamp::from_micros(now),
            false,
            Some(&mut archive),
        )
        .await?;
    let text = String::from_utf8(archive.into_inner())
        .map_err(|e| Failure(format!("archive is not UTF-8: {e}")))?;
    let archived: Vec<CompleteRun> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| Failure(format!("archive line is not a run: {e}")))?;
    ensure_eq!(report.archived, 2, "archived count");
    for a in &archived {
        let original = runs
            .iter()
            .find(|r| r.run.run_id == a.run.run_id)
            .ok_or_else(|| Failure("archived an unknown run".into()))?;
        ensure_eq!(a, original, "archived run");
    }
    Ok(())
}

/// E10: tenants never see each other's runs, even with the same ids.
pub async fn e10_tenants_never_see_each_other(ctx: Ctx) -> TestResult {
    let run = complete_run("iso", RunStatus::Succeeded, Timestamp::now());
    ctx.set
        .runs
        .store_complete(&ctx.tenant, run.clone())
        .await?;
    expect_kind(
        ctx.set.runs.get(&ctx.other, &run.run.run_id).await,
        ErrorKind::NotFound,
        "other tenant's get",
    )?;
    ensure!(
        ctx.set
            .runs
            .query(
                &ctx.other,
                RunQuery {
                    limit: 10,
                    ..RunQuery::default()
                }
            )
            .await?
            .items
            .is_empty(),
        "other tenant's query sees A's run"
    );
    expect_kind(
        ctx.set.runs.delete(&ctx.other, &run.run.run_id).await,
        ErrorKind::NotFound,
        "other tenant's delete",
    )?;
    let mut same_id = complete_run("iso", RunStatus::Failed, Timestamp::now());
    same_id.run.run_id = run.run.run_id.clone();
    ctx.set.runs.store_complete(&ctx.other, same_id).await?;
    ensure_eq!(
        ctx.set
            .runs
            .get_complete(&ctx.tenant, &run.run.run_id)
            .await?,
        run,
        "A's run"
    );
    Ok(())
}

/// E11: a batch stores many runs; one whose id exists fails alone (`AlreadyExists`).
pub async fn e11_batch_stores_many_runs_atomically_per_run(ctx: Ctx) -> TestResult {
    let existing = complete_run("e11", RunStatus::Succeeded, Timestamp::now());
    ctx.set
        .runs
        .store_complete(&ctx.tenant, existing.clone())
        .await?;
    let mut batch: Vec<CompleteRun> = (0..200)
        .map(|_| complete_run("e11", RunStatus::Succeeded, Timestamp::now()))
        .collect();
    let mut dup = complete_run("e11", RunStatus::Failed, Timestamp::now());
    dup.run.run_id = existing.run.run_id.clone();
    batch.insert(100, dup);
    let results = ctx
        .set
        .runs
        .store_complete_batch(&ctx.tenant, batch.clone())
        .await?;
    ensure_eq!(results.len(), 201, "results");
    for (i, r) in results.into_iter().enumerate() {
        if i == 100 {
            expect_kind(r, ErrorKind::AlreadyExists, "duplicate in batch")?;
        } else {
            r?;
            ensure_eq!(
                ctx.set
                    .runs
                    .get_complete(&ctx.tenant, &batch[i].run.run_id)
                    .await?,
                batch[i],
                "batched run"
            );
        }
    }
    ensure_eq!(
        ctx.set
            .runs
            .get_complete(&ctx.tenant, &existing.run.run_id)
            .await?,
        existing,
        "existing run untouched"
    );
    Ok(())
}

/// E12: concurrent writers of one tenant each get their own answer. Eight writers
/// each start a run, append 40 steps and finish it, all at once, while refused writes
/// (an append to a finished run, a start of a taken id) go in between: every append
/// returns its run's next sequence number and is readable when it returns, every
/// refusal is the writer's own, and each run holds its writes once, in order. A
/// backend that coalesces concurrent writes into one transaction (group commit,
/// docs/performance.md P1) must keep every caller's answer apart.
pub async fn e12_concurrent_writers_each_get_their_own_answer(ctx: Ctx) -> TestResult {
    const WRITERS: usize = 8;
    const STEPS: u64 = 40;
    let (s, t) = (&ctx.set.runs, &ctx.tenant);
    let done = s.start(t, new_run("e12", Timestamp::now())).await?;
    s.finish(
        t,
        &done.run_id,
        RunOutcome::succeeded(json!(1), Timestamp::now()),
    )
    .await?;
    let writer = |w: usize| {
        let done = done.clone();
        async move {
            let run = s.start(t, new_run("e12", Timestamp::now())).await?;
            for i in 0..STEPS {
                let seq = s
                    .append(t, &run.run_id, snapshot(&format!("v{i}"), Timestamp::now()))
                    .await?;
                ensure_eq!(seq, i + 2, "writer {w}: the run's next sequence number");
                let seen = s.events(t, &run.run_id, seq).await?;
                ensure_eq!(
                    seen.first().map(|e| e.seq),
                    Some(seq),
                    "writer {w}: readable on return"
                );
                if i % 10 == 0 {
                    expect_kind(
                        s.append(t, &done.run_id, snapshot("late", Timestamp::now()))
                            .await,
                        ErrorKind::Immutable,
                        "an append to a finished run, among others' writes",
                    )?;
                    let again = NewRun {
                        run_id: done.run_id.clone(),
                        ..new_run("e12", Timestamp::now())
                    };
                    expect_kind(
                        s.start(t, again).await,
                        ErrorKind::AlreadyExists,
                        "a start of a taken id, among others' writes",
                    )?;
                }
            }
            let finished = s
                .finish(
                    t,
                    &run.run_id,
                    RunOutcome::succeeded(json!(w), Timestamp::now()),
                )
                .await?;
            ensure_eq!(
                finished.output,
                Some(json!(w)),
                "writer {w}: its own finish"
            );
            Ok::<RunId, Failure>(run.run_id)
        }
    };
    let runs = futures_util::future::join_all((0..WRITERS).map(writer)).await;
    for (w, run) in runs.into_iter().enumerate() {
        let run = run?;
        let seqs: Vec<u64> = s.events(t, &run, 1).await?.iter().map(|e| e.seq).collect();
        ensure_eq!(
            seqs,
            (1..=STEPS + 2).collect::<Vec<u64>>(),
            "writer {w}: every write once, in order"
        );
    }
    ensure_eq!(
        s.events(t, &done.run_id, 1).await?.len(),
        2,
        "nothing reached the finished run"
    );
    Ok(())
}
