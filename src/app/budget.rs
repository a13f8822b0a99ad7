//! Budgets per person: how often one person may do something costly or revealing in a
//! while (look up a case's history, try a candidate rule set). Each budget refills evenly
//! (`governor`'s GCRA), kept in memory by the person's name; a restart refills it.

use std::num::NonZeroU32;
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
}
