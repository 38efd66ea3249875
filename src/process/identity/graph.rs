//! The identifier graph as integer vectors: every `(kind, id)` is interned once to a node
//! number, and the rules (first seen, conflicts, components, keys, known ids) run as passes
//! over the pairs and the nodes.
//!
//! Why not Polars plans: each rule is per node or per component, and as lazy plans they were
//! group-bys and joins keyed on (kind, id) strings over every identifier, three of them on the
//! whole node table. At 180 days (1.1 million identifiers) that cost 2 to 4 s (by machine),
//! the largest share of a night's process stage. Hashing each identifier once and keeping
//! everything else in integers does the same work in one pass over the pairs and one over
//! the installs.
//!
//! The identifiers the pairs and installs name are copied once each into one buffer of text
//! ([`Names`]), found again through a table of slot numbers hashed by their text: the frames
//! they came from can be dropped as soon as they are named, and the table holds four bytes
//! per identifier where a map of `(kind, &str)` keys held thirty-two. The interned graph's
//! identifiers are borrowed from its frame (`'a`), which outlives the graph.
//!
//! The settled days' graph is kept between runs already interned ([`Graph::interned_frame`]:
//! a row per identifier, its row its node number, with the nodes it is paired with). So a
//! graph is built in three steps:
//! 1. the identifiers the later pairs and the installs name are hashed, as each row names
//!    them, to a *slot* ([`Graph::name_pairs`], [`Graph::name_installs`]), a frame at a time;
//! 2. the interned graph's identifiers become the first nodes, and each is looked up among
//!    the slots ([`Graph::add_interned`]): the history's identifiers are read, not hashed
//!    into a map of a million;
//! 3. the named pairs and installs are added by slot ([`Graph::add_named`]): a slot that
//!    found no interned node becomes a new one. Nothing is hashed after naming.
//!
//! At 180 days reading the string pairs, their anti-join and interning had taken 2 to 3 s of
//! the night.

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::iter::once;

use hashbrown::HashTable;
use polars::prelude::*;

use super::SHARED_KINDS;

/// The kind whose partners decide a conflict: a shared identifier seen with more than one
/// app user id.
const USER_KIND: &str = "user_id";
/// The kind of an AppsFlyer install's id: the candidates for a person's key.
const INSTALL_KIND: &str = "appsflyer_id";
/// The kind a person's and an install's known advertising id are of.
const AD_KIND: &str = "advertising_id";
const MS_PER_DAY: i64 = 86_400_000;
/// A slot's node before it has one.
const PENDING: u32 = u32::MAX;

/// Identifiers and their pairs, interned.
#[derive(Default)]
pub(super) struct Graph<'a> {
    /// Kind names by kind code (a handful).
    kinds: Vec<String>,
    /// Every identifier the named pairs and installs hold, by slot.
    names: Names,
    /// The pairs named, by slot, with their day: added by [`Graph::add_named`].
    named_pairs: Vec<(u32, u32, Option<i32>)>,
    /// Per install row named, in their order: its AppsFlyer id's slot and its install time
    /// in ms, where the row has an id.
    named_installs: Vec<Option<(u32, Option<i64>)>>,
    /// Per node: kind code, first day seen (days since 1970-01-01) and earliest install time
    /// in ms (AppsFlyer ids with an install only).
    kind: Vec<u32>,
    first_day: Vec<Option<i32>>,
    first_install: Vec<Option<i64>>,
    /// The ids of the interned graph's nodes, which come first, borrowed from its frame.
    interned_id: Vec<&'a str>,
    /// The slot of each node after them, whose id [`Names`] holds.
    named_slot: Vec<u32>,
    /// Every pair as node numbers.
    pairs: Vec<(u32, u32)>,
    /// Per install row named, in their order: the node of its AppsFlyer id, where the row
    /// names an identifier.
    install_node: Vec<Option<u32>>,
    /// The `kind` and `id` columns of the interned graph added, whose rows are the first
    /// nodes: the output frames share them rather than copy a million strings.
    interned_columns: Option<[Column; 2]>,
}

