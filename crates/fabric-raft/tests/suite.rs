//! openraft's own storage suite, run on the sled log and state machine.

use fabric_raft::{Fabric, LogStore, StateMachine, StorageError};
use openraft::testing::{StoreBuilder, Suite};

struct Builder;

impl StoreBuilder<Fabric, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = fabric_store::Store::open(dir.path()).expect("a new store opens");
        let sm = StateMachine::open(store.clone()).await?;
        Ok((dir, LogStore::new(store), sm))
    }
}

#[test]
fn the_sled_log_and_state_machine_pass_openraft_s_suite() {
    Suite::test_all(Builder).expect("openraft's storage suite");
}
