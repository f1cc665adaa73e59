// dropout_test.cc — dropout masks from the counter-based generator: every element equals its definition
// dropout_keep(seed, step, site, position); masks do not change with the thread count or when the lanes
// are split among workers (as MPI ranks will); and the statistics a dropout generator needs: keep rate
// mean and variance, no correlation between neighbouring positions, steps or sites.
#include "core/dropout.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/engine.h"
#include "core/parallel.h"
#include "test_util.h"

namespace manylm {
namespace {

std::vector<uint8_t> mask_of(const DropoutSite& s, int64_t T, int64_t B, int64_t D, int64_t lane0, int64_t lanes) {
  std::vector<float> x(static_cast<size_t>(T * B * D), 1.0f);
  std::vector<uint8_t> m(x.size());
  dropout_forward(s, T, B, D, lane0, lanes, x.data(), m.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], m[i] ? 1.0f / (1.0f - s.p) : 0.0f);
  return m;
}

TEST(Dropout, EveryElementIsItsDefinition) {
  for (bool variational : {false, true}) {
    const DropoutSite s{123, 45, 2, 0.35f, variational};
    const int64_t T = 5, B = 6, D = 13;  // D not a multiple of 4: Philox blocks straddle rows
    auto m = mask_of(s, T, B, D, 0, B);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t d = 0; d < D; ++d) ASSERT_EQ(m[(t * B + b) * D + d], dropout_keep(s, t, b, D, d, B) ? 1 : 0);
    if (variational) {  // one mask per window: every step alike
      for (int64_t t = 1; t < T; ++t) ASSERT_TRUE(std::equal(m.begin(), m.begin() + B * D, m.begin() + t * B * D));
    }
  }
}

TEST(Dropout, SameMasksForOneAndTwoThreads) {
  const DropoutSite s{7, 1000, 1, 0.5f, false};
  const int64_t T = 35, B = 20, D = 650;  // ptb-medium's shape, large enough for the parallel path
  const int keep = num_threads();
  auto masks_with = [&](int threads) {
    const Engine e(test_util::engine_options(threads));  // sizes the team the masks are made by
    return mask_of(s, T, B, D, 0, B);
  };
  auto one = masks_with(1);
  auto two = masks_with(2);
  const Engine restore(test_util::engine_options(keep));
  EXPECT_EQ(one, two);
}

TEST(Dropout, SameMasksWhenLanesAreSplitAmongWorkers) {
  const DropoutSite s{7, 3, 0, 0.3f, false};
  const int64_t T = 4, B = 8, D = 33;
  auto whole = mask_of(s, T, B, D, 0, B);
  auto lo = mask_of(s, T, B / 2, D, 0, B), hi = mask_of(s, T, B / 2, D, B / 2, B);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) {
        const auto& part = b < B / 2 ? lo : hi;
        ASSERT_EQ(whole[(t * B + b) * D + d], part[(t * (B / 2) + b % (B / 2)) * D + d]);
      }
}

double correlation(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= a.size(), mb /= b.size();
  double c = 0, va = 0, vb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    c += (a[i] - ma) * (b[i] - mb);
    va += (a[i] - ma) * (a[i] - ma);
    vb += (b[i] - mb) * (b[i] - mb);
  }
  return c / std::sqrt(va * vb);
}

TEST(Dropout, KeepRateAndIndependence) {
  const int64_t T = 20, B = 50, D = 1000;  // 10^6 elements
  for (float p : {0.1f, 0.5f, 0.65f}) {
    const DropoutSite s{99, 17, 1, p, false};
    auto m = mask_of(s, T, B, D, 0, B);
    const double n = static_cast<double>(m.size());
    double kept = 0;
    for (auto v : m) kept += v;
    const double rate = kept / n, sd = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(rate, 1 - p, 5 * sd) << "p=" << p;
    // Variance of the kept count over 1000 blocks of 1000 elements: binomial, p(1−p)·1000.
    std::vector<double> blocks(1000, 0);
    for (size_t i = 0; i < m.size(); ++i) blocks[i / 1000] += m[i];
    double mean = 0, var = 0;
    for (double b : blocks) mean += b / 1000;
    for (double b : blocks) var += (b - mean) * (b - mean) / 999;
    EXPECT_NEAR(var / (p * (1 - p) * 1000), 1.0, 0.2) << "p=" << p;
    const double lim = 5 / std::sqrt(n);
    std::vector<uint8_t> shifted(m.begin() + 1, m.end()), head(m.begin(), m.end() - 1);
    EXPECT_LT(std::abs(correlation(head, shifted)), lim) << "neighbouring positions";
    auto next_step = mask_of({99, 18, 1, p, false}, T, B, D, 0, B);
    EXPECT_LT(std::abs(correlation(m, next_step)), lim) << "consecutive steps";
    auto other_site = mask_of({99, 17, 2, p, false}, T, B, D, 0, B);
    EXPECT_LT(std::abs(correlation(m, other_site)), lim) << "neighbouring sites";
    auto other_seed = mask_of({100, 17, 1, p, false}, T, B, D, 0, B);
    EXPECT_LT(std::abs(correlation(m, other_seed)), lim) << "seeds";
  }
}

}  // namespace
}  // namespace manylm