/// The identifiers named by pairs and installs, each once, by slot: its key ([`Keys`]), its
/// node, and a table of the slots hashed by their keys.
#[derive(Default)]
struct Names {
    keys: Keys,
    /// Per slot its node, [`PENDING`] until it has one.
    node: Vec<u32>,
    /// Slots, hashed by `(kind, id)`.
    table: HashTable<u32>,
}

/// Each slot's `(kind, id)`: the ids' text in one buffer (slot `s` is
/// `text[ends[s - 1]..ends[s]]`), and the kind codes.
#[derive(Default)]
struct Keys {
    text: String,
    ends: Vec<u64>,
    kind: Vec<u32>,
    hasher: PlRandomState,
}

impl Keys {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn text(&self, slot: u32) -> &str {
        let s = slot as usize;
        let start = if s == 0 { 0 } else { self.ends[s - 1] as usize };
        &self.text[start..self.ends[s] as usize]
    }

    fn hash(&self, kind: u32, id: &str) -> u64 {
        self.hasher.hash_one((kind, id))
    }

    /// The hash of slot `slot`'s key, as the table rehashes it.
    fn hash_of(&self, slot: u32) -> u64 {
        self.hash(self.kind[slot as usize], self.text(slot))
    }

    fn is(&self, slot: u32, kind: u32, id: &str) -> bool {
        self.kind[slot as usize] == kind && self.text(slot) == id
    }

    fn push(&mut self, kind: u32, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len() as u64);
        self.kind.push(kind);
    }
}

impl Names {
    fn text(&self, slot: u32) -> &str {
        self.keys.text(slot)
    }

    fn kind(&self, slot: u32) -> u32 {
        self.keys.kind[slot as usize]
    }

    fn is_empty(&self) -> bool {
        self.keys.len() == 0
    }

    /// The slot of `(kind, id)`, if named.
    fn find(&self, kind: u32, id: &str) -> Option<u32> {
        let hash = self.keys.hash(kind, id);
        self.table
            .find(hash, |&s| self.keys.is(s, kind, id))
            .copied()
    }

    /// The slot of `(kind, id)`, added when new.
    fn slot(&mut self, kind: u32, id: &str) -> u32 {
        let keys = &self.keys;
        let hash = keys.hash(kind, id);
        let entry = self
            .table
            .entry(hash, |&s| keys.is(s, kind, id), |&s| keys.hash_of(s));
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => *found.get(),
            hashbrown::hash_table::Entry::Vacant(room) => {
                let next = self.keys.len() as u32;
                room.insert(next);
                self.keys.push(kind, id);
                self.node.push(PENDING);
                next
            }
        }
    }

    /// Room for `n` more identifiers.
    fn reserve(&mut self, n: usize) {
        let keys = &self.keys;
        self.table.reserve(n, |&s| keys.hash_of(s));
        self.keys.ends.reserve(n);
        self.keys.kind.reserve(n);
        self.node.reserve(n);
    }

    /// Frees what only finding identifiers needs: the table, and each slot's kind and node
    /// (the nodes keep their own). The text stays: the nodes' ids are read from it.
    fn keep_text_only(&mut self) {
        self.table = HashTable::new();
        self.keys.kind = Vec::new();
        self.node = Vec::new();
    }
}

/// The graph resolved: per node its component and conflict flag, per component its person.
pub(super) struct Resolved<'a> {
    graph: Graph<'a>,
    conflict: Vec<bool>,
    component: Vec<u32>,
    people: Vec<Person>,
    /// Per AppsFlyer id node, the advertising ids its pairs name (see
    /// [`Resolved::installs_frame`]).
    install_advertising_id: Vec<Seen<u32>>,
}

/// One component's person: their key and the ids that fill rows missing them, as nodes
/// whose text is read only as the people frame is built (a String per person held ten
/// million copies at the month's scale beside the frame made of them).
struct Person {
    key: Key,
    known_advertising_id: Option<u32>,
    known_user_id: Option<u32>,
}

/// Where a person's key comes from.
#[derive(Clone, Copy)]
enum Key {
    /// The id of this node, the AppsFlyer id of their first install, as it is.
    Install(u32),
    /// `kind:id` of this node, their smallest identifier.
    Node(u32),
}

/// How many distinct values (identifiers, nodes) a component or a node holds, and the one
/// when it is one.
#[derive(Clone, Copy)]
enum Seen<T> {
    None,
    One(T),
    Many,
}

