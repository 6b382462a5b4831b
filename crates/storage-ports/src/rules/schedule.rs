//! The pure rules of schedules (Q19): which ticks a timing has, which one a scheduler
//! fires when it finds a schedule due, and the job a tick enqueues.
//!
//! Cron expressions are evaluated by `croner` (POSIX/Vixie semantics: a day-of-month
//! and a day-of-week field match either; daylight saving as Vixie cron does it) in a
//! `chrono-tz` zone; docs/dependencies.md says why these crates.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::error::{Error, Result};
use crate::ids::JobId;
use crate::queue::{NewJob, MAX_DELAY};
use crate::schedule::{CatchUp, NewSchedule, Schedule, Timing};
use crate::time::Timestamp;

/// How old the latest past tick may be for a [`CatchUp::Skip`] schedule to still run
/// it: a scheduler that polls every second finds a tick well within this.
pub const GRACE: Duration = Duration::from_secs(60);

/// The shortest `Every` interval.
pub const MIN_EVERY_MS: u64 = 10;

/// How long a tick's job keeps its (schedule, tick) key after it finished, at least:
/// a scheduler that read the schedule before another advanced it finds the job and
/// adds none (Q17). Twice the schedule's period, and never under an hour.
pub const MIN_UNIQUE_WINDOW: Duration = Duration::from_secs(3600);

/// A parsed timing, ready to answer ticks.
enum Ticks {
    Cron(Box<croner::Cron>, chrono_tz::Tz),
    Every { anchor: i64, every: i64 },
}

fn parse(timing: &Timing, anchor: Timestamp) -> Result<Ticks> {
    match timing {
        Timing::Cron { expr, tz } => {
            let cron = croner::Cron::from_str(expr).map_err(|e| {
                Error::invalid_input(format!("cron expression {expr:?} does not parse: {e}"))
            })?;
            let zone = chrono_tz::Tz::from_str(tz).map_err(|_| {
                Error::invalid_input(format!(
                    "unknown time zone {tz:?}: an IANA name such as UTC or Europe/Paris"
                ))
            })?;
            Ok(Ticks::Cron(Box::new(cron), zone))
        }
        Timing::Every { every_ms } => {
            if *every_ms < MIN_EVERY_MS {
                return Err(Error::invalid_input(format!(
                    "a schedule interval is at least {MIN_EVERY_MS} ms, not {every_ms}"
                )));
            }
            let every = i64::try_from(every_ms.saturating_mul(1000)).unwrap_or(i64::MAX);
            Ok(Ticks::Every {
                anchor: anchor.as_micros(),
                every,
            })
        }
    }
}

fn zoned(t: Timestamp, zone: chrono_tz::Tz) -> Result<DateTime<chrono_tz::Tz>> {
    Utc.timestamp_micros(t.as_micros())
        .single()
        .map(|d| d.with_timezone(&zone))
        .ok_or_else(|| Error::invalid_input(format!("time {t} is out of range")))
}

impl Ticks {
    /// The first tick strictly after `t`.
    fn next_after(&self, t: Timestamp) -> Result<Timestamp> {
        match self {
            Self::Cron(cron, zone) => {
                let next = cron
                    .find_next_occurrence(&zoned(t, *zone)?, false)
                    .map_err(|e| Error::invalid_input(format!("no next tick after {t}: {e}")))?;
                Ok(Timestamp::from_micros(next.timestamp_micros()))
            }
            Self::Every { anchor, every } => {
                let k = if t.as_micros() < *anchor {
                    1
                } else {
                    (t.as_micros() - anchor) / every + 1
                };
                Ok(Timestamp::from_micros(
                    anchor.saturating_add(k.saturating_mul(*every)),
                ))
            }
        }
    }

    /// The last tick at or before `t`, if there is one.
    fn latest_at_or_before(&self, t: Timestamp) -> Result<Option<Timestamp>> {
        match self {
            Self::Cron(cron, zone) => Ok(cron
                .find_previous_occurrence(&zoned(t, *zone)?, true)
                .ok()
                .map(|d| Timestamp::from_micros(d.timestamp_micros()))),
            Self::Every { anchor, every } => {
                let k = (t.as_micros() - anchor).div_euclid(*every);
                Ok((k >= 1).then(|| Timestamp::from_micros(anchor + k * every)))
            }
        }
    }
}

/// Checks a schedule before it is stored.
///
/// # Errors
/// `InvalidInput` for a timing that does not parse, an unknown zone, a short interval,
/// a template with an id, a dedup key or a unique period (the scheduler sets those),
/// or a template the job rules refuse.
pub fn validate(spec: &NewSchedule) -> Result<()> {
    parse(&spec.timing, Timestamp::from_micros(0))?;
    if spec.job.id.is_some() || spec.job.dedup_key.is_some() || spec.job.unique_for.is_some() {
        return Err(Error::invalid_input(
            "a schedule's job template sets no id, dedup key or unique period: the scheduler makes each tick's job unique",
        ));
    }
    spec.job.validate()
}

