//! devctl event lines and their variables (spec §3.1–3.3).

use crate::lexer::is_c_space;

/// The four kinds of devd events, plus lines that begin with any other character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// `+NAME at LOC PNP on PARENT`
    Attach,
    /// `-NAME at LOC PNP on PARENT`
    Detach,
    /// `? at LOC PNP on PARENT`
    Nomatch,
    /// `!system=S subsystem=U type=T [DATA]`
    Notify,
    /// Any other first character: variables are set but no rule list is consulted.
    Unknown,
}

impl EventKind {
    /// The four kinds that have rule lists, in devd's order.
    pub const RULE_KINDS: [EventKind; 4] = [
        EventKind::Attach,
        EventKind::Detach,
        EventKind::Nomatch,
        EventKind::Notify,
    ];

    /// Lower-case name (`attach`, `detach`, `nomatch`, `notify`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Attach => "attach",
            EventKind::Detach => "detach",
            EventKind::Nomatch => "nomatch",
            EventKind::Notify => "notify",
            EventKind::Unknown => "unknown",
        }
    }

    pub(crate) fn index(self) -> Option<usize> {
        match self {
            EventKind::Attach => Some(0),
            EventKind::Detach => Some(1),
            EventKind::Nomatch => Some(2),
            EventKind::Notify => Some(3),
            EventKind::Unknown => None,
        }
    }
}

/// Options for [`Event::parse_with`]. The default reproduces upstream devd, bugs included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventOptions {
    /// Fix the empty-LOCATION bug (§3.3): skip whitespace after `at ` before reading the
    /// key=value pairs, so `+foo0 at  vendor=1 on bar0` still sets `vendor` and `bus`.
    pub fix_empty_location: bool,
    /// Fix the `\\"` bug (§3.3): inside a quoted value a backslash escapes whatever follows,
    /// so a value ending in a backslash no longer swallows the closing quote.
    pub fix_backslash_quote: bool,
    /// Processing time for `$timestamp` as (seconds, microseconds); `None` = the current time.
    pub timestamp: Option<(u64, u32)>,
}

/// Why an event line was not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("empty event line")]
    Empty,
    #[error("event line of {0} bytes is longer than {MAX_LINE_LEN} (devd reads at most 8191)")]
    TooLong(usize),
}

/// The longest event line [`Event::parse_with`] takes, in bytes (after trailing newlines are
/// removed). The kernel's records hold at most 1015 bytes and devd reads at most 8191; the
/// bound lets an event address its buffer with 16-bit offsets (the line, plus at most three
/// rewritten copies of it and the built-in names, stays under 64 KiB).
pub const MAX_LINE_LEN: usize = 16_000;

/// `buf[start..end]`: every name and value of an event lives in its one byte buffer, which
/// [`MAX_LINE_LEN`] keeps under 64 KiB.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Unreachable for lines within MAX_LINE_LEN (a test builds the largest buffer).
        let offset = |i: usize| u16::try_from(i).expect("event buffer within 64 KiB");
        Span {
            start: offset(start),
            end: offset(end),
        }
    }
}

/// One assignment: the name's lookup key, then where its name and value are.
#[derive(Debug, Clone, Copy)]
struct Var {
    key: u64,
    name: Span,
    value: Span,
}

/// A parsed event line: its kind and the variables devd would set for it.
///
/// Compact on purpose: the line, the built-in names, the timestamp and any value that
/// `fix_value` rewrote share one buffer, and an assignment is 16 bytes, so deciding an event
/// touches few cache lines.
#[derive(Debug, Clone)]
pub struct Event {
    /// The line (`..line_len`), then the bytes appended while parsing.
    buf: Vec<u8>,
    line_len: u32,
    kind: EventKind,
    abandoned: bool,
    /// Kept inline (a typical event has fewer than [`INLINE_VARS`]), so a cold event's
    /// variables sit next to its name table instead of in another allocation.
    vars: smallvec::SmallVec<[Var; INLINE_VARS]>,
    /// An open-addressing hash table (linear probing) over the names: 1 + index in `vars` of
    /// the latest variable of each name, 0 = empty. A lookup is a probe or two instead of a
    /// scan of every variable.
    slots: [u8; SLOTS],
    /// More names than the table takes (or an index past 254): lookups scan `vars`.
    overflow: bool,
    /// The line assigned `_` itself (`_=x`), so `_` is no longer the built-in `vars[1]`.
    underscore_reassigned: bool,
}

