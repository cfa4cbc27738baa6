//! What the log and span windows share: a queue bounded by count and by bytes, each item
//! numbered as it arrives so readers can ask for what came after the last one they saw.

use std::collections::VecDeque;
use std::sync::Mutex;

/// An item a window keeps.
pub(crate) trait Kept: Clone {
    /// Roughly what the allocator holds for it.
    fn size(&self) -> usize;
    fn seq(&self) -> u64;
    fn set_seq(&mut self, seq: u64);
}

pub(crate) struct Bounded<T> {
    state: Mutex<State<T>>,
    max_items: usize,
    max_bytes: usize,
}

struct State<T> {
    items: VecDeque<T>,
    bytes: usize,
    next: u64,
}

impl<T: Kept> Bounded<T> {
    pub(crate) const fn new(max_items: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                next: 1,
            }),
            max_items,
            max_bytes,
        }
    }

    /// Adds items, numbered in order, and lets the oldest go past the bounds.
    pub(crate) fn push(&self, items: impl IntoIterator<Item = T>) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for mut item in items {
            item.set_seq(w.next);
            w.next += 1;
            w.bytes += item.size();
            w.items.push_back(item);
        }
        while w.items.len() > self.max_items || (w.bytes > self.max_bytes && w.items.len() > 1) {
            if let Some(old) = w.items.pop_front() {
                w.bytes -= old.size();
            }
        }
    }

    /// Items after `after` that `keep` accepts, oldest first, at most `limit` (the newest).
    pub(crate) fn recent(&self, after: u64, limit: usize, keep: impl Fn(&T) -> bool) -> Vec<T> {
        let w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<T> = w
            .items
            .iter()
            .rev()
            .take_while(|i| i.seq() > after)
            .filter(|i| keep(i))
            .take(limit)
            .cloned()
            .collect();
        found.reverse();
        found
    }

    /// How many items it holds, and their counted bytes.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (w.items.len(), w.bytes)
    }
}