/// The first tick of a schedule stored at `now`.
///
/// # Errors
/// `InvalidInput` as [`validate`], or when the timing has no tick after `now`.
pub fn first_tick(spec: &NewSchedule, now: Timestamp) -> Result<Timestamp> {
    parse(&spec.timing, now)?.next_after(now)
}

/// The schedule a store keeps for `spec` stored at `now` (its clock), replacing
/// `previous` (whose paused state it keeps).
///
/// # Errors
/// `InvalidInput` as [`validate`] and [`first_tick`].
pub fn stored(spec: NewSchedule, now: Timestamp, previous: Option<&Schedule>) -> Result<Schedule> {
    validate(&spec)?;
    let next_at = first_tick(&spec, now)?;
    Ok(Schedule {
        spec,
        anchor: now,
        next_at,
        paused: previous.is_some_and(|p| p.paused),
    })
}

/// Checks the `limit` of [`ScheduleStore::due_schedules`](crate::ScheduleStore).
///
/// # Errors
/// `InvalidInput` outside 1..=1000.
pub fn check_due_limit(limit: usize) -> Result<()> {
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid_input(format!(
            "due_schedules takes 1 to 1000 schedules per call, not {limit}"
        )));
    }
    Ok(())
}

/// The error for a schedule that does not exist.
#[must_use]
pub fn no_schedule(name: &crate::ids::ScheduleName) -> Error {
    Error::not_found(format!("no schedule {name}"))
}

/// What a scheduler does with a due schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The tick to enqueue a job for, if any.
    pub fire: Option<Timestamp>,
    /// The schedule's next tick after this one.
    pub next_at: Timestamp,
}

/// The plan for `schedule` at the backend's time `now`, or `None` when it is not due.
/// The tick fired is the latest at or before `now`; the ones before it are skipped,
/// and under [`CatchUp::Skip`] it is too when it is older than [`GRACE`].
///
/// # Errors
/// `InvalidInput` when the stored timing no longer parses.
pub fn plan(schedule: &Schedule, now: Timestamp) -> Result<Option<Plan>> {
    if schedule.paused || schedule.next_at > now {
        return Ok(None);
    }
    let ticks = parse(&schedule.spec.timing, schedule.anchor)?;
    let latest = ticks
        .latest_at_or_before(now)?
        .map_or(schedule.next_at, |l| l.max(schedule.next_at));
    let fire = match schedule.spec.catch_up {
        CatchUp::RunOne => Some(latest),
        CatchUp::Skip => (now.since(latest) <= GRACE).then_some(latest),
    };
    Ok(Some(Plan {
        fire,
        next_at: ticks.next_after(now)?,
    }))
}

/// The job the tick `tick` of `schedule` enqueues: the template, with the id and dedup
/// key `s.<name>.<tick in microseconds>` and a unique period of twice the schedule's
/// period (at least [`MIN_UNIQUE_WINDOW`]), so that however many schedulers fire the
/// tick, one job is stored (Q17).
///
/// # Errors
/// `InvalidInput` when the stored timing no longer parses.
pub fn tick_job(schedule: &Schedule, tick: Timestamp) -> Result<NewJob> {
    let ticks = parse(&schedule.spec.timing, schedule.anchor)?;
    let period = ticks.next_after(tick)?.since(tick);
    let window = period
        .saturating_mul(2)
        .max(MIN_UNIQUE_WINDOW)
        .min(MAX_DELAY);
    let key = format!("s.{}.{}", schedule.spec.name, tick.as_micros());
    Ok(NewJob {
        id: Some(JobId::new(key.clone())?),
        dedup_key: Some(key),
        unique_for: Some(window),
        ..schedule.spec.job.clone()
    })
}

