//! Choosing the rule for an event (spec §2.4) and expanding its actions (§3.4–3.6).
//!
//! [`Engine`] gives the same answer as devd's linear walk ([`LinearMatcher`]) but looks at
//! fewer rules. Per event kind, every rule is filed under one *key* of one of its non-inverted
//! `match` statements (the one with the smallest buckets): the lowercased literals of a literal
//! set, the text of a wildcard literal (`ereport.fs.zfs.io`, `.` = any byte), or the literal
//! prefix of a regex (`ums` of `ums[0-9]+`). A key the kind's rules test with many different
//! values (`system` for notify) first splits the rules into parts, one small index per value.
//! For an event, the candidates are the rules in the buckets of the event's values, plus the
//! rules that could not be filed; they are visited in (priority, parse order) order and the
//! first one whose statements all hold wins. Any rule skipped has a match that is false for
//! this event, so it could not have matched. A statement whose key the index already matched
//! exactly (the part's value, a literal or wildcard bucket) is not tested again, and rules
//! after a rule that tests nothing are not indexed at all: no event gets past that rule.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::config::{Config, Rule, Statement, Test};
use crate::event::{Event, EventKind};
use crate::expand::{expand_into, Quoting, Refused, Template};
use crate::keytable::KeyTable;
use crate::media::MediaProbe;
use std::mem::MaybeUninit;

/// Where the rule that decided an event was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleRef {
    /// File the block came from.
    pub file: &'static str,
    /// Line of the block keyword.
    pub line: u32,
    /// The block's priority.
    pub priority: i32,
}

impl RuleRef {
    fn of(rule: &Rule) -> RuleRef {
        RuleRef {
            file: rule.file,
            line: rule.line,
            priority: rule.priority,
        }
    }
}

/// What devd would do with one event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// The event's kind.
    pub kind: EventKind,
    /// The first matching rule, if any (a rule without actions still "matches": it swallows
    /// the event).
    pub matched: Option<RuleRef>,
    /// The exact strings devd would hand to `/bin/sh -c`, in order. Bytes that are not UTF-8
    /// are replaced by U+FFFD here; [`Engine::commands`] gives the raw bytes, quoted for the
    /// shell that will run them.
    pub actions: Actions,
}

/// The expanded actions of a decision. Most rules have one action, which is kept inline:
/// deciding an event allocates only the command itself.
pub type Actions = smallvec::SmallVec<[String; 1]>;

/// Shared evaluation of one rule against an event.
fn lookup<'a>(config: &'a Config, event: &'a Event, name: &[u8]) -> &'a [u8] {
    event
        .get(name)
        .or_else(|| config.variable(name))
        .unwrap_or(b"")
}

fn media_holds(
    config: &Config,
    event: &Event,
    kind: crate::media::MediaKind,
    media: &dyn MediaProbe,
) -> bool {
    let mut ifname = lookup(config, event, b"device-name");
    if ifname.is_empty() {
        ifname = lookup(config, event, b"subsystem");
    }
    let answer = std::str::from_utf8(crate::media::kernel_ifname(ifname))
        .ok()
        .and_then(|n| media.media(n));
    kind.matches(answer)
}

/// Room for a typical expansion: the action's own text plus one copy of the event line (`$*`)
/// and its quotes, so the common actions are built without growing the buffer.
fn expansion_capacity(text_len: usize, event: &Event) -> usize {
    text_len + event.line().len() + 16
}

/// Expand every action of `rule` for `event`.
pub(crate) fn expand_rule(config: &Config, rule: &Rule, event: &Event) -> Vec<Vec<u8>> {
    rule.actions()
        .map(|template| {
            let mut out = Vec::with_capacity(expansion_capacity(template.len(), event));
            expand_into(&mut out, template, Some(config.quoting), |n| {
                lookup(config, event, n)
            });
            out
        })
        .collect()
}

/// The action as a string; bytes that are not UTF-8 become U+FFFD.
fn utf8_lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The decision for `rule` (if any) with its actions already expanded.
fn decision_with(event: &Event, rule: Option<&Rule>, actions: Actions) -> Decision {
    Decision {
        kind: event.kind(),
        matched: rule.map(RuleRef::of),
        actions,
    }
}

/// Decide with devd's expansion, which scans each action for every event.
fn decision(config: &Config, event: &Event, rule: Option<&Rule>) -> Decision {
    let actions = rule
        .map(|r| {
            expand_rule(config, r, event)
                .into_iter()
                .map(utf8_lossy)
                .collect()
        })
        .unwrap_or_default();
    decision_with(event, rule, actions)
}

