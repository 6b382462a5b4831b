//! The one rule for leases every adapter follows (Q4), and the bound on the
//! maintenance a dequeue does on the way.
//!
//! A lease that expired stays its holder's until the job is taken over: until a dequeue
//! delivers the job again (with a new token), or, when the lease was the job's last
//! attempt, until a dequeue marks the job dead. Up to then its holder may still ack,
//! fail or heartbeat, and a heartbeat makes the lease live again. After it, every call
//! with the old token is `LeaseLost`.
//!
//! Expired leases are taken back in order of expiry, and a dequeue takes back at most
//! [`takeback_limit`] of them (and marks at most as many dead), so a dequeue after a
//! fleet crash costs as much as any other, not as much as the backlog. Among the jobs
//! a dequeue considers (ready ones and those it takes back), priority order holds.

/// How many expired leases one dequeue of `max` jobs takes back or marks dead, at most:
/// enough to keep up with a queue's own expiries, bounded by the batch.
#[must_use]
pub const fn takeback_limit(max: usize) -> usize {
    max.saturating_add(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takeback_grows_with_the_batch_and_never_overflows() {
        assert_eq!(takeback_limit(1), 101);
        assert_eq!(takeback_limit(1000), 1100);
        assert_eq!(takeback_limit(usize::MAX), usize::MAX);
    }
}
