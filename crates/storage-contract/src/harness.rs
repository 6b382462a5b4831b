//! Registration: every behaviour as a separately reported libtest-mimic trial, gated by
//! capabilities.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use storage_ports::{
    Capabilities, CollectionName, ErrorKind, JobId, NewJob, QueueName, RunId, StoreSet, Timestamp,
    WorkflowId,
};

use crate::check::{expect_kind, Ctx, Failure, TestResult};

/// Which capability a behaviour needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: runs on every adapter.
    Nothing,
    /// The workflow port.
    Workflows,
    /// The run port.
    Runs,
    /// Live run watching.
    RunWatch,
    /// The metrics port.
    Metrics,
    /// The credential port.
    Credentials,
    /// The job queue.
    Queue,
    /// Waiting on a queue.
    QueueWait,
    /// Pausing and resuming a queue (Q11).
    QueuePause,
    /// Pausing a queue and waiting on it (Q11).
    QueuePauseWait,
    /// Snoozing a leased job (Q12).
    QueueSnooze,
    /// Cancelling jobs (Q14).
    QueueCancel,
    /// The finished-job history (Q15), with cancelling.
    QueueHistory,
    /// Progress and output (Q16).
    QueueProgress,
    /// Unique jobs over a period (Q17; the tests cancel too).
    QueueUnique,
    /// Concurrency limits (Q18).
    QueueLimits,
    /// Schedules (Q19).
    QueueSchedules,
    /// Cross-port transactions.
    Transactions,
    /// The document port.
    Documents,
    /// Schema migrations.
    Schema,
}

impl Needs {
    fn offered(self, c: &Capabilities) -> bool {
        match self {
            Self::Nothing => true,
            Self::Workflows => c.workflows,
            Self::Runs => c.runs,
            Self::RunWatch => c.runs && c.run_watch,
            Self::Metrics => c.metrics,
            Self::Credentials => c.credentials,
            Self::Queue => c.queue,
            Self::QueueWait => c.queue && c.queue_wait,
            Self::QueuePause => c.queue && c.queue_pause,
            Self::QueuePauseWait => c.queue && c.queue_pause && c.queue_wait,
            Self::QueueSnooze => c.queue && c.queue_snooze,
            Self::QueueCancel => c.queue && c.queue_cancel,
            Self::QueueHistory => c.queue && c.queue_history && c.queue_cancel,
            Self::QueueProgress => c.queue && c.queue_progress,
            Self::QueueUnique => c.queue && c.queue_unique && c.queue_cancel,
            Self::QueueLimits => c.queue && c.queue_limits,
            Self::QueueSchedules => c.queue && c.queue_schedules,
            Self::Transactions => c.transactions,
            Self::Documents => c.documents,
            Self::Schema => c.schema_migrations,
        }
    }
}

type BoxFut = Pin<Box<dyn Future<Output = TestResult> + Send>>;

/// One behaviour: its test name (spec id first), what it needs, and the test.
#[derive(Clone)]
pub struct Behaviour {
    /// Test name, e.g. `w4_concurrent_writers_get_distinct_versions`.
    pub name: &'static str,
    /// Capability required.
    pub needs: Needs,
    /// The test.
    pub test: fn(Ctx) -> BoxFut,
}

impl Behaviour {
    /// The behaviour's id as `docs/behaviours.md` states it (`Q4` for
    /// `q4_stale_lease_is_fenced`).
    #[must_use]
    pub fn id(&self) -> String {
        self.name
            .split('_')
            .next()
            .unwrap_or(self.name)
            .to_ascii_uppercase()
    }
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish()
    }
}

macro_rules! behaviours {
    ($($needs:ident => $($f:path),+ ;)+) => {
        /// Every behaviour of the suite.
        #[must_use]
        #[allow(clippy::vec_init_then_push)]
        pub fn behaviours() -> Vec<Behaviour> {
            let mut v = Vec::new();
            $($(
                v.push(Behaviour {
                    name: stringify!($f).rsplit("::").next().unwrap_or(stringify!($f)).trim(),
                    needs: Needs::$needs,
                    test: |ctx| Box::pin($f(ctx)),
                });
            )+)+
            v
        }
    };
}

