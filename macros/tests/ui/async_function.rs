#[hashstash::stashed_result]
async fn f(x: u32) -> u32 {
    x
}
fn main() {}
