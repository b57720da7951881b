//! The lines waiting for a file's writer thread: a bounded batch that the code that logs
//! appends to and the writer takes whole.
//!
//! Lines over the bound are dropped and counted, never waited for: a slow disk must not hold
//! up a request. The batch notes where each local day's lines begin, so that a batch written
//! across midnight still puts each line in its own day's file.

use super::format::Stamp;
use chrono::{DateTime, Local};
use std::ops::Range;

/// Lines for one file, in the order they were logged.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// Where each day's lines begin in `bytes`, with the time of the first of them.
    days: Vec<(usize, DateTime<Local>)>,
    lines: usize,
    /// Lines dropped because the batch was full, since it was last taken.
    dropped: u64,
}

/// Whether a line went in.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// In the batch, which now holds this many lines.
    Kept { lines: usize },
    /// The batch was full.
    Dropped,
}

impl Batch {
    /// Appends one line, written by `write` (which adds the newline), unless `capacity` lines
    /// are already waiting.
    pub fn push(
        &mut self,
        capacity: usize,
        stamp: &Stamp,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Pushed {
        if self.lines >= capacity {
            self.dropped += 1;
            return Pushed::Dropped;
        }
        let new_day = self
            .days
            .last()
            .is_none_or(|(_, time)| time.date_naive() != stamp.date());
        if new_day {
            self.days.push((self.bytes.len(), stamp.time));
        }
        write(&mut self.bytes);
        self.lines += 1;
        Pushed::Kept { lines: self.lines }
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0 && self.dropped == 0
    }

    /// How many lines were dropped since the batch was last taken.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Each day's lines, with the time of the first line of that day.
    pub fn days(&self) -> impl Iterator<Item = (&[u8], &DateTime<Local>)> {
        let ends = self
            .days
            .iter()
            .skip(1)
            .map(|(start, _)| *start)
            .chain(std::iter::once(self.bytes.len()));
        self.days
            .iter()
            .zip(ends)
            .map(|((start, time), end)| (&self.bytes[Range { start: *start, end }], time))
    }

    /// Empties the batch, keeping its memory for the next lines.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.days.clear();
        self.lines = 0;
        self.dropped = 0;
    }
}
