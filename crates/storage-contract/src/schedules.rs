//! Q19: schedules of periodic jobs, stored in the queue's backend.

use std::time::Duration;

use serde_json::json;
use storage_ports::rules::schedule::first_tick;
use storage_ports::{
    CatchUp, ErrorKind, NewJob, NewSchedule, QueueName, ScheduleName, Timestamp, Timing,
};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

fn spec(name: &str, timing: Timing) -> Result<NewSchedule, Failure> {
    Ok(NewSchedule {
        name: id::<ScheduleName>(name)?,
        queue: id::<QueueName>("q19")?,
        timing,
        job: NewJob::new(json!({"report": name})),
        catch_up: CatchUp::Skip,
    })
}

fn every(ms: u64) -> Timing {
    Timing::Every { every_ms: ms }
}

/// Q19: a schedule is stored with its first tick from the backend's clock, listed,
/// replaced by name, paused, resumed and removed; a bad expression, an unknown zone
/// or a template with a dedup key is `InvalidInput`; a missing schedule is `NotFound`;
/// another tenant sees none.
pub async fn q19_schedules_are_stored_listed_paused_and_removed(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.schedules, &ctx.tenant);
    let cron = spec(
        "reports",
        Timing::Cron {
            expr: "*/5 * * * *".into(),
            tz: "Europe/Paris".into(),
        },
    )?;
    let before = Timestamp::now();
    let stored = s.put_schedule(t, cron.clone()).await?;
    ensure_eq!(stored.spec, cron, "the stored spec");
    ensure!(!stored.paused, "a new schedule runs");
    let expected = first_tick(&cron, stored.anchor)?;
    ensure_eq!(stored.next_at, expected, "the first tick after the anchor");
    ensure!(
        stored.next_at > before && stored.next_at.since(before) <= Duration::from_secs(301),
        "a */5 schedule ticks within 5 minutes: {} after {before}",
        stored.next_at
    );
    ensure_eq!(s.schedules(t).await?, vec![stored.clone()], "the listing");

    let bad = |timing: Timing| spec("bad", timing);
    for (what, b) in [
        (
            "minute 61",
            bad(Timing::Cron {
                expr: "61 * * * *".into(),
                tz: "UTC".into(),
            })?,
        ),
        (
            "an unknown zone",
            bad(Timing::Cron {
                expr: "* * * * *".into(),
                tz: "Mars/Olympus".into(),
            })?,
        ),
        ("a 1 ms interval", bad(every(1))?),
        (
            "a template with a dedup key",
            NewSchedule {
                job: NewJob::new(json!(1)).with_dedup_key("k"),
                ..bad(every(1000))?
            },
        ),
    ] {
        expect_kind(s.put_schedule(t, b).await, ErrorKind::InvalidInput, what)?;
    }

    let name = stored.spec.name.clone();
    s.set_schedule_paused(t, &name, true).await?;
    let replaced = s
        .put_schedule(
            t,
            NewSchedule {
                catch_up: CatchUp::RunOne,
                ..spec("reports", every(60_000))?
            },
        )
        .await?;
    ensure!(replaced.paused, "a replace keeps the paused state");
    let listed = s.schedules(t).await?;
    ensure_eq!(listed.len(), 1, "one schedule per name");
    ensure_eq!(listed[0].spec.timing, every(60_000), "the replaced timing");
    ensure_eq!(
        listed[0].spec.catch_up,
        CatchUp::RunOne,
        "the replaced catch-up"
    );
    s.set_schedule_paused(t, &name, false).await?;
    ensure!(!s.schedules(t).await?[0].paused, "resumed");
    ensure!(
        s.schedules(&ctx.other).await?.is_empty(),
        "another tenant sees the schedule"
    );
    s.delete_schedule(t, &name).await?;
    ensure!(s.schedules(t).await?.is_empty(), "deleted");
    expect_kind(
        s.delete_schedule(t, &name).await,
        ErrorKind::NotFound,
        "deleting a deleted schedule",
    )?;
    expect_kind(
        s.set_schedule_paused(t, &name, true).await,
        ErrorKind::NotFound,
        "pausing a missing schedule",
    )?;
    Ok(())
}

/// Q19: a schedule is due once the backend's clock reaches its next tick; advancing
/// it is a compare-and-set that one caller wins; a paused schedule is never due; a
/// limit out of 1..=1000 is `InvalidInput`.
pub async fn q19_a_due_schedule_advances_once(ctx: Ctx) -> TestResult {
    let (s, t) = (&ctx.set.schedules, &ctx.tenant);
    let stored = s.put_schedule(t, spec("tick", every(100))?).await?;
    let name = stored.spec.name.clone();
    let early = s.due_schedules(t, 10).await?;
    ensure!(
        early.schedules.iter().all(|d| d.spec.name != name) || early.now >= stored.next_at,
        "a schedule is not due before its tick"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let due = s.due_schedules(t, 10).await?;
    let mine = due
        .schedules
        .iter()
        .find(|d| d.spec.name == name)
        .ok_or_else(|| Failure("the schedule is not due 150 ms after a 100 ms tick".into()))?;
    ensure!(mine.next_at <= due.now, "a due schedule's tick has come");
    let to = Timestamp::from_micros(due.now.as_micros() + 3_600_000_000);
    ensure!(
        s.advance_schedule(t, &name, mine.next_at, to).await?,
        "the first advance wins"
    );
    ensure!(
        !s.advance_schedule(t, &name, mine.next_at, to).await?,
        "a second advance from the same tick loses"
    );
    ensure_eq!(s.schedules(t).await?[0].next_at, to, "the next tick moved");
    ensure!(
        s.due_schedules(t, 10)
            .await?
            .schedules
            .iter()
            .all(|d| d.spec.name != name),
        "an advanced schedule is not due"
    );
    let paused = s.put_schedule(t, spec("paused", every(10))?).await?;
    s.set_schedule_paused(t, &paused.spec.name, true).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    ensure!(
        s.due_schedules(t, 10)
            .await?
            .schedules
            .iter()
            .all(|d| d.spec.name != paused.spec.name),
        "a paused schedule is due"
    );
    expect_kind(
        s.due_schedules(t, 0).await,
        ErrorKind::InvalidInput,
        "a due limit of 0",
    )?;
    Ok(())
}
