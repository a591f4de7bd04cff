//! An inner attribute first in the body stays the body's, whatever the body strategy.

use langfuse_observe::observe;

#[observe]
fn sync_with_inner_attribute(unused: u32) -> u32 {
    #![allow(unused_variables)]
    let ignored = unused;
    7
}

#[observe]
#[track_caller]
fn track_caller_with_inner_attribute() -> u32 {
    #![allow(clippy::let_and_return)]
    let value = 3;
    value
}

#[observe]
async fn async_with_inner_attribute(unused: u32) -> u32 {
    #![allow(unused_variables)]
    let ignored = unused;
    5
}

#[observe]
fn future_with_inner_attribute() -> impl std::future::Future<Output = u32> {
    #![allow(unused_mut)]
    let mut value = 9;
    async move { value }
}

#[observe]
fn iterator_with_inner_attribute() -> impl Iterator<Item = u32> {
    #![allow(unused_mut)]
    let mut items = vec![1, 2];
    items.into_iter()
}

fn main() {
    assert_eq!(sync_with_inner_attribute(1), 7);
    assert_eq!(track_caller_with_inner_attribute(), 3);
    assert_eq!(futures_executor::block_on(async_with_inner_attribute(1)), 5);
    assert_eq!(futures_executor::block_on(future_with_inner_attribute()), 9);
    assert_eq!(iterator_with_inner_attribute().sum::<u32>(), 3);
}
