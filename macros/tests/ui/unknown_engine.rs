#[hashstash::stashed_result(engine = "postgres")]
fn f(x: u32) -> u32 {
    x
}
fn main() {}