/// The tick a job of [`tick_job`] was made for, read back from its id.
#[must_use]
pub fn tick_of(job: &JobId) -> Option<Timestamp> {
    let rest = job.as_str().strip_prefix("s.")?;
    let (_, micros) = rest.rsplit_once('.')?;
    micros.parse().ok().map(Timestamp::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{QueueName, ScheduleName};

    fn schedule(timing: Timing, catch_up: CatchUp, anchor: i64, next_at: i64) -> Schedule {
        Schedule {
            spec: NewSchedule {
                name: ScheduleName::new("nightly").unwrap_or_else(|e| panic!("{e}")),
                queue: QueueName::new("q").unwrap_or_else(|e| panic!("{e}")),
                timing,
                job: NewJob::new(serde_json::json!(1)),
                catch_up,
            },
            anchor: Timestamp::from_micros(anchor),
            next_at: Timestamp::from_micros(next_at),
            paused: false,
        }
    }

    const S: i64 = 1_000_000;

    #[test]
    fn every_ticks_count_from_the_anchor() {
        let every = Timing::Every { every_ms: 100 };
        let s = schedule(every, CatchUp::Skip, 10 * S, 10 * S + 100_000);
        assert_eq!(
            plan(&s, Timestamp::from_micros(10 * S)).ok().flatten(),
            None
        );
        let p = plan(&s, Timestamp::from_micros(10 * S + 250_000))
            .ok()
            .flatten();
        assert_eq!(
            p,
            Some(Plan {
                fire: Some(Timestamp::from_micros(10 * S + 200_000)),
                next_at: Timestamp::from_micros(10 * S + 300_000),
            }),
            "the latest tick fires and the missed one before it is skipped"
        );
    }

    #[test]
    fn skip_drops_a_stale_tick_and_run_one_fires_it() {
        let hourly = Timing::Cron {
            expr: "0 * * * *".into(),
            tz: "UTC".into(),
        };
        // Due at 01:00, seen at 03:30.
        let late = Timestamp::from_micros(3 * 3600 * S + 1800 * S);
        let skip = schedule(hourly.clone(), CatchUp::Skip, 0, 3600 * S);
        let p = plan(&skip, late).ok().flatten();
        assert_eq!(p.map(|p| p.fire), Some(None));
        assert_eq!(p.map(|p| p.next_at.as_micros()), Some(4 * 3600 * S));
        let one = schedule(hourly, CatchUp::RunOne, 0, 3600 * S);
        let p = plan(&one, late).ok().flatten();
        assert_eq!(
            p.and_then(|p| p.fire).map(|t| t.as_micros()),
            Some(3 * 3600 * S),
            "the latest missed tick, once"
        );
    }

    #[test]
    fn cron_follows_its_time_zone() {
        // 09:00 in Paris is 08:00 UTC in winter (2026-01-05) and 07:00 in summer.
        let nine = NewSchedule {
            name: ScheduleName::new("n").unwrap_or_else(|e| panic!("{e}")),
            queue: QueueName::new("q").unwrap_or_else(|e| panic!("{e}")),
            timing: Timing::Cron {
                expr: "0 9 * * *".into(),
                tz: "Europe/Paris".into(),
            },
            job: NewJob::new(serde_json::json!(1)),
            catch_up: CatchUp::Skip,
        };
        let winter = Utc
            .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
            .single()
            .map(|d| Timestamp::from_micros(d.timestamp_micros()));
        let first = winter.and_then(|w| first_tick(&nine, w).ok());
        let expect = Utc
            .with_ymd_and_hms(2026, 1, 5, 8, 0, 0)
            .single()
            .map(|d| Timestamp::from_micros(d.timestamp_micros()));
        assert_eq!(first, expect);
        let summer = Utc
            .with_ymd_and_hms(2026, 7, 6, 0, 0, 0)
            .single()
            .map(|d| Timestamp::from_micros(d.timestamp_micros()));
        let expect = Utc
            .with_ymd_and_hms(2026, 7, 6, 7, 0, 0)
            .single()
            .map(|d| Timestamp::from_micros(d.timestamp_micros()));
        assert_eq!(summer.and_then(|s| first_tick(&nine, s).ok()), expect);
    }

    #[test]
    fn a_sub_second_time_moves_to_the_next_whole_tick() {
        let minutely = Timing::Cron {
            expr: "* * * * *".into(),
            tz: "UTC".into(),
        };
        let s = schedule(minutely, CatchUp::Skip, 0, 60 * S);
        let p = plan(&s, Timestamp::from_micros(60 * S + 500_000))
            .ok()
            .flatten();
        assert_eq!(p.and_then(|p| p.fire).map(|t| t.as_micros()), Some(60 * S));
        assert_eq!(p.map(|p| p.next_at.as_micros()), Some(120 * S));
    }

    #[test]
    fn bad_timings_and_templates_are_refused() {
        let mut spec = schedule(
            Timing::Cron {
                expr: "61 * * * *".into(),
                tz: "UTC".into(),
            },
            CatchUp::Skip,
            0,
            0,
        )
        .spec;
        assert!(validate(&spec).is_err(), "minute 61");
        spec.timing = Timing::Cron {
            expr: "* * * * *".into(),
            tz: "Mars/Olympus".into(),
        };
        assert!(validate(&spec).is_err(), "unknown zone");
        spec.timing = Timing::Every { every_ms: 5 };
        assert!(validate(&spec).is_err(), "5 ms");
        spec.timing = Timing::Every { every_ms: 10 };
        assert!(validate(&spec).is_ok());
        spec.job = spec.job.with_dedup_key("k");
        assert!(validate(&spec).is_err(), "a template with a dedup key");
    }

    #[test]
    fn a_tick_job_is_unique_on_schedule_and_tick() {
        let s = schedule(Timing::Every { every_ms: 100 }, CatchUp::Skip, 0, 0);
        let tick = Timestamp::from_micros(7 * S);
        let job = tick_job(&s, tick).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(job.dedup_key.as_deref(), Some("s.nightly.7000000"));
        assert_eq!(job.id.as_ref().and_then(tick_of), Some(tick));
        assert_eq!(job.unique_for, Some(MIN_UNIQUE_WINDOW));
        assert!(job.validate().is_ok());
    }
}