impl<T: Copy + PartialEq> Seen<T> {
    fn add(self, value: T) -> Self {
        match self {
            Seen::None => Seen::One(value),
            Seen::One(seen) if seen == value => self,
            Seen::One(_) | Seen::Many => Seen::Many,
        }
    }

    fn only(self) -> Option<T> {
        match self {
            Seen::One(id) => Some(id),
            Seen::None | Seen::Many => None,
        }
    }
}

impl<'a> Graph<'a> {
    /// The code of kind `name`, added when new.
    fn kind_code(&mut self, name: &str) -> u32 {
        self.code_of(name).unwrap_or_else(|| {
            self.kinds.push(name.to_string());
            (self.kinds.len() - 1) as u32
        })
    }

    fn code_of(&self, name: &str) -> Option<u32> {
        self.kinds.iter().position(|k| *k == name).map(|i| i as u32)
    }

    /// The number of nodes.
    fn nodes(&self) -> usize {
        self.kind.len()
    }

    /// Node `v`'s id.
    fn id(&self, v: u32) -> &str {
        let v = v as usize;
        match self.interned_id.get(v) {
            Some(id) => id,
            None => self.names.text(self.named_slot[v - self.interned_id.len()]),
        }
    }

    /// Node `v`'s kind name.
    fn kind_name(&self, v: u32) -> &str {
        &self.kinds[self.kind[v as usize] as usize]
    }

    /// The slot of `(kind, id)`, added when new.
    fn name(&mut self, kind: &str, id: &str) -> u32 {
        let kind = self.kind_code(kind);
        self.names.slot(kind, id)
    }

    /// Names the pairs of `edges` (`dt`, `left_kind`, `left_id`, `right_kind`, `right_id`).
    /// A pair missing a kind or an id names no identifier and is skipped. The identifiers
    /// are copied: `edges` may be dropped once named.
    pub(super) fn name_pairs(&mut self, edges: &DataFrame) -> PolarsResult<()> {
        let dt = edges.column("dt")?.date()?.physical();
        let left_kind = edges.column("left_kind")?.str()?;
        let left_id = edges.column("left_id")?.str()?;
        let right_kind = edges.column("right_kind")?.str()?;
        let right_id = edges.column("right_id")?.str()?;
        self.named_pairs.reserve(edges.height());
        // A distinct pair brings about one new identifier (a person's pairs chain their ids),
        // but the rows repeat pairs across days: room for half as many identifiers as rows up
        // front, so the index is rehashed a few times at most as it grows, and a history of
        // repeated rows does not reserve a map for twice the identifiers it names.
        self.names.reserve(edges.height() / 2);
        let rows = dt
            .iter()
            .zip(left_kind.iter().zip(left_id.iter()))
            .zip(right_kind.iter().zip(right_id.iter()));
        for ((day, (lk, li)), (rk, ri)) in rows {
            let (Some(lk), Some(li), Some(rk), Some(ri)) = (lk, li, rk, ri) else {
                continue;
            };
            let a = self.name(lk, li);
            let b = self.name(rk, ri);
            self.named_pairs.push((a, b, day));
        }
        Ok(())
    }

    /// Names the installs (`appsflyer_id`, `install_time` in ms), row by row.
    pub(super) fn name_installs(&mut self, installs: &DataFrame) -> PolarsResult<()> {
        let ids = installs.column("appsflyer_id")?.str()?;
        let times = installs.column("install_time")?.datetime()?.physical();
        self.named_installs.reserve(installs.height());
        for (id, ms) in ids.iter().zip(times.iter()) {
            let named = id.map(|id| (self.name(INSTALL_KIND, id), ms));
            self.named_installs.push(named);
        }
        Ok(())
    }

