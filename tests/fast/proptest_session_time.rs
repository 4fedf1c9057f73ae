//! Property test of defect 1 of `tests/cli/real_conditions.rs` ("never write
//! an empty or partial record"): every `session_expiration_time` that
//! `TokenInfo::from_json` accepts round-trips through `save` and `load`
//! (the loaded string equals the saved one) and the store still lists.
//!
//! The session time is kept verbatim, but the store also derives its UTC
//! instant (`session_expires_at`) and writes that as RFC 3339, which only
//! has years 0000–9999. Local times at the ends of that range with an
//! offset (`0000-01-01T00:00:00+00:01` is in year -1 in UTC,
//! `9999-12-31T23:59:59-00:01` in year 10000) were accepted by the parser,
//! then saved as an empty profile record, or panicked. Either the parser
//! refuses them (`Error::BadToken`), or they must save and load.
//!
//! Years 0000–9999 and offsets up to ±23:59 with every field generated,
//! plus strategies aimed at both ends of the range. Library level, on the
//! memory backend. 256 cases by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use rctoken::{Backend, Error, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
use serde_json::json;

use crate::support::props::config;

/// ±23:59, the largest offset RFC 3339 can write, in minutes.
const MAX_OFFSET: i32 = 23 * 60 + 59;

fn days_in_month(year: i32, month: u8) -> u8 {
    time::Month::try_from(month)
        .expect("month 1-12")
        .length(year)
}

/// `YYYY-MM-DDTHH:MM:SS[.f]` followed by `Z` (offset `None`) or `±HH:MM`.
#[allow(clippy::too_many_arguments)]
fn rfc3339(
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    fraction: &Option<String>,
    offset: Option<i32>,
) -> String {
    let frac = fraction
        .as_ref()
        .map(|f| format!(".{f}"))
        .unwrap_or_default();
    let zone = match offset {
        None => "Z".to_string(),
        Some(m) => format!(
            "{}{:02}:{:02}",
            if m < 0 { '-' } else { '+' },
            m.abs() / 60,
            m.abs() % 60
        ),
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{zone}")
}

fn fraction() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.3, "[0-9]{1,9}")
}

/// An offset in minutes (`None`: `Z`), edges included.
fn offset() -> impl Strategy<Value = Option<i32>> {
    prop_oneof![
        1 => Just(None),
        4 => (-MAX_OFFSET..=MAX_OFFSET).prop_map(Some),
        2 => prop::sample::select(vec![-MAX_OFFSET, -1, 0, 1, MAX_OFFSET]).prop_map(Some),
    ]
}

/// Any date-time of years 0000–9999 with any offset.
fn anywhere() -> impl Strategy<Value = String> {
    (
        prop_oneof![3 => 0i32..=9999, 1 => prop::sample::select(vec![0, 1, 9998, 9999])],
        1u8..=12,
        1u8..=31,
        (0u8..24, 0u8..60, 0u8..60),
        fraction(),
        offset(),
    )
        .prop_map(|(y, mo, d, (h, mi, s), f, off)| {
            rfc3339(y, mo, d.min(days_in_month(y, mo)), h, mi, s, &f, off)
        })
}

/// Early on 0000-01-01 with an offset east of UTC: often before year 0 in UTC.
fn start_of_range() -> impl Strategy<Value = String> {
    (0u8..24, 0u8..60, 0u8..60, fraction(), offset())
        .prop_map(|(h, mi, s, f, off)| rfc3339(0, 1, 1, h, mi, s, &f, off))
}

/// Late on 9999-12-31 with an offset west of UTC: often after year 9999 in UTC.
fn end_of_range() -> impl Strategy<Value = String> {
    (0u8..24, 0u8..60, 0u8..60, fraction(), offset())
        .prop_map(|(h, mi, s, f, off)| rfc3339(9999, 12, 31, h, mi, s, &f, off))
}

fn session_time() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => anywhere(),
        1 => start_of_range(),
        1 => end_of_range(),
    ]
}

/// If `from_json` accepts a token with session time `at`, it saves, loads
/// back with `at` unchanged, and lists (also from a second store object,
/// as another process would see it).
fn check_round_trip(at: &str) -> Result<(), TestCaseError> {
    let json = json!({
        "access_token": "AT-prop-5eCr3t",
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "ReadAccounts",
        "owner_id": "111",
        "session_expiration_time": at,
    })
    .to_string();
    let token = match TokenInfo::from_json(json.as_bytes()) {
        Ok(t) => t,
        // Refused up front: nothing is saved, which is fine.
        Err(Error::BadToken { .. }) => return Ok(()),
        Err(other) => return Err(TestCaseError::fail(format!("{at}: {other:?}"))),
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let memory = MemoryKeychain::new();
    let open = || {
        TokenStore::builder("proptest-session-time")
            .backend(Backend::Memory(memory.clone()))
            .dir(tmp.path().join("store"))
            .open()
            .expect("open store")
    };
    let store = open();
    let saved = store.save(&token, SaveOptions::new());
    prop_assert!(saved.is_ok(), "{at}: accepted, but save failed: {saved:?}");
    let loaded = store.load("111");
    prop_assert!(loaded.is_ok(), "{at}: saved, but load failed: {loaded:?}");
    let loaded = loaded.unwrap();
    prop_assert_eq!(loaded.token.session_expiration_time.as_deref(), Some(at));
    prop_assert_eq!(loaded.info.session_expiration_time.as_deref(), Some(at));
    let listed = open().list();
    prop_assert!(listed.is_ok(), "{at}: saved, but list failed: {listed:?}");
    let listed = listed.unwrap();
    prop_assert_eq!(listed.len(), 1);
    prop_assert_eq!(listed[0].session_expiration_time.as_deref(), Some(at));
    Ok(())
}

/// The exact edges, every run: the two from the defect report, and the
/// widest offsets at both ends of the range.
#[test]
fn edges_of_the_range_round_trip_or_are_refused() {
    let mut failed = Vec::new();
    for at in [
        "0000-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59+23:59",
        "0000-01-01T23:58:59+23:59",
        "0000-01-01T23:59:00+23:59",
        "9999-12-31T00:00:59-23:59",
        "9999-12-31T00:01:00-23:59",
        "2025-06-01T12:00:00+02:00",
    ] {
        let outcome = std::panic::catch_unwind(|| check_round_trip(at));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(_) => failed.push(format!("{at}: panicked (see above)")),
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accepted_session_times_round_trip_through_save_and_load(at in session_time()) {
        check_round_trip(&at)?;
    }
}