/// A tiny multiplicative hasher for short byte keys (FxHash).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.0 = crate::keytable::fx_step(self.0, crate::casefold::word(c));
        }
        for &b in chunks.remainder() {
            self.0 = crate::keytable::fx_step(self.0, u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_usize(&mut self, i: usize) {
        self.write(&i.to_le_bytes());
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// At most this many keys are indexed per event kind (bounded work per event, and a
/// fixed-size merge without allocation).
const MAX_INDEX_VARS: usize = 7;

/// A key is indexed only when at least this many rules would be filed under it.
const MIN_RULES_PER_VAR: usize = 3;

/// Variables whose values one `find` remembers (the most used ones of each kind).
const CACHED_VARS: usize = 16;
/// A step that reads no variable (`media-type`).
const NO_VAR: u16 = u16::MAX;

/// What an index hashes: the event's value of `var` (its first `prefix` bytes when
/// `prefix` > 0), lowercased, with `.` written at the `wildcards` positions (none for plain
/// literal sets; see [`crate::ere::WildcardLiteral`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct KeySpec {
    var: Box<[u8]>,
    wildcards: Box<[u16]>,
    prefix: u16,
}

#[derive(Debug)]
struct VarIndex {
    spec: KeySpec,
    /// `spec.var` in the kind's [`Variables`].
    var: u16,
    max_key: usize,
    /// Smallest rule position in any bucket: the variable need not be looked up while an
    /// earlier candidate is still undecided.
    min_pos: u32,
    /// Filled while rules are filed; frozen into `table` when the index is complete.
    buckets: FxMap<Box<[u8]>, Vec<u32>>,
    table: KeyTable,
}

/// An indexable match of a rule: how to key it and the keys it accepts.
struct Candidate {
    spec: KeySpec,
    keys: Vec<Box<[u8]>>,
    /// The statement's index in the rule.
    stmt: u16,
}

impl Candidate {
    /// Whether finding the rule in one of this candidate's buckets proves the statement
    /// (a literal set or wildcard literal: the key is the whole value); a prefix key only
    /// narrows.
    fn is_exact(&self) -> bool {
        self.spec.prefix == 0
    }
}

/// The index candidates of one rule: its literal sets, wildcard literals and regex prefixes.
fn candidates(rule: &Rule) -> Vec<Candidate> {
    rule.stmts
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let Statement::Match(m) = s else { return None };
            if m.inverted() {
                return None;
            }
            let spec = |wildcards: &[u16], prefix: usize| {
                Some(KeySpec {
                    var: m.var().into(),
                    wildcards: wildcards.into(),
                    prefix: u16::try_from(prefix).ok()?,
                })
            };
            // The shapes the configuration recognised when it compiled the statement; a
            // pattern that does not compile is `Never` and is not filed anywhere.
            let (spec, keys) = match &m.test {
                Test::Literal(lits) => (spec(&[], 0)?, lits.to_vec()),
                Test::Wildcard(w) => (spec(&w.wildcards, 0)?, vec![w.text.clone().into()]),
                Test::Regex(_, Some(p)) => (spec(&[], p.len())?, vec![p.clone()]),
                Test::Regex(_, None) | Test::Never => return None,
            };
            Some(Candidate {
                spec,
                keys,
                stmt: i as u16,
            })
        })
        .collect()
}

/// Rules indexed by up to [`MAX_INDEX_VARS`] keys, each rule under the key of its cheapest
/// candidate; rules without a usable candidate are always checked.
#[derive(Debug, Default)]
struct FlatIndex {
    /// Rules (positions in the sorted list) that must always be checked.
    always: Vec<u32>,
    vars: Vec<VarIndex>,
}

impl FlatIndex {
    /// Index the rules at `members` (positions, ascending); `cands[p]` are rule `p`'s
    /// candidates, `skip` a key already decided by the caller (not indexed again).
    /// `placed(p, stmt)` is told where each rule went: `Some(stmt)` when it was filed under
    /// an exact key (reached through this index, its statement `stmt` holds).
    fn build(
        members: &[u32],
        cands: &[Vec<Candidate>],
        skip: Option<&KeySpec>,
        vars: &Variables,
        placed: &mut dyn FnMut(u32, Option<u16>),
    ) -> FlatIndex {
        let usable = |p: u32| {
            cands[p as usize]
                .iter()
                .filter(move |c| Some(&c.spec) != skip)
        };
        let mut key_count: HashMap<(&KeySpec, &[u8]), usize> = HashMap::new();
        for &p in members {
            for c in usable(p) {
                for k in &c.keys {
                    *key_count.entry((&c.spec, &k[..])).or_default() += 1;
                }
            }
        }
        let cost =
            |c: &Candidate| -> usize { c.keys.iter().map(|k| key_count[&(&c.spec, &k[..])]).sum() };
        // First choice per rule: the statement with the smallest total bucket size.
        let best = |p: u32, allowed: Option<&[&KeySpec]>| -> Option<&Candidate> {
            usable(p)
                .filter(|c| allowed.is_none_or(|a| a.contains(&&c.spec)))
                .min_by_key(|c| cost(c))
        };
        let mut spec_use: Vec<(&KeySpec, usize)> = Vec::new();
        for &p in members {
            if let Some(c) = best(p, None) {
                match spec_use.iter_mut().find(|(s, _)| *s == &c.spec) {
                    Some(slot) => slot.1 += 1,
                    None => spec_use.push((&c.spec, 1)),
                }
            }
        }
        spec_use.sort_by_key(|v| std::cmp::Reverse(v.1));
        // A key costs one lookup per event; index only those that several rules use (rules
        // of dropped keys fall back to another of their candidates, or to `always`).
        let kept: Vec<&KeySpec> = spec_use
            .iter()
            .filter(|(_, n)| *n >= MIN_RULES_PER_VAR)
            .take(MAX_INDEX_VARS)
            .map(|(v, _)| *v)
            .collect();
        let mut idx = FlatIndex {
            always: Vec::new(),
            vars: kept.iter().map(|spec| VarIndex::new(spec, vars)).collect(),
        };
        for &p in members {
            match best(p, Some(&kept)) {
                Some(c) => {
                    idx.vars
                        .iter_mut()
                        .find(|v| v.spec == c.spec)
                        .expect("kept key")
                        .file(p, &c.keys);
                    placed(p, c.is_exact().then_some(c.stmt));
                }
                None => {
                    idx.always.push(p);
                    placed(p, None);
                }
            }
        }
        for v in &mut idx.vars {
            v.freeze();
        }
        idx
    }
}

