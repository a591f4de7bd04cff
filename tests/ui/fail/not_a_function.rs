use langfuse_observe::observe;

#[observe]
struct Answer {
    value: u32,
}

trait Service {
    #[observe]
    fn call(&self) -> u32;
}

#[observe]
impl Answer {
    fn value(&self) -> u32 {
        self.value
    }
}

fn main() {
    let _ = Answer { value: 1 }.value();
}
