//! Succinct hashed bins (TAP 15), exactly as python-tuf's `SuccinctRoles` computes them.
//!
//! A target goes to bin number = the first `bit_length` bits of sha256(target path as UTF-8),
//! read big-endian. Bins are named `<prefix>-<n in lowercase hex>`, zero-padded to the width
//! of the largest bin number: with the default 14 bits, 16,384 bins `bin-0000` … `bin-3fff`;
//! with 4 bits, 16 bins `bin-0` … `bin-f`.

use crate::metadata::SuccinctRoles;
use crate::{KeyId, RoleName, TargetPath, TufError};

/// The hashed-bin layout: how many bins, and their names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BinLayout {
    bit_length: u8,
    name_prefix: String,
}

impl Default for BinLayout {
    /// 2^14 = 16,384 bins named `bin-0000` … `bin-3fff`.
    fn default() -> Self {
        Self {
            bit_length: Self::DEFAULT_BIT_LENGTH,
            name_prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl BinLayout {
    pub const DEFAULT_BIT_LENGTH: u8 = 14;
    pub const DEFAULT_PREFIX: &'static str = "bin";
    /// Largest supported bit length (65,536 bins).
    pub const MAX_BIT_LENGTH: u8 = 16;

    /// `2^bit_length` bins named `bin-…`; `bit_length` in 1..=16.
    pub fn new(bit_length: u8) -> Result<Self, TufError> {
        Self::with_prefix(bit_length, Self::DEFAULT_PREFIX)
    }

    /// A layout with another name prefix (as found in foreign `succinct_roles`).
    pub fn with_prefix(bit_length: u8, name_prefix: &str) -> Result<Self, TufError> {
        if !(1..=Self::MAX_BIT_LENGTH).contains(&bit_length) {
            return Err(TufError::InvalidBitLength(u32::from(bit_length)));
        }
        // The longest bin name must be a valid role name.
        let layout = Self {
            bit_length,
            name_prefix: name_prefix.to_owned(),
        };
        RoleName::new(&layout.format_name(layout.bin_count() - 1))?;
        Ok(layout)
    }

    pub fn bit_length(&self) -> u8 {
        self.bit_length
    }

    pub fn name_prefix(&self) -> &str {
        &self.name_prefix
    }

    /// Number of bins, `2^bit_length`.
    pub fn bin_count(&self) -> u32 {
        1u32 << self.bit_length
    }

    /// Hex digits in a bin name: the width of `bin_count - 1` in hex, = ceil(bit_length / 4).
    pub fn suffix_len(&self) -> usize {
        usize::from(self.bit_length.div_ceil(4))
    }

    /// The bin of a target path.
    pub fn bin_for(&self, path: &TargetPath) -> u32 {
        self.bin_for_str(path.as_str())
    }

    /// The bin of any string, as python-tuf hashes it (UTF-8 bytes, first 4 digest bytes
    /// big-endian, shifted right by `32 - bit_length`).
    pub fn bin_for_str(&self, path: &str) -> u32 {
        let digest = tufa_pypi::Sha256Digest::of(path.as_bytes());
        let b = digest.as_bytes();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) >> (32 - u32::from(self.bit_length))
    }

    /// The role holding a target path.
    pub fn role_for(&self, path: &TargetPath) -> RoleName {
        self.role_name(self.bin_for(path))
    }

    /// The name of bin `n`. `n` is taken modulo [`BinLayout::bin_count`].
    pub fn role_name(&self, n: u32) -> RoleName {
        RoleName::from_layout(self.format_name(n & (self.bin_count() - 1)))
    }

    fn format_name(&self, n: u32) -> String {
        format!("{}-{:0width$x}", self.name_prefix, n, width = self.suffix_len())
    }

    /// The bin number of a role name, when it is one of this layout's bins.
    pub fn bin_index(&self, role: &RoleName) -> Option<u32> {
        let suffix = role
            .as_str()
            .strip_prefix(self.name_prefix.as_str())?
            .strip_prefix('-')?;
        if suffix.len() != self.suffix_len()
            || !suffix.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        u32::from_str_radix(suffix, 16)
            .ok()
            .filter(|&n| n < self.bin_count())
    }

    /// Every bin, in order.
    pub fn all_roles(&self) -> impl Iterator<Item = RoleName> + '_ {
        (0..self.bin_count()).map(|n| self.role_name(n))
    }

    /// The `succinct_roles` object delegating to these bins.
    pub fn succinct_roles(&self, keyids: Vec<KeyId>, threshold: u32) -> SuccinctRoles {
        SuccinctRoles {
            keyids,
            threshold,
            bit_length: u32::from(self.bit_length),
            name_prefix: self.name_prefix.clone(),
        }
    }
}

impl RoleName {
    /// A bin name made by a validated [`BinLayout`] (its prefix was checked at construction).
    fn from_layout(name: String) -> Self {
        debug_assert!(RoleName::new(&name).is_ok(), "{name}");
        RoleName::new_unchecked(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_widths() {
        let l = BinLayout::default();
        assert_eq!(l.bin_count(), 16_384);
        assert_eq!(l.suffix_len(), 4);
        assert_eq!(l.role_name(0).as_str(), "bin-0000");
        assert_eq!(l.role_name(0x3fff).as_str(), "bin-3fff");
        assert_eq!(l.all_roles().count(), 16_384);
        let four = BinLayout::new(4).unwrap();
        assert_eq!(
            four.all_roles().map(|r| r.to_string()).collect::<Vec<_>>()[15],
            "bin-f"
        );
        assert_eq!(BinLayout::new(1).unwrap().role_name(1).as_str(), "bin-1");
        assert_eq!(BinLayout::new(5).unwrap().role_name(3).as_str(), "bin-03");
        assert_eq!(BinLayout::new(16).unwrap().role_name(0xffff).as_str(), "bin-ffff");
        assert!(BinLayout::new(0).is_err());
        assert!(BinLayout::new(17).is_err());
        assert!(BinLayout::with_prefix(4, "bad.prefix").is_err());
    }

    #[test]
    fn bin_index_inverts_role_name() {
        let l = BinLayout::default();
        for n in [0, 1, 0xabc, 0x3fff] {
            assert_eq!(l.bin_index(&l.role_name(n)), Some(n));
        }
        for bad in [
            "bin-4000",
            "bin-abc",
            "bin-0abcd",
            "bins",
            "bin-ABCD",
            "xbin-0000",
        ] {
            assert_eq!(l.bin_index(&RoleName::new(bad).unwrap()), None, "{bad}");
        }
    }

    #[test]
    fn bin_for_uses_leading_bits() {
        // sha256("") = e3b0c442…: first 14 bits of 0xe3b0 = 0b1110_0011_1011_00 = 0x38ec.
        let l = BinLayout::default();
        assert_eq!(l.bin_for_str(""), 0xe3b0c442 >> 18);
        assert_eq!(l.bin_for_str(""), 0x38ec);
        assert_eq!(BinLayout::new(4).unwrap().bin_for_str(""), 0xe);
        assert_eq!(BinLayout::new(16).unwrap().bin_for_str(""), 0xe3b0);
    }
}