impl VarIndex {
    fn new(spec: &KeySpec, vars: &Variables) -> VarIndex {
        VarIndex {
            spec: spec.clone(),
            var: vars.id(&spec.var),
            max_key: 0,
            // Lowered as rules are filed; starting at 0 would make every lookup eager.
            min_pos: u32::MAX,
            buckets: FxMap::default(),
            table: KeyTable::default(),
        }
    }

    /// Move the filed buckets into the lookup table.
    fn freeze(&mut self) {
        self.table = KeyTable::new(std::mem::take(&mut self.buckets).into_iter().collect());
    }

    /// File the rule at `pos` under each of `keys`.
    fn file(&mut self, pos: u32, keys: &[Box<[u8]>]) {
        for k in keys {
            self.max_key = self.max_key.max(k.len());
            self.min_pos = self.min_pos.min(pos);
            self.buckets.entry(k.clone()).or_default().push(pos);
        }
    }
}

/// A first split of a kind's rules by the key most of them test (`system` for notify
/// events): each value gets its own [`FlatIndex`], so an event consults only the keys that
/// matter for its value instead of every key of the kind.
#[derive(Debug)]
struct Partition {
    /// The key; its buckets hold the positions of the part of each value (see `parts`).
    key: VarIndex,
    parts: Vec<FlatIndex>,
}

/// Partition when at least this share (1/N) of the kind's rules test the key...
const PARTITION_SHARE: usize = 2;
/// ...and any one value leaves at least this many of them out.
const PARTITION_MIN_RULES: usize = 8;

/// How many rules have a candidate on a key, and how many on each of its values.
struct KeyCoverage<'c> {
    spec: &'c KeySpec,
    rules: usize,
    per_value: FxMap<&'c [u8], usize>,
}

/// The key that rules out the most rules for a value: many rules have a candidate on it, and
/// no single value takes most of them (a key that nearly every rule tests for the same value
/// would only add a lookup). `None` when no key is worth a partition.
fn partition_key(cands: &[Vec<Candidate>], rule_count: usize) -> Option<KeySpec> {
    let mut coverage: Vec<KeyCoverage> = Vec::new();
    for rc in cands {
        let mut seen: Vec<&KeySpec> = Vec::new();
        for c in rc {
            if seen.contains(&&c.spec) {
                continue;
            }
            seen.push(&c.spec);
            let i = match coverage.iter().position(|k| k.spec == &c.spec) {
                Some(i) => i,
                None => {
                    coverage.push(KeyCoverage {
                        spec: &c.spec,
                        rules: 0,
                        per_value: FxMap::default(),
                    });
                    coverage.len() - 1
                }
            };
            coverage[i].rules += 1;
            for k in &c.keys {
                *coverage[i].per_value.entry(&k[..]).or_default() += 1;
            }
        }
    }
    coverage
        .iter()
        .filter(|k| k.rules * PARTITION_SHARE >= rule_count)
        .map(|k| {
            let largest = k.per_value.values().copied().max().unwrap_or(0);
            (k.spec, k.rules.saturating_sub(largest))
        })
        .max_by_key(|(_, ruled_out)| *ruled_out)
        .filter(|(_, ruled_out)| *ruled_out >= PARTITION_MIN_RULES)
        .map(|(s, _)| s.clone())
}

#[derive(Debug, Default)]
struct KindIndex {
    /// The rules outside the partition (all of them without one).
    rest: FlatIndex,
    partition: Option<Partition>,
}

/// The statements the index proves for a rule wherever it hands the rule out: the meet of
/// what each place proves (a rule can sit in several parts, filed differently in each).
#[derive(Debug, Clone, Default)]
struct Proven(Option<Vec<u16>>);

impl Proven {
    fn meet(&mut self, here: Vec<u16>) {
        match &mut self.0 {
            None => self.0 = Some(here),
            Some(all) => all.retain(|s| here.contains(s)),
        }
    }

    fn statements(&self) -> &[u16] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// What a rule filed outside any part proves: the statement of its bucket, if exact.
fn outside_parts(proven: &mut [Proven]) -> impl FnMut(u32, Option<u16>) + '_ {
    |p, stmt| proven[p as usize].meet(stmt.into_iter().collect())
}

