//! Schedules in memory (Q19): a map per tenant, changed under the store's lock, so a
//! compare-and-set is one step.

use async_trait::async_trait;
use storage_ports::rules::schedule::{check_due_limit, no_schedule, stored};
use storage_ports::{
    DueSchedules, NewSchedule, Result, Schedule, ScheduleName, ScheduleStore, TenantId, Timestamp,
};

use crate::MemoryStore;

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn put_schedule(&self, tenant: &TenantId, schedule: NewSchedule) -> Result<Schedule> {
        let now = self.now();
        let mut state = self.lock();
        let map = &mut state.tenant(tenant).schedules;
        let previous = map.get(&schedule.name).cloned();
        let kept = stored(schedule, now, previous.as_ref())?;
        map.insert(kept.spec.name.clone(), kept.clone());
        Ok(kept)
    }

    async fn schedules(&self, tenant: &TenantId) -> Result<Vec<Schedule>> {
        let mut state = self.lock();
        Ok(state.tenant(tenant).schedules.values().cloned().collect())
    }

    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<()> {
        let mut state = self.lock();
        let s = state
            .tenant(tenant)
            .schedules
            .get_mut(name)
            .ok_or_else(|| no_schedule(name))?;
        s.paused = paused;
        Ok(())
    }

    async fn delete_schedule(&self, tenant: &TenantId, name: &ScheduleName) -> Result<()> {
        let mut state = self.lock();
        state
            .tenant(tenant)
            .schedules
            .remove(name)
            .map(drop)
            .ok_or_else(|| no_schedule(name))
    }

    async fn due_schedules(&self, tenant: &TenantId, limit: usize) -> Result<DueSchedules> {
        check_due_limit(limit)?;
        let now = self.now();
        let mut state = self.lock();
        let mut due: Vec<Schedule> = state
            .tenant(tenant)
            .schedules
            .values()
            .filter(|s| !s.paused && s.next_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|s| s.next_at);
        due.truncate(limit);
        Ok(DueSchedules {
            now,
            schedules: due,
        })
    }

    async fn advance_schedule(
        &self,
        tenant: &TenantId,
        name: &ScheduleName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<bool> {
        let mut state = self.lock();
        match state.tenant(tenant).schedules.get_mut(name) {
            Some(s) if s.next_at == from => {
                s.next_at = to;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
