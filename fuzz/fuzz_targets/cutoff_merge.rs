//! Arbitrary sequences of cutoff updates: the merge is a join-semilattice
//! (commutative, associative, idempotent), updates never move a cutoff
//! back, and `check` agrees with the rule written out by hand.
#![no_main]

use arbitrary::Arbitrary;
use jwt_revoke::{Cutoff, RevokedReason};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Update {
    Bump,
    RevokeBefore(i64),
    Merge(u64, i64),
}

#[derive(Debug, Arbitrary)]
struct Input {
    start: (u64, i64),
    updates: Vec<Update>,
    token: (Option<u64>, i64, i64),
}

fn apply(c: Cutoff, u: &Update) -> Cutoff {
    match *u {
        Update::Bump => c.bumped(),
        Update::RevokeBefore(at) => c.revoked_before(at),
        Update::Merge(v, nb) => c.merge(Cutoff::new(v, nb)),
    }
}

fuzz_target!(|input: Input| {
    let mut c = Cutoff::new(input.start.0, input.start.1);
    let (ver, iat, global) = input.token;
    let mut revoked_before = false;
    for u in &input.updates {
        let next = apply(c, u);
        assert!(next.dominates(&c), "a cutoff moved back: {c:?} -> {next:?}");
        let other = Cutoff::new(next.version ^ 1, next.not_before.wrapping_sub(1));
        assert_eq!(next.merge(other), other.merge(next));
        assert_eq!(next.merge(next), next);
        assert_eq!(next.merge(c).merge(other), next.merge(c.merge(other)));
        c = next;
        let by_rule = ver.is_some_and(|v| v < c.version) || iat < c.not_before || iat < global;
        assert_eq!(c.is_revoked(ver, iat, global), by_rule);
        if revoked_before {
            assert!(by_rule, "a revoked token came back");
        }
        revoked_before = by_rule;
        if let Err(reason) = c.check(ver, iat, global) {
            let holds = match reason {
                RevokedReason::Version => ver.is_some_and(|v| v < c.version),
                RevokedReason::NotBefore => iat < c.not_before,
                RevokedReason::Global => iat < global,
                _ => false,
            };
            assert!(holds);
        }
    }
});
