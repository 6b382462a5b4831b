//! E7 on files: a watcher that reads only what is new. It keeps its place in
//! `steps.jsonl` (a byte offset and the lines before it) and, on each poll, reads from
//! there to the end; the head (`run.json`, small) is read to see the run finish. A
//! long run costs each poll its new steps, not the whole log.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage_ports::{EventStream, Result, RunEvent, RunId, RunStep, TenantId};

use crate::files::{corrupt, io_error};
use crate::FsStore;

/// How often a watcher looks for new steps.
pub(crate) const POLL: Duration = Duration::from_millis(50);

struct Watcher {
    run: RunId,
    dir: PathBuf,
    /// The next event to yield.
    next: u64,
    /// Bytes of `steps.jsonl` read, always at a line's end, and the lines they hold.
    offset: u64,
    lines: u64,
    buf: VecDeque<RunEvent>,
    done: bool,
}

/// The complete lines of `path` from `offset` on, and the offset after the last.
fn new_lines(path: &Path, offset: u64) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(io_error("reading", path, &e)),
    };
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_to_end(&mut tail))
        .map_err(|e| io_error("reading", path, &e))?;
    // A line without its newline is an append in progress (or cut by a crash).
    let keep = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = tail[..keep]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok((lines, offset + keep as u64))
}

impl Watcher {
    /// Reads what was appended since the last poll into `buf`; `true` when the run
    /// has finished and everything is read.
    fn poll(&mut self) -> Result<bool> {
        let path = self.dir.join(crate::runs::STEPS);
        // The head first, then the steps: a finish comes after every append (both
        // under the run's lock), so when this head says finished, the lines read after
        // it are all the steps. One read of each per poll.
        let head = FsStore::read_head(&self.dir, &self.run)?;
        if self.next == 1 {
            self.buf.push_back(RunEvent::started(&head));
        }
        let (lines, end) = new_lines(&path, self.offset)?;
        for line in lines {
            self.lines += 1;
            let seq = self.lines + 1;
            if seq >= self.next {
                match serde_json::from_slice::<RunStep>(&line) {
                    Ok(step) => self.buf.push_back(RunEvent::step(seq, step)),
                    // A damaged line is passed over (W10); reading the run says why.
                    Err(e) => {
                        let e = corrupt(&path, &format!("line {}: {e}", self.lines));
                        tracing::warn!(run = %self.run, error = %e, "a damaged run event is skipped");
                    }
                }
            }
        }
        self.offset = end;
        match RunEvent::finished(self.lines + 2, &head) {
            Some(f) => {
                if f.seq >= self.next {
                    self.buf.push_back(f);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The watcher, also after a poll that panicked (it leaves the watcher as it was).
fn lock(m: &Mutex<Watcher>) -> std::sync::MutexGuard<'_, Watcher> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Streams `run`'s events from `from_seq` on until `Finished`, polling every [`POLL`].
pub(crate) fn watch(store: FsStore, tenant: TenantId, run: RunId, from_seq: u64) -> EventStream {
    let dir = store.run_dir(&tenant, &run);
    let w = Watcher {
        run,
        dir,
        next: from_seq.max(1),
        offset: 0,
        lines: 0,
        buf: VecDeque::new(),
        done: false,
    };
    let shared = Arc::new(Mutex::new(w));
    Box::pin(futures_util::stream::unfold(shared, |shared| async move {
        loop {
            {
                let mut w = lock(&shared);
                if let Some(e) = w.buf.pop_front() {
                    w.next = e.seq + 1;
                    drop(w);
                    return Some((Ok(e), shared));
                }
                if w.done {
                    return None;
                }
            }
            // File reads off the async threads, as every fs call.
            let polling = shared.clone();
            let polled = tokio::task::spawn_blocking(move || lock(&polling).poll())
                .await
                .unwrap_or_else(|e| {
                    Err(storage_ports::Error::backend(format!(
                        "a run watcher's read did not finish: {e}"
                    )))
                });
            let idle = {
                let mut w = lock(&shared);
                match polled {
                    Ok(true) => {
                        w.done = true;
                        false
                    }
                    Ok(false) => w.buf.is_empty(),
                    Err(e) => {
                        w.done = true;
                        drop(w);
                        return Some((Err(e), shared));
                    }
                }
            };
            if idle {
                tokio::time::sleep(POLL).await;
            }
        }
    }))
}
