// compress.cc — see compress.h. Plain loops over blocks of kBlock values, written for the compiler to
// vectorize (fp16 uses F16C where the target has it); large inputs are split over the OpenMP team by
// whole blocks, so the bytes produced never depend on the thread count. Not the transport.
//
// Encoded layouts (little-endian, no padding, no alignment required of `out` / `in`):
//   None       n × fp32                                   4n bytes
//   Fp16       n × IEEE binary16 (round to nearest even;  2n bytes
//              |v| > 65504 saturates, the excess stays in the residual)
//   Int8       nb × fp32 scale, then n × int8 code         n + 4·nb bytes, nb = ceil(n / kBlock)
//              scale = max |v| over the block, code = round(v · 127 / scale) in [-127, 127] (never -128),
//              value = code · (scale / 127)  (for scales below 2^-100: code · (scale·2^100 / 127) · 2^-100)
//   Dyn8       nb × fp32 scale, then n × dyn8 code         n + 4·nb bytes
//              scale = max |v| over the block, value = dyn8_value(code) · scale
//   Threshold  uint32 words: [τ as fp32 bits][count][count × (index << 1 | 1 if negative)], indices ascending
// Block b covers values [b·kBlock, min(n, (b+1)·kBlock)); its scale is the b-th fp32 of the message.
//
// dyn8 (Dettmers 2016, "8-bit approximations for parallelism in deep learning"): bit 7 is the sign; of the
// magnitude bits 6..0, the number E of leading zeros is a decimal exponent, the first 1 is the indicator,
// and the F = 6 − E bits after it are k, a linear fraction:  |value| = 10^-E · (0.1 + 0.9 · (k+1) / 2^F),
// so band E covers (10^-(E+1), 10^-E] in 2^F equal steps and its top is 10^-E exactly. Magnitude bits
// 0000000 mean 0 (0x80 decodes to 0 too; the encoder writes it for -0 and tiny negative values). The
// magnitude byte is then monotonic in the value: magnitude 1 is 1e-6, 2..3 band 5, 4..7 band 4, …,
// 64..127 band 0 (steps of 0.9/64 up to 1.0). |v| / scale below 5e-7 encodes as 0.
#include "mpi/compress.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace manylm {

Compress parse_compress(const std::string& name) { return parse_name<Compress>(name, "--grad-compress"); }
const char* compress_name(Compress c) { return name_of(c); }

namespace {

constexpr int64_t kParallelMin = int64_t(1) << 16;  // below this many values one thread is faster
constexpr uint32_t kInfBits = 0x7f800000u;          // |v| bits at or above this: inf or NaN
constexpr float kHalfMax = 65504.0f;                // largest finite binary16
constexpr float kTinyScale = 0x1p-100f;             // below this, scales are lifted by 2^100 before 1/scale
constexpr float kLift = 0x1p100f;

int64_t num_blocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

// How v = g + residual is read: no residual; a residual distinct from g; residual and g one array.
enum class Feed { G, GR, RR };

template <Feed F>
inline float feed(const float* __restrict g, const float* __restrict r, int64_t i) {
  if constexpr (F == Feed::G)
    return g[i];
  else if constexpr (F == Feed::GR)
    return g[i] + r[i];
  else
    return r[i] + r[i];
}

// max |v| over a block as float bits (integer max keeps the loop vectorizable and sees NaN as the
// largest): a result ≥ kInfBits means the block holds an inf or a NaN.
template <Feed F>
uint32_t max_abs_bits(const float* __restrict g, const float* __restrict r, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t b = std::bit_cast<uint32_t>(feed<F>(g, r, i)) & 0x7fffffffu;
    m = m > b ? m : b;
  }
  return m;
}

template <Feed F>
int64_t first_non_finite(const float* g, const float* r, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(feed<F>(g, r, i))) return i;
  return n;
}

