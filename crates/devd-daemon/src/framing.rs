//! devctl records out of bytes: one record per read for devctl and seqpacket sockets, one per
//! line (its newline included) for a FIFO or a regular file, however the bytes were split
//! between reads. A record longer than [`MAX_RECORD`] becomes [`Record::Oversized`], as the
//! kernel would never have delivered it.

/// The largest record devctl delivers on 64-bit (1024 − sizeof(pointer) − NUL).
pub const MAX_RECORD: usize = 1015;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// One event, bytes exactly as read (normally ending in `\n`).
    Event(Vec<u8>),
    /// A record longer than [`MAX_RECORD`]; its length.
    Oversized(usize),
}

/// One record read whole (devctl, a seqpacket socket).
pub fn classify(record: Vec<u8>) -> Record {
    if record.len() > MAX_RECORD {
        Record::Oversized(record.len())
    } else {
        Record::Event(record)
    }
}

/// Splits a byte stream into records at each `\n`, holding at most [`MAX_RECORD`] bytes of
/// an unfinished line: the rest of a line already too long is only counted.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// Bytes of the unfinished line.
    pending: Vec<u8>,
    /// Discarding an over-long line until its newline: the bytes dropped so far.
    skipping: Option<usize>,
}

impl LineSplitter {
    /// Whether a complete line is buffered (so polling the descriptor is not enough).
    pub fn has_complete(&self) -> bool {
        self.pending.contains(&b'\n')
    }

    /// Add bytes just read; returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Record> {
        self.pending.extend_from_slice(bytes);
        self.take_lines()
    }

    /// The complete lines buffered.
    pub fn take_lines(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            match self.skipping.take() {
                Some(skipped) => out.push(Record::Oversized(skipped + line.len())),
                None => out.push(classify(line)),
            }
        }
        // An unterminated line already past the limit can never become a valid record.
        if self.pending.len() > MAX_RECORD {
            *self.skipping.get_or_insert(0) += self.pending.len();
            self.pending.clear();
        }
        out
    }

    /// At the end of the input: a last line without a newline is still a record (an event,
    /// or oversized if it was too long).
    pub fn finish(&mut self) -> Option<Record> {
        let rest = std::mem::take(&mut self.pending);
        match self.skipping.take() {
            Some(skipped) => Some(Record::Oversized(skipped + rest.len())),
            None if rest.is_empty() => None,
            None => Some(classify(rest)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Record> {
        let mut s = LineSplitter::default();
        let mut out: Vec<Record> = chunks.iter().flat_map(|c| s.push(c)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn lines_are_records_however_the_reads_split_them() {
        let want = vec![
            Record::Event(b"!a\n".to_vec()),
            Record::Event(b"+b\n".to_vec()),
            Record::Event(b"last".to_vec()),
        ];
        assert_eq!(split(&[b"!a\n+b\nlast"]), want);
        assert_eq!(split(&[b"!", b"a\n+", b"b", b"\nla", b"st"]), want);
        assert_eq!(split(&[b"\n"]), vec![Record::Event(b"\n".to_vec())]);
        assert_eq!(split(&[]), vec![]);
    }

    #[test]
    fn an_over_long_last_line_without_newline_is_reported_not_dropped() {
        let long = vec![b'x'; MAX_RECORD + 500];
        assert_eq!(
            split(&[&long[..700], &long[700..]]),
            vec![Record::Oversized(MAX_RECORD + 500)]
        );
        assert_eq!(
            split(&[&long, b"\n", b"!ok"]),
            vec![
                Record::Oversized(MAX_RECORD + 501),
                Record::Event(b"!ok".to_vec())
            ]
        );
    }
}
