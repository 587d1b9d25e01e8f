//! `#[stashed_result]` and `#[stash_mapped]`. (Their compile errors are tested with trybuild
//! in `macros/tests/ui`.)

use hashstash::{stash_mapped, stashed_result, EngineKind, Stash};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One parent stash for the functions below, in a folder that lives as long as the tests.
fn parent() -> Stash {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    Stash::builder().root_dir(dir.path()).open().unwrap()
}

static ADDS: AtomicUsize = AtomicUsize::new(0);

#[stashed_result(stash = parent())]
fn add(a: u64, b: u64) -> u64 {
    ADDS.fetch_add(1, Ordering::SeqCst);
    a + b
}

#[test]
fn a_stashed_function_computes_once_and_has_its_stash() {
    let before = ADDS.load(Ordering::SeqCst);
    assert_eq!(add(1, 2), 3);
    assert_eq!(add(1, 2), 3);
    assert_eq!(ADDS.load(Ordering::SeqCst), before + 1);
    assert_eq!(add(2, 2), 4);
    assert_eq!(ADDS.load(Ordering::SeqCst), before + 2);

    let results = add::stash().unwrap();
    assert_eq!(results.len().unwrap(), 2);
    assert_eq!(results.get::<_, u64>(&(1u64, 2u64)).unwrap(), Some(3));
    let name = add::stash_name();
    let (path, version) = name.rsplit_once('@').unwrap();
    assert!(path.ends_with("macros::add"), "{name}");
    assert_eq!(version.len(), 16, "a hash of the function's tokens: {name}");
    let rows = results.ld().unwrap();
    let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["_arg1", "_arg2", "_value"]);
}

/// The same function, edited or not, in three modules: its stash's version is a hash of its
/// tokens, so an edited body has a stash of its own and never reads the old results.
macro_rules! plus {
    ($module:ident, $n:literal) => {
        mod $module {
            #[hashstash::stashed_result(stash = super::parent())]
            pub fn plus(x: u32) -> u32 {
                x + $n
            }
        }
    };
}
plus!(first, 1);
plus!(edited, 2);
plus!(unchanged, 1);

#[test]
fn editing_the_body_gives_new_results() {
    let version = |name: String| name.rsplit_once('@').unwrap().1.to_owned();
    assert_ne!(
        version(first::plus::stash_name()),
        version(edited::plus::stash_name())
    );
    assert_eq!(
        version(first::plus::stash_name()),
        version(unchanged::plus::stash_name())
    );
    assert_eq!(first::plus(10), 11);
    assert_eq!(edited::plus(10), 12);
    assert_eq!(unchanged::plus(20), 21);
}

static GREETS: AtomicUsize = AtomicUsize::new(0);

#[stashed_result(stash = parent(), ignore(loud), version = 3)]
fn greet(name: String, loud: bool) -> String {
    GREETS.fetch_add(1, Ordering::SeqCst);
    let greeting = format!("hello {name}");
    if loud {
        return greeting.to_uppercase();
    }
    greeting
}

#[test]
fn ignored_arguments_and_an_explicit_version() {
    assert!(greet::stash_name().ends_with("macros::greet@v3"));
    assert_eq!(greet("cat".into(), false), "hello cat");
    // `loud` is not part of the key: the stored result comes back.
    assert_eq!(greet("cat".into(), true), "hello cat");
    assert_eq!(GREETS.load(Ordering::SeqCst), 1);
    assert_eq!(
        greet::stash().unwrap().get::<_, String>(&("cat",)).unwrap(),
        Some("hello cat".into())
    );
}

static PARSES: AtomicUsize = AtomicUsize::new(0);

#[stashed_result(stash = parent())]
fn parse(text: String) -> Result<u32, String> {
    PARSES.fetch_add(1, Ordering::SeqCst);
    let n: u32 = text.trim().parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok(n * 10)
}

#[test]
fn ok_is_stored_and_err_is_not() {
    assert!(parse("x".into()).is_err());
    assert!(parse("x".into()).is_err());
    assert_eq!(PARSES.load(Ordering::SeqCst), 2);
    assert_eq!(parse("4".into()), Ok(40));
    assert_eq!(parse("4".into()), Ok(40));
    assert_eq!(PARSES.load(Ordering::SeqCst), 3);
    assert_eq!(parse::stash().unwrap().len().unwrap(), 1);
}

/// A memoized recursion: the body's calls go through the stash too.
#[stashed_result("hashstash_macro_tests", engine = "memory")]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[test]
fn stash_options_and_recursion() {
    assert_eq!(fib(80), 23_416_728_348_467_685);
    let results = fib::stash().unwrap();
    assert_eq!(results.config().engine, EngineKind::Memory);
    assert_eq!(results.len().unwrap(), 81);
    assert!(results.config().root_dir.ends_with("hashstash_macro_tests"));
}

