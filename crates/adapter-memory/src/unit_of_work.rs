//! Units of work in memory (T1-T6), the reference the other backends are checked
//! against. A unit keeps its writes as a list of operations and touches the shared
//! state only under the store's lock, never leaving a write there between calls:
//!
//! - each call replays the unit's earlier writes on the state, applies its own to get
//!   its answer, and undoes them all before the lock is released, so the unit reads
//!   its own writes and nobody else ever sees them;
//! - `commit` replays them once more, for good. When a write of another caller has
//!   changed an answer in the meantime (a revision moved, an id got taken), it undoes
//!   them and fails with a temporary `PreconditionFailed`: nothing is written, and
//!   running the unit again is safe.
//!
//! Replaying makes a call cost the unit's length: memory units are meant for tests
//! and the small units engines write (a document, a run, a job).

use async_trait::async_trait;
use serde_json::Value;
use storage_ports::{
    CollectionName, Document, DocumentId, Enqueued, Error, JobId, NewJob, NewRun, QueueName,
    Result, Run, RunId, TenantId, Timestamp, Transactions, UnitOfWork,
};

use crate::state::State;
use crate::MemoryStore;

/// One write of a unit, with everything its replay needs fixed (ids, times).
#[derive(Debug, Clone)]
enum Write {
    Create(CollectionName, Document),
    Replace(CollectionName, DocumentId, u64, Value, Timestamp),
    Delete(CollectionName, DocumentId, Option<u64>),
    StartRun(NewRun),
    Enqueue(QueueName, NewJob, Timestamp),
}

/// What a write answered.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Document(Document),
    Deleted,
    Run(Run),
    Job(Enqueued),
}

/// How to take one applied write back.
enum Undo {
    Document(CollectionName, DocumentId, Option<Document>),
    Run(RunId),
    Job(QueueName, JobId),
    Nothing,
}

fn apply(state: &mut State, tenant: &TenantId, write: &Write) -> Result<(Answer, Undo)> {
    let before = |state: &mut State, c: &CollectionName, id: &DocumentId| {
        MemoryStore::get_locked(state, tenant, c, id).ok()
    };
    Ok(match write {
        Write::Create(c, doc) => {
            let undo = Undo::Document(c.clone(), doc.id.clone(), before(state, c, &doc.id));
            let doc = MemoryStore::create_locked(state, tenant, c, doc.clone())?;
            (Answer::Document(doc), undo)
        }
        Write::Replace(c, id, expected, body, now) => {
            let undo = Undo::Document(c.clone(), id.clone(), before(state, c, id));
            let doc =
                MemoryStore::replace_locked(state, tenant, c, id, *expected, body.clone(), *now)?;
            (Answer::Document(doc), undo)
        }
        Write::Delete(c, id, expected) => {
            let undo = Undo::Document(c.clone(), id.clone(), before(state, c, id));
            MemoryStore::delete_locked(state, tenant, c, id, *expected)?;
            (Answer::Deleted, undo)
        }
        Write::StartRun(new) => {
            let run = MemoryStore::start_locked(state, tenant, new.clone())?;
            let undo = Undo::Run(run.run_id.clone());
            (Answer::Run(run), undo)
        }
        Write::Enqueue(q, job, now) => {
            let enqueued = MemoryStore::enqueue_locked(state, tenant, q, job.clone(), *now)?;
            let undo = if enqueued.deduplicated {
                Undo::Nothing
            } else {
                Undo::Job(q.clone(), enqueued.job_id.clone())
            };
            (Answer::Job(enqueued), undo)
        }
    })
}

fn undo_all(state: &mut State, tenant: &TenantId, undos: Vec<Undo>, tenant_was_new: bool) {
    for undo in undos.into_iter().rev() {
        let t = state.tenant(tenant);
        match undo {
            Undo::Document(c, id, Some(doc)) => {
                t.documents.entry(c).or_default().insert(id, doc);
            }
            Undo::Document(c, id, None) => {
                if let Some(coll) = t.documents.get_mut(&c) {
                    coll.remove(&id);
                    if coll.is_empty() {
                        t.documents.remove(&c);
                    }
                }
            }
            Undo::Run(id) => {
                t.runs.remove(&id);
            }
            Undo::Job(q, id) => {
                t.jobs.remove(&(q, id));
            }
            Undo::Nothing => {}
        }
    }
    if tenant_was_new {
        state.tenants.remove(tenant);
    }
}