behaviours! {
    Nothing => crate::names::n1_tenant_ids_follow_their_rule, crate::names::n1_workflow_ids_reject_traversal_and_separators,
        crate::names::n1_every_id_kind_rejects_bad_input_naming_the_rule,
        crate::operations::o1_health_answers, crate::operations::o2_stats_count_what_each_concern_holds,
        crate::operations::o4_export_import_through_ports_keeps_counts_and_digests;
    Workflows => crate::names::n2_payloads_round_trip_as_workflow_definitions, crate::names::n3_timestamps_round_trip_to_the_microsecond,
        crate::names::n4_oversized_definition_is_refused_and_nothing_written, crate::names::n5_errors_are_typed_and_say_what,
        crate::workflows::w1_put_get_returns_definition_meta_and_hash, crate::workflows::w2_other_content_at_existing_version_fails_the_precondition,
        crate::workflows::w2_identical_content_again_is_idempotent, crate::workflows::w3_next_version_is_assigned,
        crate::workflows::w3_versions_are_never_reused_after_delete, crate::workflows::w3_version_zero_is_invalid,
        crate::workflows::w4_concurrent_writers_get_distinct_versions, crate::workflows::w5_lineage_reads_back_to_the_root,
        crate::workflows::w5_missing_parent_is_rejected, crate::workflows::w6_latest_is_highest_not_deleted,
        crate::workflows::w6_latest_of_missing_workflow_is_not_found, crate::workflows::w7_versions_list_ascending,
        crate::workflows::w7_list_pages_yield_each_workflow_once, crate::workflows::w8_delete_removes_one_version_only,
        crate::workflows::w8_delete_missing_is_not_found, crate::workflows::w9_tenants_never_see_each_other;
    Runs => crate::names::n2_payloads_round_trip_in_run_logs, crate::runs::e1_started_run_reads_back_running,
        crate::runs::e2_steps_append_and_read_back_in_order, crate::runs::e2_every_append_is_a_sequenced_event,
        crate::runs::e3_finish_sets_terminal_status_and_result, crate::runs::e3_finished_run_is_immutable,
        crate::runs::e3_finish_with_running_is_invalid, crate::runs::e4_complete_run_in_one_call,
        crate::runs::e4_existing_run_id_already_exists, crate::runs::e5_query_filters_newest_first,
        crate::runs::e5_paging_yields_each_once_while_writing, crate::runs::e5_foreign_cursor_is_invalid,
        crate::runs::e6_recent_runs_of_a_version, crate::runs::e7_events_read_from_a_sequence,
        crate::runs::e8_delete_removes_steps_and_events, crate::runs::e8_delete_missing_is_not_found,
        crate::runs::e9_age_policy_removes_old_runs_only, crate::runs::e9_count_policy_keeps_newest_per_workflow,
        crate::runs::e9_failed_runs_are_kept_longer, crate::runs::e9_dry_run_reports_without_deleting,
        crate::runs::e9_archive_holds_pruned_runs_before_delete, crate::runs::e10_tenants_never_see_each_other,
        crate::runs::e11_batch_stores_many_runs_atomically_per_run,
        crate::runs::e12_concurrent_writers_each_get_their_own_answer,
        crate::names::n3_times_at_the_storable_bounds_round_trip_and_outside_are_refused, crate::names::n4_every_long_run_field_is_bounded;
    RunWatch => crate::runs::e7_watcher_receives_live_events;
    Metrics => crate::metrics::m1_record_updates_aggregates, crate::metrics::m1_recording_a_run_twice_changes_nothing,
        crate::metrics::m2_percentiles_within_one_percent, crate::metrics::m2_summary_per_version_and_over_all,
        crate::metrics::m3_custom_value_summary, crate::metrics::m3_series_in_buckets, crate::metrics::m3_baseline_is_median_of_last_n,
        crate::metrics::m4_patterns_upsert_counting_occurrences, crate::metrics::m4_patterns_list_by_confidence,
        crate::metrics::m5_concurrent_recorders_lose_no_update, crate::metrics::m6_tenants_never_see_each_other;
    Credentials => crate::credentials::c1_set_get_overwrite_delete, crate::credentials::c1_missing_key_is_not_found,
        crate::credentials::c2_list_is_exact_after_concurrent_sets_and_deletes, crate::credentials::c3_structured_credentials_round_trip,
        crate::credentials::c4_secret_never_in_debug_display_or_errors, crate::credentials::c5_tenants_never_see_each_other;
    Queue => crate::names::n2_payloads_round_trip_as_job_payloads, crate::names::n4_oversized_job_is_refused, crate::names::n4_an_oversized_job_failure_text_is_refused,
        crate::queue::q1_enqueue_dequeue_ack, crate::queue::q2_priority_then_run_at_then_enqueue_order,
        crate::queue::q3_future_job_waits_for_its_time, crate::queue::q3_delay_counts_from_the_backend_receiving_the_job,
        crate::queue::q4_lease_hides_job_until_expiry_then_redelivers,
        crate::queue::q4_heartbeat_extends_the_lease, crate::queue::q4_stale_lease_is_fenced,
        crate::queue::q4_expired_lease_holds_until_the_job_is_taken_over,
        crate::queue::q4_expired_last_attempt_dies_at_the_next_dequeue,
        crate::queue::q5_retry_backs_off_then_dies, crate::queue::q5_dead_jobs_list_and_requeue,
        crate::queue::q6_dedup_key_returns_the_first_job, crate::queue::q6_a_batch_repeating_a_pending_key_returns_the_pending_job, crate::queue::q7_many_workers_process_each_job_once,
        crate::queue::q8_queues_isolated_by_name_and_tenant, crate::queue::q8_stats_count_each_state,
        crate::queue::q10_batches_enqueue_lease_and_ack_many, crate::queue::q10_a_lease_twice_in_one_ack_batch_acks_once, crate::queue_lifecycle::q13_ack_and_lease_the_next_batch_in_one_call, crate::queue::o4_dead_jobs_export_and_import;
    QueueWait => crate::queue::q9_wait_wakes_promptly_on_enqueue;
    QueuePause => crate::queue_lifecycle::q11_a_paused_queue_delivers_nothing_until_resumed;
    QueuePauseWait => crate::queue_lifecycle::q11_resume_wakes_waiters;
    QueueSnooze => crate::queue_lifecycle::q12_snooze_puts_the_job_back_without_using_an_attempt;
    QueueCancel => crate::queue_history::q14_a_cancelled_pending_or_scheduled_job_is_never_delivered,
        crate::queue_history::q14_a_running_job_is_cancelled_cooperatively;
    QueueHistory => crate::queue_history::q15_finished_jobs_are_kept_and_listed_newest_first,
        crate::queue_history::q15_retention_prunes_in_bounded_batches,
        crate::queue_history::q15_a_finished_job_is_enqueued_again_as_a_new_job,
        crate::queue_history::q15_jobs_are_listed_by_status_in_queue_order;
    QueueProgress => crate::queue_history::q16_progress_is_fenced_and_the_output_is_kept;
    QueueUnique => crate::queue_unique::q17_a_unique_key_holds_while_finished_within_its_period,
        crate::queue_unique::q17_racing_unique_enqueues_store_one_job;
    QueueLimits => crate::queue_limits::q18_a_key_at_its_limit_does_not_block_other_keys,
        crate::queue_limits::q18_limits_hold_under_many_workers;
    QueueSchedules => crate::schedules::q19_schedules_are_stored_listed_paused_and_removed,
        crate::schedules::q19_a_due_schedule_advances_once;
    Transactions => crate::transactions::t1_run_and_job_commit_together, crate::transactions::t1_failure_leaves_neither_visible,
        crate::units_of_work::t2_a_unit_commits_documents_a_run_and_a_job_together, crate::units_of_work::t2_a_unit_reads_its_own_writes,
        crate::units_of_work::t3_an_error_in_the_work_rolls_everything_back, crate::units_of_work::t3_a_dropped_or_rolled_back_unit_writes_nothing,
        crate::units_of_work::t3_a_panic_in_the_work_rolls_back, crate::units_of_work::t4_uncommitted_writes_are_invisible_to_other_readers,
        crate::units_of_work::t4_concurrent_units_lose_no_update, crate::units_of_work::t5_an_answer_leaves_the_unit_usable,
        crate::units_of_work::t6_an_execution_document_and_its_job_commit_together;
    Documents => crate::names::n2_payloads_round_trip_as_documents, crate::names::n2_payloads_nested_to_the_limit_round_trip_and_deeper_are_refused, crate::documents::d1_create_get_replace_delete,
        crate::documents::d1_stale_revision_fails_the_precondition, crate::documents::d1_list_pages_with_equality_filters, crate::documents::d1_listing_is_in_byte_order_of_ids,
        crate::documents::d2_tenants_never_see_each_other;
    Schema => crate::operations::o3_migrations_recorded_and_idempotent;
}

