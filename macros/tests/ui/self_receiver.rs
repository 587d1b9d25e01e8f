struct S;
impl S {
    #[hashstash::stashed_result]
    fn f(&self, x: u32) -> u32 {
        x
    }
}
fn main() {}
