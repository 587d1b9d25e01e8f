#[hashstash::stashed_result(ignore(verbose))]
fn f(x: u32) -> u32 {
    x
}
fn main() {}
