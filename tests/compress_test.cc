// compress_test.cc — the gradient codecs against their definitions: fp16 against the compiler's
// _Float16 conversion, int8 and dyn8 within their rounding bounds, dyn8_code against a brute-force search
// over all 256 codes, error feedback conserving the sum over many steps for every lossy scheme, edge values,
// rejection of non-finite input, the same bytes for any thread count, and threshold messages by hand.
#include <gtest/gtest.h>

#include <omp.h>
#include "test_util.h"

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "mpi/compress.h"

namespace manylm {
namespace {

constexpr Compress kDense[] = {Compress::None, Compress::Fp16, Compress::Int8, Compress::Dyn8};

// Standard normal numbers (Box–Muller on the counter-based generator), times `scale`.
std::vector<float> gaussian(int64_t n, uint64_t seed, float scale = 1.0f) {
  CounterRng r{seed, 7};
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = 1.0 - r.uniform(2 * i), u2 = r.uniform(2 * i + 1);
    x[i] = scale * static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  return x;
}

// Values of widely spread magnitudes: sign · 10^(-lo_exp · u), u uniform in [0, 1).
std::vector<float> spread(int64_t n, uint64_t seed, double lo_exp) {
  CounterRng r{seed, 9};
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] =
        (r.uniform(2 * i) < 0.5f ? -1.0f : 1.0f) * static_cast<float>(std::pow(10.0, -lo_exp * r.uniform(2 * i + 1)));
  return x;
}

std::vector<float> decode(Compress c, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(n, NAN);
  dense_decode(c, bytes.data(), n, out.data());
  return out;
}

// Encodes v with a zero residual; returns the decoded values, leaves the residual in `res`.
std::vector<float> round_trip(Compress c, const std::vector<float>& v, std::vector<float>& res) {
  const int64_t n = static_cast<int64_t>(v.size());
  std::vector<uint8_t> bytes(dense_bytes(c, n));
  res.assign(n, 0.0f);
  dense_encode(c, v.data(), res.data(), n, bytes.data());
  return decode(c, bytes, n);
}

float block_scale(const std::vector<float>& v, int64_t b) {
  float s = 0;
  for (int64_t i = b * kBlock; i < std::min<int64_t>((b + 1) * kBlock, v.size()); ++i) s = std::max(s, std::abs(v[i]));
  return s;
}

using test_util::user_error;

// dyn8 band of a magnitude a in (1e-6, 1]: E with a in [10^-(E+1), 10^-E]; its F = 6 − E fraction bits.
int dyn8_band(double a) {
  int E = 0;
  while (E < 6 && a <= std::pow(10.0, -(E + 1))) ++E;
  return E;
}
// Largest |nearest − a| for a in band E: half a step of 10^-E · 0.9 / 2^F.
double dyn8_half_step(int E) { return 0.45 * std::pow(10.0, -E) / double(1 << (6 - E)); }

// Largest |decoded − v| a codec may leave for v in a block whose scale (max |v|) is s; the 2^-149 allows one
// rounding to the denormal grid.
double error_bound(Compress c, float v, float s) {
  const double a = std::abs(double(v));
  switch (c) {
    case Compress::None: return 0;
    case Compress::Fp16: return a > 65504 ? a - 65504 : a >= 0x1p-14 ? 0x1p-11 * a : 0x1p-25;
    case Compress::Int8: return s / 254.0 * (1 + 1e-6) + 0x1p-149;
    case Compress::Dyn8: {
      const double m = s > 0 ? a / s : 0;
      return s * (m <= 1e-6 ? 5e-7 : dyn8_half_step(dyn8_band(m))) * (1 + 1e-5) + 0x1p-149;
    }
    case Compress::Threshold: break;
  }
  return 0;
}

TEST(CompressNames, ParseNameRoundTripAndErrors) {
  for (Compress c : {Compress::None, Compress::Fp16, Compress::Int8, Compress::Dyn8, Compress::Threshold})
    EXPECT_EQ(parse_compress(compress_name(c)), c) << compress_name(c);
  const std::string msg = user_error([] { parse_compress("zip"); });
  EXPECT_NE(msg.find("--grad-compress"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'zip'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("none, fp16, int8, dyn8, threshold"), std::string::npos) << msg;
  EXPECT_THROW(parse_compress("Int8"), UserError);
  EXPECT_THROW(parse_compress(""), UserError);
}

TEST(CompressDense, BytesAndBlockLayout) {
  EXPECT_EQ(dense_bytes(Compress::None, 10), 40u);
  EXPECT_EQ(dense_bytes(Compress::Fp16, 10), 20u);
  EXPECT_EQ(dense_bytes(Compress::Int8, 0), 0u);
  EXPECT_EQ(dense_bytes(Compress::Int8, 1), 5u);
  EXPECT_EQ(dense_bytes(Compress::Dyn8, kBlock), size_t(kBlock + 4));
  EXPECT_EQ(dense_bytes(Compress::Int8, kBlock + 1), size_t(kBlock + 1 + 8));
  EXPECT_THROW(dense_bytes(Compress::Threshold, 10), std::invalid_argument);
  // Int8 and dyn8: every block's fp32 scale first, then one code per value.
  const int64_t n = kBlock + 3;
  std::vector<float> v(n, 0.0f), res;
  v[0] = -2.0f, v[1] = 1.0f, v[kBlock] = 0.5f, v[kBlock + 2] = -0.25f;
  for (Compress c : {Compress::Int8, Compress::Dyn8}) {
    std::vector<uint8_t> bytes(dense_bytes(c, n));
    res.assign(n, 0.0f);
    dense_encode(c, v.data(), res.data(), n, bytes.data());
    float s0, s1;
    std::memcpy(&s0, bytes.data(), 4);
    std::memcpy(&s1, bytes.data() + 4, 4);
    EXPECT_EQ(s0, 2.0f) << compress_name(c);
    EXPECT_EQ(s1, 0.5f) << compress_name(c);
    const uint8_t* codes = bytes.data() + 8;
    if (c == Compress::Int8) {
      EXPECT_EQ(int8_t(codes[0]), -127);
      EXPECT_EQ(int8_t(codes[1]), 64);  // round(0.5 · 127) = 63.5 → 64 (to even)
      EXPECT_EQ(int8_t(codes[kBlock]), 127);
      EXPECT_EQ(int8_t(codes[kBlock + 2]), -64);
    } else {
      EXPECT_EQ(codes[0], 0xFF);  // sign, magnitude 127 = 1.0
      EXPECT_EQ(codes[kBlock], 0x7F);
      EXPECT_EQ(codes[kBlock + 2], 0x80 | dyn8_code(0.5f));
      EXPECT_EQ(codes[2], 0);
    }
  }
}

TEST(CompressDense, Fp16IsRoundToNearestEvenAndSaturates) {
  std::vector<float> v = spread(3 * kBlock + 13, 1, 9.0);              // 1e-9 .. 1: normals and half denormals
  for (size_t i = 0; i < v.size(); i += 7) v[i] *= 6.0e4f;             // up to the top of the half range
  v[5] = 70000.0f, v[6] = -1.0e30f, v[7] = 65519.0f, v[8] = 65520.0f;  // beyond the range: saturate
  v[v.size() - 1] = 1.0e6f, v[v.size() - 2] = -65520.0f;               // and in the scalar tail of the last block
  std::vector<float> res;
  const std::vector<float> d = round_trip(Compress::Fp16, v, res);
  for (size_t i = 0; i < v.size(); ++i) {
    const float want = static_cast<float>(static_cast<_Float16>(std::clamp(v[i], -65504.0f, 65504.0f)));
    ASSERT_EQ(d[i], want) << "i=" << i << " v=" << v[i];
    const double a = std::abs(double(v[i]));
    if (a <= 65504) {
      ASSERT_LE(std::abs(d[i] - double(v[i])), a >= 0x1p-14 ? 0x1p-11 * a : 0x1p-25) << "v=" << v[i];
    }
    ASSERT_EQ(res[i], v[i] - d[i]) << "residual i=" << i;
  }
  EXPECT_EQ(d[5], 65504.0f);
  EXPECT_EQ(d[6], -65504.0f);
  EXPECT_EQ(res[5], 70000.0f - 65504.0f);  // the excess is kept, not lost
  EXPECT_EQ(d[8], 65504.0f);
  EXPECT_EQ(d[v.size() - 1], 65504.0f);
  EXPECT_EQ(d[v.size() - 2], -65504.0f);
}

TEST(CompressDense, Int8WithinHalfAStepPerBlock) {
  std::vector<float> v = gaussian(5 * kBlock + 77, 2);
  for (int64_t i = 2 * kBlock; i < 3 * kBlock; ++i) v[i] *= 1e-30f;  // blocks of very different scale
  for (int64_t i = 3 * kBlock; i < 4 * kBlock; ++i) v[i] *= 1e30f;
  std::vector<float> res;
  const std::vector<float> d = round_trip(Compress::Int8, v, res);
  for (size_t i = 0; i < v.size(); ++i) {
    const double s = block_scale(v, i / kBlock);
    ASSERT_LE(std::abs(d[i] - double(v[i])), s / 254 * (1 + 1e-6)) << "i=" << i;
    ASSERT_NEAR(res[i], v[i] - d[i], 1e-6 * s / 254) << "i=" << i;
  }
}

TEST(CompressDense, Dyn8TableIsTheDynamicTreeType) {
  EXPECT_EQ(dyn8_value(0x00), 0.0f);
  EXPECT_EQ(dyn8_value(0x80), 0.0f);
  EXPECT_EQ(dyn8_value(0x7F), 1.0f);
  EXPECT_EQ(dyn8_value(0xFF), -1.0f);
  EXPECT_EQ(dyn8_value(0x01), 1e-6f);                   // six zeros, the indicator, no fraction bits
  EXPECT_FLOAT_EQ(dyn8_value(0x40), 0.1f + 0.9f / 64);  // no zeros: 6 fraction bits, k = 0
  EXPECT_EQ(dyn8_value(0x3F), 0.1f);                    // top of band 1
  EXPECT_FLOAT_EQ(dyn8_value(0x02), 1e-5f * 0.55f);     // band 5, k = 0 of 2
  for (int k = 1; k < 128; ++k) {
    ASSERT_GT(dyn8_value(k), dyn8_value(k - 1)) << "magnitudes increase with the code, k=" << k;
    ASSERT_EQ(dyn8_value(0x80 | k), -dyn8_value(k));
    ASSERT_EQ(dyn8_value(dyn8_code(dyn8_value(k))), dyn8_value(k)) << "every value is its own code, k=" << k;
  }
  // Beyond the range (and NaN, which the encoder rejects before coding) saturate at ±1 instead of indexing
  // outside the table.
  EXPECT_EQ(dyn8_code(7.0f), dyn8_code(1.0f));
  EXPECT_EQ(dyn8_code(std::nanf("")) & 0x7F, dyn8_code(1.0f));
  for (int E = 0; E <= 6; ++E) {  // the top of every band is 10^-E
    const int top = (1 << (7 - E)) - 1;
    EXPECT_FLOAT_EQ(dyn8_value(top), float(std::pow(10.0, -E))) << "E=" << E;
  }
}

TEST(CompressDense, Dyn8CodeIsTheNearestOfAll256) {
  // Brute force: the smallest |value(k) − a| over all codes, compared by distance (0x00 and 0x80 tie).
  auto check = [](float a) {
    double best = INFINITY;
    for (int k = 0; k < 256; ++k) best = std::min(best, std::abs(double(dyn8_value(k)) - a));
    const double got = std::abs(double(dyn8_value(dyn8_code(a))) - a);
    ASSERT_EQ(got, best) << "a=" << a << " code=" << int(dyn8_code(a));
  };
  CounterRng r{3, 3};
  for (int i = 0; i < 200000; ++i) {
    const float u = r.uniform(3 * i), s = r.uniform(3 * i + 1) < 0.5f ? -1.0f : 1.0f;
    check(s * u);                                                                // uniform in [-1, 1)
    check(s * static_cast<float>(std::pow(10.0, -8.0 * r.uniform(3 * i + 2))));  // every band
  }
  for (int k = 0; k < 127; ++k) {  // around every midpoint, to the ulp
    const float mid = static_cast<float>(0.5 * (double(dyn8_value(k)) + double(dyn8_value(k + 1))));
    for (float a :
         {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 2.0f), std::nextafter(std::nextafter(mid, 2.0f), 2.0f)}) {
      check(a);
      check(-a);
    }
  }
  for (float a : {0.0f, -0.0f, 1.0f, -1.0f, FLT_MIN, 1e-45f, 4.99e-7f, 5.01e-7f}) check(a);
}

TEST(CompressDense, Dyn8WithinHalfAStepOfItsBand) {
  // At scale 1: |nearest − a| ≤ 10^-E · 0.45 / 2^F in band E; relative error ≤ 4.5 / 2^F.
  CounterRng r{4, 4};
  for (int i = 0; i < 100000; ++i) {
    const double a = std::pow(10.0, -7.0 * r.uniform(i));
    const double q = dyn8_value(dyn8_code(float(a)));
    if (a <= 1e-6) {
      ASSERT_LE(std::abs(q - a), 5e-7 * (1 + 1e-6)) << "a=" << a;
      continue;
    }
    const int E = dyn8_band(a);
    ASSERT_LE(std::abs(q - a), dyn8_half_step(E) * (1 + 1e-5)) << "a=" << a << " E=" << E;
    ASSERT_LE(std::abs(q - a) / a, 4.5 / double(1 << (6 - E)) * (1 + 1e-5)) << "a=" << a;
  }
  // Through the codec: the same bounds on v / scale, per block.
  std::vector<float> v = spread(3 * kBlock + 5, 5, 6.0), res;
  for (int64_t i = kBlock; i < 2 * kBlock; ++i) v[i] *= 3e-20f;
  const std::vector<float> d = round_trip(Compress::Dyn8, v, res);
  for (size_t i = 0; i < v.size(); ++i) {
    const double s = block_scale(v, i / kBlock), a = std::abs(double(v[i])) / s;
    const double bound = a <= 1e-6 ? 5e-7 : dyn8_half_step(dyn8_band(a));
    ASSERT_LE(std::abs(d[i] - double(v[i])), s * bound * (1 + 1e-5)) << "i=" << i;
    ASSERT_NEAR(res[i], v[i] - d[i], 1e-6 * s * bound) << "i=" << i;
  }
}

// Error feedback: after every step, Σ decoded(sent) + residual = Σ g, and the residual stays one step's
// rounding error (bounded), for every dense scheme.
TEST(CompressDense, ResidualConservesTheSumOverSteps) {
  const int64_t n = 2 * kBlock + 333;
  for (Compress c : kDense) {
    SCOPED_TRACE(compress_name(c));
    std::vector<float> res(n, 0.0f), acc(n, 0.0f);
    std::vector<double> sum(n, 0.0), sum_abs(n, 0.0);
    std::vector<uint8_t> bytes(dense_bytes(c, n));
    for (int step = 0; step < 20; ++step) {
      std::vector<float> g = gaussian(n, 100 + step, std::pow(2.0f, float(step % 5) - 2));
      for (int64_t i = 0; i < n; i += 97) g[i] *= 1e-4f;  // some small values, which fp16 and dyn8 flush
      for (int64_t i = 0; i < n; ++i) sum[i] += g[i], sum_abs[i] += std::abs(g[i]);
      dense_encode(c, g.data(), res.data(), n, bytes.data());
      dense_decode_add(c, bytes.data(), n, acc.data());
    }
    double worst = 0, worst_res = 0;
    for (int64_t i = 0; i < n; ++i) {
      worst = std::max(worst, std::abs(double(acc[i]) + res[i] - sum[i]) / (sum_abs[i] + 1e-30));
      worst_res = std::max(worst_res, double(std::abs(res[i])));
    }
    EXPECT_LT(worst, 1e-5) << "relative to Σ|g| per element";
    if (c == Compress::None) {
      EXPECT_EQ(worst_res, 0.0) << "none leaves nothing behind";
    }
    EXPECT_LT(worst_res, 0.5) << "the residual is one step's rounding, not an accumulation";
  }
}

TEST(CompressDense, EdgeValues) {
  for (Compress c : kDense) {
    SCOPED_TRACE(compress_name(c));
    std::vector<float> res;
    // All zeros: zeros out, zero residual.
    std::vector<float> z(kBlock + 5, 0.0f);
    std::vector<float> d = round_trip(c, z, res);
    for (size_t i = 0; i < z.size(); ++i) ASSERT_TRUE(d[i] == 0 && res[i] == 0) << i;
    // A block of one repeated value: int8 within an ulp, dyn8 and fp16 (representable) exact.
    for (float x : {0.375f, -3.0f}) {
      std::vector<float> e(kBlock, x);
      d = round_trip(c, e, res);
      for (size_t i = 0; i < e.size(); ++i) {
        ASSERT_NEAR(d[i], x, c == Compress::Int8 ? 4e-7 * std::abs(x) : 0.0) << i;
        ASSERT_EQ(d[i] + res[i], x) << i;
      }
    }
    // Denormals (a block of them, and a block where they sit beside 1.0): finite, within bounds, conserved.
    std::vector<float> dn = gaussian(kBlock + 17, 6, 1e-39f);
    dn[3] = FLT_TRUE_MIN, dn[4] = -FLT_TRUE_MIN, dn[kBlock + 1] = 1.0f;
    d = round_trip(c, dn, res);
    for (size_t i = 0; i < dn.size(); ++i) {
      ASSERT_TRUE(std::isfinite(d[i]) && std::isfinite(res[i])) << i;
      ASSERT_EQ(d[i] + res[i], dn[i]) << i;
      ASSERT_LE(std::abs(double(d[i]) - dn[i]), error_bound(c, dn[i], block_scale(dn, i / kBlock))) << i;
    }
    // n = 1 and n not a multiple of kBlock: every value decodes, nothing past n is written.
    for (int64_t n : {int64_t(1), int64_t(2), kBlock - 1, kBlock + 1, 3 * kBlock + 999}) {
      std::vector<float> v = gaussian(n, 7 + n), r(n, 0.0f);
      std::vector<uint8_t> bytes(dense_bytes(c, n) + 16, 0xAB);
      dense_encode(c, v.data(), r.data(), n, bytes.data());
      for (size_t k = dense_bytes(c, n); k < bytes.size(); ++k)
        ASSERT_EQ(bytes[k], 0xAB) << "wrote past the end, n=" << n;
      std::vector<float> out(n + 4, -7.0f);
      dense_decode(c, bytes.data(), n, out.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_LE(std::abs(double(out[i]) - v[i]), error_bound(c, v[i], block_scale(v, i / kBlock))) << "n=" << n;
        ASSERT_NEAR(out[i] + r[i], v[i], c == Compress::Dyn8 ? 1e-7 * std::abs(v[i]) : 0.0) << "n=" << n << " i=" << i;
      }
      for (int64_t i = n; i < n + 4; ++i) ASSERT_EQ(out[i], -7.0f) << "decoded past the end, n=" << n;
    }
  }
}

TEST(CompressDense, WithoutResidualAndWithAliasedResidual) {
  const int64_t n = kBlock + 100;
  const std::vector<float> g = gaussian(n, 8), r0 = gaussian(n, 9, 0.01f);
  for (Compress c : kDense) {
    SCOPED_TRACE(compress_name(c));
    std::vector<uint8_t> a(dense_bytes(c, n)), b(a.size());
    // No residual: v = g.
    dense_encode(c, g.data(), nullptr, n, a.data());
    std::vector<float> zero(n, 0.0f);
    dense_encode(c, g.data(), zero.data(), n, b.data());
    EXPECT_EQ(a, b);
    // g and residual one array: v = 2r, then the residual is left in place.
    std::vector<float> copy = r0, r = r0, same = r0;
    dense_encode(c, copy.data(), r.data(), n, a.data());
    dense_encode(c, same.data(), same.data(), n, b.data());
    EXPECT_EQ(a, b);
    EXPECT_EQ(r, same);
  }
}

TEST(CompressDense, NonFiniteInputIsRejected) {
  const int64_t n = 3 * kBlock;
  for (Compress c : kDense) {
    SCOPED_TRACE(compress_name(c));
    std::vector<uint8_t> bytes(dense_bytes(c, n));
    for (float bad : {INFINITY, -INFINITY, NAN}) {
      std::vector<float> g(n, 0.5f), r(n, 0.0f);
      g[5000] = bad, g[9000] = bad;
      const std::string msg = user_error([&] { dense_encode(c, g.data(), r.data(), n, bytes.data()); });
      EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
      EXPECT_NE(msg.find("element 5000"), std::string::npos) << "the first one is named: " << msg;
    }
    // Finite g and residual whose sum overflows.
    std::vector<float> g(n, 3e38f), r(n, 3e38f);
    const std::string msg = user_error([&] { dense_encode(c, g.data(), r.data(), n, bytes.data()); });
    EXPECT_NE(msg.find("non-finite value inf at element 0"), std::string::npos) << msg;
  }
  for (float tau : {0.1f, 0.0f}) {
    std::vector<float> g(1000, 0.5f), r(1000, 0.0f);
    std::vector<uint32_t> out;
    g[321] = NAN;
    const std::string msg = user_error([&] { threshold_encode(g.data(), r.data(), 1000, tau, 0.01, out); });
    EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
  }
}

TEST(CompressDense, SameBytesForAnyThreadCount) {
  const int64_t n = 77 * kBlock + 123;  // above the parallel cut-off
  const std::vector<float> g = gaussian(n, 10), r0 = gaussian(n, 11, 0.1f);
  const int saved = omp_get_max_threads();
  for (Compress c : kDense) {
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<std::vector<float>> res;
    for (int threads : {1, 3}) {
      omp_set_num_threads(threads);
      bytes.emplace_back(dense_bytes(c, n));
      res.push_back(r0);
      dense_encode(c, g.data(), res.back().data(), n, bytes.back().data());
    }
    EXPECT_EQ(bytes[0], bytes[1]) << compress_name(c);
    EXPECT_EQ(res[0], res[1]) << compress_name(c);
  }
  std::vector<std::vector<uint32_t>> msgs;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> r = r0;
    msgs.emplace_back();
    threshold_encode(g.data(), r.data(), n, 0.0f, 0.01, msgs.back());
  }
  EXPECT_EQ(msgs[0], msgs[1]);
  omp_set_num_threads(saved);
}