// ---- dyn8 tables --------------------------------------------------------------------------------------
// Nearest magnitude without a search: m > thr[b] exactly when m is nearer to mag[b+1] than to mag[b]
// (thr[b] is the midpoint rounded down to a float; ties go to the smaller magnitude), so the nearest
// magnitude byte is #{b : m > thr[b]}. The float bits of m, shifted right by 16 (exponent and 7 mantissa
// bits), pick a cell narrower than any gap between thresholds; cell[c] counts the thresholds below the
// cell, and one compare with the next threshold finishes the count.
constexpr int kCellShift = 16;
constexpr int32_t kCellBase = (127 - 22) << 7;  // the cell starting at 2^-22, below the smallest threshold
constexpr int32_t kCellTop = 127 << 7;          // the cell starting at 1.0 (m ≤ 1)
constexpr int kCells = kCellTop - kCellBase + 1;

struct Dyn8Tables {
  float value[256];      // dyn8_value(code)
  float mag[128];        // magnitude byte → |value|, strictly increasing
  float thr[128];        // decision thresholds; thr[127] = +inf
  int32_t cell[kCells];  // #{b : thr[b] < first float of the cell}
};

Dyn8Tables build_dyn8() {
  Dyn8Tables t{};
  t.mag[0] = 0.0f;
  for (int b = 1; b < 128; ++b) {
    const int F = std::bit_width(unsigned(b)) - 1, E = 6 - F, k = b - (1 << F);
    // 10^-E · (0.1 + 0.9 (k+1) / 2^F) = (2^F + 9 (k+1)) / (10^(E+1) · 2^F): one rounding in double.
    double den = double(1 << F);
    for (int e = 0; e <= E; ++e) den *= 10.0;
    t.mag[b] = static_cast<float>(double((1 << F) + 9 * (k + 1)) / den);
  }
  for (int c = 0; c < 256; ++c) t.value[c] = (c & 0x80) && (c & 0x7f) ? -t.mag[c & 0x7f] : t.mag[c & 0x7f];
  for (int b = 0; b < 127; ++b) {
    const double mid = 0.5 * (double(t.mag[b]) + double(t.mag[b + 1]));  // exact in double
    float f = static_cast<float>(mid);
    if (double(f) > mid) f = std::nextafter(f, 0.0f);
    t.thr[b] = f;
  }
  t.thr[127] = INFINITY;
  if (t.thr[0] < std::bit_cast<float>(uint32_t(kCellBase) << kCellShift))
    throw std::logic_error("dyn8: smallest threshold below the cell table");
  for (int c = 0; c < kCells; ++c) {
    const float lo = std::bit_cast<float>(uint32_t(c + kCellBase) << kCellShift);
    const float hi = std::bit_cast<float>(uint32_t(c + kCellBase + 1) << kCellShift);
    int below = 0, inside = 0;
    for (int b = 0; b < 127; ++b) below += t.thr[b] < lo, inside += t.thr[b] >= lo && t.thr[b] < hi;
    if (inside > 1) throw std::logic_error("dyn8: two thresholds in one cell");
    t.cell[c] = below;
  }
  return t;
}

const Dyn8Tables& dyn8_tables() {
  static const Dyn8Tables t = build_dyn8();
  return t;
}

// Nearest magnitude byte to m in [0, 1].
inline uint32_t dyn8_nearest(float m, const Dyn8Tables& t) {
  int32_t c = int32_t(std::bit_cast<uint32_t>(m) >> kCellShift) - kCellBase;
  c = c < 0 ? 0 : c;
  const int32_t b = t.cell[c];
  return uint32_t(b) + (m > t.thr[b] ? 1u : 0u);
}

// ---- per-block encoders: v = feed(i); write codes; residual (unless F == G) = v − decoded ------------------

template <Feed F>
void none_block(const float* __restrict g, float* __restrict r, int64_t n, uint8_t* __restrict out) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = feed<F>(g, r, i);
    std::memcpy(out + 4 * i, &v, 4);
  }
  if constexpr (F != Feed::G) std::fill(r, r + n, 0.0f);
}

inline uint16_t half_bits(float x) { return std::bit_cast<uint16_t>(static_cast<_Float16>(x)); }
inline float half_value(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }

