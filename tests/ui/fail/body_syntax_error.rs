use langfuse_observe::observe;

#[observe]
fn broken(value: u32) -> u32 {
    let doubled = value * ;
    doubled
}

fn main() {}