/// For an absent capability: the port must answer `Unsupported`.
async fn check_unsupported(needs: Needs, ctx: Ctx) -> TestResult {
    let t = &ctx.tenant;
    let s = &ctx.set;
    let what = format!("{needs:?} is declared absent, so the port must say Unsupported");
    let kind = ErrorKind::Unsupported;
    let wf: WorkflowId = crate::check::id("wf")?;
    let run: RunId = crate::check::id("r")?;
    let q: QueueName = crate::check::id("q")?;
    match needs {
        Needs::Nothing => {}
        Needs::Workflows => drop(expect_kind(s.workflows.latest(t, &wf).await, kind, &what)?),
        Needs::Runs => drop(expect_kind(s.runs.get(t, &run).await, kind, &what)?),
        Needs::RunWatch => drop(expect_kind(
            s.runs.watch(t, &run, 1).await.map(|_| ()),
            kind,
            &what,
        )?),
        Needs::Metrics => drop(expect_kind(
            s.metrics.summary(t, &wf, None).await,
            kind,
            &what,
        )?),
        Needs::Credentials => drop(expect_kind(s.credentials.list(t).await, kind, &what)?),
        Needs::Queue => drop(expect_kind(s.queue.stats(t, &q).await, kind, &what)?),
        Needs::QueueWait => drop(expect_kind(
            s.queue.wait(t, &q, Duration::from_millis(10)).await,
            kind,
            &what,
        )?),
        Needs::QueuePause | Needs::QueuePauseWait => {
            drop(expect_kind(s.queue.pause(t, &q).await, kind, &what)?);
        }
        Needs::QueueSnooze => {
            let lease = storage_ports::Lease {
                queue: q.clone(),
                job_id: JobId::generate(),
                token: 1,
                expires_at: Timestamp::now(),
            };
            drop(expect_kind(
                s.queue.snooze(t, &lease, Duration::from_millis(1)).await,
                kind,
                &what,
            )?);
        }
        Needs::QueueCancel => drop(expect_kind(
            s.queue.cancel(t, &q, &JobId::generate()).await,
            kind,
            &what,
        )?),
        Needs::QueueHistory => drop(expect_kind(
            s.queue
                .history(t, &q, &storage_ports::HistoryQuery::first(1))
                .await,
            kind,
            &what,
        )?),
        Needs::QueueProgress => {
            let lease = storage_ports::Lease {
                queue: q.clone(),
                job_id: JobId::generate(),
                token: 1,
                expires_at: Timestamp::now(),
            };
            drop(expect_kind(
                s.queue.progress(t, &lease, serde_json::json!(1)).await,
                kind,
                &what,
            )?);
        }
        Needs::QueueUnique => drop(expect_kind(
            storage_ports::JobQueueExt::enqueue(
                &*s.queue,
                t,
                &q,
                NewJob::new(serde_json::json!(1))
                    .with_dedup_key("k")
                    .with_unique_for(Duration::from_secs(1)),
            )
            .await,
            kind,
            &what,
        )?),
        Needs::QueueLimits => drop(expect_kind(
            s.queue
                .dequeue(
                    t,
                    &q,
                    storage_ports::Dequeue::one(Duration::from_secs(1)).with_key_limit(1),
                )
                .await,
            kind,
            &what,
        )?),
        Needs::QueueSchedules => drop(expect_kind(s.schedules.schedules(t).await, kind, &what)?),
        Needs::Transactions => drop(expect_kind(
            s.transactions.begin(t).await.map(|_| ()),
            kind,
            &what,
        )?),
        Needs::Documents => {
            let c: CollectionName = crate::check::id("c")?;
            drop(expect_kind(
                s.documents.get(t, &c, &crate::check::id("d")?).await,
                kind,
                &what,
            )?);
        }
        Needs::Schema => drop(expect_kind(s.operations.schema().await, kind, &what)?),
    }
    Ok(())
}