impl KindIndex {
    /// The index of one kind's rules, and per rule the statements the index proves when it
    /// hands the rule out, which need no test.
    fn build(rules: &[Rule], vars: &Variables) -> (KindIndex, Vec<Proven>) {
        let mut proven = vec![Proven::default(); rules.len()];
        // A rule that tests nothing takes every event that reaches it, so the rules after it
        // never run (devmatch.conf's catch-all `nomatch 100` hides usb.conf's 576 rules).
        let live = rules
            .iter()
            .position(|r| {
                r.statements()
                    .iter()
                    .all(|s| matches!(s, Statement::Action(_)))
            })
            .map_or(rules.len(), |p| p + 1);
        let rules = &rules[..live];
        let cands: Vec<Vec<Candidate>> = rules.iter().map(candidates).collect();
        let primary = partition_key(&cands, rules.len());
        let all: Vec<u32> = (0..rules.len() as u32).collect();
        let Some(primary) = primary else {
            let rest = FlatIndex::build(&all, &cands, None, vars, &mut outside_parts(&mut proven));
            let index = KindIndex {
                rest,
                partition: None,
            };
            return (index, proven);
        };
        // Members of each value's part: every rule whose (first) candidate on the key
        // accepts that value; reached only through such a part, an exact candidate holds.
        let mut members: FxMap<Box<[u8]>, Vec<u32>> = FxMap::default();
        let mut primary_stmt: FxMap<u32, Option<u16>> = FxMap::default();
        let mut rest = Vec::new();
        for (p, rc) in cands.iter().enumerate() {
            match rc.iter().find(|c| c.spec == primary) {
                Some(c) => {
                    for k in &c.keys {
                        members.entry(k.clone()).or_default().push(p as u32);
                    }
                    primary_stmt.insert(p as u32, c.is_exact().then_some(c.stmt));
                }
                None => rest.push(p as u32),
            }
        }
        let mut key = VarIndex::new(&primary, vars);
        let mut parts = Vec::with_capacity(members.len());
        let mut values: Vec<(Box<[u8]>, Vec<u32>)> = members.into_iter().collect();
        values.sort();
        for (value, m) in values {
            // The key's bucket for this value holds the part's number (as the one
            // "position"), and its smallest member for the laziness test.
            let first = m[0];
            key.max_key = key.max_key.max(value.len());
            key.min_pos = key.min_pos.min(first);
            key.buckets.insert(value, vec![parts.len() as u32]);
            let mut part_placed = |p: u32, stmt: Option<u16>| {
                let here = primary_stmt[&p].into_iter().chain(stmt).collect();
                proven[p as usize].meet(here);
            };
            parts.push(FlatIndex::build(
                &m,
                &cands,
                Some(&primary),
                vars,
                &mut part_placed,
            ));
        }
        key.freeze();
        let rest = FlatIndex::build(&rest, &cands, None, vars, &mut outside_parts(&mut proven));
        let index = KindIndex {
            rest,
            partition: Some(Partition { key, parts }),
        };
        (index, proven)
    }
}

/// One statement to test: its index in the rule and its variable in the kind's [`Variables`].
#[derive(Debug, Clone, Copy)]
struct Step {
    stmt: u16,
    var: u16,
}

/// Statements of `rule` in evaluation order (actions, and the `proven` statements, left
/// out).
fn evaluation_order(rule: &Rule, vars: &Variables, proven: &[u16]) -> Box<[Step]> {
    let rank = |s: &Statement| match s {
        Statement::Match(m) if m.literals().is_some() => Some(0),
        Statement::Match(_) => Some(1),
        Statement::Media(_) => Some(2),
        Statement::Action(_) => None,
    };
    let mut idx: Vec<(u8, u16)> = rule
        .stmts
        .iter()
        .enumerate()
        .filter(|&(i, _)| !proven.contains(&(i as u16)))
        .filter_map(|(i, s)| rank(s).map(|r| (r, i as u16)))
        .collect();
    idx.sort();
    idx.into_iter()
        .map(|(_, i)| Step {
            stmt: i,
            var: match &rule.stmts[usize::from(i)] {
                Statement::Match(m) => vars.id(m.var()),
                _ => NO_VAR,
            },
        })
        .collect()
}

/// A variable as the engine reads it, resolved once at build time: the event's lookup key for
/// its name, and the value of a `set` variable of that name (empty if none), which devd uses
/// when the event does not set it.
#[derive(Debug)]
struct VarRef {
    key: u64,
    name: Box<[u8]>,
    global: Box<[u8]>,
    /// `_`, which an event holds at a fixed place ([`Event::underscore`]).
    underscore: bool,
}

impl VarRef {
    fn new(config: &Config, name: &[u8]) -> VarRef {
        VarRef {
            key: crate::event::name_key(name),
            name: name.into(),
            global: config.variable(name).unwrap_or(b"").into(),
            underscore: name == b"_",
        }
    }

    /// The event's value, else the `set` one, else empty.
    #[inline]
    fn read<'a>(&'a self, event: &'a Event) -> &'a [u8] {
        if self.underscore {
            if let Some(v) = event.underscore() {
                return v;
            }
        }
        event
            .get_keyed(self.key, &self.name)
            .unwrap_or(&self.global)
    }
}

/// An action parsed once, with the variables it inserts resolved like those of matches.
#[derive(Debug)]
struct Action {
    template: Template,
    /// One per reference of [`Template::variables`]; `None` for `$*`, which every event
    /// sets first and none can reassign ([`Event::star`]).
    vars: Box<[Option<VarRef>]>,
}

impl Action {
    fn new(config: &Config, text: &[u8]) -> Action {
        let template = Template::parse(text);
        let vars = template
            .variables()
            .map(|name| (name != b"*").then(|| VarRef::new(config, name)))
            .collect();
        Action { template, vars }
    }

    /// The command for `event`.
    fn expand(&self, event: &Event, quoting: Quoting) -> String {
        let mut out = Vec::with_capacity(expansion_capacity(self.template.text_len(), event));
        let ascii = self
            .template
            .expand_resolved(&mut out, Some(quoting), |i, _| match &self.vars[i] {
                Some(var) => var.read(event),
                None => event.star(),
            });
        if ascii {
            // SAFETY: `out` started empty and expand_resolved returns true only when no byte it
            // appended is 0x80 or more; a sequence of bytes below 0x80 is valid UTF-8.
            unsafe { String::from_utf8_unchecked(out) }
        } else {
            utf8_lossy(out)
        }
    }
}

/// Every variable a kind's match statements name, the most used first: the first
/// [`CACHED_VARS`] are the ones a find remembers.
#[derive(Debug, Default)]
struct Variables {
    refs: Vec<VarRef>,
    ids: FxMap<Box<[u8]>, u16>,
}

