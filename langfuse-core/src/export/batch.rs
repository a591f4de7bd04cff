//! The one way records are split into requests: batches within a count and a byte limit, sent
//! in order, a batch the server finds too large halved and both halves sent in its place, and
//! the items a sender wants to send again queued behind it.

/// The most the official SDKs send in one request; the ingestion route takes up to 4.5 MB.
pub(crate) const MAX_BATCH_BYTES: usize = 2_500_000;

/// What became of one batch.
pub(crate) enum Sent<T> {
    /// Every item is settled: delivered, or failed for good.
    Settled,
    /// The server answered 413; only for a batch of more than one item (a sender settles a
    /// single item that is too large as failed).
    TooLarge(Vec<T>),
    /// These items are to be sent again, as the next round (the sender has waited already).
    Again(Vec<T>),
}

/// Sends `items` in batches of at most `max_items` and about [`MAX_BATCH_BYTES`] (an item over
/// it travels alone), in order. `send` gets each batch and the round it is in (0, then 1 for
/// the items sent again, …).
pub(crate) async fn send_in_batches<T>(
    items: Vec<T>,
    size: impl Fn(&T) -> usize,
    max_items: usize,
    mut send: impl AsyncFnMut(Vec<T>, u32) -> Sent<T>,
) {
    let mut work: Vec<(Vec<T>, u32)> = split(items, size, max_items)
        .into_iter()
        .rev()
        .map(|batch| (batch, 0))
        .collect();
    while let Some((batch, round)) = work.pop() {
        match send(batch, round).await {
            Sent::Settled => {}
            Sent::TooLarge(mut first) => {
                let second = first.split_off(first.len() / 2);
                work.push((second, round));
                work.push((first, round));
            }
            Sent::Again(items) if !items.is_empty() => work.push((items, round + 1)),
            Sent::Again(_) => {}
        }
    }
}

/// Splits `items` into batches within the limits, in order.
fn split<T>(items: Vec<T>, size: impl Fn(&T) -> usize, max_items: usize) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let item_bytes = size(&item);
        if !current.is_empty()
            && (current.len() >= max_items || bytes + item_bytes > MAX_BATCH_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item_bytes;
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_bytes() {
        let sizes: Vec<usize> = split(vec![10; 5], |n| *n, 2).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let big = split(vec![MAX_BATCH_BYTES / 2 + 1; 3], |n| *n, 100);
        assert_eq!(big.len(), 3);
    }

    #[test]
    fn a_batch_too_large_is_halved_and_items_sent_again_come_next() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut sent = Vec::new();
        runtime.block_on(send_in_batches(
            (0..8).collect(),
            |_| 1,
            4,
            async |batch: Vec<u32>, round| {
                sent.push((batch.clone(), round));
                if batch.len() == 4 && batch[0] == 0 {
                    Sent::TooLarge(batch)
                } else if round == 0 && batch.contains(&5) {
                    Sent::Again(vec![5])
                } else {
                    Sent::Settled
                }
            },
        ));
        assert_eq!(
            sent,
            [
                (vec![0, 1, 2, 3], 0),
                (vec![0, 1], 0),
                (vec![2, 3], 0),
                (vec![4, 5, 6, 7], 0),
                (vec![5], 1),
            ]
        );
    }
}
