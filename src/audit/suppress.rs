//! Small-cell suppression of counts, with complementary suppression.
//!
//! Every count the audit publishes is a cell of a [`Grid`]. A cell holding fewer than
//! `min_cell` cases (but more than none) is suppressed (*primary*). Cells are tied by
//! sums (*relations*): women + men + sex not given = all; flagged + not flagged + rule
//! error = every case of the group; a rule's flagged checks + the checks it did not flag =
//! the checks (in the period and per month); one month + the next + … = the period. If exactly one
//! cell of a relation were hidden, it would follow from the others by subtraction, so
//! whenever a relation has exactly one hidden cell, its smallest other non-zero cell is
//! hidden too (*complementary*), and this repeats until every relation has no hidden cell
//! or at least two. Cells that are never printed but follow from printed ones (the cases
//! whose sex is not given) are cells like any other, so they are protected too.
//!
//! A chain of relations can still pin a hidden count down; the exact check
//! ([`Grid::recoverable`]) finds it, and another cell is hidden beside it. What is checked
//! is the counts that must not be known: those too small to show, and those hidden in
//! another table. A complement may follow from the shown counts: it is large enough to
//! show, and if a protected count followed from it, the check would find that count.
//! Nor may a few people's counts follow as a sum: the protected parts of a relation
//! whose total is shown add up to the total less its shown parts, so when they are fewer
//! than `min_cell` together (two hidden zeros beside a shown 5 of 5), another cell of the
//! relation is hidden, and the sum is checked exactly like a cell. The
//! margins the whole report rests on (the period's cases and checks, [`Grid::keep_shown`])
//! are taken as complements last. A complement that in the end follows from the shown
//! counts is shown: it tells nothing more, and one count is then not hidden in one table
//! and shown or worked out in another.
//!
//! One grid holds every table of a report, so that a cell shared by two tables (the
//! number of women is the margin of every rule's table) is hidden in both or neither.
//!
//! A count that test checks join (a report that includes them) is published with them,
//! but hidden by its real part alone ([`Grid::cell_with_real`]): whoever made the test
//! checks knows how many they were and can take them off every published count, so what
//! is hidden and what stays shown must be what a report of the real checks alone would
//! hide and show.

/// The most hidden cells tied together that are checked exactly (one sparse elimination
/// per group and round, [`Grid::recoverable`]: about a second for 40,000). A history's
/// small months tie about 80 hidden cells each with eight rules (checks and each rule's
/// flagged and other checks, by sex): 300 such months tie 25,000; with 24 rules, 64,000.
/// A larger group is hidden whole, with every cell it is tied to, which gives nothing
/// away and costs nothing to check.
pub const MAX_EXACT: usize = 50_000;

/// How another table of the same report published a count a grid holds too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elsewhere {
    /// It is not published there.
    Apart,
    /// Shown there: it stays shown here, and nothing here rests on its hiding.
    Shown,
    /// Hidden there: hidden here too.
    Hidden,
}

impl Elsewhere {
    /// How `published` (`None`: not published; `Some(None)`: hidden) stands beside this
    /// grid's `value` of the same count; a different number is another count.
    pub fn of(published: Option<Option<usize>>, value: usize) -> Self {
        match published {
            Some(Some(shown)) if shown == value => Self::Shown,
            Some(None) => Self::Hidden,
            Some(Some(_)) | None => Self::Apart,
        }
    }
}

/// A cell of a [`Grid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell(usize);

/// Counts, the sums that tie them, and which are hidden.
#[derive(Debug, Default)]
pub struct Grid {
    /// The counts as published.
    values: Vec<usize>,
    /// Their real part, which every decision to hide is taken on: the count less the
    /// test checks in it.
    real: Vec<usize>,
    hidden: Vec<bool>,
    /// Cells shown in another table of the report, suppressed there: never hidden here.
    pinned: Vec<bool>,
    /// Margins the whole report rests on ([`Grid::keep_shown`]): taken as a complement
    /// only when no other cell will do.
    kept: Vec<bool>,
    /// Each relation: parts, then their total last.
    relations: Vec<Vec<Cell>>,
}

impl Grid {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a count.
    pub fn cell(&mut self, value: usize) -> Cell {
        self.cell_with_real(value, value)
    }

    /// Adds a count of which only `real` are real checks (the rest are test checks): it is
    /// published as `value` and hidden or shown as if it were `real`.
    pub fn cell_with_real(&mut self, value: usize, real: usize) -> Cell {
        debug_assert!(real <= value, "a real part larger than the count");
        self.values.push(value);
        self.real.push(real);
        self.hidden.push(false);
        self.pinned.push(false);
        self.kept.push(false);
        Cell(self.values.len() - 1)
    }

    /// Marks a cell as shown in another table of the same report (suppressed in that
    /// table's grid): it stays shown here, and no hidden cell here may rest on its being
    /// hidden, so it is never taken as a complement either.
    pub fn pin(&mut self, cell: Cell) {
        self.pinned[cell.0] = true;
    }

    /// Marks a margin that every table of the report rests on (the period's cases and
    /// checks): it is hidden when it is itself small, but chosen as a complement only
    /// when no other cell will do, since hiding it hides most of the report.
    pub fn keep_shown(&mut self, cell: Cell) {
        self.kept[cell.0] = true;
    }

