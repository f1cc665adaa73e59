// rng.cc — see rng.h. The AVX2 kernel runs eight Philox4x32-10 evaluations at once, one counter word
// per register (structure of arrays): a round's 32×32→64 products are two vpmuludq (even and odd
// lanes), the high and low halves recombined by blends; the ten round keys are broadcast once per
// call; the four result registers are transposed back to the blocks' word order before the store.
#include "core/rng.h"

#if defined(__AVX2__) && !defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace manylm {

namespace {

void philox_blocks_scalar(const CounterRng& rng, uint64_t b0, uint64_t nb, uint32_t* out) {
#pragma omp simd
  for (uint64_t k = 0; k < nb; ++k) {
    const Philox4 u = rng.block(b0 + k);
    out[4 * k] = u[0];
    out[4 * k + 1] = u[1];
    out[4 * k + 2] = u[2];
    out[4 * k + 3] = u[3];
  }
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// (hi, lo) of m · x for the eight 32-bit lanes of x.
inline void mulhilo(__m256i m, __m256i x, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(m, x);                        // lanes 0,2,4,6 as 64-bit products
  const __m256i odd = _mm256_mul_epu32(m, _mm256_srli_epi64(x, 32));  // lanes 1,3,5,7
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
#endif

}  // namespace

void philox_blocks(const CounterRng& rng, uint64_t b0, uint64_t nb, uint32_t* out) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  constexpr uint32_t M0 = kPhiloxM0, M1 = kPhiloxM1, W0 = kPhiloxW0, W1 = kPhiloxW1;
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(M0)), m1 = _mm256_set1_epi32(static_cast<int>(M1));
  __m256i k0[10], k1[10];
  for (int r = 0; r < 10; ++r) {
    k0[r] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(rng.seed) + static_cast<uint32_t>(r) * W0));
    k1[r] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(rng.seed >> 32) + static_cast<uint32_t>(r) * W1));
  }
  const __m256i s0 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(rng.stream)));
  const __m256i s1 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(rng.stream >> 32)));
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  uint64_t k = 0;
  for (; k + 8 <= nb; k += 8) {
    const uint64_t b = b0 + k;
    if (static_cast<uint32_t>(b) > 0xFFFFFFFFu - 7u) break;  // the low counter word would wrap: scalar
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(b))), iota);
    __m256i c1 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(b >> 32)));
    __m256i c2 = s0, c3 = s1;
    for (int r = 0; r < 10; ++r) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo(m0, c0, &hi0, &lo0);
      mulhilo(m1, c2, &hi1, &lo1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0[r]);
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1[r]);
      c3 = lo0;
    }
    // (c0, c1, c2, c3) hold word j of blocks 0..7; store block by block.
    const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    const __m256i o0 = _mm256_unpacklo_epi64(t0, t2), o1 = _mm256_unpackhi_epi64(t0, t2);  // blocks 0|4, 1|5
    const __m256i o2 = _mm256_unpacklo_epi64(t1, t3), o3 = _mm256_unpackhi_epi64(t1, t3);  // blocks 2|6, 3|7
    __m256i* dst = reinterpret_cast<__m256i*>(out + 4 * k);
    _mm256_storeu_si256(dst, _mm256_permute2x128_si256(o0, o1, 0x20));
    _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(o2, o3, 0x20));
    _mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(o0, o1, 0x31));
    _mm256_storeu_si256(dst + 3, _mm256_permute2x128_si256(o2, o3, 0x31));
  }
  philox_blocks_scalar(rng, b0 + k, nb - k, out + 4 * k);
#else
  philox_blocks_scalar(rng, b0, nb, out);
#endif
}

}  // namespace manylm
