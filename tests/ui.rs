//! Compile-time behaviour of the macros: every mistake is one clear error
//! at the user's code (`fail/`, each with its full `.stderr`), and the
//! supported forms compile and run (`pass/`).
//!
//! Refresh the snapshots with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