    /// Whether `cell` may be hidden as a complement: shown, shown nowhere else, and not
    /// zero (a zero tells nothing of anyone).
    fn may_complement(&self, cell: Cell) -> bool {
        !self.hidden[cell.0] && !self.pinned[cell.0] && self.real[cell.0] > 0
    }

    /// The complement `relation` offers: the smallest cell that may be one, a margin the
    /// report rests on only when no other will do; ties go to the earliest (a part before
    /// the total).
    fn complement_in(&self, relation: &[Cell]) -> Option<Cell> {
        relation
            .iter()
            .filter(|c| self.may_complement(**c))
            .min_by_key(|c| (self.kept[c.0], self.real[c.0]))
            .copied()
    }

    /// Records that `parts` sum to `total`. A relation that does not add up is a bug in
    /// the caller; in debug builds it panics, otherwise it is kept (it only adds hiding).
    pub fn sum(&mut self, parts: &[Cell], total: Cell) {
        debug_assert_eq!(
            parts.iter().map(|c| self.values[c.0]).sum::<usize>(),
            self.values[total.0],
            "a relation that does not add up"
        );
        debug_assert_eq!(
            parts.iter().map(|c| self.real[c.0]).sum::<usize>(),
            self.real[total.0],
            "a relation whose real parts do not add up"
        );
        let mut members = parts.to_vec();
        members.push(total);
        self.relations.push(members);
    }

    /// Ties `cell` to the same count published in another table ([`Elsewhere`]).
    pub fn tie(&mut self, cell: Cell, elsewhere: Elsewhere) {
        match elsewhere {
            Elsewhere::Apart => {}
            Elsewhere::Shown => self.pin(cell),
            Elsewhere::Hidden => self.hide(cell),
        }
    }

    /// Hides a cell whatever its value (for example, a whole table below the threshold).
    pub fn hide(&mut self, cell: Cell) {
        self.hidden[cell.0] = true;
    }

    /// The count as published when shown.
    pub fn value(&self, cell: Cell) -> usize {
        self.values[cell.0]
    }

    /// The count's real part ([`Self::cell_with_real`]).
    pub fn real(&self, cell: Cell) -> usize {
        self.real[cell.0]
    }

    pub fn is_hidden(&self, cell: Cell) -> bool {
        self.hidden[cell.0]
    }

    /// The count as published: `None` when hidden.
    pub fn shown(&self, cell: Cell) -> Option<usize> {
        (!self.hidden[cell.0]).then_some(self.values[cell.0])
    }