impl Variables {
    fn build(config: &Config, rules: &[Rule]) -> Variables {
        let mut uses: FxMap<&[u8], usize> = FxMap::default();
        for r in rules {
            for s in r.stmts.iter() {
                if let Statement::Match(m) = s {
                    *uses.entry(m.var()).or_default() += 1;
                }
            }
        }
        let mut by_use: Vec<(&[u8], usize)> = uses.into_iter().collect();
        by_use.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let refs: Vec<VarRef> = by_use
            .iter()
            .map(|(name, _)| VarRef::new(config, name))
            .collect();
        let ids = by_use
            .iter()
            .enumerate()
            .map(|(i, (name, _))| ((*name).into(), i as u16))
            .collect();
        Variables { refs, ids }
    }

    /// The id of a variable some match statement of the kind names.
    fn id(&self, name: &[u8]) -> u16 {
        self.ids[name]
    }
}

/// The values one `find` has looked up: a rule visited later that tests the same variable
/// reads it from here instead of from the event.
struct Lookups<'a> {
    refs: &'a [VarRef],
    event: &'a Event,
    known: u16,
    /// Slot `i` is written when bit `i` of `known` is set, and read only then; left
    /// uninitialised otherwise, so starting a find costs no stores.
    values: [MaybeUninit<&'a [u8]>; CACHED_VARS],
}

impl<'a> Lookups<'a> {
    fn new(vars: &'a Variables, event: &'a Event) -> Self {
        Lookups {
            refs: &vars.refs,
            event,
            known: 0,
            values: [MaybeUninit::uninit(); CACHED_VARS],
        }
    }

    /// The value of variable `var`: the event's own, else the `set` one, else empty.
    #[inline]
    fn get(&mut self, var: u16) -> &'a [u8] {
        let var = usize::from(var);
        let r = &self.refs[var];
        if var >= CACHED_VARS {
            return r.read(self.event);
        }
        let bit = 1u16 << var;
        if self.known & bit == 0 {
            self.values[var] = MaybeUninit::new(r.read(self.event));
            self.known |= bit;
        }
        // SAFETY: bit `var` of `known` is set, so slot `var` was written above or earlier.
        unsafe { self.values[var].assume_init() }
    }
}

/// Most lists one find merges: the rest's `always` and keys, the partition's part's
/// `always` and keys.
const MAX_LISTS: usize = 2 * MAX_INDEX_VARS + 2;

/// The candidate lists of one find. Only the first `len` slots are initialised, so starting
/// a find stores nothing.
struct Heads<'a> {
    len: usize,
    lists: [MaybeUninit<&'a [u32]>; MAX_LISTS],
}

impl<'a> Heads<'a> {
    fn new(first: &'a [u32]) -> Heads<'a> {
        let mut heads = Heads {
            len: 0,
            lists: [MaybeUninit::uninit(); MAX_LISTS],
        };
        heads.push(first);
        heads
    }

    fn push(&mut self, list: &'a [u32]) {
        // An index has at most MAX_INDEX_VARS keys per level, so this cannot overflow.
        self.lists[self.len] = MaybeUninit::new(list);
        self.len += 1;
    }

    #[inline]
    fn as_slice(&self) -> &[&'a [u32]] {
        // SAFETY: the first `len` slots are initialised, and `MaybeUninit<T>` has `T`'s
        // layout.
        unsafe { std::slice::from_raw_parts(self.lists.as_ptr().cast(), self.len) }
    }

    /// Drop the first position of list `i`.
    fn pop_head(&mut self, i: usize) {
        let rest = &self.as_slice()[i][1..];
        self.lists[i] = MaybeUninit::new(rest);
    }
}

/// The indexed matcher. Build once from a [`Config`]; `decide` is `&self` and thread-safe.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    index: [KindIndex; 4],
    /// Per kind and rule, the statements to test, cheapest first: literal matches, then
    /// regex matches, then `media-type`. Matches are pure, so the order cannot change the
    /// outcome; probes run only after every match held (devd may probe earlier, never later).
    order: [Vec<Box<[Step]>>; 4],
    /// Per kind, the variables its match statements read.
    vars: [Variables; 4],
    /// Per kind and rule, its actions parsed once.
    actions: [Vec<Box<[Action]>>; 4],
}

impl Engine {
    /// Build the per-kind indexes.
    pub fn new(config: Config) -> Engine {
        let vars = [0, 1, 2, 3].map(|i| Variables::build(&config, &config.rules[i]));
        let built = [0, 1, 2, 3].map(|i| KindIndex::build(&config.rules[i], &vars[i]));
        let order = std::array::from_fn(|i| {
            config.rules[i]
                .iter()
                .zip(&built[i].1)
                .map(|(r, proven)| evaluation_order(r, &vars[i], proven.statements()))
                .collect()
        });
        let index = built.map(|(index, _)| index);
        let actions = [0, 1, 2, 3].map(|i| {
            config.rules[i]
                .iter()
                .map(|r| r.actions().map(|a| Action::new(&config, a)).collect())
                .collect()
        });
        Engine {
            config,
            index,
            order,
            vars,
            actions,
        }
    }

    /// The configuration the engine was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The rule devd would run for `event`, or `None`.
    pub fn find(&self, event: &Event, media: &dyn MediaProbe) -> Option<&Rule> {
        let k = event.kind().index()?;
        self.find_position(event, media)
            .map(|pos| &self.config.rules[k][pos])
    }

