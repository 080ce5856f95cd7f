//! A wait ends with its client: a client that hangs up while its task is
//! stuck leaves no waiter behind.

use std::time::Duration;

use fabric_client::Client;
use fabric_net::Identity;
use fabric_proto::{Limits, TaskState};

use crate::harness::{Cluster, TRIVIAL_WAT, eventually, fast_heartbeats};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_of_a_stuck_task_goes_when_its_client_hangs_up() {
    let c = Cluster::start(fast_heartbeats()).await;
    // No worker: the task stays queued for good.
    let module = c.module(TRIVIAL_WAT).await;
    let id = c.submit(module, Limits::default(), 0).await;
    assert_eq!(c.client.status(id).await.unwrap().state, TaskState::Queued);

    let me = Identity::generate().expect("key");
    c.dispatcher
        .add_client(&me.public(), "waiter")
        .await
        .unwrap();
    let waiter = Client::connect(&me, c.dispatcher.public_key(), c.dispatcher.local_addr())
        .await
        .expect("connect");
    let wait = tokio::spawn(async move {
        let _ = waiter.wait(id, |_| {}).await;
    });
    let dispatcher = c.dispatcher.clone();
    eventually("the wait is registered", || {
        let d = dispatcher.clone();
        async move { d.open_waits() == 1 }
    })
    .await;

    // The client goes away: its stream and connection close.
    wait.abort();
    let _ = wait.await;
    eventually("the waiter is gone", || {
        let d = dispatcher.clone();
        async move { d.open_waits() == 0 }
    })
    .await;
    // The task itself is untouched.
    assert_eq!(c.client.status(id).await.unwrap().state, TaskState::Queued);
    // And nothing comes back: a bounded look that the count stays at zero.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.dispatcher.open_waits(), 0);
}
