//! Time-ordered ids (UUIDv7) for requests and traces. The 12 bits after the millisecond are a
//! counter (RFC 9562's "monotonic random" method), so ids made in the same millisecond still sort
//! in the order they were made; the rest comes from a thread-local generator rather than the OS,
//! since ids must be unique, not secret.

use std::sync::atomic::{AtomicU64, Ordering};

/// The last (milliseconds << 12 | counter) handed out.
static LAST: AtomicU64 = AtomicU64::new(0);

/// A UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter, then random bits.
pub fn uuid_v7() -> String {
    let now = (crate::store::now_ms().max(0) as u64 & 0xFFFF_FFFF_FFFF) << 12;
    let mut last = LAST.load(Ordering::Relaxed);
    let stamp = loop {
        // A clock that steps back, or 4096 ids in one millisecond, borrow from the next one.
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    let high = ((stamp >> 12) << 16) | 0x7000 | (stamp & 0x0FFF);
    let low = 0x8000_0000_0000_0000 | (fastrand::u64(..) & 0x3FFF_FFFF_FFFF_FFFF);
    // Encoded into a stack buffer: `to_string` goes through the formatting machinery, a few
    // hundred instructions for each of the two ids a request makes.
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::from_u64_pair(high, low)
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_strictly_increasing() {
        let ids: Vec<String> = (0..10_000).map(|_| uuid_v7()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let version = uuid::Uuid::parse_str(&ids[0])
            .map(|u| u.get_version_num())
            .unwrap_or(0);
        assert_eq!(version, 7);
    }
}
