use langfuse_observe::observe;

// Every problem is reported in one go, each on its own token.
#[observe(nmae = "x", as_type = "spam", capture_output = 1, skip(missing), flush)]
fn answer(question: &str) -> usize {
    question.len()
}

fn main() {
    answer("?");
}
