//! Attributes used wrongly are compile errors that say what is wrong.

#[test]
fn invalid_attributes_are_clear_compile_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
