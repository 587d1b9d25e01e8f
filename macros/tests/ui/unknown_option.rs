#[hashstash::stashed_result(colour = "blue")]
fn f(x: u32) -> u32 {
    x
}
fn main() {}
