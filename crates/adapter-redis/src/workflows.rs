//! Workflow versions in Redis (W1-W9).
//!
//! Per workflow: a hash version -> JSON, and a high-water mark that only grows (W3).
//! Version assignment is optimistic: read, plan with the shared rule
//! ([`plan_put`]), then a script inserts only if the high-water mark and the slot are
//! still as read, and the parent still exists (W4); otherwise read again.

use std::collections::BTreeMap;

use async_trait::async_trait;
use redis::Script;
use storage_ports::adapter_kit::errors as kit;
use storage_ports::rules::versioning::parent_in_lineage;
use storage_ports::rules::versioning::{plan_put, PutPlan, VersionState};
use storage_ports::{
    ContentHash, Error, NewWorkflowVersion, Page, PageRequest, Result, TenantId, VersionMeta,
    WorkflowId, WorkflowStore, WorkflowVersion,
};

use crate::error::{decode, encode, RedisResultExt};
use crate::RedisStore;
use storage_ports::adapter_kit::stored_id;

const CURSOR: &str = storage_ports::adapter_kit::cursors::WORKFLOWS;
/// Attempts before a put under constant contention gives up (retryably).
const MAX_ATTEMPTS: usize = 100;

/// KEYS: versions, high-water, index. ARGV: expected high-water, version, JSON,
/// workflow id, parent (0: none). Returns 1, or 0 when the state moved.
const PUT: &str = r"
local hw = tonumber(redis.call('GET', KEYS[2]) or '0')
if hw ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 0 end
if ARGV[5] ~= '0' and redis.call('HEXISTS', KEYS[1], ARGV[5]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if tonumber(ARGV[2]) > hw then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('ZADD', KEYS[3], 0, ARGV[4])
return 1
";

/// KEYS: versions, index. ARGV: version, workflow id. Returns 1 or 0 (missing).
const DELETE: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
";

/// KEYS: versions hashes. Returns each one's highest version's JSON (or false).
const LATEST: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local best = -1
  for _, v in ipairs(redis.call('HKEYS', key)) do
    local n = tonumber(v)
    if n and n > best then best = n end
  end
  if best < 0 then out[i] = false else out[i] = redis.call('HGET', key, tostring(best)) end
end
return out
";

fn parse(text: &str) -> Result<WorkflowVersion> {
    decode(text, "workflow version")
}

impl RedisStore {
    async fn all_versions(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
    ) -> Result<BTreeMap<u32, WorkflowVersion>> {
        let all: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys(tenant).wf_versions(id))
            .query_async(&mut self.conn())
            .await
            .op("workflows.read")?;
        all.values()
            .map(|t| parse(t).map(|v| (v.meta.version, v)))
            .collect()
    }
}