    /// Applies primary, then complementary suppression, until no count too small to
    /// show (nor one hidden elsewhere) follows from the shown ones.
    pub fn suppress(&mut self, min_cell: usize) {
        for ((value, hidden), pinned) in self
            .real
            .iter()
            .zip(self.hidden.iter_mut())
            .zip(&self.pinned)
        {
            if *value > 0 && *value < min_cell && !pinned {
                *hidden = true;
            }
        }
        // A relation whose total is a few cases shows none of its parts, zeros included:
        // beside a hidden total, a part's zero tells that none of those few is in it (a
        // rule's zero beside a month's one hidden check tells that check was not flagged).
        // So do the parts of a part so hidden, down to the last (a hidden 0 answered of a
        // few flags hides its 0 handled too: it would tell the flags were not handled).
        loop {
            let mut changed = false;
            for relation in &self.relations {
                if let Some((total, parts)) = relation.split_last() {
                    let few = self.real[total.0];
                    let hides_parts =
                        (few > 0 && few < min_cell) || (few == 0 && self.hidden[total.0]);
                    if !hides_parts {
                        continue;
                    }
                    for part in parts.iter().filter(|part| !self.pinned[part.0]) {
                        changed |= !self.hidden[part.0];
                        self.hidden[part.0] = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        // What must not follow from the shown counts: the counts hidden so far, each too
        // small to show (or hidden in another table). A complement hidden to protect them
        // may itself follow from the shown counts: it is a count large enough to show, and
        // whether a protected count follows is tested exactly, whatever its complements.
        let protected = self.hidden.clone();
        // The relations each cell is in.
        let mut relations_of = vec![Vec::new(); self.values.len()];
        for (r, relation) in self.relations.iter().enumerate() {
            for cell in relation {
                relations_of[cell.0].push(r);
            }
        }
        loop {
            self.complete_relations(min_cell, &protected);
            if self.hide_large_groups() {
                continue;
            }
            // Every relation now hides none or two cells, but a chain of relations can
            // still pin a cell down (for example two hidden pairs joined by one cell).
            // Hide one more cell beside it and look again.
            // A zero hidden beside a few cases that still follows from the shown counts
            // follows from zeros around it (nobody in the whole column either): that is
            // no one's own count, and hiding more would not make it less certain.
            // Nor may a few people's count follow as a sum: the hidden parts of a relation
            // whose total is shown and not zero, protected ones among them, adding up to
            // fewer than `min_cell` (the sex not given hidden beside a few women: their
            // flags together, 0, beside the men's 5 of 5).
            let few_together = self.few_hidden_together(min_cell, &protected);
            let sums: Vec<Vec<Cell>> = few_together.iter().map(|(_, sum)| sum.clone()).collect();
            let (cells, sums_follow) = self.recoverable_with(&sums);
            // Such a sum is protected within its relation first: one more of its cells
            // hidden, a part before the total. With none left to hide there, it follows
            // through the relation's hidden complements, which are then protected as a
            // count that follows is, by hiding a cell beside them.
            let mut sum_protected = false;
            let mut through_complements = Vec::new();
            for ((relation, _), follows) in few_together.iter().zip(sums_follow) {
                if !follows {
                    continue;
                }
                let members = &self.relations[*relation];
                match self.complement_in(members) {
                    Some(next) => {
                        self.hidden[next.0] = true;
                        sum_protected = true;
                    }
                    None => through_complements.extend(
                        members
                            .iter()
                            .filter(|c| self.hidden[c.0] && !protected[c.0] && self.real[c.0] > 0)
                            .copied(),
                    ),
                }
            }
            if sum_protected {
                continue;
            }
            let recoverable: Vec<Cell> = cells
                .into_iter()
                .filter(|cell| self.real[cell.0] > 0 && protected[cell.0])
                .chain(through_complements)
                .collect();
            if recoverable.is_empty() {
                break;
            }
            let mut changed = false;
            let groups = self.groups();
            let mut group_of = vec![usize::MAX; self.values.len()];
            for (g, cells) in groups.iter().enumerate() {
                for &h in cells {
                    group_of[h] = g;
                }
            }
            for cell in recoverable {
                // The smallest visible non-zero cell beside it: in its own relations,
                // else in any relation of its group. A group whose relations show no
                // such cell ties hidden cells to hidden cells, zeros and counts another
                // table shows (pinned) only: what follows then follows from that table's
                // counts, which this grid cannot hide.
                // A margin the report rests on only when nothing else will do.
                let beside = |members: &[usize], kept: bool| {
                    members
                        .iter()
                        .flat_map(|&m| &relations_of[m])
                        .flat_map(|&r| &self.relations[r])
                        .filter(|c| self.may_complement(**c) && self.kept[c.0] == kept)
                        .min_by_key(|c| self.real[c.0])
                        .copied()
                };
                let group = groups.get(group_of[cell.0]).map_or(&[][..], Vec::as_slice);
                let other = beside(&[cell.0], false)
                    .or_else(|| beside(group, false))
                    .or_else(|| beside(&[cell.0], true))
                    .or_else(|| beside(group, true));
                if let Some(other) = other {
                    self.hidden[other.0] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // A complement that follows from the shown counts tells nothing more when shown:
        // it is shown, so that one count is not hidden in one place and worked out (or
        // shown) in another.
        for cell in self.recoverable() {
            if !protected[cell.0] {
                self.hidden[cell.0] = false;
            }
        }
    }

    /// Hidden cells in groups, two cells in the same group when a relation ties them.
    fn groups(&self) -> Vec<Vec<usize>> {
        let mut parent: Vec<usize> = (0..self.values.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for relation in &self.relations {
            let mut members = relation.iter().filter(|c| self.hidden[c.0]);
            if let Some(first) = members.next() {
                for other in members {
                    let (a, b) = (root(&mut parent, first.0), root(&mut parent, other.0));
                    parent[a] = b;
                }
            }
        }
        let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for h in (0..self.values.len()).filter(|&i| self.hidden[i]) {
            groups.entry(root(&mut parent, h)).or_default().push(h);
        }
        groups.into_values().collect()
    }

    /// The protected hidden parts of each relation whose total is shown and not zero,
    /// when they are two or more and add up to fewer than `min_cell`.
    fn few_hidden_together(&self, min_cell: usize, protected: &[bool]) -> Vec<(usize, Vec<Cell>)> {
        self.relations
            .iter()
            .enumerate()
            .filter_map(|(index, relation)| {
                let (total, parts) = relation.split_last()?;
                if self.hidden[total.0] || self.real[total.0] == 0 {
                    return None;
                }
                let hidden: Vec<Cell> = parts
                    .iter()
                    .filter(|c| self.hidden[c.0] && protected[c.0])
                    .copied()
                    .collect();
                let few = hidden.iter().map(|c| self.real[c.0]).sum::<usize>() < min_cell;
                (hidden.len() >= 2 && few).then_some((index, hidden))
            })
            .collect()
    }

    /// Hides every non-zero cell tied to a group larger than [`MAX_EXACT`], until no
    /// relation touching it shows a non-zero cell. Then its relations only tie hidden
    /// cells to each other (and to zeros): any solution scaled is another, so no
    /// non-zero hidden cell follows. Whether anything changed.
    fn hide_large_groups(&mut self) -> bool {
        let mut changed = false;
        for group in self.groups() {
            if group.len() > MAX_EXACT {
                changed |= self.hide_whole(group.into_iter().collect());
            }
        }
        changed
    }

    /// Hides every non-zero cell tied to `members` (hidden cells), and every cell tied to
    /// those, until no relation touching them shows a non-zero cell that is not shown
    /// elsewhere. Whether anything changed.
    fn hide_whole(&mut self, mut members: std::collections::HashSet<usize>) -> bool {
        let mut changed = false;
        loop {
            let mut grew = false;
            for relation in &self.relations {
                if !relation.iter().any(|c| members.contains(&c.0)) {
                    continue;
                }
                for cell in relation {
                    if self.real[cell.0] > 0 && !self.pinned[cell.0] && members.insert(cell.0) {
                        self.hidden[cell.0] = true;
                        grew = true;
                        changed = true;
                    }
                }
            }
            if !grew {
                return changed;
            }
        }
    }

    /// Hides a second cell in every relation that hides exactly one; and another part of
    /// a relation whose total is shown while its hidden parts, protected ones among them,
    /// add up to fewer than `min_cell`: that sum is the total less the shown parts, so
    /// it would tell a few people's count (two hidden zeros beside a shown 5 = 5 men of 5
    /// tell that none of the 3 others was flagged).
    fn complete_relations(&mut self, min_cell: usize, protected: &[bool]) {
        loop {
            let mut changed = false;
            for relation in &self.relations {
                let hidden = relation.iter().filter(|c| self.hidden[c.0]).count();
                let Some((total, parts)) = relation.split_last() else {
                    continue;
                };
                let few_hidden_together = !self.hidden[total.0]
                    && hidden >= 2
                    && parts.iter().any(|c| self.hidden[c.0] && protected[c.0])
                    && parts
                        .iter()
                        .filter(|c| self.hidden[c.0])
                        .map(|c| self.real[c.0])
                        .sum::<usize>()
                        < min_cell;
                if hidden != 1 && !few_hidden_together {
                    continue;
                }
                // None when the hidden cell is a zero among zeros: it tells nothing of
                // anyone.
                if let Some(cell) = self.complement_in(relation) {
                    self.hidden[cell.0] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// The hidden cells whose value follows exactly from the shown cells and the
    /// relations: those whose unit vector lies in the row space of the relations
    /// restricted to the hidden cells ([`determined_with`]), found per group of hidden cells
    /// tied by relations, for groups of at most [`MAX_EXACT`].
    pub fn recoverable(&self) -> Vec<Cell> {
        self.recoverable_with(&[]).0
    }

    /// [`Self::recoverable`], and for each of `sums` (hidden cells of one relation)
    /// whether their sum follows from the shown cells too.
    fn recoverable_with(&self, sums: &[Vec<Cell>]) -> (Vec<Cell>, Vec<bool>) {
        let groups = self.groups();
        // Each hidden cell's group and its column within it; every hidden cell of a
        // relation is in one group, so each relation is a row of one group's system.
        let mut place = vec![(usize::MAX, 0); self.values.len()];
        for (g, cells) in groups.iter().enumerate() {
            for (j, &h) in cells.iter().enumerate() {
                place[h] = (g, j);
            }
        }
        let mut rows: Vec<Vec<SparseRow>> = vec![Vec::new(); groups.len()];
        for relation in &self.relations {
            let Some(first) = relation.iter().find(|c| self.hidden[c.0]) else {
                continue;
            };
            let group = place[first.0].0;
            if groups[group].len() > MAX_EXACT {
                // Hidden whole by `hide_large_groups`.
                continue;
            }
            let total = relation.len() - 1;
            let mut row: SparseRow = relation
                .iter()
                .enumerate()
                .filter(|(_, c)| self.hidden[c.0])
                .map(|(i, c)| (place[c.0].1, if i == total { -1 } else { 1 }))
                .collect();
            row.sort_unstable_by_key(|&(j, _)| j);
            // A cell twice in one relation: its coefficients add.
            row.dedup_by(|later, first| (later.0 == first.0).then(|| first.1 += later.1).is_some());
            row.retain(|&(_, v)| v != 0);
            if !row.is_empty() {
                rows[group].push(row);
            }
        }
        // Each sum as a query of its group (the hidden cells of one relation are in one),
        // with the sum's index.
        let mut queries: Vec<Vec<SparseRow>> = vec![Vec::new(); groups.len()];
        let mut asked_by: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
        for (index, sum) in sums.iter().enumerate() {
            let Some(first) = sum.first() else {
                continue;
            };
            let group = place[first.0].0;
            if group == usize::MAX || groups[group].len() > MAX_EXACT {
                continue;
            }
            let mut query: SparseRow = sum.iter().map(|c| (place[c.0].1, 1)).collect();
            query.sort_unstable_by_key(|&(j, _)| j);
            queries[group].push(query);
            asked_by[group].push(index);
        }
        let mut found = Vec::new();
        let mut sums_follow = vec![false; sums.len()];
        for (((cells, rows), queries), asked_by) in
            groups.iter().zip(&rows).zip(&queries).zip(&asked_by)
        {
            if rows.is_empty() {
                continue;
            }
            let (of_cells, of_queries) = determined_with(rows, cells.len(), queries);
            found.extend(
                of_cells
                    .into_iter()
                    .zip(cells)
                    .filter(|(is, _)| *is)
                    .map(|(_, &h)| Cell(h)),
            );
            for (&index, follows) in asked_by.iter().zip(of_queries) {
                sums_follow[index] = follows;
            }
        }
        (found, sums_follow)
    }
}

/// A sum of hidden cells, sorted by column: (column within its group, coefficient) pairs.
type SparseRow = Vec<(usize, i64)>;

/// Two primes near 2^61 and 2^62 for [`determined_with`].
const PRIMES: [u64; 2] = [(1 << 61) - 1, (1 << 62) - 57];

/// Which of `columns` unknowns follow from the linear relations `rows` (sparse, each
/// sorted by column, small integer coefficients): those whose unit vector lies in the
/// rows' span. Exact arithmetic modulo a prime instead of the rationals: reduction modulo
/// p can only lose rank, and only when p divides every largest minor of the rows. Where
/// the rank is kept, every unknown that follows over the rationals follows modulo p too,
/// and one that does not may at worst appear to follow, which only hides more. Losing
/// rank would take a minor that is a multiple of a prime near 2^61, and of a second
/// prime near 2^62 as well: an unknown that follows modulo either is taken as following.
/// Sparse elimination, short relations first: the relations tie a cell to a handful of
/// others, and a group of tens of thousands of hidden cells takes a fraction of a second.
/// For each of `queries` (a sum of columns with coefficients), likewise whether its value
/// follows.
fn determined_with(
    rows: &[SparseRow],
    columns: usize,
    queries: &[SparseRow],
) -> (Vec<bool>, Vec<bool>) {
    let mut found = vec![false; columns];
    let mut sums = vec![false; queries.len()];
    for prime in PRIMES {
        let (cells, of_queries) = determined_modulo(rows, columns, prime, queries);
        for (j, follows) in cells.into_iter().enumerate() {
            found[j] |= follows;
        }
        for (q, follows) in of_queries.into_iter().enumerate() {
            sums[q] |= follows;
        }
    }
    (found, sums)
}

/// [`determined_with`] modulo one prime.
fn determined_modulo(
    rows: &[SparseRow],
    columns: usize,
    prime: u64,
    queries: &[SparseRow],
) -> (Vec<bool>, Vec<bool>) {
    type Row = Vec<(usize, u64)>;
    let reduce_mod = |v: i64| -> u64 { v.rem_euclid(prime as i64) as u64 };
    let mul = |a: u64, b: u64| -> u64 { ((a as u128 * b as u128) % prime as u128) as u64 };
    let inverse = |a: u64| -> u64 {
        // Fermat: a^(p-2).
        let (mut base, mut exponent, mut result) = (a, prime - 2, 1u64);
        while exponent > 0 {
            if exponent & 1 == 1 {
                result = mul(result, base);
            }
            base = mul(base, base);
            exponent >>= 1;
        }
        result
    };
    // `row` less `factor` times `pivot`, both sorted by column.
    let subtract = |row: &Row, factor: u64, pivot: &Row| -> Row {
        let mut out = Vec::with_capacity(row.len() + pivot.len());
        let (mut a, mut b) = (row.iter().peekable(), pivot.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(ja, va)), Some(&&(jb, vb))) if ja == jb => {
                    let v = (va + prime - mul(factor, vb)) % prime;
                    if v != 0 {
                        out.push((ja, v));
                    }
                    a.next();
                    b.next();
                }
                (Some(&&(ja, va)), Some(&&(jb, _))) if ja < jb => {
                    out.push((ja, va));
                    a.next();
                }
                (_, Some(&&(jb, vb))) => {
                    out.push((jb, (prime - mul(factor, vb)) % prime));
                    b.next();
                }
                (Some(&&(ja, va)), None) => {
                    out.push((ja, va));
                    a.next();
                }
                (None, None) => break,
            }
        }
        out
    };
    // Rows in echelon form: each pivot is its row's first column, with coefficient 1.
    let mut pivots: Vec<Option<Row>> = vec![None; columns];
    // Brings `row` down to its part outside the span; empty when it lies in it.
    let reduce = |mut row: Row, pivots: &[Option<Row>]| -> Row {
        while let Some(&(first, value)) = row.first() {
            match &pivots[first] {
                Some(pivot) => row = subtract(&row, value, pivot),
                None => break,
            }
        }
        row
    };
    // Short relations first (a month's women + men = all before a rule's months = its
    // period): their pivots then reduce the long ones, with less fill.
    let mut ordered: Vec<&SparseRow> = rows.iter().collect();
    ordered.sort_by_key(|row| row.len());
    for row in ordered {
        let row: Row = row
            .iter()
            .map(|&(j, v)| (j, reduce_mod(v)))
            .filter(|&(_, v)| v != 0)
            .collect();
        let row = reduce(row, &pivots);
        if let Some(&(first, value)) = row.first() {
            let scale = inverse(value);
            pivots[first] = Some(row.into_iter().map(|(j, v)| (j, mul(v, scale))).collect());
        }
    }
    let cells = (0..columns)
        .map(|j| pivots[j].is_some() && reduce(vec![(j, 1)], &pivots).is_empty())
        .collect();
    let of_queries = queries
        .iter()
        .map(|query| {
            let row: Row = query
                .iter()
                .map(|&(j, v)| (j, reduce_mod(v)))
                .filter(|&(_, v)| v != 0)
                .collect();
            reduce(row, &pivots).is_empty()
        })
        .collect();
    (cells, of_queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent check of [`Grid::recoverable`]: a hidden cell is determined when
    /// adding its unit vector to the relations (over the hidden cells) keeps the rank.
    /// Only the counts too small to show (all the tests here hide nothing else): a zero
    /// hidden beside a few cases may follow from zeros around it, which tells nothing of
    /// anyone, and a complement may follow, being large enough to show
    /// ([`Grid::suppress`]).
    fn determined_by_rank(grid: &Grid) -> Vec<Cell> {
        use nalgebra::DMatrix;
        let hidden: Vec<usize> = (0..grid.values.len()).filter(|&i| grid.hidden[i]).collect();
        if hidden.is_empty() {
            return Vec::new();
        }
        let rows: Vec<Vec<f64>> = grid
            .relations
            .iter()
            .map(|relation| {
                let total = relation.len() - 1;
                hidden
                    .iter()
                    .map(|&h| {
                        relation
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| c.0 == h)
                            .map(|(i, _)| if i == total { -1.0 } else { 1.0 })
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let rank = |rows: &[Vec<f64>]| {
            DMatrix::from_fn(rows.len(), hidden.len(), |i, j| rows[i][j]).rank(1e-9)
        };
        let base = rank(&rows);
        (0..hidden.len())
            .filter(|&j| {
                let mut with = rows.clone();
                let mut unit = vec![0.0; hidden.len()];
                unit[j] = 1.0;
                with.push(unit);
                rank(&with) == base
            })
            .map(|j| Cell(hidden[j]))
            .filter(|cell| grid.values[cell.0] > 0 && grid.values[cell.0] < MIN)
            .collect()
    }

    /// The threshold these tests suppress at.
    const MIN: usize = 5;

    /// A table of `rows` × `columns` interior cells with row totals, column totals and a
    /// grand total, as the audit's tables are (sex × status, sex × month).
    fn table(grid: &mut Grid, values: &[Vec<usize>]) -> Vec<Vec<Cell>> {
        let columns = values[0].len();
        let mut cells: Vec<Vec<Cell>> = values
            .iter()
            .map(|row| {
                let mut r: Vec<Cell> = row.iter().map(|v| grid.cell(*v)).collect();
                let total = grid.cell(row.iter().sum());
                let parts = r.clone();
                grid.sum(&parts, total);
                r.push(total);
                r
            })
            .collect();
        let mut total_row = Vec::new();
        for j in 0..=columns {
            let parts: Vec<Cell> = cells.iter().map(|r| r[j]).collect();
            let total = grid.cell(parts.iter().map(|c| grid.value(*c)).sum());
            grid.sum(&parts, total);
            total_row.push(total);
        }
        let parts = total_row[..columns].to_vec();
        grid.sum(&parts, total_row[columns]);
        cells.push(total_row);
        cells
    }

    #[test]
    fn one_small_sex_hides_a_second_cell_in_its_row_and_column() {
        let mut grid = Grid::new();
        // Women, men, sex not given × flagged, not flagged, rule error.
        let cells = table(&mut grid, &[vec![2, 40, 0], vec![30, 50, 0], vec![0, 0, 0]]);
        grid.suppress(5);
        assert!(grid.is_hidden(cells[0][0]), "2 flagged women");
        let hidden_in_row = cells[0].iter().filter(|c| grid.is_hidden(**c)).count();
        let hidden_in_column = cells.iter().filter(|r| grid.is_hidden(r[0])).count();
        assert!(hidden_in_row >= 2 && hidden_in_column >= 2);
        assert!(determined_by_rank(&grid).is_empty());
    }

    #[test]
    fn a_few_cases_show_none_of_their_parts_not_even_zeros() {
        let mut grid = Grid::new();
        // One man checked, flagged: the row's zeros beside the hidden one would tell it.
        let cells = table(&mut grid, &[vec![0, 0, 0], vec![1, 0, 0], vec![20, 30, 0]]);
        grid.suppress(5);
        for cell in &cells[1] {
            assert!(grid.is_hidden(*cell), "every count of the one man's row");
        }
        // No case at all: its zeros tell nothing and stay shown.
        assert!(cells[0].iter().all(|c| !grid.is_hidden(*c)));
        assert!(determined_by_rank(&grid).is_empty());
    }

    /// A complement that another relation gives back was shown as hidden here while its
    /// count could be read elsewhere (the answers section's flags beside the audit's
    /// flagged checks). Once nothing small follows, it is shown.
    #[test]
    fn a_complement_that_follows_from_the_shown_counts_is_shown() {
        let mut grid = Grid::new();
        let small = grid.cell(1);
        let large = grid.cell(10);
        let total = grid.cell(11);
        grid.sum(&[small, large], total);
        let published_elsewhere = grid.cell(10);
        grid.pin(published_elsewhere);
        grid.sum(&[large], published_elsewhere);
        grid.suppress(MIN);
        assert!(grid.is_hidden(small));
        assert_eq!(grid.shown(large), Some(10));
        assert!(grid.is_hidden(total), "the complement that protects the 1");
        assert!(determined_by_rank(&grid).is_empty());
    }

    /// Checks of a month: 2 women, 10 men and 1 without sex; flags: 0, 5 and 0. Both few
    /// groups' zeros were hidden, and together they were the month's 5 less the men's 5:
    /// none of the 3 was flagged, read off a report that hid each of them.
    #[test]
    fn a_few_peoples_counts_do_not_follow_as_a_sum() {
        let mut grid = Grid::new();
        let checks: Vec<Cell> = [2, 10, 1, 13].map(|n| grid.cell(n)).to_vec();
        let flags: Vec<Cell> = [0, 5, 0, 5].map(|n| grid.cell(n)).to_vec();
        let other: Vec<Cell> = [2, 5, 1, 8].map(|n| grid.cell(n)).to_vec();
        grid.sum(&checks[..3], checks[3]);
        grid.sum(&flags[..3], flags[3]);
        grid.sum(&other[..3], other[3]);
        for k in 0..4 {
            grid.sum(&[flags[k], other[k]], checks[k]);
        }
        grid.suppress(MIN);
        assert!(grid.is_hidden(flags[0]) && grid.is_hidden(flags[2]));
        let (_, follows) =
            grid.recoverable_with(&[vec![flags[0], flags[2]], vec![other[0], other[2]]]);
        assert_eq!(follows, [false, false], "the few together follow");
        assert!(determined_by_rank(&grid).is_empty());
    }

    #[test]
    fn large_cells_stay_shown() {
        let mut grid = Grid::new();
        let cells = table(&mut grid, &[vec![20, 40, 0], vec![30, 50, 0]]);
        grid.suppress(5);
        assert!(cells.iter().flatten().all(|c| !grid.is_hidden(*c)));
    }

    /// Every table shape the audit publishes (sex × status with 1–3 statuses, sex ×
    /// months), over many fillings with small and large counts: no hidden count follows
    /// from the shown ones.
    #[test]
    fn no_hidden_count_can_be_recovered_in_any_table_shape() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut checked = 0;
        for rows in 1..=3 {
            for columns in 1..=6 {
                for _ in 0..40 {
                    let values: Vec<Vec<usize>> = (0..rows)
                        .map(|_| {
                            (0..columns)
                                .map(|_| match next() % 4 {
                                    0 => 0,
                                    1 => (next() % 5) as usize,
                                    _ => (next() % 40) as usize,
                                })
                                .collect()
                        })
                        .collect();
                    let mut grid = Grid::new();
                    let cells = table(&mut grid, &values);
                    grid.suppress(5);
                    for cell in cells.iter().flatten() {
                        let v = grid.value(*cell);
                        assert!(
                            v == 0 || v >= 5 || grid.is_hidden(*cell),
                            "a small count shown in {values:?}"
                        );
                    }
                    assert!(
                        determined_by_rank(&grid).is_empty(),
                        "recoverable in {values:?}: {:?}",
                        determined_by_rank(&grid)
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 500);
    }

    /// Women and men over 3,000 months, one check a month each: every month is hidden,
    /// and the totals stay shown, since 3,000 hidden months summing to one total tell
    /// none of them. (Above 400 hidden cells tied together, these were all hidden, the
    /// totals with them: a whole history's counts went blank for a few small months.)
    #[test]
    fn a_long_series_of_small_counts_hides_the_months_not_the_totals() {
        let mut grid = Grid::new();
        let values: Vec<Vec<usize>> = vec![vec![1; 3000], vec![1; 3000]];
        let cells = table(&mut grid, &values);
        grid.suppress(5);
        for cell in cells.iter().flatten() {
            assert!(grid.is_hidden(*cell) || grid.value(*cell) == 0 || grid.value(*cell) >= 5);
        }
        assert_eq!(grid.shown(cells[0][3000]), Some(3000));
        assert_eq!(grid.shown(cells[2][3000]), Some(6000));
        assert!(grid.recoverable().is_empty());
    }

    /// A group of hidden cells too large to check is hidden whole, with every count tied
    /// to it.
    #[test]
    fn a_series_too_long_to_check_is_hidden_whole() {
        let mut grid = Grid::new();
        let months = MAX_EXACT / 2;
        let values: Vec<Vec<usize>> = vec![vec![1; months], vec![1; months]];
        let cells = table(&mut grid, &values);
        grid.suppress(5);
        assert!(cells.iter().flatten().all(|c| grid.is_hidden(*c)));
    }

    /// A repeatable xorshift generator: each call a number below its argument.
    fn random_below(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |below| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        }
    }

    /// The modular elimination of [`determined_with`] against the rank of the same relations
    /// in floating point, on many random systems of sums (parts +1, total -1).
    #[test]
    fn modular_elimination_finds_what_the_rank_finds() {
        use nalgebra::DMatrix;
        let mut next = random_below(0x2545_F491_4F6C_DD1D);
        let mut found_some = 0;
        for _ in 0..400 {
            let columns = 1 + next(40) as usize;
            let rows: Vec<Vec<(usize, i64)>> = (0..1 + next(45))
                .map(|_| {
                    let mut members: Vec<usize> = (0..1 + next(5))
                        .map(|_| next(columns as u64) as usize)
                        .collect();
                    members.sort_unstable();
                    members.dedup();
                    let total = members.len() - 1;
                    members
                        .into_iter()
                        .enumerate()
                        .map(|(i, j)| (j, if i == total && next(2) == 0 { -1 } else { 1 }))
                        .collect()
                })
                .collect();
            let dense = |extra: Option<usize>| {
                let count = rows.len() + usize::from(extra.is_some());
                DMatrix::from_fn(count, columns, |i, j| match rows.get(i) {
                    Some(row) => row
                        .iter()
                        .find(|(c, _)| *c == j)
                        .map_or(0.0, |(_, v)| *v as f64),
                    None => f64::from(u8::from(extra == Some(j))),
                })
                .rank(1e-9)
            };
            let base = dense(None);
            let by_rank: Vec<bool> = (0..columns).map(|j| dense(Some(j)) == base).collect();
            assert_eq!(determined_with(&rows, columns, &[]).0, by_rank, "{rows:?}");
            found_some += by_rank.iter().filter(|b| **b).count();
        }
        assert!(
            found_some > 100,
            "the systems determine some unknowns: {found_some}"
        );
    }

    /// Months × sex × flagged or not, with every margin (per month and sex, per month and
    /// status, per sex and status over the months, and their totals), as the audit ties a
    /// rule's monthly counts: after suppression no hidden count follows, for many
    /// fillings with small and large counts.
    #[test]
    fn no_hidden_count_can_be_recovered_in_a_three_way_table() {
        let mut next = random_below(0xD1B5_4A32_D192_ED03);
        for _ in 0..60 {
            let months = 2 + next(5) as usize;
            let mut grid = Grid::new();
            // value[m][s][k]: sexes 0..2 then all (3); statuses 0..1 then all (2).
            let values: Vec<[[usize; 2]; 3]> = (0..months)
                .map(|_| {
                    let mut v = [[0; 2]; 3];
                    for row in &mut v {
                        for x in row.iter_mut() {
                            *x = match next(4) {
                                0 => 0,
                                1 => next(5) as usize,
                                _ => next(30) as usize,
                            };
                        }
                    }
                    v
                })
                .collect();
            // cells[m][s][k] with margins: m == months is the period, s == 3 all, k == 2 all.
            let mut cells = vec![[[Cell(0); 3]; 4]; months + 1];
            let value = |m: usize, s: usize, k: usize| -> usize {
                let mut sum = 0;
                for (mm, plane) in values.iter().enumerate() {
                    for (ss, row) in plane.iter().enumerate() {
                        for (kk, v) in row.iter().enumerate() {
                            if (m == months || m == mm)
                                && (s == 3 || s == ss)
                                && (k == 2 || k == kk)
                            {
                                sum += v;
                            }
                        }
                    }
                }
                sum
            };
            for (m, plane) in cells.iter_mut().enumerate() {
                for (s, row) in plane.iter_mut().enumerate() {
                    for (k, cell) in row.iter_mut().enumerate() {
                        *cell = grid.cell(value(m, s, k));
                    }
                }
            }
            for plane in &cells {
                for row in plane {
                    grid.sum(&[row[0], row[1]], row[2]);
                }
                let [women, men, unknown, all] = plane;
                for (((w, m), u), a) in women.iter().zip(men).zip(unknown).zip(all) {
                    grid.sum(&[*w, *m, *u], *a);
                }
            }
            let (period, monthly) = cells.split_last().expect("the period");
            for (s, row) in period.iter().enumerate() {
                for (k, total) in row.iter().enumerate() {
                    let parts: Vec<Cell> = monthly.iter().map(|plane| plane[s][k]).collect();
                    grid.sum(&parts, *total);
                }
            }
            grid.suppress(5);
            for cell in cells.iter().flatten().flatten() {
                let v = grid.value(*cell);
                assert!(v == 0 || v >= 5 || grid.is_hidden(*cell), "{values:?}");
            }
            assert!(determined_by_rank(&grid).is_empty(), "{values:?}");
        }
    }

    #[test]
    fn linked_tables_hide_a_shared_margin_in_both() {
        let mut grid = Grid::new();
        // Units by sex: women 3, men 40, not given 0, all 43; two rule tables share them.
        let women = grid.cell(3);
        let men = grid.cell(40);
        let unknown = grid.cell(0);
        let all = grid.cell(43);
        grid.sum(&[women, men, unknown], all);
        for (flagged_w, flagged_m) in [(1, 20), (3, 10)] {
            let fw = grid.cell(flagged_w);
            let cw = grid.cell(3 - flagged_w);
            grid.sum(&[fw, cw], women);
            let fm = grid.cell(flagged_m);
            let cm = grid.cell(40 - flagged_m);
            grid.sum(&[fm, cm], men);
            let fa = grid.cell(flagged_w + flagged_m);
            let ca = grid.cell(43 - flagged_w - flagged_m);
            grid.sum(&[fa, ca], all);
            grid.sum(&[fw, fm], fa);
            grid.sum(&[cw, cm], ca);
        }
        grid.suppress(5);
        assert!(grid.is_hidden(women));
        assert!(determined_by_rank(&grid).is_empty());
    }
}