impl Event {
    /// Parse one devctl line with upstream behaviour (bug-compatible) and the current time.
    /// Trailing newlines are stripped. An empty line and one longer than [`MAX_LINE_LEN`] are
    /// errors.
    pub fn parse(line: &str) -> Result<Event, EventError> {
        Event::parse_with(line.as_bytes(), &EventOptions::default())
    }

    /// Parse raw bytes (devctl records are not guaranteed to be UTF-8) with options.
    pub fn parse_with(line: &[u8], opts: &EventOptions) -> Result<Event, EventError> {
        let mut end = line.len();
        while end > 0 && line[end - 1] == b'\n' {
            end -= 1;
        }
        let line = &line[..end];
        if line.is_empty() {
            return Err(EventError::Empty);
        }
        if line.len() > MAX_LINE_LEN {
            return Err(EventError::TooLong(line.len()));
        }
        let kind = match line[0] {
            b'+' => EventKind::Attach,
            b'-' => EventKind::Detach,
            b'?' => EventKind::Nomatch,
            b'!' => EventKind::Notify,
            _ => EventKind::Unknown,
        };
        let (secs, usecs) = opts.timestamp.unwrap_or_else(now);
        let mut ts = [0u8; 32];
        let ts_len = usize::from(format_timestamp(&mut ts, secs, usecs));
        // Room for the built-in names and the timestamp; one variable per `=` at most.
        let mut buf = Vec::with_capacity(line.len() + 64);
        buf.extend_from_slice(line);
        let pairs = memchr::memchr_iter(b'=', line).count();
        let mut ev = Event {
            buf,
            line_len: line.len() as u32,
            kind,
            abandoned: false,
            vars: smallvec::SmallVec::with_capacity(pairs + 5),
            slots: [0; SLOTS],
            overflow: false,
            underscore_reassigned: false,
        };
        let n = line.len() as u32;
        ev.push_static(b"*", 0, n);
        ev.push_static(b"_", 1, n);
        let ts = ev.append(&ts[..ts_len]);
        let name = ev.append(b"timestamp");
        ev.insert(name, ts);
        match kind {
            EventKind::Notify => {
                ev.scan_pairs(1, opts);
            }
            EventKind::Attach | EventKind::Detach => match find_space(ev.line(), 1) {
                Some(sp) => {
                    ev.push_static(b"device-name", 1, sp as u32);
                    ev.parse_location(sp, opts);
                }
                None => ev.abandoned = true,
            },
            EventKind::Nomatch => match find_space(ev.line(), 1) {
                Some(sp) => ev.parse_location(sp + 1, opts),
                None => ev.abandoned = true,
            },
            EventKind::Unknown => {}
        }
        Ok(ev)
    }

    /// The event kind, from the first character.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The line as parsed (trailing newlines removed).
    pub fn line(&self) -> &[u8] {
        &self.buf[..self.line_len as usize]
    }