template <Feed F>
void fp16_block(const float* __restrict g, float* __restrict r, int64_t n, uint8_t* __restrict out) {
  int64_t i = 0;
#if defined(__F16C__)
  const __m256 lo = _mm256_set1_ps(-kHalfMax), hi = _mm256_set1_ps(kHalfMax);
  for (; i + 8 <= n; i += 8) {
    __m256 v;
    if constexpr (F == Feed::G)
      v = _mm256_loadu_ps(g + i);
    else if constexpr (F == Feed::GR)
      v = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_loadu_ps(r + i));
    else
      v = _mm256_add_ps(_mm256_loadu_ps(r + i), _mm256_loadu_ps(r + i));
    const __m128i h = _mm256_cvtps_ph(_mm256_min_ps(_mm256_max_ps(v, lo), hi), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
    if constexpr (F != Feed::G) _mm256_storeu_ps(r + i, _mm256_sub_ps(v, _mm256_cvtph_ps(h)));
  }
#endif
  for (; i < n; ++i) {  // the same rounding (to nearest even) as the vector loop
    const float v = feed<F>(g, r, i);
    const uint16_t h = half_bits(std::clamp(v, -kHalfMax, kHalfMax));
    std::memcpy(out + 2 * i, &h, 2);
    if constexpr (F != Feed::G) r[i] = v - half_value(h);
  }
}

// residual = v − dec, with dec already rounded to fp32 (a separate pass over the block, so the compiler
// cannot fuse the product that made dec into the subtraction): decoded + residual == v exactly whenever
// v − dec is representable, as it is when dec is within a factor 2 of v.
template <Feed F>
void leave_residual(const float* __restrict g, float* __restrict r, int64_t n, const float* __restrict dec) {
  for (int64_t i = 0; i < n; ++i) r[i] = feed<F>(g, r, i) - dec[i];
}

// Int8 step: value = code · step · unlift. Tiny (denormal) scales are lifted by 2^100 so 127 / scale stays
// finite and the step keeps its precision; the last multiply by 2^-100 rounds once.
struct Int8Step {
  float step, unlift;
  explicit Int8Step(float scale)
      : step((scale < kTinyScale ? scale * kLift : scale) / 127.0f), unlift(scale < kTinyScale ? 1.0f / kLift : 1.0f) {}
};

// code = round(v · 127 / scale) in [-127, 127].
template <Feed F>
void int8_block(const float* __restrict g, float* __restrict r, int64_t n, float scale, uint8_t* __restrict out) {
  const float lift = scale < kTinyScale ? kLift : 1.0f;
  const float inv = scale > 0 ? 127.0f / (scale * lift) : 0.0f;
  const Int8Step s(scale);
  alignas(64) float dec[kBlock];
  for (int64_t i = 0; i < n; ++i) {
    const float v = feed<F>(g, r, i);
    int32_t c = static_cast<int32_t>(std::nearbyint(v * lift * inv));
    c = c < -127 ? -127 : (c > 127 ? 127 : c);
    out[i] = static_cast<uint8_t>(c);
    if constexpr (F != Feed::G) dec[i] = static_cast<float>(c) * s.step * s.unlift;
  }
  if constexpr (F != Feed::G) leave_residual<F>(g, r, n, dec);
}

template <Feed F>
void dyn8_block(const float* __restrict g, float* __restrict r, int64_t n, float scale, uint8_t* __restrict out,
                const Dyn8Tables& t) {
  const float lift = scale < kTinyScale ? kLift : 1.0f;
  const float inv = scale > 0 ? 1.0f / (scale * lift) : 0.0f;
  alignas(64) float dec[kBlock];
  for (int64_t i = 0; i < n; ++i) {
    const float v = feed<F>(g, r, i);
    float m = std::fabs(v) * lift * inv;
    m = m < 1.0f ? m : 1.0f;
    const uint32_t code = dyn8_nearest(m, t) | ((std::bit_cast<uint32_t>(v) >> 24) & 0x80u);
    out[i] = static_cast<uint8_t>(code);
    if constexpr (F != Feed::G) dec[i] = t.value[code] * scale;
  }
  if constexpr (F != Feed::G) leave_residual<F>(g, r, n, dec);
}

