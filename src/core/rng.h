// rng.h — Philox4x32-10 (Salmon et al., SC'11), a counter-based generator: every random number is a pure
// function of (key, counter), so a value depends on (seed, step, layer, position) only — never on thread
// count, rank count or the order of evaluation. Tested against Random123's known-answer vectors.
// Not a sequential engine: there is no hidden state to advance.
#pragma once
#include <array>
#include <cstdint>

namespace manylm {

using Philox4 = std::array<uint32_t, 4>;

// Philox4x32's multipliers and Weyl key increments (Salmon et al., Random123).
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

inline Philox4 philox4x32_10(Philox4 ctr, std::array<uint32_t, 2> key) {
  constexpr uint32_t M0 = kPhiloxM0, M1 = kPhiloxM1, W0 = kPhiloxW0, W1 = kPhiloxW1;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      key[0] += W0;
      key[1] += W1;
    }
    uint64_t p0 = uint64_t{M0} * ctr[0];
    uint64_t p1 = uint64_t{M1} * ctr[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

// 24 random bits to a float in [0, 1).
inline float u32_to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

// Stream of uniform numbers addressed by (seed, stream id, index): element i of stream s is
// philox(counter = {i/4, hi(i), s, lo(s)}, key = seed)[i%4].
struct CounterRng {
  uint64_t seed;
  uint64_t stream;
  Philox4 block(uint64_t blk) const {
    return philox4x32_10({static_cast<uint32_t>(blk), static_cast<uint32_t>(blk >> 32), static_cast<uint32_t>(stream),
                          static_cast<uint32_t>(stream >> 32)},
                         {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  }
  float uniform(uint64_t i) const { return u32_to_unit(block(i >> 2)[i & 3]); }
};

// Blocks b0 .. b0+nb−1 of `rng`, their words in order: out[4k + j] = rng.block(b0 + k)[j]. Bit-identical
// to block(); eight blocks per AVX2 step where the CPU has AVX2 (the compiler's own vectorization of
// the 32×32→64 products is several times slower there), the compiler's elsewhere.
void philox_blocks(const CounterRng& rng, uint64_t b0, uint64_t nb, uint32_t* out);

}  // namespace manylm
