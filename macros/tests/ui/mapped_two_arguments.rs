#[hashstash::stash_mapped]
fn f(x: u32, y: u32) -> u32 {
    x + y
}
fn main() {}