    /// Adds an interned graph ([`Graph::interned_frame`]'s columns) as the first nodes, each
    /// numbered by its row, with its pairs; a slot naming one of its identifiers gets that
    /// node. Comes after the naming, before [`Graph::add_named`].
    pub(super) fn add_interned(&mut self, interned: &'a DataFrame) -> PolarsResult<()> {
        polars_ensure!(
            self.nodes() == 0,
            InvalidOperation: "an interned graph must be added before any other node"
        );
        let (kind_column, id_column) = (interned.column("kind")?, interned.column("id")?);
        let kinds = kind_column.str()?;
        let ids = id_column.str()?;
        let first_days = interned.column("first_day")?.date()?.physical();
        self.reserve_nodes(interned.height() + self.names.keys.len());
        self.interned_id.reserve(interned.height());
        let named = !self.names.is_empty();
        let rows = kinds.iter().zip(ids.iter()).zip(first_days.iter());
        for (v, ((kind, id), day)) in rows.enumerate() {
            let (Some(kind), Some(id)) = (kind, id) else {
                polars_bail!(ComputeError: "interned identifier {v} has no kind or id");
            };
            let code = self.kind_code(kind);
            if named && let Some(slot) = self.names.find(code, id) {
                self.names.node[slot as usize] = v as u32;
            }
            self.push_node(code, day);
            self.interned_id.push(id);
        }
        self.interned_columns = Some([kind_column.clone(), id_column.clone()]);
        self.add_interned_pairs(interned.column("partners")?.list()?)
    }

    /// `kind` and `id` of every node, in node order: the interned graph's columns (shared,
    /// not copied) followed by the nodes added since.
    fn node_columns(&self) -> PolarsResult<[Column; 2]> {
        let from = self.interned_columns.as_ref().map_or(0, |[k, _]| k.len());
        // Taken from a column of the few kind names by code: each row's view points into
        // that column's buffer, rather than a copy of its kind's name per identifier.
        let names = Column::new("kind".into(), self.kinds.as_slice());
        let codes = IdxCa::from_vec(
            "kind".into(),
            self.kind[from..].iter().map(|k| *k as IdxSize).collect(),
        );
        let ids = StringChunked::from_iter_values(
            "id".into(),
            (from..self.nodes()).map(|v| self.id(v as u32)),
        );
        let added = [names.take(&codes)?, ids.into_column()];
        let Some(interned) = &self.interned_columns else {
            return Ok(added);
        };
        let mut columns = interned.clone();
        for (column, added) in columns.iter_mut().zip(&added) {
            column.rename(added.name().clone());
            column.append(added)?;
        }
        Ok(columns)
    }

    /// The pairs of an interned graph: row `v`'s partners `u` are pairs `(v, u)`.
    fn add_interned_pairs(&mut self, partners: &ListChunked) -> PolarsResult<()> {
        let nodes = self.nodes();
        let partners = partners.rechunk();
        let values = partners.get_inner();
        let values = values.u32()?.rechunk();
        polars_ensure!(
            values.null_count() == 0,
            ComputeError: "an interned graph's partners hold nulls"
        );
        let values = values.cont_slice()?;
        self.pairs.reserve(values.len() + self.named_pairs.len());
        let mut v = 0usize;
        for list in partners.downcast_iter() {
            for w in list.offsets().as_slice().windows(2) {
                let (start, end) = (w[0] as usize, w[1] as usize);
                let Some(partners) = values.get(start..end) else {
                    polars_bail!(ComputeError: "an interned graph's partners are out of bounds at row {v}");
                };
                for &u in partners {
                    polars_ensure!(
                        (u as usize) < nodes,
                        ComputeError: "interned identifier {v} is paired with {u}, past the last node"
                    );
                    self.pairs.push((v as u32, u));
                }
                v += 1;
            }
        }
        Ok(())
    }

    /// The node of `slot`, added when it has none; `day` lowers its first day seen.
    fn slot_node(&mut self, slot: u32, day: Option<i32>) -> u32 {
        let node = self.names.node[slot as usize];
        if node == PENDING {
            let node = self.nodes() as u32;
            self.names.node[slot as usize] = node;
            self.push_node(self.names.kind(slot), day);
            self.named_slot.push(slot);
            node
        } else {
            let first = &mut self.first_day[node as usize];
            *first = min_option(*first, day);
            node
        }
    }

    /// A node of kind `code` first seen on `day`; its id is pushed by the caller.
    fn push_node(&mut self, code: u32, day: Option<i32>) {
        self.kind.push(code);
        self.first_day.push(day);
        self.first_install.push(None);
    }

    fn reserve_nodes(&mut self, n: usize) {
        self.kind.reserve(n);
        self.first_day.reserve(n);
        self.first_install.reserve(n);
    }