/// How long one behaviour may take before it fails.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the whole suite against the store sets `factory` builds (one per test), as a
/// libtest-mimic main: filters, `--list`, `--test-threads` work as with `cargo test`.
/// `backend` prefixes every test name.
pub fn run<F, Fut>(backend: &str, factory: F) -> ExitCode
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<StoreSet, String>> + Send + 'static,
{
    let args = Arguments::from_args();
    let factory = Arc::new(factory);
    let trials = behaviours()
        .into_iter()
        .map(|b| {
            let factory = factory.clone();
            Trial::test(format!("{backend}::{}", b.name), move || {
                run_one(&b, &*factory)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn run_one<F, Fut>(b: &Behaviour, factory: &F) -> Result<(), Failed>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<StoreSet, String>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("cannot start a tokio runtime: {e}")))?;
    rt.block_on(async {
        let set = factory().await.map_err(Failed::from)?;
        let ctx = Ctx::new(set);
        let fut = if b.needs.offered(&ctx.caps) {
            (b.test)(ctx)
        } else {
            Box::pin(check_unsupported(b.needs, ctx))
        };
        let outcome = match tokio::time::timeout(TIMEOUT, fut).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(Failure(msg))) => msg,
            Err(_) => format!("{} did not finish within {TIMEOUT:?}", b.name),
        };
        Err(Failed::from(format!(
            "{outcome}\n  the behaviour: docs/behaviours.md, section {}",
            b.id()
        )))
    })
}
