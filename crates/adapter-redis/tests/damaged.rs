//! W10 on Redis: keys changed behind flowstore's back (a hand-run HSET, a bad restore)
//! never break the rest of the tenant (storage_contract::damage).

use adapter_redis::RedisStore;
use redis::aio::MultiplexedConnection;
use storage_contract::damage::{damaged_records_are_skipped, Damager, Record};
use storage_contract::servers::server_env;
use storage_ports::{RunId, TenantId};

const BAD: &str = "not json {";

/// Damages keys with plain Redis commands, in flowstore's key layout.
struct KeyDamager(MultiplexedConnection);

impl KeyDamager {
    async fn hset(&self, key: String, field: &str) -> Result<bool, String> {
        let mut conn = self.0.clone();
        let exists: bool = redis::cmd("HEXISTS")
            .arg(&key)
            .arg(field)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if !exists {
            return Err(format!("{key} has no field {field}"));
        }
        redis::cmd("HSET")
            .arg(&key)
            .arg(field)
            .arg(BAD)
            .exec_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Stream entries cannot change in place: the entries from `seq` on are taken
    /// out, the stream's last id is set back, and they are added again with entry
    /// `seq`'s kind damaged.
    async fn damage_event(&self, key: String, seq: u64) -> Result<bool, String> {
        let mut conn = self.0.clone();
        let tail: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg(format!("{seq}-0"))
            .arg("+")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if tail.ids.first().map(|e| e.id.as_str()) != Some(&format!("{seq}-0")) {
            return Err(format!("{key} has no entry {seq}"));
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for e in &tail.ids {
            pipe.cmd("XDEL").arg(&key).arg(&e.id).ignore();
        }
        pipe.cmd("XSETID")
            .arg(&key)
            .arg(format!("{}-0", seq - 1))
            .ignore();
        for e in &tail.ids {
            let at: String = e.get("at").ok_or("an entry has no time")?;
            let kind: String = if e.id == format!("{seq}-0") {
                BAD.to_owned()
            } else {
                e.get("k").ok_or("an entry has no kind")?
            };
            pipe.cmd("XADD")
                .arg(&key)
                .arg(&e.id)
                .arg("at")
                .arg(at)
                .arg("k")
                .arg(kind)
                .ignore();
        }
        pipe.exec_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}

fn key(t: &TenantId, rest: &str) -> String {
    format!("flowstore:{{{t}}}:{rest}")
}

fn run_key(t: &TenantId, r: &RunId) -> String {
    key(t, &format!("run:{r}"))
}

#[async_trait::async_trait]
impl Damager for KeyDamager {
    async fn damage(&self, t: &TenantId, record: &Record) -> Result<bool, String> {
        match record {
            Record::Run(r) => self.hset(run_key(t, r), "head").await,
            Record::Event(r, seq) => {
                self.damage_event(format!("{}:events", run_key(t, r)), *seq)
                    .await
            }
            Record::Job(q, j) => {
                self.hset(key(t, &format!("q:{q}:job:{j}")), "payload")
                    .await
            }
            Record::Document(c, id) => self.hset(key(t, &format!("doc:{c}:{id}")), "body").await,
            Record::MetricRecord(r) => self.hset(key(t, "m:records"), r.as_str()).await,
            Record::Pattern(wf, kind, k) => {
                let field =
                    serde_json::to_string(&(wf.as_str(), kind, k)).map_err(|e| e.to_string())?;
                self.hset(key(t, "m:patterns"), &field).await
            }
        }
    }
}

#[tokio::test]
async fn w10_a_damaged_key_of_any_kind_is_skipped_and_corrupt_when_read(
) -> Result<(), Box<dyn std::error::Error>> {
    let url = server_env("FLOWSTORE_TEST_REDIS_URL")?;
    let store = RedisStore::connect(&url).await?;
    let conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let checked = damaged_records_are_skipped(&store.store_set(), &KeyDamager(conn)).await?;
    assert_eq!(
        checked,
        [
            "run",
            "event",
            "job",
            "document",
            "metric record",
            "pattern"
        ]
    );
    Ok(())
}