/// The error of a commit whose replay no longer gives the answers the unit was given.
fn overtaken(why: &str) -> Error {
    Error::precondition_failed(format!(
        "a write of another caller overtook this unit of work ({why}); nothing of it was \
         written: run it again"
    ))
    .temporary()
}

/// An open unit; see the module.
#[derive(Debug)]
pub(crate) struct MemoryUnit {
    store: MemoryStore,
    tenant: TenantId,
    writes: Vec<Write>,
    answers: Vec<Answer>,
}

impl MemoryUnit {
    /// Replays the unit's writes, then runs `then` on the state, then undoes
    /// everything unless `keep`; all under one hold of the lock.
    fn replayed<T>(&self, keep: bool, then: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut state = self.store.lock();
        let tenant_was_new = !state.tenants.contains_key(&self.tenant);
        let mut undos = Vec::with_capacity(self.writes.len());
        for (write, told) in self.writes.iter().zip(&self.answers) {
            match apply(&mut state, &self.tenant, write) {
                Ok((answer, undo)) => {
                    undos.push(undo);
                    if answer != *told {
                        undo_all(&mut state, &self.tenant, undos, tenant_was_new);
                        return Err(overtaken("an answer changed"));
                    }
                }
                Err(e) => {
                    undo_all(&mut state, &self.tenant, undos, tenant_was_new);
                    return Err(overtaken(e.message()));
                }
            }
        }
        let out = then(&mut state);
        if !keep || out.is_err() {
            undo_all(&mut state, &self.tenant, undos, tenant_was_new);
        }
        out
    }

    /// Answers `write` as the store would after the unit's earlier writes, and keeps
    /// it for the commit when it succeeds.
    fn write(&mut self, write: Write) -> Result<Answer> {
        let tenant = self.tenant.clone();
        let answer = self.replayed(false, |state| {
            let (answer, undo) = apply(state, &tenant, &write)?;
            undo_all(state, &tenant, vec![undo], false);
            Ok(answer)
        })?;
        self.writes.push(write);
        self.answers.push(answer.clone());
        Ok(answer)
    }
}

fn unexpected(answer: &Answer) -> Error {
    Error::backend(format!(
        "a unit of work got an answer of another write: {answer:?}"
    ))
}

#[async_trait]
impl Transactions for MemoryStore {
    async fn begin(&self, tenant: &TenantId) -> Result<Box<dyn UnitOfWork>> {
        Ok(Box::new(MemoryUnit {
            store: self.clone(),
            tenant: tenant.clone(),
            writes: Vec::new(),
            answers: Vec::new(),
        }))
    }
}

#[async_trait]
impl UnitOfWork for MemoryUnit {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn create_document(
        &mut self,
        collection: &CollectionName,
        id: Option<DocumentId>,
        body: Value,
    ) -> Result<Document> {
        let doc = self.store.new_document(id, body)?;
        match self.write(Write::Create(collection.clone(), doc))? {
            Answer::Document(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn get_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
    ) -> Result<Document> {
        self.replayed(false, |state| {
            MemoryStore::get_locked(state, &self.tenant, collection, id)
        })
    }

    async fn replace_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: u64,
        body: Value,
    ) -> Result<Document> {
        self.store.limit().check("document", &body)?;
        let write = Write::Replace(
            collection.clone(),
            id.clone(),
            expected_revision,
            body,
            self.store.now(),
        );
        match self.write(write)? {
            Answer::Document(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_document(
        &mut self,
        collection: &CollectionName,
        id: &DocumentId,
        expected_revision: Option<u64>,
    ) -> Result<()> {
        match self.write(Write::Delete(
            collection.clone(),
            id.clone(),
            expected_revision,
        ))? {
            Answer::Deleted => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn start_run(&mut self, run: NewRun) -> Result<Run> {
        self.store.limit().check_new_run(&run)?;
        match self.write(Write::StartRun(run))? {
            Answer::Run(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    async fn enqueue(&mut self, queue: &QueueName, mut job: NewJob) -> Result<Enqueued> {
        self.store.limit().check_job(&job)?;
        // The id is fixed now, so that every replay writes the same job.
        job.id = Some(job.id.take().unwrap_or_else(JobId::generate));
        match self.write(Write::Enqueue(queue.clone(), job, self.store.now()))? {
            Answer::Job(e) => Ok(e),
            other => Err(unexpected(&other)),
        }
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.replayed(true, |_| Ok(()))?;
        if self.writes.iter().any(|w| matches!(w, Write::StartRun(_))) {
            self.store.notify_runs();
        }
        if self.writes.iter().any(|w| matches!(w, Write::Enqueue(..))) {
            self.store.notify_queue();
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