#[async_trait]
impl WorkflowStore for RedisStore {
    async fn put(&self, tenant: &TenantId, new: NewWorkflowVersion) -> Result<WorkflowVersion> {
        self.limit.check_workflow(&new)?;
        let hash = ContentHash::of(&new.definition);
        let keys = self.keys(tenant);
        let (vkey, hwkey) = (
            keys.wf_versions(&new.workflow_id),
            keys.wf_high_water(&new.workflow_id),
        );
        let script = Script::new(PUT);
        for _ in 0..MAX_ATTEMPTS {
            let (hw, present): (Option<u32>, Vec<u32>) = redis::pipe()
                .cmd("GET")
                .arg(&hwkey)
                .cmd("HKEYS")
                .arg(&vkey)
                .query_async(&mut self.conn())
                .await
                .op("workflows.put")?;
            let stored_hw = hw.unwrap_or(0);
            let existing = match new.version.filter(|v| present.contains(v)) {
                Some(v) => {
                    let text: Option<String> = redis::cmd("HGET")
                        .arg(&vkey)
                        .arg(v)
                        .query_async(&mut self.conn())
                        .await
                        .op("workflows.put")?;
                    text.as_deref().map(parse).transpose()?
                }
                None => None,
            };
            let plan = plan_put(
                &new.workflow_id,
                new.version,
                new.parent,
                &hash,
                VersionState {
                    high_water: stored_hw.max(present.iter().copied().max().unwrap_or(0)),
                    existing: existing.as_ref().map(|e| &e.meta.content_hash),
                    parent_exists: new.parent.is_none_or(|p| present.contains(&p)),
                },
            )?;
            let v = match plan {
                PutPlan::AlreadyStored(_) => {
                    return existing.ok_or_else(|| Error::backend("an existing version vanished"))
                }
                PutPlan::Insert(v) => v,
            };
            let stored = new.clone().into_stored(v, hash.clone());
            let done: i64 = script
                .key(&vkey)
                .key(&hwkey)
                .key(keys.workflows())
                .arg(stored_hw)
                .arg(v)
                .arg(encode(&stored, "workflow version")?)
                .arg(new.workflow_id.as_str())
                .arg(new.parent.unwrap_or(0))
                .invoke_async(&mut self.conn())
                .await
                .op("workflows.put")?;
            if done == 1 {
                return Ok(stored);
            }
        }
        Err(Error::unavailable(format!(
            "workflow {}: {MAX_ATTEMPTS} concurrent puts in a row won the race; retry",
            new.workflow_id
        )))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<WorkflowVersion> {
        let text: Option<String> = redis::cmd("HGET")
            .arg(self.keys(tenant).wf_versions(id))
            .arg(version)
            .query_async(&mut self.conn())
            .await
            .op("workflows.get")?;
        text.as_deref()
            .map(parse)
            .transpose()?
            .ok_or_else(|| kit::workflow_version_missing(id, version))
    }

    async fn latest(&self, tenant: &TenantId, id: &WorkflowId) -> Result<WorkflowVersion> {
        let out: Vec<Option<String>> = Script::new(LATEST)
            .key(self.keys(tenant).wf_versions(id))
            .invoke_async(&mut self.conn())
            .await
            .op("workflows.latest")?;
        out.into_iter()
            .flatten()
            .next()
            .as_deref()
            .map(parse)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("workflow {id} has no version")))
    }

    async fn versions(&self, tenant: &TenantId, id: &WorkflowId) -> Result<Vec<VersionMeta>> {
        Ok(self
            .all_versions(tenant, id)
            .await?
            .into_values()
            .map(|v| v.meta)
            .collect())
    }

    async fn lineage(
        &self,
        tenant: &TenantId,
        id: &WorkflowId,
        version: u32,
    ) -> Result<Vec<VersionMeta>> {
        let all = self.all_versions(tenant, id).await?;
        let mut chain = Vec::new();
        let mut next = Some(version);
        while let Some(v) = next {
            let Some(wv) = all.get(&v) else {
                break;
            };
            chain.push(wv.meta.clone());
            next = parent_in_lineage(&wv.meta)?;
        }
        if chain.is_empty() {
            return Err(kit::workflow_version_missing(id, version));
        }
        Ok(chain)
    }

    async fn list(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<VersionMeta>> {
        let after: Option<WorkflowId> =
            page.cursor.as_ref().map(|c| c.decode(CURSOR)).transpose()?;
        let limit = page.effective_limit();
        let keys = self.keys(tenant);
        let start = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.workflows())
            .arg(start)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .query_async(&mut self.conn())
            .await
            .op("workflows.list")?;
        if ids.is_empty() {
            return Ok(Page::from_candidates(
                CURSOR,
                Vec::new(),
                limit,
                |m: &VersionMeta| m.workflow_id.clone(),
            ));
        }
        let ids: Vec<WorkflowId> = ids
            .into_iter()
            .map(|i| stored_id(i, "workflow id"))
            .collect::<Result<_>>()?;
        let script = Script::new(LATEST);
        let mut call = script.prepare_invoke();
        for id in &ids {
            call.key(keys.wf_versions(id));
        }
        let latest: Vec<Option<String>> = call
            .invoke_async(&mut self.conn())
            .await
            .op("workflows.list")?;
        let candidates = latest
            .into_iter()
            .flatten()
            .map(|t| parse(&t).map(|v| v.meta))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_candidates(CURSOR, candidates, limit, |m| {
            m.workflow_id.clone()
        }))
    }

    async fn delete(&self, tenant: &TenantId, id: &WorkflowId, version: u32) -> Result<()> {
        let keys = self.keys(tenant);
        let done: i64 = Script::new(DELETE)
            .key(keys.wf_versions(id))
            .key(keys.workflows())
            .arg(version)
            .arg(id.as_str())
            .invoke_async(&mut self.conn())
            .await
            .op("workflows.delete")?;
        if done == 0 {
            return Err(kit::workflow_version_missing(id, version));
        }
        Ok(())
    }
}