template <Feed F>
void dense_encode_feed(Compress c, const float* g, float* r, int64_t n, uint8_t* out) {
  const int64_t nb = num_blocks(n);
  const Dyn8Tables& t = dyn8_tables();
  std::atomic<int64_t> first_bad{n};  // the first non-finite element: the least any thread found
  parallel_for(nb, n > kParallelMin ? 1 : nb + 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i0 = b * kBlock, m = std::min(kBlock, n - i0);
      const float* gb = F == Feed::RR ? nullptr : g + i0;
      float* rb = F == Feed::G ? nullptr : r + i0;
      const uint32_t mx = max_abs_bits<F>(gb, rb, m);
      if (mx >= kInfBits) {  // reported after the loop; this block is left as it was
        const int64_t at = i0 + first_non_finite<F>(gb, rb, m);
        for (int64_t was = first_bad.load(); at < was && !first_bad.compare_exchange_weak(was, at);) {}
        continue;
      }
      const float scale = std::bit_cast<float>(mx);
      switch (c) {
        case Compress::None: none_block<F>(gb, rb, m, out + 4 * i0); break;
        case Compress::Fp16: fp16_block<F>(gb, rb, m, out + 2 * i0); break;
        case Compress::Int8:
          std::memcpy(out + 4 * b, &scale, 4);
          int8_block<F>(gb, rb, m, scale, out + 4 * nb + i0);  // the codes follow all the scales
          break;
        case Compress::Dyn8:
          std::memcpy(out + 4 * b, &scale, 4);
          dyn8_block<F>(gb, rb, m, scale, out + 4 * nb + i0, t);
          break;
        case Compress::Threshold: break;  // rejected by dense_encode
      }
    }
  });
  if (first_bad < n)
    fail("gradient compression: non-finite value {} at element {}", feed<F>(g, r, first_bad.load()), first_bad.load());
}

// ---- per-block decoders: out[i] = decoded (Add: out[i] += decoded) --------------------------------------

template <bool Add>
inline void put(float* out, int64_t i, float x) {
  if constexpr (Add)
    out[i] += x;
  else
    out[i] = x;
}

// Blocks [b0, b1) of the message (restrict-qualified parameters: the decoders vectorize).
template <bool Add>
void decode_blocks(Compress c, const uint8_t* __restrict in, int64_t n, float* __restrict out, const Dyn8Tables& t,
                   int64_t b0, int64_t b1) {
  const int64_t nb = num_blocks(n);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * kBlock, m = std::min(kBlock, n - i0);
    float* __restrict o = out + i0;
    float scale = 0;
    if (c == Compress::Int8 || c == Compress::Dyn8) std::memcpy(&scale, in + 4 * b, 4);
    switch (c) {
      case Compress::None: {
        const uint8_t* __restrict p = in + 4 * i0;
        for (int64_t i = 0; i < m; ++i) {
          float x;
          std::memcpy(&x, p + 4 * i, 4);
          put<Add>(o, i, x);
        }
        break;
      }
      case Compress::Fp16: {
        const uint8_t* __restrict p = in + 2 * i0;
        int64_t i = 0;
#if defined(__F16C__)
        for (; i + 8 <= m; i += 8) {
          __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
          if constexpr (Add) x = _mm256_add_ps(_mm256_loadu_ps(o + i), x);
          _mm256_storeu_ps(o + i, x);
        }
#endif
        for (; i < m; ++i) {
          uint16_t h;
          std::memcpy(&h, p + 2 * i, 2);
          put<Add>(o, i, half_value(h));
        }
        break;
      }
      case Compress::Int8: {
        const int8_t* __restrict p = reinterpret_cast<const int8_t*>(in + 4 * nb + i0);
        const Int8Step s(scale);
        for (int64_t i = 0; i < m; ++i) put<Add>(o, i, static_cast<float>(p[i]) * s.step * s.unlift);
        break;
      }
      case Compress::Dyn8: {
        const uint8_t* __restrict p = in + 4 * nb + i0;
        for (int64_t i = 0; i < m; ++i) put<Add>(o, i, t.value[p[i]] * scale);
        break;
      }
      case Compress::Threshold: break;
    }
  }
}