    /// True when upstream gives up on the line (a `+`, `-` or `?` line without a space):
    /// no rule runs for it.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned
    }

    /// The value of `$*`: the whole line, with devd's `\"` fix applied like every value. It is
    /// always the first variable, and no event assignment can replace it (`*` is not an id
    /// character).
    #[inline]
    pub(crate) fn star(&self) -> &[u8] {
        debug_assert_eq!(self.bytes(self.vars[0].name), b"*");
        self.bytes(self.vars[0].value)
    }

    /// The value of `$_` without a table lookup, unless the line assigned `_` itself.
    #[inline]
    pub(crate) fn underscore(&self) -> Option<&[u8]> {
        debug_assert_eq!(self.bytes(self.vars[1].name), b"_");
        (!self.underscore_reassigned).then(|| self.bytes(self.vars[1].value))
    }

    /// The event's own value of a variable (later assignments win), or `None` when the event
    /// does not set it. Global `set` variables are not consulted here.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.get_keyed(name_key(name), name)
    }

    /// [`Event::get`] with the name's key already computed ([`name_key`]).
    #[inline]
    pub(crate) fn get_keyed(&self, key: u64, name: &[u8]) -> Option<&[u8]> {
        // Names of up to 7 bytes are identified by their key alone.
        let same = |v: &Var| {
            v.key == key && (name.len() < 8 || crate::casefold::eq_exact(self.bytes(v.name), name))
        };
        if !self.overflow {
            let mut slot = slot_of(key);
            loop {
                match self.slots[slot] {
                    0 => return None,
                    i => {
                        let v = &self.vars[usize::from(i) - 1];
                        if same(v) {
                            return Some(self.bytes(v.value));
                        }
                    }
                }
                slot = (slot + 1) % SLOTS;
            }
        }
        self.vars
            .iter()
            .rev()
            .find(|v| same(v))
            .map(|v| self.bytes(v.value))
    }

    /// All variables in the order devd assigns them (duplicates included; the last one wins).
    pub fn variables(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.vars
            .iter()
            .map(|v| (self.bytes(v.name), self.bytes(v.value)))
    }

    fn bytes(&self, span: Span) -> &[u8] {
        &self.buf[span.start as usize..span.end as usize]
    }

    /// Copy `bytes` to the end of the buffer; their span.
    fn append(&mut self, bytes: &[u8]) -> Span {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        Span::new(start, self.buf.len())
    }

    /// Set a built-in variable (`*`, `_`, `device-name`, `bus`) to `line[a..b]`.
    fn push_static(&mut self, name: &'static [u8], a: u32, b: u32) {
        let name = self.append(name);
        self.push(name, a, b);
    }

    /// Set a variable whose value is `line[a..b]`, applying devd's `fix_value` (`\"` → `"`).
    fn push(&mut self, name: Span, a: u32, b: u32) {
        let raw = &self.buf[a as usize..b as usize];
        // `*` and `_` are the whole line: find backslashes with memchr, not a byte-pair walk.
        let escaped_quote = memchr::memchr_iter(b'\\', raw).any(|i| raw.get(i + 1) == Some(&b'"'));
        let value = if escaped_quote {
            let mut fixed = Vec::with_capacity(raw.len());
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'"') {
                    fixed.push(b'"');
                    i += 2;
                } else {
                    fixed.push(raw[i]);
                    i += 1;
                }
            }
            self.append(&fixed)
        } else {
            Span::new(a as usize, b as usize)
        };
        self.insert(name, value);
    }

    /// Append a variable and file it in the slot table (replacing an earlier one of the
    /// same name: the last assignment wins).
    fn insert(&mut self, name: Span, value: Span) {
        let key = name_key(self.bytes(name));
        self.vars.push(Var { key, name, value });
        // The built-in `_` is vars[1]; any later `_` replaces it.
        self.underscore_reassigned |= self.vars.len() > 2 && key == name_key(b"_");
        if self.overflow {
            return;
        }
        let Some(index) = u8::try_from(self.vars.len())
            .ok()
            .filter(|&i| i < MAX_SLOTTED)
        else {
            self.overflow = true;
            return;
        };
        let mut slot = slot_of(key);
        loop {
            match self.slots[slot] {
                0 => break,
                i => {
                    let v = self.vars[usize::from(i) - 1];
                    if v.key == key && (key >> 56 < 8 || self.bytes(v.name) == self.bytes(name)) {
                        break;
                    }
                }
            }
            slot = (slot + 1) % SLOTS;
        }
        self.slots[slot] = index;
    }

    /// Steps 2–4 of §3.3 from position `pos`: optional `at `, the pairs, then `on PARENT`.
    fn parse_location(&mut self, mut pos: usize, opts: &EventOptions) {
        pos = skip_space(self.line(), pos);
        if self.line()[pos..].starts_with(b"at ") {
            pos += 3;
        }
        if opts.fix_empty_location {
            pos = skip_space(self.line(), pos);
        }
        pos = self.scan_pairs(pos, opts);
        pos = skip_space(self.line(), pos);
        if self.line()[pos..].starts_with(b"on ") {
            self.push_static(b"bus", pos as u32 + 3, self.line_len);
        }
    }

    /// devd's `set_vars`/`chop_var`: read `key=value` pairs until a token is not one.
    /// Returns the position where scanning stopped.
    fn scan_pairs(&mut self, mut pos: usize, opts: &EventOptions) -> usize {
        let n = self.line_len as usize;
        loop {
            if pos >= n {
                return pos;
            }
            let key_start = pos;
            let mut p = pos;
            while p < n && crate::expand::is_id_char(self.buf[p]) {
                p += 1;
            }
            if p >= n || self.buf[p] != b'=' {
                return pos;
            }
            let key_end = p;
            p += 1;
            let (val_start, val_end, after);
            if p < n && self.buf[p] == b'"' {
                let start = p + 1;
                let mut q = start;
                let mut close = None;
                while q < n {
                    let c = self.buf[q];
                    if c == b'\\'
                        && (opts.fix_backslash_quote || self.line().get(q + 1) == Some(&b'"'))
                    {
                        q += 2;
                        continue;
                    }
                    if c == b'"' {
                        close = Some(q);
                        break;
                    }
                    q += 1;
                }
                let Some(close) = close else { return pos };
                val_start = start;
                val_end = close;
                after = close + 1;
            } else {
                let mut q = p;
                while q < n && !is_c_space(self.buf[q]) {
                    q += 1;
                }
                val_start = p;
                val_end = q;
                after = q;
            }
            pos = skip_space(self.line(), after);
            self.push(
                Span::new(key_start, key_end),
                val_start as u32,
                val_end as u32,
            );
        }
    }
}