    /// Adds the named pairs, then the named installs: each install's id is a node first
    /// seen on its install's UTC day, and its earliest install time makes it a key
    /// candidate. An install without a time names no candidate, but still gets the node of
    /// its id when pairs or other installs made one. Every install row's node is kept, in
    /// row order, for [`Resolved::installs_frame`].
    pub(super) fn add_named(&mut self) {
        for (a, b, day) in std::mem::take(&mut self.named_pairs) {
            let a = self.slot_node(a, day);
            let b = self.slot_node(b, day);
            self.pairs.push((a, b));
        }
        let installs = std::mem::take(&mut self.named_installs);
        self.install_node.reserve(installs.len());
        for named in &installs {
            let node = match *named {
                Some((slot, Some(ms))) => {
                    let day = ms.div_euclid(MS_PER_DAY) as i32;
                    let node = self.slot_node(slot, Some(day));
                    let first = &mut self.first_install[node as usize];
                    *first = min_option(*first, Some(ms));
                    Some(node)
                }
                Some((_, None)) | None => None,
            };
            self.install_node.push(node);
        }
        // Looked up once every timed row is in, so a later row's id is found too.
        for (row, named) in installs.iter().enumerate() {
            if let Some((slot, None)) = *named {
                let node = self.names.node[slot as usize];
                self.install_node[row] = (node != PENDING).then_some(node);
            }
        }
    }

