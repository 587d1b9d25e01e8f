#[hashstash::stashed_result(b64 = "yes", timeout_ms = 5)]
fn f(x: u32) -> u32 {
    x
}
fn main() {}