    /// Position of the rule devd would run in its kind's sorted list.
    fn find_position(&self, event: &Event, media: &dyn MediaProbe) -> Option<usize> {
        let k = event.kind().index()?;
        if event.is_abandoned() {
            return None;
        }
        let rules = &self.config.rules[k];
        let index = &self.index[k];
        let mut values = Lookups::new(&self.vars[k], event);
        // Candidate lists: the rest's `always`, then buckets and the part's `always`.
        let mut lists = Heads::new(&index.rest.always);
        // Keys not looked up yet: bit i < PART_BIT is rest.vars[i]; PART_BIT is the
        // partition key; PART_BIT + 1 + i is the chosen part's vars[i].
        const PART_BIT: usize = MAX_INDEX_VARS;
        let mut pending: u32 = (1u32 << index.rest.vars.len()) - 1;
        if index.partition.is_some() {
            pending |= 1 << PART_BIT;
        }
        let mut part: Option<&FlatIndex> = None;
        loop {
            // k-way merge by position: the smallest head is the next rule in devd's order.
            let mut min = u32::MAX;
            let mut which = usize::MAX;
            for (i, l) in lists.as_slice().iter().enumerate() {
                if let Some(&head) = l.first() {
                    if head < min {
                        min = head;
                        which = i;
                    }
                }
            }
            // Before visiting `min`, bring in every bucket that could hold an earlier rule.
            let mut added = false;
            let mut bits = pending;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let vi = match i.cmp(&PART_BIT) {
                    std::cmp::Ordering::Less => &index.rest.vars[i],
                    std::cmp::Ordering::Equal => {
                        &index.partition.as_ref().expect("partition bit").key
                    }
                    std::cmp::Ordering::Greater => &part.expect("part bits").vars[i - PART_BIT - 1],
                };
                if vi.min_pos > min {
                    continue;
                }
                pending &= !(1 << i);
                let Some(list) = Self::bucket(vi, values.get(vi.var)) else {
                    continue;
                };
                added = true;
                if i == PART_BIT {
                    let p =
                        &index.partition.as_ref().expect("partition bit").parts[list[0] as usize];
                    part = Some(p);
                    lists.push(&p.always);
                    pending |= ((1u32 << p.vars.len()) - 1) << (PART_BIT + 1);
                } else {
                    lists.push(list);
                }
            }
            if added {
                continue;
            }
            if which == usize::MAX {
                return None;
            }
            lists.pop_head(which);
            let rule = &rules[min as usize];
            if self.rule_holds(rule, &self.order[k][min as usize], &mut values, media) {
                return Some(min as usize);
            }
        }
    }

    /// The rules filed under `value`, the event's value of an index key's variable.
    #[inline]
    fn bucket<'s>(vi: &'s VarIndex, value: &[u8]) -> Option<&'s [u32]> {
        let value = match usize::from(vi.spec.prefix) {
            0 => value,
            n => value.get(..n)?,
        };
        if value.len() > vi.max_key {
            return None;
        }
        if vi.spec.wildcards.is_empty() {
            return vi.table.get_ignore_case(value);
        }
        let mut buf = [0u8; 64];
        let mut heap;
        let key = if value.len() <= buf.len() {
            &mut buf[..value.len()]
        } else {
            heap = vec![0; value.len()];
            &mut heap[..]
        };
        if !crate::ere::WildcardLiteral::key_of(&vi.spec.wildcards, value, key) {
            return None;
        }
        vi.table.get(key)
    }

    fn rule_holds(
        &self,
        rule: &Rule,
        order: &[Step],
        values: &mut Lookups<'_>,
        media: &dyn MediaProbe,
    ) -> bool {
        for step in order {
            let ok = match &rule.stmts[usize::from(step.stmt)] {
                Statement::Match(m) => m.matches(values.get(step.var)),
                Statement::Media(kind) => media_holds(&self.config, values.event, *kind, media),
                Statement::Action(_) => true,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Decide an event: the matching rule and its expanded actions.
    pub fn decide(&self, event: &Event, media: &dyn MediaProbe) -> Decision {
        let found = event
            .kind()
            .index()
            .and_then(|k| self.find_position(event, media).map(|pos| (k, pos)));
        let Some((k, pos)) = found else {
            return decision(&self.config, event, None);
        };
        // The decision is built first and its actions pushed into it one by one: the common
        // single action lands inline, with neither `extend`'s reserve-and-grow logic nor a
        // copy of the finished list into the decision.
        let mut d = decision_with(event, Some(&self.config.rules[k][pos]), Actions::new());
        for a in self.actions[k][pos].iter() {
            d.actions.push(a.expand(event, self.config.quoting));
        }
        d
    }

    /// Each action of `rule` as the command to hand to the shell for `event`, its values
    /// inserted as `quoting` writes them (the shell that runs it decides the mode, not the
    /// configuration); an action that cannot be carried intact is refused
    /// ([`Template::command`]).
    pub fn commands(
        &self,
        rule: &Rule,
        event: &Event,
        quoting: Quoting,
    ) -> Vec<Result<Vec<u8>, Refused>> {
        rule.actions()
            .map(|text| {
                let mut out = Vec::with_capacity(expansion_capacity(text.len(), event));
                Template::parse(text)
                    .command(&mut out, quoting, |_, name| {
                        lookup(&self.config, event, name)
                    })
                    .map(|()| out)
            })
            .collect()
    }

    /// Statistics about the index, for `check`/`bench` output.
    pub fn index_stats(&self) -> IndexStats {
        let mut s = IndexStats::default();
        let name = |v: &VarIndex| {
            let mut name = String::from_utf8_lossy(&v.spec.var).into_owned();
            if !v.spec.wildcards.is_empty() {
                let at: Vec<String> = v.spec.wildcards.iter().map(u16::to_string).collect();
                name.push_str(&format!(" (wildcards at {})", at.join(",")));
            }
            if v.spec.prefix > 0 {
                name.push_str(&format!(" (first {} bytes)", v.spec.prefix));
            }
            name
        };
        for idx in &self.index {
            let flats =
                std::iter::once(&idx.rest).chain(idx.partition.iter().flat_map(|p| p.parts.iter()));
            if let Some(p) = &idx.partition {
                s.indexed_vars.push(format!("{} (partition)", name(&p.key)));
                s.buckets += p.key.table.len();
            }
            // Checked for every event of the kind: the rest's `always` rules.
            s.unindexed_rules += idx.rest.always.len();
            for flat in flats {
                for v in &flat.vars {
                    let n = name(v);
                    if !s.indexed_vars.contains(&n) {
                        s.indexed_vars.push(n);
                    }
                    s.buckets += v.table.len();
                }
            }
        }
        s.indexed_rules = self.config.rule_count() - s.unindexed_rules;
        s
    }
}

/// How the engine's index covers the rules.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexStats {
    /// Rules not checked for every event of their kind: those checked only for events whose
    /// values select them, and those behind a rule that tests nothing (never checked).
    pub indexed_rules: usize,
    /// Rules checked for every event of their kind.
    pub unindexed_rules: usize,
    /// Distinct key values over all indexes.
    pub buckets: usize,
    /// The keys, e.g. `system (partition)`, `cdev (first 3 bytes)`,
    /// `type (wildcards at 7,10,14)`.
    pub indexed_vars: Vec<String>,
}

/// A compiled `match` pattern as a linear scan evaluates it.
pub trait ScanRegex {
    /// Whether `value` matches; `scratch` is a reusable buffer for engines that need one.
    fn is_match_with(&self, value: &[u8], scratch: &mut Vec<u8>) -> bool;
}

impl ScanRegex for regex::bytes::Regex {
    fn is_match_with(&self, value: &[u8], _: &mut Vec<u8>) -> bool {
        self.is_match(value)
    }
}

/// devd's own algorithm: walk the sorted list and evaluate every statement with a regex
/// (`R` is the regex engine). Used as the reference in differential tests and as the
/// benchmark baselines.
pub struct LinearScan<'c, R> {
    config: &'c Config,
    /// One compiled regex (or `None` = does not compile) per match statement, per rule.
    regexes: [Vec<Vec<Option<Arc<R>>>>; 4],
}