/// Length and the first seven bytes of a variable name, packed for a one-compare test.
#[inline]
pub(crate) fn name_key(name: &[u8]) -> u64 {
    let mut key = (name.len().min(255) as u64) << 56;
    for (i, &b) in name.iter().take(7).enumerate() {
        key |= u64::from(b) << (8 * i);
    }
    key
}

/// Variables an [`Event`] holds without allocating (a USB attach line sets about 22).
const INLINE_VARS: usize = 24;

/// Size of [`Event`]'s name table.
const SLOTS: usize = 64;
/// Variables filed in the table at most (keeps it at most 3/4 full, so probes stay short).
const MAX_SLOTTED: u8 = 48;

/// The home slot of a name key in [`Event`]'s table (a multiplicative hash, top 6 bits).
fn slot_of(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize
}

fn find_space(line: &[u8], from: usize) -> Option<usize> {
    line[from.min(line.len())..]
        .iter()
        .position(|&b| b == b' ')
        .map(|i| i + from)
}

fn skip_space(line: &[u8], mut pos: usize) -> usize {
    while pos < line.len() && is_c_space(line[pos]) {
        pos += 1;
    }
    pos
}

fn now() -> (u64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

/// `%jd.%06ld` without allocating.
fn format_timestamp(buf: &mut [u8; 32], secs: u64, usecs: u32) -> u8 {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut s = secs;
    loop {
        digits[len] = b'0' + (s % 10) as u8;
        len += 1;
        s /= 10;
        if s == 0 {
            break;
        }
    }
    let mut out = 0;
    for i in (0..len).rev() {
        buf[out] = digits[i];
        out += 1;
    }
    buf[out] = b'.';
    out += 1;
    let mut u = usecs.min(999_999);
    for i in (0..6).rev() {
        buf[out + i] = b'0' + (u % 10) as u8;
        u /= 10;
    }
    (out + 6) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &str) -> Event {
        Event::parse_with(
            line.as_bytes(),
            &EventOptions {
                timestamp: Some((1700000000, 42137)),
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// `get` through the name table agrees with a scan of every assignment (last one wins),
    /// for names that share their first seven bytes, repeated names, and events with more
    /// variables than the table files.
    #[test]
    fn name_table_lookups_agree_with_a_scan() {
        for pairs in [3usize, 20, 47, 48, 60, 300] {
            let mut line = String::from("!system=X");
            for i in 0..pairs {
                let name = match i % 4 {
                    0 => format!("subsystem{}", i % 9),
                    1 => format!("k{}", i % 13),
                    2 => "type".to_string(),
                    _ => format!("long-name-prefix-{i}"),
                };
                line.push_str(&format!(" {name}=v{i}"));
            }
            let e = ev(&line);
            let mut names: Vec<Vec<u8>> = e.variables().map(|(n, _)| n.to_vec()).collect();
            names.extend([b"absent".to_vec(), b"subsystem99".to_vec(), b"k".to_vec()]);
            for n in &names {
                let scan = e
                    .variables()
                    .filter(|(m, _)| m == &&n[..])
                    .last()
                    .map(|(_, v)| v);
                assert_eq!(
                    e.get(n),
                    scan,
                    "{pairs} pairs, {}",
                    String::from_utf8_lossy(n)
                );
            }
        }
    }

    fn get<'a>(e: &'a Event, name: &str) -> Option<&'a str> {
        e.get(name.as_bytes())
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    /// The longest accepted line, built so that `*`, `_` and its one value are all rewritten
    /// by `fix_value` (three more near-copies of the line in the buffer), parses and reads
    /// back; one byte more is refused, and trailing newlines do not count.
    #[test]
    fn the_longest_line_fits_and_a_longer_one_is_refused() {
        let head = "? at v=";
        let mut line = String::from(head);
        while line.len() + 2 <= MAX_LINE_LEN - 7 {
            line.push_str("\\\"");
        }
        line.push_str(" on bus");
        while line.len() < MAX_LINE_LEN {
            line.insert(head.len(), 'x');
        }
        assert_eq!(line.len(), MAX_LINE_LEN);
        let e = ev(&format!("{line}\n\n"));
        let value = get(&e, "v").unwrap();
        let quotes = value.trim_start_matches('x');
        assert!(quotes.len() > MAX_LINE_LEN / 3 && quotes.bytes().all(|b| b == b'"'));
        assert_eq!(get(&e, "bus"), Some("bus"));
        assert_eq!(e.star().len(), MAX_LINE_LEN - value.matches('"').count());
        line.push('x');
        assert_eq!(
            Event::parse(&line).unwrap_err(),
            EventError::TooLong(MAX_LINE_LEN + 1)
        );
    }

    #[test]
    fn builtins() {
        let e = ev("!system=IFNET subsystem=em0 type=LINK_UP\n\n");
        assert_eq!(e.kind(), EventKind::Notify);
        assert_eq!(
            get(&e, "*"),
            Some("!system=IFNET subsystem=em0 type=LINK_UP")
        );
        assert_eq!(
            get(&e, "_"),
            Some("system=IFNET subsystem=em0 type=LINK_UP")
        );
        assert_eq!(get(&e, "timestamp"), Some("1700000000.042137"));
        assert_eq!(get(&e, "system"), Some("IFNET"));
        assert_eq!(get(&e, "type"), Some("LINK_UP"));
        assert_eq!(get(&e, "device-name"), None);
        assert_eq!(get(&e, "bus"), None);
    }

    #[test]
    fn only_newlines_are_stripped() {
        let e = ev("!system=A \r\n");
        assert_eq!(get(&e, "*"), Some("!system=A \r"));
        assert_eq!(Event::parse("\n\n").unwrap_err(), EventError::Empty);
    }

    #[test]
    fn event_keys_overwrite_builtins_and_duplicates_last_wins() {
        let e = ev("!system=A timestamp=now system=B _=x");
        assert_eq!(get(&e, "timestamp"), Some("now"));
        assert_eq!(get(&e, "system"), Some("B"));
        assert_eq!(get(&e, "_"), Some("x"));
    }

    #[test]
    fn quoted_values_and_fix_value() {
        let e = ev(r#"!system=kernel comm="/usr/bin/a b" x="say \"hi\"" y=a\"b"#);
        assert_eq!(get(&e, "comm"), Some("/usr/bin/a b"));
        assert_eq!(get(&e, "x"), Some("say \"hi\""));
        assert_eq!(get(&e, "y"), Some("a\"b"));
        // fix_value applies to $* too; \\ stays two backslashes.
        let e = ev(r#"!a=\\ b="\"""#);
        assert_eq!(get(&e, "a"), Some("\\\\"));
        assert_eq!(get(&e, "*"), Some(r#"!a=\\ b=""""#));
    }

    #[test]
    fn unterminated_quote_drops_variable_and_stops() {
        let e = ev(r#"!a=1 b="open c=3"#);
        assert_eq!(get(&e, "a"), Some("1"));
        assert_eq!(get(&e, "b"), None);
        assert_eq!(get(&e, "c"), None);
    }

    #[test]
    fn trailing_backslash_quirk_and_fix() {
        let line = r#"!a="x\\" b=2 c="y""#;
        let e = ev(line);
        // The closing quote after \\ is taken as escaped; the value runs to the next quote.
        assert_eq!(get(&e, "a"), Some(r#"x\" b=2 c="#));
        assert_eq!(get(&e, "b"), None);
        let fixed = Event::parse_with(
            line.as_bytes(),
            &EventOptions {
                fix_backslash_quote: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fixed.get(b"a"), Some(&b"x\\\\"[..]));
        assert_eq!(fixed.get(b"b"), Some(&b"2"[..]));
    }

    #[test]
    fn bare_values_keep_everything_up_to_space() {
        let e = ev("!system=RCTL rule=user:770:swap:devctl=1G pid=1234");
        assert_eq!(get(&e, "rule"), Some("user:770:swap:devctl=1G"));
        assert_eq!(get(&e, "pid"), Some("1234"));
    }

    #[test]
    fn scanner_stops_at_non_pair_and_empty_key_allowed() {
        let e = ev("!system=A junk b=2");
        assert_eq!(get(&e, "system"), Some("A"));
        assert_eq!(get(&e, "b"), None);
        let e = ev("!=x");
        assert_eq!(get(&e, ""), Some("x"));
        let e = ev("! system=A");
        assert_eq!(get(&e, "system"), None);
    }

    #[test]
    fn attach_event() {
        let e = ev("+umass0 at bus=0 hubaddr=1 port=2 vendor=0x0781 sernum=\"4C53\" on uhub0");
        assert_eq!(e.kind(), EventKind::Attach);
        assert_eq!(get(&e, "device-name"), Some("umass0"));
        assert_eq!(get(&e, "vendor"), Some("0x0781"));
        assert_eq!(get(&e, "sernum"), Some("4C53"));
        // USB location's bus=0 is overwritten by the parent.
        assert_eq!(get(&e, "bus"), Some("uhub0"));
        assert_eq!(
            get(&e, "_"),
            Some("umass0 at bus=0 hubaddr=1 port=2 vendor=0x0781 sernum=\"4C53\" on uhub0")
        );
    }

    #[test]
    fn detach_and_nomatch() {
        let e = ev("-em0 at slot=1 function=0 on pci0");
        assert_eq!(e.kind(), EventKind::Detach);
        assert_eq!(get(&e, "device-name"), Some("em0"));
        assert_eq!(get(&e, "bus"), Some("pci0"));
        let e = ev("? at slot=0 function=0 handle=\\_SB_.PCI0 vendor=0x8086 on pci0");
        assert_eq!(e.kind(), EventKind::Nomatch);
        assert_eq!(get(&e, "device-name"), None);
        assert_eq!(get(&e, "handle"), Some("\\_SB_.PCI0"));
        assert_eq!(get(&e, "bus"), Some("pci0 "[..4].trim()));
    }

    #[test]
    fn empty_location_bug() {
        let e = ev("+foo0 at  vendor=0x1 on bar0");
        assert_eq!(get(&e, "device-name"), Some("foo0"));
        assert_eq!(get(&e, "vendor"), None);
        assert_eq!(get(&e, "bus"), None);
        let fixed = Event::parse_with(
            b"+foo0 at  vendor=0x1 on bar0",
            &EventOptions {
                fix_empty_location: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fixed.get(b"vendor"), Some(&b"0x1"[..]));
        assert_eq!(fixed.get(b"bus"), Some(&b"bar0"[..]));
        // Empty location and empty pnp still give bus.
        let e = ev("? at   on acpi0");
        assert_eq!(get(&e, "bus"), Some("acpi0"));
    }

    #[test]
    fn non_pair_token_prevents_bus() {
        let e = ev("+foo0 at port=1 garbage on bar0");
        assert_eq!(get(&e, "port"), Some("1"));
        assert_eq!(get(&e, "bus"), None);
    }

    #[test]
    fn on_equals_is_a_pair_and_bus_takes_rest_of_line() {
        let e = ev("+foo0 at on=1 on bar0 extra words");
        assert_eq!(get(&e, "on"), Some("1"));
        assert_eq!(get(&e, "bus"), Some("bar0 extra words"));
    }

    #[test]
    fn without_at() {
        let e = ev("+foo0 x=1 on bar0");
        assert_eq!(get(&e, "x"), Some("1"));
        assert_eq!(get(&e, "bus"), Some("bar0"));
    }

    #[test]
    fn no_space_abandons() {
        assert!(ev("+foo0").is_abandoned());
        assert!(ev("?").is_abandoned());
        assert!(!ev("!x").is_abandoned());
        let e = ev("*whatever a=b");
        assert_eq!(e.kind(), EventKind::Unknown);
        assert_eq!(get(&e, "a"), None);
        assert_eq!(get(&e, "_"), Some("whatever a=b"));
    }
}
