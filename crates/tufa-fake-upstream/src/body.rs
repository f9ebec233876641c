//! File bodies: bytes held in memory, or generated on demand from a seed so that a generated
//! upstream of any size (a 2 GiB file, a thousand megabytes of small files) costs almost no
//! memory. A generated body is `head ‖ random(seed, len) ‖ tail`; the random part is produced
//! by [`RandomStream`] in chunks whose bytes do not depend on the chunk size.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream;

/// Size of the chunks a generated body is streamed in (a multiple of 8).
const CHUNK: usize = 64 * 1024;

/// SplitMix64: small, fast and good enough for test data and sampling. Deterministic across
/// platforms and versions (unlike the `rand` crate's `StdRng`), so a seed names the same upstream
/// forever.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed derived from two values (for per-project, per-epoch streams).
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// The deterministic random bytes of a generated body: 8 bytes per step of the generator, so
/// any split into chunks that are multiples of 8 yields the same bytes.
#[derive(Debug)]
pub(crate) struct RandomStream {
    rng: Rng,
    remaining: u64,
}

impl RandomStream {
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            remaining: len,
        }
    }

    /// The next chunk (at most `max` bytes, `max` a multiple of 8), or `None` at the end.
    pub fn next_chunk(&mut self, max: usize) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(max);
        let mut buf = BytesMut::zeroed(n);
        for word in buf.chunks_mut(8) {
            let bytes = self.rng.next_u64().to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        self.remaining -= n as u64;
        Some(buf.freeze())
    }
}

/// `head ‖ random(seed, random_len) ‖ tail`.
#[derive(Debug)]
pub(crate) struct Generated {
    pub head: Bytes,
    pub seed: u64,
    pub random_len: u64,
    pub tail: Bytes,
}

/// A file's bytes.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Memory(Bytes),
    Generated(Arc<Generated>),
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Memory(b) => b.len() as u64,
            Body::Generated(g) => g.head.len() as u64 + g.random_len + g.tail.len() as u64,
        }
    }

    /// All the bytes at once (tests, faults): a generated body is materialised.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Body::Memory(b) => b.clone(),
            Body::Generated(g) => {
                let mut out = BytesMut::with_capacity(usize::try_from(self.len()).unwrap_or(0));
                out.extend_from_slice(&g.head);
                let mut random = RandomStream::new(g.seed, g.random_len);
                while let Some(chunk) = random.next_chunk(CHUNK) {
                    out.extend_from_slice(&chunk);
                }
                out.extend_from_slice(&g.tail);
                out.freeze()
            }
        }
    }

    /// An HTTP body: generated bodies are streamed chunk by chunk, never held whole.
    pub fn into_http(self) -> axum::body::Body {
        match self {
            Body::Memory(b) => axum::body::Body::from(b),
            Body::Generated(g) => {
                let random = RandomStream::new(g.seed, g.random_len);
                let s = stream::unfold((0u8, g, random), |(stage, g, mut random)| async move {
                    let mut stage = stage;
                    loop {
                        let chunk = match stage {
                            0 => Some(g.head.clone()),
                            1 => random.next_chunk(CHUNK),
                            2 => Some(g.tail.clone()),
                            _ => return None,
                        };
                        match chunk {
                            Some(c) if !c.is_empty() => {
                                // Stay in the random stage until it is exhausted.
                                let next = if stage == 1 { 1 } else { stage + 1 };
                                return Some((Ok::<Bytes, io::Error>(c), (next, g, random)));
                            }
                            _ => stage += 1,
                        }
                    }
                });
                axum::body::Body::from_stream(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_stream_does_not_depend_on_chunk_size() {
        let whole = RandomStream::new(7, 1001).next_chunk(4096).unwrap();
        assert_eq!(whole.len(), 1001);
        let mut parts = Vec::new();
        let mut s = RandomStream::new(7, 1001);
        while let Some(c) = s.next_chunk(16) {
            parts.extend_from_slice(&c);
        }
        assert_eq!(parts, whole.to_vec());
        assert_ne!(RandomStream::new(8, 1001).next_chunk(4096).unwrap(), whole);
    }

    #[test]
    fn generated_body_materialises_head_random_tail() {
        let g = Body::Generated(Arc::new(Generated {
            head: Bytes::from_static(b"HEAD"),
            seed: 3,
            random_len: 200_000,
            tail: Bytes::from_static(b"TAIL"),
        }));
        let b = g.to_bytes();
        assert_eq!(b.len() as u64, g.len());
        assert_eq!(g.len(), 200_008);
        assert!(b.starts_with(b"HEAD") && b.ends_with(b"TAIL"));
        assert_eq!(
            &b[4..200_004],
            &RandomStream::new(3, 200_000).next_chunk(1 << 20).unwrap()[..]
        );
    }

    #[test]
    fn rng_ranges() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let v = r.range(5, 9);
            assert!((5..=9).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(Rng::new(1).next_u64(), Rng::new(1).next_u64());
    }
}