    /// The graph as it is kept between runs: `kind`, `id`, `first_day`, `partners` (the nodes
    /// it is the left of a pair with, each once, ascending): a row per node, in node order.
    /// Pairs added twice are kept once. Built from pairs alone (no installs named), so the
    /// first day is that of the node's earliest pair.
    pub(super) fn interned_frame(&self) -> PolarsResult<DataFrame> {
        let mut pairs = self.pairs.clone();
        pairs.sort_unstable();
        pairs.dedup();
        let mut partners = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
            "partners".into(),
            self.nodes(),
            pairs.len(),
            DataType::UInt32,
        );
        let mut rest = pairs.as_slice();
        let mut rights: Vec<u32> = Vec::new();
        for v in 0..self.nodes() as u32 {
            let n = rest.iter().take_while(|(a, _)| *a == v).count();
            rights.clear();
            rights.extend(rest[..n].iter().map(|(_, b)| *b));
            partners.append_slice(&rights);
            rest = &rest[n..];
        }
        let [kind, id] = self.node_columns()?;
        DataFrame::new_infer_height(vec![
            kind,
            id,
            Column::new("first_day".into(), &self.first_day).cast(&DataType::Date)?,
            partners.finish().into_column(),
        ])
    }

    /// Per node, the distinct advertising ids paired with it where it is an AppsFlyer id on
    /// the left of the pair (the side `clean.id_links` puts an install's id on).
    fn install_advertising_ids(&self) -> Vec<Seen<u32>> {
        let mut seen = vec![Seen::None; self.nodes()];
        let (Some(install), Some(ad)) = (self.code_of(INSTALL_KIND), self.code_of(AD_KIND)) else {
            return seen;
        };
        for &(a, b) in &self.pairs {
            if self.kind[a as usize] == install && self.kind[b as usize] == ad {
                seen[a as usize] = seen[a as usize].add(b);
            }
        }
        seen
    }

    /// Per node, whether it is a shared identifier seen with more than one app user id.
    fn conflicts(&self) -> Vec<bool> {
        let mut conflict = vec![false; self.nodes()];
        let Some(user) = self.code_of(USER_KIND) else {
            return conflict;
        };
        let shared: Vec<bool> = self
            .kinds
            .iter()
            .map(|k| SHARED_KINDS.contains(&k.as_str()))
            .collect();
        let is_shared = |v: u32| shared[self.kind[v as usize] as usize];
        let is_user = |v: u32| self.kind[v as usize] == user;
        let mut claims: Vec<(u32, u32)> = Vec::new();
        for &(a, b) in &self.pairs {
            if is_shared(a) && is_user(b) {
                claims.push((a, b));
            }
            if is_shared(b) && is_user(a) {
                claims.push((b, a));
            }
        }
        claims.sort_unstable();
        claims.dedup();
        for pair in claims.windows(2) {
            if pair[0].0 == pair[1].0 {
                conflict[pair[0].0 as usize] = true;
            }
        }
        conflict
    }

    /// Connected components of the pairs without conflicting nodes (each of which stays
    /// alone): per node a dense component number, and the number of components.
    fn components(&self, conflict: &[bool]) -> (Vec<u32>, usize) {
        let n = self.nodes();
        let mut parent: Vec<u32> = (0..n as u32).collect();
        for &(a, b) in &self.pairs {
            if conflict[a as usize] || conflict[b as usize] {
                continue;
            }
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            match ra.cmp(&rb) {
                Ordering::Less => parent[rb as usize] = ra,
                Ordering::Greater => parent[ra as usize] = rb,
                Ordering::Equal => {}
            }
        }
        let mut dense = vec![u32::MAX; n];
        let mut count = 0u32;
        let mut component = Vec::with_capacity(n);
        for v in 0..n as u32 {
            let r = root(&mut parent, v) as usize;
            if dense[r] == u32::MAX {
                dense[r] = count;
                count += 1;
            }
            component.push(dense[r]);
        }
        (component, count as usize)
    }

    /// `kind:id` of a node compared with another's, without building either string.
    fn cmp_node_keys(&self, a: u32, b: u32) -> Ordering {
        let key = |v: u32| {
            self.kind_name(v)
                .bytes()
                .chain(once(b':'))
                .chain(self.id(v).bytes())
        };
        key(a).cmp(key(b))
    }

    /// Resolves the graph: conflicts, components, and each component's person.
    ///
    /// A person's key is the AppsFlyer id of their first install (earliest install time, then
    /// smallest id), else the smallest `kind:id` of their identifiers. Their known advertising
    /// id and app user id are the one (non-conflicting) identifier of that kind they hold,
    /// where they hold exactly one.
    pub(super) fn resolve(mut self) -> Resolved<'a> {
        // Nothing looks identifiers up any more: free the table before the output is built.
        self.names.keep_text_only();
        let conflict = self.conflicts();
        let (component, count) = self.components(&conflict);
        let install_advertising_id = self.install_advertising_ids();
        let ad = self.code_of(AD_KIND);
        let user = self.code_of(USER_KIND);
        // Per component, its first install's time and AppsFlyer id node.
        let mut install: Vec<Option<(i64, u32)>> = vec![None; count];
        let mut smallest: Vec<Option<u32>> = vec![None; count];
        let mut ads = vec![Seen::None; count];
        let mut users = vec![Seen::None; count];
        for (v, &c) in component.iter().enumerate() {
            let c = c as usize;
            let node = v as u32;
            if let Some(ms) = self.first_install[v] {
                let earlier =
                    |(best_ms, best): (i64, u32)| (ms, self.id(node)) < (best_ms, self.id(best));
                if install[c].is_none_or(earlier) {
                    install[c] = Some((ms, node));
                }
            }
            if smallest[c].is_none_or(|s| self.cmp_node_keys(node, s) == Ordering::Less) {
                smallest[c] = Some(node);
            }
            if conflict[v] {
                continue;
            }
            let kind = Some(self.kind[v]);
            // A node is one identifier, so the same node is the same id.
            if kind == ad {
                ads[c] = ads[c].add(node);
            } else if kind == user {
                users[c] = users[c].add(node);
            }
        }
        let people = (0..count)
            .map(|c| Person {
                // Every component holds a node, so one of the two is always there.
                key: match (install[c], smallest[c]) {
                    (Some((_, v)), _) => Key::Install(v),
                    (None, v) => Key::Node(v.unwrap_or_default()),
                },
                known_advertising_id: ads[c].only(),
                known_user_id: users[c].only(),
            })
            .collect();
        Resolved {
            graph: self,
            conflict,
            component,
            people,
            install_advertising_id,
        }
    }
}

