#[hashstash::stashed_result]
fn f(x: u32) {
    let _ = x;
}
fn main() {}