template <bool Add>
void dense_decode_blocks(Compress c, const uint8_t* __restrict in, int64_t n, float* __restrict out) {
  const int64_t nb = num_blocks(n);
  const Dyn8Tables& t = dyn8_tables();
  parallel_for(nb, n > kParallelMin ? 1 : nb + 1,
               [&](int64_t b0, int64_t b1) { decode_blocks<Add>(c, in, n, out, t, b0, b1); });
}

void require_dense(Compress c, const char* what) {
  if (c == Compress::Threshold)
    throw std::invalid_argument(std::string(what) + ": threshold is not a dense codec (use threshold_encode)");
}

// ---- threshold ------------------------------------------------------------------------------------------

// |v| values sampled to choose an adaptive τ: about 32 expected above τ (the count sent then varies by
// some ±20% from call to call), at least 4096 and at most 65536.
constexpr double kSampleAbove = 32;
constexpr int64_t kSampleMin = 4096, kSampleMax = 65536;

// τ such that about density·n of the |v| reach it: the (1 − density) quantile of a stratified sample
// (one value from each of S equal strata, at a fixed low-discrepancy offset: no aliasing with row
// lengths, and the same positions every call for the same n), never below the smallest normal float.
template <Feed F>
float adaptive_tau(const float* g, const float* r, int64_t n, double density) {
  const double want = density > 0 ? std::ceil(kSampleAbove / density) : double(kSampleMax);
  const int64_t S = std::min(n, static_cast<int64_t>(std::clamp(want, double(kSampleMin), double(kSampleMax))));
  if (S == 0) return FLT_MIN;
  std::vector<float> s(S);
  for (int64_t j = 0; j < S; ++j) {
    const double u = double(j) * 0.6180339887498949 - std::floor(double(j) * 0.6180339887498949);
    const int64_t i = std::min(n - 1, static_cast<int64_t>((double(j) + u) * double(n) / double(S)));
    const float v = feed<F>(g, r, i);
    if (!std::isfinite(v)) fail("gradient compression: non-finite value {} at element {}", v, i);
    s[j] = std::fabs(v);
  }
  // The sample value with round(density·S) values at or above it (at least the largest one).
  const double above = std::max(1.0, std::round(std::min(density, 1.0) * double(S)));
  const int64_t k = S - static_cast<int64_t>(above);
  std::nth_element(s.begin(), s.begin() + k, s.end());
  return std::max(s[k], FLT_MIN);
}

// Appends this block's entries (indices from i0) and leaves the residual.
template <Feed F>
void threshold_block(const float* __restrict g, float* __restrict r, int64_t n, float tau, uint32_t i0,
                     std::vector<uint32_t>& part) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = feed<F>(g, r, i);
    if (std::fabs(v) >= tau) part.push_back((i0 + uint32_t(i)) << 1 | (std::signbit(v) ? 1u : 0u));
  }
  if constexpr (F != Feed::G)
    for (int64_t i = 0; i < n; ++i) {
      const float v = feed<F>(g, r, i);
      r[i] = v - (std::fabs(v) >= tau ? std::copysign(tau, v) : 0.0f);
    }
}

