//! SplitMix64: a fast mixer that is a bijection of its input, for ids that
//! must not repeat and jitter that must not cluster.

/// The golden-ratio increment that spaces a stream's inputs.
pub(crate) const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One SplitMix64 output for `x`.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