TEST(CompressThreshold, MessageByHandAndDecodeAddsTau) {
  const std::vector<float> g = {0.5f, -2.0f, 0.1f, 3.0f, -0.7f, 0.6f};
  std::vector<float> r(6, 0.0f);
  r[2] = 0.55f;                      // 0.1 + 0.55 reaches τ through the residual
  std::vector<uint32_t> out = {42};  // appended to, not replaced
  EXPECT_EQ(threshold_encode(g.data(), r.data(), 6, 0.6f, 0.5, out), 0.6f);
  const std::vector<uint32_t> want = {42,    std::bit_cast<uint32_t>(0.6f), 5, 1 << 1 | 1, 2 << 1, 3 << 1, 4 << 1 | 1,
                                      5 << 1};
  EXPECT_EQ(out, want);
  const std::vector<float> res_want = {0.5f, -2.0f + 0.6f, 0.1f + 0.55f - 0.6f, 3.0f - 0.6f, -0.7f + 0.6f, 0.0f};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(r[i], res_want[i]) << i;
  std::vector<float> acc = {1, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(threshold_decode_add(out.data() + 1, 7, acc.data()), 7u);
  const std::vector<float> acc_want = {1, 1 - 0.6f, 1 + 0.6f, 1 + 0.6f, 1 - 0.6f, 1 + 0.6f, 1};
  EXPECT_EQ(acc, acc_want);
  EXPECT_THROW(threshold_decode_add(out.data() + 1, 5, acc.data()), std::out_of_range) << "index 5 with n = 5";
  // Without a residual: the same message, nothing kept.
  std::vector<uint32_t> bare;
  threshold_encode(g.data(), nullptr, 6, 0.6f, 0.5, bare);
  EXPECT_EQ(bare, (std::vector<uint32_t>{std::bit_cast<uint32_t>(0.6f), 4, 1 << 1 | 1, 3 << 1, 4 << 1 | 1, 5 << 1}));
}

TEST(CompressThreshold, ResidualConservesTheSumFixedAndAdaptive) {
  const int64_t n = 50000;
  for (float tau : {0.5f, 0.0f}) {
    SCOPED_TRACE(tau > 0 ? "fixed tau" : "adaptive tau");
    std::vector<float> res(n, 0.0f), acc(n, 0.0f);
    std::vector<double> sum(n, 0.0), sum_abs(n, 0.0);
    size_t sent = 0;
    for (int step = 0; step < 20; ++step) {
      const std::vector<float> g = gaussian(n, 200 + step, 0.3f);
      for (int64_t i = 0; i < n; ++i) sum[i] += g[i], sum_abs[i] += std::abs(g[i]);
      std::vector<uint32_t> msg;
      const float used = threshold_encode(g.data(), res.data(), n, tau, 0.01, msg);
      if (tau > 0) {
        ASSERT_EQ(used, tau);
      }
      ASSERT_EQ(threshold_decode_add(msg.data(), n, acc.data()), msg.size());
      sent += msg[1];
    }
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
      worst = std::max(worst, std::abs(double(acc[i]) + res[i] - sum[i]) / (sum_abs[i] + 1e-30));
    EXPECT_LT(worst, 1e-5) << "relative to Σ|g| per element";
    EXPECT_GT(sent, 0u);
  }
}

TEST(CompressThreshold, AdaptiveTauSendsAboutTheRequestedDensity) {
  const int64_t n = 1 << 20;
  const std::vector<float> g = gaussian(n, 12, 1e-3f);
  for (double density : {0.1, 0.01, 0.001}) {
    std::vector<float> r(n, 0.0f);
    std::vector<uint32_t> msg;
    const float tau = threshold_encode(g.data(), r.data(), n, 0.0f, density, msg);
    const double count = msg[1], want = density * double(n);
    EXPECT_GT(count, want / 2) << "density " << density << " tau " << tau;
    EXPECT_LT(count, want * 2) << "density " << density << " tau " << tau;
    EXPECT_EQ(msg.size(), 2 + msg[1]);
    for (size_t j = 3; j < msg.size(); ++j) ASSERT_LT(msg[j - 1] >> 1, msg[j] >> 1) << "indices ascend";
  }
  // All zeros: nothing sent, τ the smallest normal.
  std::vector<float> z(n, 0.0f), r(n, 0.0f);
  std::vector<uint32_t> msg;
  EXPECT_EQ(threshold_encode(z.data(), r.data(), n, 0.0f, 0.01, msg), FLT_MIN);
  EXPECT_EQ(msg, (std::vector<uint32_t>{std::bit_cast<uint32_t>(FLT_MIN), 0}));
}

}  // namespace
}  // namespace manylm
