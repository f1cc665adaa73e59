// vmath.h — vectorizable float exp: Cody–Waite range reduction x = n·ln2 + r, a degree-6 polynomial for
// e^r on |r| ≤ ln2/2, and 2^n built in the exponent bits. No calls and no branches on the value, so
// loops over it vectorize (AVX2/AVX-512) under `#pragma omp simd`. Max relative error ~2 ulp on
// [-87, 88.37]; below −87 it returns e^-87, from 88.38 on +inf (2^n with n = 128 is built as infinity,
// though e^x stays finite up to 88.72). sigmoid and tanh are built on it and saturate correctly either way.
// Also max_of, the vectorized largest element. Not a general libm.
#pragma once
#include <cstdint>
#include <cstring>

namespace manylm {

#pragma omp declare simd
inline float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.5f ? 88.5f : x;
  // rint, not roundeven: the same under the default rounding mode (manylm never changes it); GCC 12 turns
  // rint into vroundps on AVX2, while a loop over roundeven alone stays scalar there. (What kept the loops
  // over exp scalar was -ftrapping-math: see CMakeLists.txt.)
  const float n = __builtin_rintf(x * 1.44269504088896341f);
  float r = x - n * 0.693145751953125f;  // ln2 split in two for exact reduction
  r = r - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

#pragma omp declare simd
inline float sigmoid_fast(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

// tanh(x) = 1 − 2 / (e^{2x} + 1): absolute error ~1e-7, saturates cleanly at ±1.
#pragma omp declare simd
inline float tanh_fast(float x) { return 1.0f - 2.0f / (exp_fast(2.0f * x) + 1.0f); }

// The largest of x[0..n), n ≥ 1 (−inf for n = 0). GCC leaves `m = std::max(m, x[j])` scalar even under
// `omp simd reduction(max)` (without -ffinite-math-only it keeps the scalar NaN order), so the vector loop is
// written out with GCC's vector types: four 8-float accumulators (AVX2 or AVX-512), then the tail. A NaN in x
// may or may not win (logits and weights are checked finite elsewhere).
inline float max_of(const float* x, int64_t n) {
  typedef float v8 __attribute__((vector_size(32)));
  float m = -__builtin_inff();
  int64_t j = 0;
  if (n >= 32) {
    v8 a, b, c, d;
    std::memcpy(&a, x, 32), std::memcpy(&b, x + 8, 32), std::memcpy(&c, x + 16, 32), std::memcpy(&d, x + 24, 32);
    for (j = 32; j + 32 <= n; j += 32) {
      v8 p, q, r, t;
      std::memcpy(&p, x + j, 32), std::memcpy(&q, x + j + 8, 32);
      std::memcpy(&r, x + j + 16, 32), std::memcpy(&t, x + j + 24, 32);
      a = a > p ? a : p, b = b > q ? b : q, c = c > r ? c : r, d = d > t ? d : t;
    }
    a = a > b ? a : b, c = c > d ? c : d, a = a > c ? a : c;
    for (int k = 0; k < 8; ++k) m = m > a[k] ? m : a[k];
  }
  for (; j < n; ++j) m = m > x[j] ? m : x[j];
  return m;
}

}  // namespace manylm
