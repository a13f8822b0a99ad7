//! Budgets per person: how often one person may do something costly or revealing in a
//! while (look up a case's history, try a candidate rule set), each refilled evenly
//! (`governor`'s GCRA), and how much long work one person may have waiting or running at
//! once ([`PersonSlots`]). Kept in memory by the person's name; a restart refills them.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// At most so many takes per person in a period, refilled evenly over it.
pub struct PersonBudget {
    limiter: governor::DefaultKeyedRateLimiter<String>,
}

impl PersonBudget {
    /// At most `per_minute` a minute per person (at least 1).
    pub fn per_minute(per_minute: u32) -> Self {
        Self::of(governor::Quota::per_minute(at_least_one(per_minute)))
    }

    /// At most `per_hour` an hour per person (at least 1).
    pub fn per_hour(per_hour: u32) -> Self {
        Self::of(governor::Quota::per_hour(at_least_one(per_hour)))
    }

    fn of(quota: governor::Quota) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(quota),
        }
    }

    /// Takes one from `name`'s budget, or says, in whole seconds rounded up, how long
    /// until there is one.
    pub fn take(&self, name: &str) -> Result<(), u64> {
        use governor::clock::Clock as _;
        self.limiter
            .check_key(&name.to_owned())
            .map_err(|not_until| {
                let wait: Duration = not_until.wait_time_from(self.limiter.clock().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }
}

/// At most so many pieces of long work (audits, candidate trials) per person waiting or
/// running at once: each holds a connection until it is done, and one person's many
/// would hold every connection the service takes.
pub struct PersonSlots {
    per_person: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One person's place, given back when dropped.
pub struct Slot<'a> {
    slots: &'a PersonSlots,
    name: String,
}

impl PersonSlots {
    pub fn new(per_person: usize) -> Self {
        Self {
            per_person: per_person.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A place for `name`, or `None` when they hold every one they may.
    pub fn take(&self, name: &str) -> Option<Slot<'_>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(name.to_owned()).or_default();
        (*count < self.per_person).then(|| {
            *count += 1;
            Slot {
                slots: self,
                name: name.to_owned(),
            }
        })
    }

    pub fn per_person(&self) -> usize {
        self.per_person
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.name);
            }
        }
    }
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_person_has_a_budget_of_their_own() {
        let budget = PersonBudget::per_hour(2);
        assert_eq!(budget.take("anna"), Ok(()));
        assert_eq!(budget.take("anna"), Ok(()));
        let wait = budget.take("anna").expect_err("over the budget");
        assert!((1..=1800).contains(&wait), "{wait}");
        assert_eq!(budget.take("bo"), Ok(()));
    }

    #[test]
    fn a_person_holds_so_many_places_at_once_and_gets_them_back() {
        let slots = PersonSlots::new(2);
        let first = slots.take("anna").expect("one");
        let second = slots.take("anna").expect("two");
        assert!(slots.take("anna").is_none(), "a third at once");
        assert!(slots.take("bo").is_some(), "another person's own");
        drop(first);
        assert!(slots.take("anna").is_some(), "one given back");
        drop(second);
    }
}
