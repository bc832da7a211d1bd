//! Orders a group's deployments for one request, by the group's strategy. The first is tried
//! first; retries move along the order.

use super::config::Strategy;
use super::table::{Deployment, Group};

/// The order to try deployments in, and the A/B variant when the group splits by tag.
pub fn order(group: &Group, stream: bool, tag: Option<&str>) -> (Vec<usize>, Option<String>) {
    let n = group.deployments.len();
    let mut idx: Vec<usize> = (0..n).collect();
    // A plain model's group has one deployment: nothing to order (a tag split still names it).
    if n == 1 && group.strategy != Strategy::TagSplit {
        return (idx, None);
    }
    match group.strategy {
        Strategy::WeightedRandom => weighted_shuffle(&mut idx, &group.deployments),
        Strategy::Priority => {
            weighted_shuffle(&mut idx, &group.deployments);
            idx.sort_by_key(|i| group.deployments[*i].priority);
        }
        Strategy::LeastInflight => {
            fastrand::shuffle(&mut idx);
            idx.sort_by_key(|i| group.deployments[*i].stats.inflight());
        }
        Strategy::LowestLatency => {
            fastrand::shuffle(&mut idx);
            // Untried deployments first (score 0), so each gets measured.
            idx.sort_by(|a, b| {
                let sa = group.deployments[*a].stats.score_us(stream);
                let sb = group.deployments[*b].stats.score_us(stream);
                sa.total_cmp(&sb)
            });
        }
        Strategy::TagSplit => {
            let first = match tag {
                Some(tag) => pick_by_hash(tag, &group.deployments),
                None => pick_weighted(&group.deployments),
            };
            weighted_shuffle(&mut idx, &group.deployments);
            idx.retain(|i| *i != first);
            idx.insert(0, first);
            let variant = group.deployments[first].variant.clone();
            return (idx, Some(variant));
        }
    }
    (idx, None)
}

/// Weighted random order without replacement (Efraimidis–Spirakis: sort by u^(1/w), descending).
fn weighted_shuffle(idx: &mut [usize], deployments: &[Deployment]) {
    let mut keyed: Vec<(f64, usize)> = idx
        .iter()
        .map(|i| {
            let w = f64::from(deployments[*i].weight.max(1));
            (fastrand::f64().powf(1.0 / w), *i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (slot, (_, i)) in idx.iter_mut().zip(keyed) {
        *slot = i;
    }
}

fn pick_weighted(deployments: &[Deployment]) -> usize {
    let total: u64 = deployments.iter().map(|d| u64::from(d.weight.max(1))).sum();
    pick_at(fastrand::u64(0..total.max(1)), deployments)
}

/// The same tag always lands on the same deployment (while weights stay the same).
fn pick_by_hash(tag: &str, deployments: &[Deployment]) -> usize {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(tag.as_bytes());
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&digest[..8]);
    let total: u64 = deployments.iter().map(|d| u64::from(d.weight.max(1))).sum();
    pick_at(u64::from_be_bytes(first8) % total.max(1), deployments)
}

fn pick_at(mut point: u64, deployments: &[Deployment]) -> usize {
    for (i, d) in deployments.iter().enumerate() {
        let w = u64::from(d.weight.max(1));
        if point < w {
            return i;
        }
        point -= w;
    }
    0
}
