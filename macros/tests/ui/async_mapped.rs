#[hashstash::stash_mapped]
async fn f(x: u32) -> u32 {
    x
}
fn main() {}
