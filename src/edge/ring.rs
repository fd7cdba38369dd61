//! Consistent hashing of stream names over origins (Ketama-style: each origin owns
//! `virtual_nodes` points on a 64-bit ring; a stream belongs to the first point at or after
//! its hash). Adding or removing an origin moves only the streams that origin gains or loses,
//! and the points after a stream's own give its failover order.

/// The ring over `origins` origins (by index).
pub struct HashRing {
    /// (point, origin index), sorted by point.
    points: Vec<(u64, usize)>,
    origins: usize,
}

impl HashRing {
    /// A ring for origins named `names` (their addresses), `virtual_nodes` points each.
    pub fn new(names: &[String], virtual_nodes: u32) -> Self {
        let mut points = Vec::with_capacity(names.len() * virtual_nodes as usize);
        for (index, name) in names.iter().enumerate() {
            for node in 0..virtual_nodes {
                points.push((hash(format!("{name}#{node}").as_bytes()), index));
            }
        }
        points.sort_unstable();
        HashRing {
            points,
            origins: names.len(),
        }
    }

    /// Every origin, in the order to try for `stream`: its own first, then the next distinct
    /// ones clockwise.
    pub fn order(&self, stream: &str) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.origins);
        if self.points.is_empty() {
            return order;
        }
        let key = hash(stream.as_bytes());
        let start = self.points.partition_point(|&(point, _)| point < key);
        for i in 0..self.points.len() {
            let (_, origin) = self.points[(start + i) % self.points.len()];
            if !order.contains(&origin) {
                order.push(origin);
                if order.len() == self.origins {
                    break;
                }
            }
        }
        order
    }
}

/// FNV-1a over the bytes, then a 64-bit finalizer (splitmix64's) so that near names spread.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("127.0.0.{}:8080", i + 2)).collect()
    }

    #[test]
    fn streams_spread_evenly_and_every_origin_is_in_each_order() {
        let ring = HashRing::new(&names(3), 160);
        let mut counts = [0usize; 3];
        for s in 0..3000 {
            let order = ring.order(&format!("stream-{s}"));
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
            counts[order[0]] += 1;
        }
        for count in counts {
            assert!((800..=1200).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn removing_an_origin_moves_only_its_streams() {
        let all = names(3);
        let before = HashRing::new(&all, 160);
        let after = HashRing::new(&all[..2], 160);
        for s in 0..2000 {
            let name = format!("s{s}");
            let was = before.order(&name)[0];
            let now = after.order(&name)[0];
            if was != 2 {
                assert_eq!(was, now, "{name} moved though its origin stayed");
            } else {
                // Its failover in the old ring is where it goes now.
                assert_eq!(before.order(&name)[1], now);
            }
        }
    }

    #[test]
    fn no_origins_no_order() {
        assert!(HashRing::new(&[], 160).order("s").is_empty());
    }
}
