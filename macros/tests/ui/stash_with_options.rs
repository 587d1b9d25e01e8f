#[hashstash::stashed_result(stash = hashstash::Stash::open_default().unwrap(), engine = "sqlite")]
fn f(x: u32) -> u32 {
    x
}
fn main() {}