template <Feed F>
float threshold_encode_feed(const float* g, float* r, int64_t n, float tau, double density,
                            std::vector<uint32_t>& out) {
  if (!(tau > 0)) tau = adaptive_tau<F>(g, r, n, density);
  const int64_t nb = num_blocks(n);
  const int nt_max = n > kParallelMin ? omp_get_max_threads() : 1;
  std::vector<std::vector<uint32_t>> parts(nt_max);  // one per thread: its contiguous run of blocks
  int64_t first_bad = n;
  // Not parallel_for: each thread appends to its own part, and the parts are joined in thread order.
#pragma omp parallel num_threads(nt_max) reduction(min : first_bad)
  {
    const auto [b0, b1] = static_range(nb, omp_get_thread_num(), omp_get_num_threads());
    std::vector<uint32_t>& part = parts[omp_get_thread_num()];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i0 = b * kBlock, m = std::min(kBlock, n - i0);
      const float* gb = F == Feed::RR ? nullptr : g + i0;
      float* rb = F == Feed::G ? nullptr : r + i0;
      if (max_abs_bits<F>(gb, rb, m) >= kInfBits) {
        first_bad = std::min(first_bad, i0 + first_non_finite<F>(gb, rb, m));
        break;
      }
      threshold_block<F>(gb, rb, m, tau, uint32_t(i0), part);
    }
  }
  if (first_bad < n)
    fail("gradient compression: non-finite value {} at element {}", feed<F>(g, r, first_bad), first_bad);
  size_t count = 0;
  for (const auto& p : parts) count += p.size();
  out.reserve(out.size() + 2 + count);
  out.push_back(std::bit_cast<uint32_t>(tau));
  out.push_back(static_cast<uint32_t>(count));
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return tau;
}

}  // namespace

// ---- public entry points ------------------------------------------------------------------------------------

size_t dense_bytes(Compress c, int64_t n) {
  require_dense(c, "dense_bytes");
  switch (c) {
    case Compress::None: return size_t(4 * n);
    case Compress::Fp16: return size_t(2 * n);
    default: return size_t(n + 4 * num_blocks(n));
  }
}

void dense_encode(Compress c, const float* g, float* residual, int64_t n, uint8_t* out) {
  require_dense(c, "dense_encode");
  if (!residual)
    dense_encode_feed<Feed::G>(c, g, nullptr, n, out);
  else if (residual == g)
    dense_encode_feed<Feed::RR>(c, nullptr, residual, n, out);
  else
    dense_encode_feed<Feed::GR>(c, g, residual, n, out);
}

void dense_decode_add(Compress c, const uint8_t* in, int64_t n, float* acc) {
  require_dense(c, "dense_decode_add");
  dense_decode_blocks<true>(c, in, n, acc);
}

void dense_decode(Compress c, const uint8_t* in, int64_t n, float* out) {
  require_dense(c, "dense_decode");
  dense_decode_blocks<false>(c, in, n, out);
}

float dyn8_value(uint8_t code) { return dyn8_tables().value[code]; }

uint8_t dyn8_code(float a) {
  const float abs = std::fabs(a);
  const float m = abs <= 1.0f ? abs : 1.0f;  // NaN too: std::min would pass it to the table lookup
  return static_cast<uint8_t>(dyn8_nearest(m, dyn8_tables()) | (std::signbit(a) ? 0x80u : 0u));
}

float threshold_encode(const float* g, float* residual, int64_t n, float tau, double density,
                       std::vector<uint32_t>& out) {
  if (n >= (int64_t(1) << 31)) throw std::length_error("threshold_encode: n must be below 2^31");
  if (!residual) return threshold_encode_feed<Feed::G>(g, nullptr, n, tau, density, out);
  if (residual == g) return threshold_encode_feed<Feed::RR>(nullptr, residual, n, tau, density, out);
  return threshold_encode_feed<Feed::GR>(g, residual, n, tau, density, out);
}

size_t threshold_decode_add(const uint32_t* msg, int64_t n, float* acc) {
  const float tau = std::bit_cast<float>(msg[0]);
  const int64_t count = msg[1];
  const uint32_t* e = msg + 2;
  std::atomic<bool> bad{false};
  // Indices in a message are distinct, so the scatter has no write conflicts.
  parallel_for(count, kParallelMin + 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t i = e[j] >> 1;
      if (i >= n) {
        bad.store(true, std::memory_order_relaxed);
        continue;
      }
      acc[i] += (e[j] & 1) ? -tau : tau;
    }
  });
  if (bad.load()) throw std::out_of_range("threshold_decode_add: index beyond n (corrupt or mismatched message)");
  return size_t(2 + count);
}

}  // namespace manylm
