use super::{JoinTokenRecord, TokenRefusal, legacy_key, token_key};
use crate::testing::temp_store;

fn digest() -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(17))
}

fn rec(expires_ms: Option<u64>, uses_left: Option<u32>) -> JoinTokenRecord {
    JoinTokenRecord {
        created_ms: 1_000,
        expires_ms,
        uses_left,
        revoked: false,
    }
}

#[test]
fn the_token_key_is_token_slash_lowercase_hex() {
    assert_eq!(
        token_key(&std::array::from_fn(|i| i as u8)),
        "token/000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    );
    assert!(legacy_key(&[0xab; 32]).starts_with("join/abab"));
}

#[test]
fn an_unknown_secret_is_refused() {
    let (_dir, store) = temp_store();
    assert_eq!(
        store.use_join_token(&digest(), 0).unwrap(),
        Err(TokenRefusal::Unknown)
    );
}

#[test]
fn a_token_is_refused_from_its_expiry_on() {
    let (_dir, store) = temp_store();
    store
        .add_join_token(&digest(), &rec(Some(5_000), None))
        .unwrap();
    assert_eq!(store.use_join_token(&digest(), 4_999).unwrap(), Ok(()));
    assert_eq!(
        store.use_join_token(&digest(), 5_000).unwrap(),
        Err(TokenRefusal::Expired { at_ms: 5_000 })
    );
}

#[test]
fn uses_are_counted_down_to_zero() {
    let (_dir, store) = temp_store();
    store
        .add_join_token(&digest(), &rec(None, Some(2)))
        .unwrap();
    assert_eq!(store.use_join_token(&digest(), 0).unwrap(), Ok(()));
    assert_eq!(
        store.join_token(&digest()).unwrap().unwrap().uses_left,
        Some(1)
    );
    assert_eq!(store.use_join_token(&digest(), 0).unwrap(), Ok(()));
    assert_eq!(
        store.use_join_token(&digest(), 0).unwrap(),
        Err(TokenRefusal::UsedUp)
    );
}

#[test]
fn unlimited_tokens_stay_unlimited() {
    let (_dir, store) = temp_store();
    store.add_join_token(&digest(), &rec(None, None)).unwrap();
    for _ in 0..10 {
        assert_eq!(store.use_join_token(&digest(), u64::MAX).unwrap(), Ok(()));
    }
    assert_eq!(
        store.join_token(&digest()).unwrap().unwrap().uses_left,
        None
    );
}

#[test]
fn a_revoked_token_is_refused_and_still_listed() {
    let (_dir, store) = temp_store();
    store.add_join_token(&digest(), &rec(None, None)).unwrap();
    assert!(store.revoke_join_token(&digest()).unwrap());
    assert!(!store.revoke_join_token(&[0; 32]).unwrap());
    assert_eq!(
        store.use_join_token(&digest(), 0).unwrap(),
        Err(TokenRefusal::Revoked)
    );
    let all = store.join_tokens().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, digest());
    assert!(all[0].1.revoked);
}

#[test]
fn join_secrets_of_older_versions_become_tokens_that_never_expire() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = crate::testing::reopen(dir.path());
        // What an older version wrote.
        let hex: String = digest().iter().map(|b| format!("{b:02x}")).collect();
        store.set_meta(&format!("join/{hex}"), b"1").unwrap();
    }
    let store = crate::testing::reopen(dir.path());
    assert!(store.meta(&legacy_key(&digest())).unwrap().is_none());
    let rec = store.join_token(&digest()).unwrap().unwrap();
    assert_eq!(
        (rec.expires_ms, rec.uses_left, rec.revoked),
        (None, None, false)
    );
    assert_eq!(store.use_join_token(&digest(), u64::MAX).unwrap(), Ok(()));
    assert_eq!(store.migrate_join_secrets().unwrap(), 0);
}

#[test]
fn meta_values_round_trip() {
    let (_dir, store) = temp_store();
    assert!(store.meta("x").unwrap().is_none());
    store.set_meta("x", b"value").unwrap();
    assert_eq!(store.meta("x").unwrap().unwrap(), b"value");
}
