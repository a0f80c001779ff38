//! The mutations: each input is a seed file with one to four edits.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Values that break length and count fields: zero, all ones, signed overflow, and
/// sizes far past any real file, in both byte orders.
const HUGE: [u64; 6] = [
    0,
    u32::MAX as u64,
    i32::MAX as u64,
    1 << 31,
    1 << 40,
    u64::MAX,
];

pub struct Mutator {
    rng: StdRng,
    seeds: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(seed: u64, seeds: Vec<Vec<u8>>) -> Self {
        assert!(!seeds.is_empty(), "fuzzing needs at least one valid file");
        Self {
            rng: StdRng::seed_from_u64(seed),
            seeds,
        }
    }

    /// The next input: a seed with one to four edits.
    pub fn next(&mut self) -> Vec<u8> {
        let mut bytes = self.seeds[self.rng.random_range(0..self.seeds.len())].clone();
        for _ in 0..self.rng.random_range(1..=4) {
            self.edit(&mut bytes);
        }
        bytes
    }

    /// A position inside `len`, drawn more often near the start, where headers are.
    fn position(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        if self.rng.random_bool(0.5) {
            self.rng.random_range(0..len.min(64))
        } else {
            self.rng.random_range(0..len)
        }
    }

    fn edit(&mut self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self.rng.random_range(0..7) {
            // flip one bit
            0 if len > 0 => {
                let i = self.position(len);
                bytes[i] ^= 1 << self.rng.random_range(0..8);
            }
            // overwrite a byte with a boundary value
            1 if len > 0 => {
                let i = self.position(len);
                bytes[i] = [0x00, 0x01, 0x7f, 0x80, 0xff][self.rng.random_range(0..5)];
            }
            // truncate
            2 => bytes.truncate(self.rng.random_range(0..=len)),
            // a huge length field, little- or big-endian, 4 or 8 bytes
            3 if len > 0 => {
                let value = HUGE[self.rng.random_range(0..HUGE.len())];
                let field: Vec<u8> = match self.rng.random_range(0..4) {
                    0 => (value as u32).to_le_bytes().to_vec(),
                    1 => (value as u32).to_be_bytes().to_vec(),
                    2 => value.to_le_bytes().to_vec(),
                    _ => value.to_be_bytes().to_vec(),
                };
                let at = self.position(len);
                for (k, b) in field.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + k) {
                        *slot = b;
                    }
                }
            }
            // splice in a piece of another seed (or of this input) at a random place
            4 => {
                let donor = &self.seeds[self.rng.random_range(0..self.seeds.len())];
                if donor.is_empty() {
                    return;
                }
                let from = self.rng.random_range(0..donor.len());
                let take = self.rng.random_range(1..=(donor.len() - from).min(256));
                let piece = donor[from..from + take].to_vec();
                let at = self.rng.random_range(0..=len);
                let end = (at + self.rng.random_range(0..=take)).min(len);
                bytes.splice(at..end, piece);
            }
            // delete a range
            5 if len > 0 => {
                let at = self.position(len);
                let end = (at + self.rng.random_range(1..=64)).min(len);
                bytes.drain(at..end);
            }
            // insert random bytes
            _ => {
                let at = self.rng.random_range(0..=len);
                let n = self.rng.random_range(1..=16);
                let noise: Vec<u8> = (0..n).map(|_| self.rng.random()).collect();
                bytes.splice(at..at, noise);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs_and_edits_change_them() {
        let seeds = vec![(0..200u8).collect::<Vec<u8>>()];
        let mut a = Mutator::new(7, seeds.clone());
        let mut b = Mutator::new(7, seeds.clone());
        let first: Vec<Vec<u8>> = (0..50).map(|_| a.next()).collect();
        let again: Vec<Vec<u8>> = (0..50).map(|_| b.next()).collect();
        assert_eq!(first, again);
        assert!(first.iter().filter(|m| **m != seeds[0]).count() >= 45);
        assert!(first.iter().any(|m| m.len() < 200), "some truncate");
        assert!(first.iter().any(|m| m.len() > 200), "some grow");
    }
}