impl Resolved<'_> {
    /// Connected components: people, and each conflicting identifier alone.
    pub(super) fn components(&self) -> usize {
        self.people.len()
    }

    /// Identifiers left out by the conflict rule.
    pub(super) fn conflicts(&self) -> u64 {
        self.conflict.iter().filter(|c| **c).count() as u64
    }

    /// `dt`, `kind`, `id`, `user_key`, `conflict`: a row per identifier, in node order (that
    /// of the interned graph and the pairs, which is not stable between runs). Not sorted:
    /// sorting a million identifiers by string took longer than building the frame, and only
    /// the few rows written as `clean.identities` need an order. `people` is this
    /// resolution's [`Resolved::people_frame`]: the keys are taken from it, and kinds and ids
    /// from the interned graph's columns, so few strings are copied.
    pub(super) fn nodes_frame(&self, people: &DataFrame) -> PolarsResult<DataFrame> {
        let g = &self.graph;
        let [kind, id] = g.node_columns()?;
        let person = IdxCa::from_vec(
            "person".into(),
            self.component.iter().map(|c| *c as IdxSize).collect(),
        );
        let key = people.column("user_key")?.take(&person)?;
        DataFrame::new_infer_height(vec![
            Column::new("dt".into(), &g.first_day).cast(&DataType::Date)?,
            kind,
            id,
            key,
            Column::new("conflict".into(), &self.conflict),
        ])
    }

    /// `user_key`, `known_advertising_id`, `known_user_id`: a row per person, in component
    /// order (not stable between runs either).
    pub(super) fn people_frame(&self) -> PolarsResult<DataFrame> {
        let g = &self.graph;
        let mut keys = StringChunkedBuilder::new("user_key".into(), self.people.len());
        let mut text = String::new();
        for person in &self.people {
            match person.key {
                Key::Install(v) => keys.append_value(g.id(v)),
                Key::Node(v) => {
                    text.clear();
                    text.push_str(g.kind_name(v));
                    text.push(':');
                    text.push_str(g.id(v));
                    keys.append_value(&text);
                }
            }
        }
        let known = |name: &str, node: fn(&Person) -> Option<u32>| {
            StringChunked::from_iter_options(
                name.into(),
                self.people.iter().map(|p| node(p).map(|v| g.id(v))),
            )
            .into_column()
        };
        DataFrame::new_infer_height(vec![
            keys.finish().into_column(),
            known("known_advertising_id", |p| p.known_advertising_id),
            known("known_user_id", |p| p.known_user_id),
        ])
    }

    /// `user_key`, `known_advertising_id`, `known_user_id`, `install_advertising_id`: a row per
    /// install added, in their order. The first three are the person of the row's AppsFlyer
    /// id (null where the row names no identifier); the last is the one advertising id the
    /// install's own pairs name (its in-app rows), where they name exactly one, whatever the
    /// conflict rule says of it: one install is one device. `nodes` and `people` are this
    /// resolution's [`Resolved::nodes_frame`] and [`Resolved::people_frame`], whose rows are
    /// taken: no identifier string is copied.
    ///
    /// Why here and not as joins: the installs are the whole history's, and attaching them
    /// by three joins on string keys (the install's id to its node, the key to the person,
    /// the id to its pairs' advertising ids) took 0.3 to 0.4 s at 180 days, where the graph
    /// already holds each row's node.
    pub(super) fn installs_frame(
        &self,
        nodes: &DataFrame,
        people: &DataFrame,
    ) -> PolarsResult<DataFrame> {
        let rows = &self.graph.install_node;
        let person = IdxCa::from_iter_options(
            "person".into(),
            rows.iter()
                .map(|v| v.map(|v| self.component[v as usize] as IdxSize)),
        );
        let advertising_id = IdxCa::from_iter_options(
            "advertising_id".into(),
            rows.iter().map(|v| {
                v.and_then(|v| self.install_advertising_id[v as usize].only())
                    .map(|ad| ad as IdxSize)
            }),
        );
        let mut frame = people.take(&person)?;
        let ads = nodes
            .column("id")?
            .take(&advertising_id)?
            .with_name("install_advertising_id".into());
        frame.with_column(ads)?;
        Ok(frame)
    }
}

fn min_option<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The root of `v`'s tree, halving the path on the way. Roots are always the smaller node,
/// so components do not depend on the order of the pairs.
fn root(parent: &mut [u32], mut v: u32) -> u32 {
    loop {
        let p = parent[v as usize];
        if p == v {
            return v;
        }
        let grand = parent[p as usize];
        parent[v as usize] = grand;
        v = grand;
    }
}
