//! Striped locks that serialise "match or create" of one customer within this
//! process: two referrals of the same customer accepted at the same moment would
//! otherwise both find no account and both create one (the connectors' match is a
//! read followed by a create, crm.md §3.4).
//!
//! This covers one instance. Several instances on one PostgreSQL store can still
//! race on a brand-new customer; the window is one CRM round trip, and the CRM's
//! duplicate rules (or a merge by the seller) are the remedy there.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

/// How many stripes: customers hashing to the same one wait for each other, which
/// costs only a little concurrency.
const STRIPES: usize = 64;

/// The locks, one per stripe.
pub(crate) struct CustomerLocks {
    stripes: [Mutex<()>; STRIPES],
}

impl Default for CustomerLocks {
    fn default() -> Self {
        Self {
            stripes: std::array::from_fn(|_| Mutex::new(())),
        }
    }
}

impl CustomerLocks {
    /// Waits for the lock of the customer identified by `key` (its match values).
    pub(crate) async fn lock(&self, key: &impl Hash) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        // Reduced modulo the array's length: always in bounds.
        let stripe = (hasher.finish() % STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_customer_waits_and_another_does_not() {
        let locks = CustomerLocks::default();
        let held = locks.lock(&("Fabrikam", "98052")).await;
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            locks.lock(&("Fabrikam", "98052")),
        )
        .await;
        assert!(same.is_err(), "the same customer waits");
        drop(held);
        let _again = locks.lock(&("Fabrikam", "98052")).await;
    }
}