#[cfg(feature = "redis")]
static DEAD_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "redis")]
#[stashed_result(engine = "redis", url = "redis://127.0.0.1:1/0", timeout_ms = 200)]
fn on_a_dead_server(x: u32) -> u32 {
    DEAD_CALLS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[cfg(feature = "redis")]
#[test]
fn a_failing_stash_never_stops_the_function() {
    // Nothing listens on port 1: the stash fails, is reported on stderr, and the function
    // runs without it every time.
    assert_eq!(on_a_dead_server(1), 2);
    assert_eq!(on_a_dead_server(1), 2);
    assert_eq!(DEAD_CALLS.load(Ordering::SeqCst), 2);
    assert!(on_a_dead_server::stash().and_then(|s| s.len()).is_err());
}

static SHOUTS: AtomicUsize = AtomicUsize::new(0);

#[stash_mapped(stash = parent(), num_threads = 2)]
fn shout(word: String) -> String {
    SHOUTS.fetch_add(1, Ordering::SeqCst);
    word.to_uppercase()
}

#[test]
fn a_mapped_function_maps_over_many_items() {
    let words: Vec<String> = ["mole", "lizard", "turkey"].map(String::from).into();
    let shouted = shout(words.clone()).unwrap();
    assert_eq!(shouted.results().unwrap(), ["MOLE", "LIZARD", "TURKEY"]);
    assert_eq!(SHOUTS.load(Ordering::SeqCst), 3);
    let again = shout(words).unwrap().results().unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(SHOUTS.load(Ordering::SeqCst), 3);
    assert_eq!(shout::stash().unwrap().len().unwrap(), 3);
}

static FLEETING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Results that expire as soon as they are stored: every call computes.
#[stashed_result("hashstash_macro_ttl_tests", engine = "memory", ttl_ms = 0)]
fn fleeting(x: u32) -> u32 {
    FLEETING_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

static INVALIDATED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[stashed_result(stash = parent())]
fn invalidated(x: u32, label: String) -> String {
    INVALIDATED_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("{label}{x}")
}

#[test]
fn ttl_and_invalidation_of_stashed_functions() {
    assert_eq!((fleeting(1), fleeting(1)), (2, 2));
    assert_eq!(
        FLEETING_CALLS.load(Ordering::SeqCst),
        2,
        "an expired result is computed"
    );
    assert_eq!(fleeting::stash().unwrap().config().ttl_ms, Some(0));

    let calls = || INVALIDATED_CALLS.load(Ordering::SeqCst);
    assert_eq!(invalidated(1, "a".into()), "a1");
    assert_eq!(invalidated(2, "a".into()), "a2");
    assert_eq!(invalidated(1, "a".into()), "a1");
    assert_eq!(calls(), 2);
    assert!(
        invalidated::invalidate(&(1, "a")).unwrap(),
        "owned or borrowed arguments"
    );
    assert!(!invalidated::invalidate(&(1, "a")).unwrap());
    assert_eq!(invalidated(1, "a".into()), "a1");
    assert_eq!(calls(), 3, "computed again after invalidation");
    assert_eq!(invalidated::invalidate_all().unwrap(), 2);
    assert_eq!(invalidated(2, "a".into()), "a2");
    assert_eq!(calls(), 4);
}

#[cfg(feature = "async")]
static ASYNC_CALLS: AtomicUsize = AtomicUsize::new(0);

/// An async function, stashed like a blocking one.
#[cfg(feature = "async")]
#[stashed_result(stash = parent())]
async fn fetch_page(id: u32) -> String {
    ASYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    format!("page {id}")
}

/// An async function returning `Result`: `Ok` is stored, `Err` is not.
#[cfg(feature = "async")]
#[stashed_result(stash = parent())]
async fn checked_page(id: u32) -> Result<String, String> {
    ASYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        return Err("no page 0".into());
    }
    Ok(format!("checked page {id}"))
}

#[cfg(feature = "async")]
#[test]
fn async_functions_are_stashed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let before = ASYNC_CALLS.load(Ordering::SeqCst);
        assert_eq!(fetch_page(1).await, "page 1");
        assert_eq!(fetch_page(1).await, "page 1");
        assert_eq!(ASYNC_CALLS.load(Ordering::SeqCst), before + 1);
        assert_eq!(fetch_page::stash().unwrap().len().unwrap(), 1);
        assert!(fetch_page::invalidate(&(1,)).unwrap());
        assert_eq!(fetch_page(1).await, "page 1");
        assert_eq!(ASYNC_CALLS.load(Ordering::SeqCst), before + 2);

        assert_eq!(checked_page(0).await, Err("no page 0".into()));
        assert_eq!(checked_page(0).await, Err("no page 0".into()));
        assert_eq!(checked_page(2).await.unwrap(), "checked page 2");
        assert_eq!(checked_page(2).await.unwrap(), "checked page 2");
        assert_eq!(
            ASYNC_CALLS.load(Ordering::SeqCst),
            before + 5,
            "errors are not stored"
        );
    });
}
