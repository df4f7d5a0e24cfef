//! Choosing the rule for an event (spec §2.4) and expanding its actions (§3.4–3.6).
//!
//! [`Engine`] gives the same answer as devd's linear walk ([`LinearMatcher`]) but looks at
//! fewer rules: per event kind, every rule that has a non-inverted `match` whose anchored
//! pattern is a literal or an alternation of literals is filed under the lower-cased
//! literal(s) of one such match (the one with the smallest buckets). For an event, the
//! candidates are the rules in the buckets of the event's values of the indexed variables,
//! plus the rules that could not be indexed; they are visited in (priority, parse order)
//! order and the first one whose statements all hold wins. Any rule skipped has a literal
//! match that is false for this event, so it could not have matched.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::config::{Config, Rule, Statement};
use crate::event::{Event, EventKind};
use crate::expand::expand_into;
use crate::media::MediaProbe;

/// Where the rule that decided an event was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleRef {
    /// File the block came from.
    pub file: Arc<str>,
    /// Line of the block keyword.
    pub line: u32,
    /// The block's priority.
    pub priority: i32,
}

impl RuleRef {
    fn of(rule: &Rule) -> RuleRef {
        RuleRef {
            file: rule.file.clone(),
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
    /// are replaced by U+FFFD here; use [`Engine::expand_actions`] for the raw bytes.
    pub actions: Vec<String>,
}

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
    let answer = std::str::from_utf8(ifname)
        .ok()
        .and_then(|n| media.media(n));
    kind.matches(answer)
}

/// Expand every action of `rule` for `event`.
pub(crate) fn expand_rule(config: &Config, rule: &Rule, event: &Event) -> Vec<Vec<u8>> {
    rule.actions()
        .map(|template| {
            let mut out = Vec::with_capacity(template.len() + 64);
            expand_into(&mut out, template, Some(config.quoting), |n| {
                lookup(config, event, n)
            });
            out
        })
        .collect()
}

fn to_strings(actions: Vec<Vec<u8>>) -> Vec<String> {
    actions
        .into_iter()
        .map(|a| {
            String::from_utf8(a)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
        .collect()
}

fn decision(config: &Config, event: &Event, rule: Option<&Rule>) -> Decision {
    Decision {
        kind: event.kind(),
        matched: rule.map(RuleRef::of),
        actions: rule
            .map(|r| to_strings(expand_rule(config, r, event)))
            .unwrap_or_default(),
    }
}

/// A tiny multiplicative hasher for short byte keys (FxHash).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
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

/// At most this many variables are indexed per event kind (bounded work per event, and a
/// fixed-size merge without allocation).
const MAX_INDEX_VARS: usize = 7;

/// A variable is indexed only when at least this many rules would be filed under it.
const MIN_RULES_PER_VAR: usize = 3;

#[derive(Debug, Default)]
struct VarIndex {
    var: Box<[u8]>,
    max_key: usize,
    /// Smallest rule position in any bucket: the variable need not be looked up while an
    /// earlier candidate is still undecided.
    min_pos: u32,
    buckets: FxMap<Box<[u8]>, Vec<u32>>,
}

/// An indexable match of a rule: the variable and its literal set.
type Candidate<'r> = (&'r [u8], &'r [Box<[u8]>]);

#[derive(Debug, Default)]
struct KindIndex {
    /// Rules (positions in the sorted list) that must always be checked.
    always: Vec<u32>,
    vars: Vec<VarIndex>,
}

impl KindIndex {
    fn build(rules: &[Rule]) -> KindIndex {
        // Candidate index statements of each rule: (var, literals).
        let cands: Vec<Vec<Candidate>> = rules
            .iter()
            .map(|r| {
                r.stmts
                    .iter()
                    .filter_map(|s| match s {
                        Statement::Match(m) => m.literals().map(|l| (m.var(), l)),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let mut key_count: HashMap<(&[u8], &[u8]), usize> = HashMap::new();
        for rc in &cands {
            for (var, lits) in rc {
                for l in lits.iter() {
                    *key_count.entry((var, &l[..])).or_default() += 1;
                }
            }
        }
        let cost = |var: &[u8], lits: &[Box<[u8]>]| -> usize {
            lits.iter().map(|l| key_count[&(var, &l[..])]).sum()
        };
        // First choice per rule: the statement with the smallest total bucket size.
        let best = |rc: &Vec<Candidate>, allowed: Option<&[&[u8]]>| -> Option<usize> {
            rc.iter()
                .enumerate()
                .filter(|(_, (v, _))| allowed.is_none_or(|a| a.contains(v)))
                .min_by_key(|(_, (v, l))| cost(v, l))
                .map(|(i, _)| i)
        };
        let mut var_use: Vec<(&[u8], usize)> = Vec::new();
        for rc in &cands {
            if let Some(i) = best(rc, None) {
                match var_use.iter_mut().find(|(v, _)| *v == rc[i].0) {
                    Some(slot) => slot.1 += 1,
                    None => var_use.push((rc[i].0, 1)),
                }
            }
        }
        var_use.sort_by_key(|v| std::cmp::Reverse(v.1));
        // A variable costs one lookup per event; index only those that several rules use
        // (rules of dropped variables fall back to another of their literals, or to `always`).
        let kept: Vec<&[u8]> = var_use
            .iter()
            .filter(|(_, n)| *n >= MIN_RULES_PER_VAR)
            .take(MAX_INDEX_VARS)
            .map(|(v, _)| *v)
            .collect();
        let mut idx = KindIndex {
            always: Vec::new(),
            vars: kept
                .iter()
                .map(|v| VarIndex {
                    var: (*v).into(),
                    // Lowered as rules are filed; starting at 0 would make every lookup eager.
                    min_pos: u32::MAX,
                    ..Default::default()
                })
                .collect(),
        };
        for (pos, rc) in cands.iter().enumerate() {
            match best(rc, Some(&kept)) {
                Some(i) => {
                    let (var, lits) = rc[i];
                    let vi = idx
                        .vars
                        .iter_mut()
                        .find(|v| &v.var[..] == var)
                        .expect("kept var");
                    for l in lits.iter() {
                        vi.max_key = vi.max_key.max(l.len());
                        vi.min_pos = vi.min_pos.min(pos as u32);
                        vi.buckets.entry(l.clone()).or_default().push(pos as u32);
                    }
                }
                None => idx.always.push(pos as u32),
            }
        }
        idx
    }
}

/// Statement indexes of `rule` in evaluation order (actions left out).
fn evaluation_order(rule: &Rule) -> Box<[u16]> {
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
        .filter_map(|(i, s)| rank(s).map(|r| (r, i as u16)))
        .collect();
    idx.sort();
    idx.into_iter().map(|(_, i)| i).collect()
}

/// The indexed matcher. Build once from a [`Config`]; `decide` is `&self` and thread-safe.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    index: [KindIndex; 4],
    /// Per kind and rule, the statements to test, cheapest first: literal matches, then
    /// regex matches, then `media-type`. Matches are pure, so the order cannot change the
    /// outcome; probes run only after every match held (devd may probe earlier, never later).
    order: [Vec<Box<[u16]>>; 4],
}

impl Engine {
    /// Build the per-kind indexes.
    pub fn new(config: Config) -> Engine {
        let index = [0, 1, 2, 3].map(|i| KindIndex::build(&config.rules[i]));
        let order = [0, 1, 2, 3].map(|i| config.rules[i].iter().map(evaluation_order).collect());
        Engine {
            config,
            index,
            order,
        }
    }

    /// The configuration the engine was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The rule devd would run for `event`, or `None`.
    pub fn find(&self, event: &Event, media: &dyn MediaProbe) -> Option<&Rule> {
        let k = event.kind().index()?;
        if event.is_abandoned() {
            return None;
        }
        let rules = &self.config.rules[k];
        let index = &self.index[k];
        let mut lists: [&[u32]; MAX_INDEX_VARS + 1] = [&[]; MAX_INDEX_VARS + 1];
        lists[0] = &index.always;
        let mut n = 1;
        // Index variables not looked up yet (bit i = index.vars[i]).
        let mut pending: u32 = (1u32 << index.vars.len()) - 1;
        loop {
            // k-way merge by position: the smallest head is the next rule in devd's order.
            let mut min = u32::MAX;
            let mut which = usize::MAX;
            for (i, l) in lists[..n].iter().enumerate() {
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
                let vi = &index.vars[i];
                if vi.min_pos <= min {
                    pending &= !(1 << i);
                    if let Some(list) = self.bucket(vi, event) {
                        lists[n] = list;
                        n += 1;
                        added = true;
                    }
                }
            }
            if added {
                continue;
            }
            if which == usize::MAX {
                return None;
            }
            lists[which] = &lists[which][1..];
            let rule = &rules[min as usize];
            if self.rule_holds(rule, &self.order[k][min as usize], event, media) {
                return Some(rule);
            }
        }
    }

    /// The rules filed under the event's value of an index variable.
    #[inline]
    fn bucket<'s>(&'s self, vi: &'s VarIndex, event: &Event) -> Option<&'s [u32]> {
        let value = lookup(&self.config, event, &vi.var);
        if value.len() > vi.max_key {
            return None;
        }
        let mut buf = [0u8; 64];
        let hit = if value.len() <= buf.len() {
            let key = &mut buf[..value.len()];
            key.copy_from_slice(value);
            key.make_ascii_lowercase();
            vi.buckets.get(&key[..])
        } else {
            vi.buckets.get(&value.to_ascii_lowercase()[..])
        };
        hit.map(Vec::as_slice)
    }

    fn rule_holds(
        &self,
        rule: &Rule,
        order: &[u16],
        event: &Event,
        media: &dyn MediaProbe,
    ) -> bool {
        for &i in order {
            let ok = match &rule.stmts[i as usize] {
                Statement::Match(m) => m.matches(lookup(&self.config, event, &m.var)),
                Statement::Media(kind) => media_holds(&self.config, event, *kind, media),
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
        decision(&self.config, event, self.find(event, media))
    }

    /// The raw bytes of each action of `rule` expanded for `event`.
    pub fn expand_actions(&self, rule: &Rule, event: &Event) -> Vec<Vec<u8>> {
        expand_rule(&self.config, rule, event)
    }

    /// Statistics about the index, for `check`/`bench` output.
    pub fn index_stats(&self) -> IndexStats {
        let mut s = IndexStats::default();
        for idx in &self.index {
            s.unindexed_rules += idx.always.len();
            for v in &idx.vars {
                s.indexed_vars
                    .push(String::from_utf8_lossy(&v.var).into_owned());
                s.buckets += v.buckets.len();
            }
        }
        s.indexed_rules = self.config.rule_count() - s.unindexed_rules;
        s
    }
}

/// How the engine's index covers the rules.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexStats {
    pub indexed_rules: usize,
    pub unindexed_rules: usize,
    pub buckets: usize,
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
        let vendor = idx.vars.iter().find(|v| &v.var[..] == b"vendor").unwrap();
        assert_eq!(idx.always, vec![0]);
        // Position of the first vendor rule, so an event the catch-all decides never
        // looks `vendor` up.
        assert_eq!(vendor.min_pos, 1);
    }
}