/// The linear scan with the `regex` crate's translation of each pattern.
pub type LinearMatcher<'c> = LinearScan<'c, regex::bytes::Regex>;

impl<'c> LinearScan<'c, regex::bytes::Regex> {
    /// Compile every match statement as a regex (literal sets included), as devd does.
    pub fn new(config: &'c Config) -> Self {
        LinearScan::compile(config, |m| {
            crate::ere::compile_translated(m.translated()?).ok()
        })
    }
}

impl<'c, R: ScanRegex> LinearScan<'c, R> {
    /// Compile each distinct pattern once with `compile` (`None`: it does not compile).
    pub(crate) fn compile(
        config: &'c Config,
        mut compile: impl FnMut(&crate::config::MatchStmt) -> Option<R>,
    ) -> Self {
        let mut cache: HashMap<&[u8], Option<Arc<R>>> = HashMap::new();
        let regexes = [0, 1, 2, 3].map(|k| {
            config.rules[k]
                .iter()
                .map(|r| {
                    r.stmts
                        .iter()
                        .filter_map(|s| match s {
                            Statement::Match(m) => Some(
                                cache
                                    .entry(m.pattern())
                                    .or_insert_with(|| compile(m).map(Arc::new))
                                    .clone(),
                            ),
                            _ => None,
                        })
                        .collect()
                })
                .collect()
        });
        LinearScan { config, regexes }
    }

