//! A returned sequence or future with a bound the observing wrapper cannot provide (`Clone`
//! here) is observed like any other value, only while it is built: the function compiles and
//! behaves as written.

use langfuse_observe::observe;

#[observe]
fn cloneable_numbers(n: u32) -> impl Iterator<Item = u32> + Clone {
    0..n
}

#[observe]
fn cloneable_future(n: u32) -> impl std::future::Future<Output = u32> + Clone {
    std::future::ready(n)
}

#[observe]
fn sendable_numbers(n: u32) -> impl Iterator<Item = u32> + Send + 'static {
    0..n
}

fn main() {
    let numbers = cloneable_numbers(3);
    assert_eq!(numbers.clone().sum::<u32>(), 3);
    assert_eq!(numbers.count(), 3);
    let future = cloneable_future(4);
    assert_eq!(futures_executor::block_on(future.clone()), 4);
    assert_eq!(sendable_numbers(2).collect::<Vec<_>>(), [0, 1]);
}
