use std::sync::Arc;

use fabric_proto::{Sha256, TaskId, TaskOutcome, TaskRecord, TaskSpec, TaskState, TaskStatus};

use super::writer::{Reply, WRITE_QUEUE};
use super::{TaskWrite, Writer};
use crate::testing::temp_store;

fn queued(seq: u64) -> TaskRecord {
    TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), seq, 1)
}

fn finished(rec: &TaskRecord) -> (TaskRecord, TaskOutcome) {
    let mut done = rec.clone();
    done.state = TaskState::Done;
    let mut o = TaskOutcome::rejected("x");
    o.status = TaskStatus::Succeeded;
    (done, o)
}

#[test]
fn a_batch_applies_in_order_and_a_result_is_final_within_it() {
    let (_dir, store) = temp_store();
    let a = queued(1);
    let (a_done, a_out) = finished(&a);
    let b = queued(2);
    let (b_done, b_out) = finished(&b);
    let writes = [
        TaskWrite::record(&store, &a).unwrap(),
        TaskWrite::result(&store, &a_done, &a_out).unwrap(),
        // Late writes for a task whose result came earlier in this batch.
        TaskWrite::record(&store, &a).unwrap(),
        TaskWrite::result(&store, &a_done, &a_out).unwrap(),
        TaskWrite::result(&store, &b_done, &b_out).unwrap(),
        TaskWrite::record(&store, &b).unwrap(),
    ];
    let written = store.write_batch(&writes).unwrap();
    assert_eq!(written, [true, true, false, false, true, false]);
    assert_eq!(store.task(&a.id).unwrap().unwrap().state, TaskState::Done);
    assert_eq!(store.task(&b.id).unwrap().unwrap().state, TaskState::Done);
    let counts = store.counts().unwrap();
    assert_eq!((counts.tasks, counts.live, counts.results), (2, 0, 2));
    let totals = store.totals().unwrap();
    assert_eq!(totals.tasks, 2, "each task counted once");
    assert_eq!(
        totals.finished(TaskStatus::Succeeded),
        2,
        "each result counted once"
    );
}

#[test]
fn concurrent_writers_each_get_their_own_answer() {
    let (_dir, store) = temp_store();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let writer = Arc::new(Writer::start(store.clone()));
        let recs: Vec<_> = (0..300).map(queued).collect();
        let saves: Vec<_> = recs
            .iter()
            .cloned()
            .map(|r| {
                let w = writer.clone();
                tokio::spawn(async move { w.save_task(&r).await.unwrap() })
            })
            .collect();
        for s in saves {
            assert!(s.await.unwrap(), "a new task is written");
        }
        // Two results for every task at once: exactly one of each pair
        // is recorded, whichever batch it lands in.
        let results: Vec<_> = recs
            .iter()
            .flat_map(|r| [r.clone(), r.clone()])
            .map(|r| {
                let w = writer.clone();
                tokio::spawn(async move {
                    let (done, o) = finished(&r);
                    (r.id, w.record_result(&done, &o).await.unwrap())
                })
            })
            .collect();
        let mut recorded = std::collections::HashMap::new();
        for r in results {
            let (id, won) = r.await.unwrap();
            *recorded.entry(id).or_insert(0) += u32::from(won);
        }
        assert_eq!(recorded.len(), 300);
        assert!(recorded.values().all(|n| *n == 1), "one result each");
    });
    let counts = store.counts().unwrap();
    assert_eq!((counts.tasks, counts.live, counts.results), (300, 0, 300));
    assert_eq!(store.totals().unwrap().finished(TaskStatus::Succeeded), 300);
}

#[test]
fn the_queue_and_each_batch_are_bounded() {
    let (_dir, store) = temp_store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        // One thread: the writer task cannot run until this one yields, so
        // the queue fills and stays full.
        let writer = Writer::start(store.clone());
        let mut answers = Vec::new();
        for seq in 0..WRITE_QUEUE as u64 {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let w = TaskWrite::record(&store, &queued(seq)).unwrap();
            writer
                .tx
                .try_send((w, Reply::Written(reply)))
                .expect("room in the queue");
            answers.push(answer);
        }
        let (reply, _answer) = tokio::sync::oneshot::channel();
        let one_more = TaskWrite::record(&store, &queued(u64::MAX)).unwrap();
        assert!(
            matches!(
                writer.tx.try_send((one_more, Reply::Written(reply))),
                Err(tokio::sync::mpsc::error::TrySendError::Full(_))
            ),
            "a write past the queue's bound waits for room"
        );
        for a in answers {
            assert!(a.await.unwrap().unwrap());
        }
        let (batches, largest) = writer.batch_stats();
        assert_eq!(largest, super::MAX_WRITE_BATCH, "full batches, none larger");
        assert!(
            batches >= (WRITE_QUEUE / super::MAX_WRITE_BATCH) as u64,
            "{batches} batches"
        );
    });
    assert_eq!(store.counts().unwrap().tasks, WRITE_QUEUE as u64);
}

#[test]
fn a_job_and_its_tasks_are_one_commit() {
    let (_dir, store) = temp_store();
    let tasks: Vec<TaskRecord> = (1..=1000).map(queued).collect();
    let job = fabric_proto::JobRecord {
        id: fabric_proto::JobId::new(),
        spec: fabric_proto::JobSpec {
            name: "j".into(),
            steps: Vec::new(),
        },
        tasks: vec![tasks.iter().map(|t| t.id).collect()],
        submitted_ms: 1,
        rescues: 0,
    };
    let before = store.io_tally();
    assert_eq!(
        store.save_job_tasks(Some(&job), tasks.iter()).unwrap(),
        1000
    );
    let cost = store.io_tally().since(before);
    assert_eq!(cost.commits, 1, "a job and 1,000 tasks in one transaction");
    assert_eq!(store.job(&job.id).unwrap().as_ref(), Some(&job));
    assert_eq!(store.counts().unwrap().live, 1000);
}

#[test]
fn durable_writes_waiting_together_share_one_flush_and_wait_for_it() {
    let (dir, store) = temp_store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let flushes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let recs: Vec<_> = (1..=8).map(queued).collect();
    rt.block_on(async {
        let seen = flushes.clone();
        let writer = Writer::start_observed(
            store.clone(),
            Arc::new(move |_| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        // One thread: all eight are queued before the writer runs, so they
        // are one transaction and one flush.
        let saves: Vec<_> = recs
            .iter()
            .cloned()
            .map(|r| {
                let w = writer.clone();
                let flushes = flushes.clone();
                tokio::spawn(async move {
                    let (written, flushed) = w.save_task_durable(&r).await.unwrap();
                    flushed.unwrap();
                    let done = flushes.load(std::sync::atomic::Ordering::SeqCst);
                    (written, done)
                })
            })
            .collect();
        for s in saves {
            let (written, flushes_done) = s.await.unwrap();
            assert!(written);
            assert_eq!(flushes_done, 1, "answered after the flush, not before");
        }
        // A plain write is answered without a flush of its own.
        assert!(writer.save_task(&queued(9)).await.unwrap());
        assert_eq!(writer.batch_stats(), (2, 8));
    });
    assert_eq!(flushes.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(rt);
    drop(store);
    let again = crate::testing::reopen(dir.path());
    for r in &recs {
        assert!(again.task(&r.id).unwrap().is_some());
    }
}