    /// The first rule, in devd's order, whose statements all hold.
    pub fn find(&self, event: &Event, media: &dyn MediaProbe) -> Option<&'c Rule> {
        let k = event.kind().index()?;
        if event.is_abandoned() {
            return None;
        }
        let mut scratch = Vec::new();
        'rules: for (rule, regexes) in self.config.rules[k].iter().zip(&self.regexes[k]) {
            let mut m = 0;
            for s in rule.stmts.iter() {
                let ok = match s {
                    Statement::Match(st) => {
                        let value = lookup(self.config, event, &st.var);
                        let hit = regexes[m]
                            .as_ref()
                            .is_some_and(|r| r.is_match_with(value, &mut scratch));
                        m += 1;
                        hit != st.inverted
                    }
                    Statement::Media(kind) => media_holds(self.config, event, *kind, media),
                    Statement::Action(_) => true,
                };
                if !ok {
                    continue 'rules;
                }
            }
            return Some(rule);
        }
        None
    }

    /// Decide an event like [`Engine::decide`].
    pub fn decide(&self, event: &Event, media: &dyn MediaProbe) -> Decision {
        decision(self.config, event, self.find(event, media))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadOptions;

    #[test]
    fn index_variables_are_looked_up_only_when_an_earlier_rule_could_be_in_their_buckets() {
        // The catch-all at priority 100 comes first; the vendor rules are filed later.
        let mut text =
            String::from("nomatch 100 { match \"bus\" \"pci[0-9]+\"; action \"x\"; };\n");
        for v in ["0x1", "0x2", "0x3"] {
            text.push_str(&format!(
                "nomatch 10 {{ match \"vendor\" \"{v}\"; action \"v\"; }};\n"
            ));
        }
        let cfg = Config::parse_str("t.conf", &text, &LoadOptions::default()).unwrap();
        let engine = Engine::new(cfg);
        let idx = &engine.index[EventKind::Nomatch.index().unwrap()];
        let vendor = idx
            .rest
            .vars
            .iter()
            .find(|v| &v.spec.var[..] == b"vendor")
            .unwrap();
        assert_eq!(idx.rest.always, vec![0]);
        // Position of the first vendor rule, so an event the catch-all decides never
        // looks `vendor` up.
        assert_eq!(vendor.min_pos, 1);
    }

    #[test]
    fn a_statement_is_skipped_only_where_every_place_of_the_rule_proves_it() {
        // The first rule sits in the parts of s1 and s2. In s1's part enough rules test
        // `type` to index it, so there the bucket proves `type`; s2's part checks the rule
        // unconditionally, so `type` must still be tested.
        let mut text = String::from(
            "notify 1 { match \"system\" \"(s1|s2)\"; match \"type\" \"abc\"; action \"both\"; };\n",
        );
        for _ in 0..3 {
            text.push_str("notify 0 { match \"system\" \"s1\"; match \"type\" \"abc\"; };\n");
        }
        for sys in ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"] {
            text.push_str(&format!("notify 0 {{ match \"system\" \"{sys}\"; }};\n"));
        }
        let engine =
            Engine::new(Config::parse_str("t.conf", &text, &LoadOptions::default()).unwrap());
        assert!(engine.index[3].partition.is_some());
        let line = |l: &str| {
            let e = Event::parse(l).unwrap();
            engine.find(&e, &crate::NoMedia).map(|r| r.line)
        };
        assert_eq!(line("!system=s2 type=abc"), Some(1));
        assert_eq!(line("!system=s2 type=xyz"), Some(6));
        assert_eq!(line("!system=s1 type=xyz"), Some(5));
    }

    #[test]
    fn underscore_is_the_builtin_unless_the_line_assigns_it() {
        let text = "notify 0 { match \"_\" \"foo\"; action \"u $_\"; };\n\
                    notify 0 { match \"_\" \"system=x\"; action \"b $_\"; };\n";
        let engine =
            Engine::new(Config::parse_str("t.conf", text, &LoadOptions::default()).unwrap());
        let decide = |l: &str| {
            engine
                .decide(&Event::parse(l).unwrap(), &crate::NoMedia)
                .actions
        };
        assert_eq!(decide("!system=x")[..], ["b $'system=x'"]);
        assert_eq!(decide("!_=foo")[..], ["u $'foo'"]);
        assert_eq!(decide("!system=y _=foo")[..], ["u $'foo'"]);
    }

    #[test]
    fn rules_behind_a_catch_all_are_not_indexed() {
        // As with devmatch.conf: a rule that tests nothing ends the kind's reachable rules.
        let mut text = String::from("nomatch 100 { action \"catch-all $*\"; };\n");
        for v in 0..20 {
            text.push_str(&format!(
                "nomatch 10 {{ match \"vendor\" \"0x{v:04x}\"; action \"v\"; }};\n"
            ));
        }
        let engine =
            Engine::new(Config::parse_str("t.conf", &text, &LoadOptions::default()).unwrap());
        assert_eq!(engine.index[2].rest.always, [0]);
        assert!(engine.index[2].rest.vars.is_empty() && engine.index[2].partition.is_none());
        let e = Event::parse("? at vendor=0x0001 on uhub0").unwrap();
        assert_eq!(engine.find(&e, &crate::NoMedia).map(|r| r.line), Some(1));
    }

    #[test]
    fn notify_rules_are_partitioned_by_system_and_typed_patterns_are_indexed() {
        let mut text = String::new();
        for sys in ["ZFS", "DEVFS", "IFNET", "GEOM"] {
            for t in ["a", "b", "c"] {
                text.push_str(&format!(
                    "notify 10 {{ match \"system\" \"{sys}\"; match \"type\" \"{t}\"; action \"x\"; }};\n"
                ));
            }
        }
        for t in [
            "ereport.fs.zfs.io",
            "ereport.fs.zfs.data",
            "ereport.fs.zfs.zpool",
        ] {
            text.push_str(&format!(
                "notify 10 {{ match \"system\" \"ZFS\"; match \"type\" \"{t}\"; action \"z\"; }};\n"
            ));
        }
        for c in ["ums[0-9]+", "umt[0-9]+", "atp[0-9]+"] {
            text.push_str(&format!(
                "notify 10 {{ match \"system\" \"DEVFS\"; match \"cdev\" \"{c}\"; action \"d\"; }};\n"
            ));
        }
        let cfg = Config::parse_str("t.conf", &text, &LoadOptions::default()).unwrap();
        let engine = Engine::new(cfg);
        let vars = engine.index_stats().indexed_vars;
        for want in [
            "system (partition)",
            "type (wildcards at 7,10,14)",
            "cdev (first 3 bytes)",
        ] {
            assert!(vars.iter().any(|v| v == want), "{want} not in {vars:?}");
        }
        let line = |l: &str| {
            let e = Event::parse(l).unwrap();
            engine.find(&e, &crate::NoMedia).map(|r| r.line)
        };
        assert_eq!(line("!system=ZFS type=EREPORT.FS.ZFS.IO"), Some(13));
        assert_eq!(line("!system=ZFS type=ereportXfsYzfsZio"), Some(13));
        assert_eq!(line("!system=ZFS type=ereport.fs.zfs.i"), None);
        assert_eq!(line("!system=DEVFS cdev=atp12"), Some(18));
        assert_eq!(line("!system=DEVFS cdev=atp"), None);
        assert_eq!(line("!system=GEOM type=c"), Some(12));
    }
}
