#[hashstash::stashed_result(num_threads = 2)]
fn f(x: u32) -> u32 {
    x
}
fn main() {}
