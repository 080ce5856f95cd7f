//! In-process tests: a real dispatcher and real workers in one process,
//! talking QUIC over loopback, driven through `fabric-client`, with a
//! manual clock that the tests move instead of sleeping through heartbeat
//! deadlines and retry delays.

mod harness;

mod args;
mod batches;
mod cancel;
mod deep_queue;
mod delay;
mod inputs;
mod jobs;
mod lifecycle;
mod peers;
mod reconnect;
mod relay;
mod retention;
mod retry;
mod schedules;
mod store_faults;
mod tokens;
mod waiters;
mod worker_death;
