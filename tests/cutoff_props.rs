//! Properties of the cutoff rule and of the merge (proptest).

use jwt_revoke::{Cutoff, RevokedReason};
use proptest::prelude::*;

fn cutoff() -> impl Strategy<Value = Cutoff> {
    (any::<u64>(), any::<i64>()).prop_map(|(v, nb)| Cutoff::new(v, nb))
}

/// The rule as written in the design, independently of `Cutoff::check`.
fn revoked_by_rule(c: Cutoff, ver: Option<u64>, iat: i64, global: i64) -> bool {
    ver.is_some_and(|v| v < c.version) || iat < c.not_before || iat < global
}

#[derive(Debug, Clone)]
enum Update {
    Bump,
    RevokeBefore(i64),
    Merge(Cutoff),
}

fn update() -> impl Strategy<Value = Update> {
    prop_oneof![
        Just(Update::Bump),
        any::<i64>().prop_map(Update::RevokeBefore),
        cutoff().prop_map(Update::Merge),
    ]
}

fn apply(c: Cutoff, u: &Update) -> Cutoff {
    match u {
        Update::Bump => c.bumped(),
        Update::RevokeBefore(at) => c.revoked_before(*at),
        Update::Merge(o) => c.merge(*o),
    }
}

proptest! {
    #[test]
    fn merge_is_a_join_semilattice(a in cutoff(), b in cutoff(), c in cutoff()) {
        prop_assert_eq!(a.merge(b), b.merge(a));
        prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
        prop_assert_eq!(a.merge(a), a);
        prop_assert!(a.merge(b).dominates(&a) && a.merge(b).dominates(&b));
    }

    #[test]
    fn check_agrees_with_the_rule(c in cutoff(), ver in proptest::option::of(any::<u64>()), iat in any::<i64>(), global in any::<i64>()) {
        prop_assert_eq!(c.is_revoked(ver, iat, global), revoked_by_rule(c, ver, iat, global));
        if let Err(reason) = c.check(ver, iat, global) {
            // The reason names a component that actually revokes.
            let holds = match reason {
                RevokedReason::Version => ver.is_some_and(|v| v < c.version),
                RevokedReason::NotBefore => iat < c.not_before,
                RevokedReason::Global => iat < global,
                _ => false,
            };
            prop_assert!(holds);
        }
    }

    #[test]
    fn updates_never_move_a_cutoff_back(start in cutoff(), updates in proptest::collection::vec(update(), 0..20)) {
        let mut c = start;
        for u in &updates {
            let next = apply(c, u);
            prop_assert!(next.dominates(&c));
            c = next;
        }
    }

    #[test]
    fn a_revoked_token_stays_revoked_under_any_later_updates(
        start in cutoff(), updates in proptest::collection::vec(update(), 0..20),
        ver in proptest::option::of(any::<u64>()), iat in any::<i64>(), global in any::<i64>(),
    ) {
        let mut c = start;
        let was_revoked = c.is_revoked(ver, iat, global);
        for u in &updates {
            c = apply(c, u);
        }
        if was_revoked {
            prop_assert!(c.is_revoked(ver, iat, global));
        }
    }

    #[test]
    fn merging_the_same_updates_in_any_order_gives_the_same_cutoff(
        cutoffs in proptest::collection::vec(cutoff(), 1..12), seed in any::<u64>(),
    ) {
        let forward = cutoffs.iter().fold(Cutoff::default(), |a, b| a.merge(*b));
        let mut shuffled = cutoffs.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let backward = shuffled.iter().fold(Cutoff::default(), |a, b| a.merge(*b));
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn revoke_before_kills_exactly_the_tokens_up_to_at(start in cutoff(), at in any::<i64>(), iat in any::<i64>()) {
        let c = Cutoff::new(0, start.not_before).revoked_before(at);
        if iat <= at && at < i64::MAX {
            prop_assert!(c.is_revoked(None, iat, i64::MIN));
        }
        if iat > at && iat >= start.not_before {
            prop_assert!(!c.is_revoked(None, iat, i64::MIN));
        }
    }
}
