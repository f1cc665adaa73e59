// kernels_test.cc — element-wise kernels against their scalar definitions: exp_fast against std::exp
// across its range, activations and their derivatives, column sums, the GEMM seam against the
// reference loops across transposes, odd sizes and leading dimensions.
#include "core/kernels.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "core/engine.h"
#include "core/gemm.h"
#include "core/io.h"
#include "core/packed_gemm.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/vmath.h"
#include "test_util.h"

namespace manylm {
namespace {

TEST(VMath, ExpFastWithinFourUlp) {
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.00173f) {
    const double want = std::exp(double(x));
    const double got = exp_fast(x);
    worst = std::max(worst, std::abs(got - want) / want);
  }
  EXPECT_LT(worst, 4 * 6e-8) << "max relative error";
  EXPECT_FLOAT_EQ(exp_fast(-200.0f), std::exp(-87.0f));  // clamped, finite and tiny
  EXPECT_TRUE(std::isinf(exp_fast(100.0f)));
  EXPECT_EQ(exp_fast(0.0f), 1.0f);
}

TEST(Kernels, ActivationsMatchScalarDefinitions) {
  CounterRng r{1, 1};
  for (Activation a : {Activation::Sigmoid, Activation::Tanh, Activation::Relu}) {
    for (int64_t n : {1, 7, 64, 100003}) {  // the last takes the multi-threaded path
      std::vector<float> y(n), h, d(n, 1.5f);
      for (int64_t i = 0; i < n; ++i) y[i] = 12.0f * r.uniform(i) - 6.0f;
      h = y;
      activation_forward(a, h.data(), n);
      activation_backward(a, h.data(), d.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = activate<double>(a, y[i]);
        ASSERT_NEAR(h[i], want, 3e-7) << activation_name(a) << " y=" << y[i];
        ASSERT_NEAR(d[i], 1.5 * activate_grad_from_output<double>(a, h[i]), 1e-6) << activation_name(a);
      }
    }
  }
}

TEST(Kernels, ColsumAndBias) {
  const int64_t R = 333, C = 77;
  std::vector<float> m(R * C), dst(C, 1.0f), b1(C), b2(C);
  for (int64_t i = 0; i < R * C; ++i) m[i] = static_cast<float>(i % 13) - 6;
  for (int64_t j = 0; j < C; ++j) b1[j] = j, b2[j] = -2.0f * j;
  colsum_add(dst.data(), m.data(), R, C);
  for (int64_t j = 0; j < C; ++j) {
    double s = 1;
    for (int64_t r = 0; r < R; ++r) s += m[r * C + j];
    ASSERT_EQ(dst[j], s);
  }
  add_bias_rows(m.data(), R, C, b1.data(), b2.data());
  EXPECT_EQ(m[5 * C + 3], static_cast<float>((5 * C + 3) % 13) - 6 - 3);
}

// The gradient norm behind clipping: float blocks summed in double, against a plain double sum, for odd
// lengths, 1 and 2 threads, and a spread of magnitudes.
TEST(Kernels, SumSquaresMatchesDoubleSum) {
  CounterRng r{8, 8};
  for (int64_t n : {int64_t{1}, int64_t{1023}, int64_t{1025}, int64_t{100003}, int64_t{3000001}}) {
    std::vector<float> x(static_cast<size_t>(n));
    double want = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      x[i] = (r.uniform(i) - 0.5f) * std::exp2(static_cast<float>(i % 17) - 8.0f);
      want += double(x[i]) * double(x[i]);
    }
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      EXPECT_NEAR(sum_squares(x.data(), n), want, 1e-6 * want) << n << " elements, " << threads << " threads";
    }
  }
  omp_set_num_threads(1);
}

// --average-from's running mean against the mean in double: 40 samples of 100,003 values (the parallel path),
// the first sample copied exactly.
TEST(Kernels, RunningMeanMatchesTheMeanInDouble) {
  CounterRng r{9, 9};
  const int64_t n = 100003, samples = 40;
  std::vector<float> mean(static_cast<size_t>(n), 7.0f), x(static_cast<size_t>(n));
  std::vector<double> sum(static_cast<size_t>(n), 0.0);
  omp_set_num_threads(2);
  for (int64_t k = 1; k <= samples; ++k) {
    for (int64_t i = 0; i < n; ++i) {
      x[i] = (r.uniform(k * n + i) - 0.5f) * 0.2f + 0.01f * static_cast<float>(k);
      sum[i] += x[i];
    }
    running_mean(mean.data(), x.data(), n, k);
    if (k == 1) {
      ASSERT_EQ(0, std::memcmp(mean.data(), x.data(), x.size() * sizeof(float)));
    }
  }
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(mean[i] - sum[i] / samples));
  EXPECT_LT(worst, 2e-7) << "the mean is of magnitude 0.2-0.5: a few float ulps";
  EXPECT_GT(worst, 0.0) << "float arithmetic, not a double copy";
  omp_set_num_threads(1);
}

// parallel_for hands out every index exactly once, in static_range's ranges (one per team thread, or one
// range on the calling thread below min_parallel or inside a parallel region); parallel_sum adds the ranges'
// sums in thread order.
TEST(Parallel, ForCoversEachIndexOnceAndSumIsInThreadOrder) {
  const int keep = num_threads();
  for (int threads : {1, 2, 3}) {
    const Engine e(test_util::engine_options(threads));
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{1000}}) {
      for (int64_t min_parallel : {int64_t{0}, n + 1}) {
        std::vector<int> hits(static_cast<size_t>(n), 0);
        std::vector<std::pair<int64_t, int64_t>> ranges(static_cast<size_t>(threads), {-1, -1});
        parallel_for(n, min_parallel, [&](int64_t b, int64_t end) {
          ranges[static_cast<size_t>(omp_get_thread_num())] = {b, end};
          for (int64_t i = b; i < end; ++i) ++hits[static_cast<size_t>(i)];
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << n << " " << i;
        const bool team = n > 0 && n >= min_parallel && threads > 1;
        for (int t = 0; team && t < threads; ++t) {
          const auto [b, end] = static_range(n, t, threads);
          if (b < end) EXPECT_EQ(ranges[static_cast<size_t>(t)], std::make_pair(b, end)) << n << " thread " << t;
        }
      }
      // Sums that differ in the last bit by order: the team's result is the thread-order sum of its ranges.
      std::vector<double> x(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 1.0 / static_cast<double>(i + 3);
      auto range_sum = [&](int64_t b, int64_t end) {
        double s = 0;
        for (int64_t i = b; i < end; ++i) s += x[static_cast<size_t>(i)];
        return s;
      };
      double want = 0;
      for (int t = 0; t < threads; ++t) {
        const auto [b, end] = static_range(n, t, threads);
        want += range_sum(b, end);
      }
      EXPECT_EQ(parallel_sum(n, 0, range_sum), threads > 1 ? want : range_sum(0, n)) << n;
    }
  }
  const Engine restore(test_util::engine_options(keep));
}

TEST(Gemm, BackendsMatchReferenceAcrossShapes) {
  CounterRng r{2, 2};
  for (GemmBackend backend : {GemmBackend::Blas, GemmBackend::OneDnn}) {
    const Engine e(test_util::engine_options(0, backend));
    SCOPED_TRACE(name_of(backend));
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {3, 5, 7}, {20, 650, 650}, {33, 17, 129}}) {
      for (Trans ta : {Trans::N, Trans::T})
        for (Trans tb : {Trans::N, Trans::T}) {
          const int64_t lda = (ta == Trans::N ? K : M) + 3, ldb = (tb == Trans::N ? N : K) + 1, ldc = N + 2;
          std::vector<float> A((ta == Trans::N ? M : K) * lda), B((tb == Trans::N ? K : N) * ldb), C(M * ldc), C2;
          for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
          for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + 99999) - 0.5f;
          for (size_t i = 0; i < C.size(); ++i) C[i] = r.uniform(i + 7777777) - 0.5f;
          C2 = C;
          gemm(e, ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C.data(), ldc);
          gemm_reference<float>(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C2.data(), ldc);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) ASSERT_NEAR(C[i * ldc + j], C2[i * ldc + j], 1e-4 * std::sqrt(double(K)));
        }
    }
  }
}

// Auto: the first call of a signature measures the variants and writes the plan; later calls (and a later
// process, here a fresh load of the file) reuse the choice; the result is the chosen variant's product; a
// damaged plan is ignored with a warning and rewritten.
TEST(GemmAuto, MeasuresOnceKeepsThePlanOnDiskAndComputesTheProduct) {
  const std::string path = testing::TempDir() + "manylm-gemm-plan-test.json";
  std::remove(path.c_str());
  EngineOptions o = test_util::engine_options(0, GemmBackend::Auto);
  o.plan_path = path;
  auto e = std::make_unique<Engine>(o);
  CounterRng r{6, 6};
  const int64_t M = 20, N = 96, K = 40;
  std::vector<float> A(M * K), B(N * K), C(M * N), R(M * N);
  for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
  for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + 1000) - 0.5f;
  for (size_t i = 0; i < C.size(); ++i) C[i] = R[i] = r.uniform(i + 9000) - 0.5f;
  EXPECT_EQ(e->auto_choice(Trans::N, Trans::T, M, N, K, K, K, N, 1.0f, 1.0f), "");
  gemm(*e, Trans::N, Trans::T, M, N, K, 1.0f, A.data(), K, B.data(), K, 1.0f, C.data(),
       N);  // beta 1: C restored between trials
  gemm_reference<float>(Trans::N, Trans::T, M, N, K, 1.0f, A.data(), K, B.data(), K, 1.0f, R.data(), N);
  for (size_t i = 0; i < C.size(); ++i) ASSERT_NEAR(C[i], R[i], 1e-4);
  const std::string choice = e->auto_choice(Trans::N, Trans::T, M, N, K, K, K, N, 1.0f, 1.0f);
  EXPECT_NE(choice, "");
  ASSERT_TRUE(path_exists(path));
  const std::string saved = read_file(path, "plan");
  EXPECT_NE(saved.find(choice), std::string::npos);
  for (const char* b : {"onednn/team", "blas/team", "libxsmm/team"})  // every variant was timed
    EXPECT_NE(saved.find(std::string("\"") + b + "\":"), std::string::npos) << b;
  gemm(*e, Trans::N, Trans::T, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(),
       N);  // another signature (beta 0)
  e.reset();
  e = std::make_unique<Engine>(o);  // as a new process would: read back from disk
  EXPECT_EQ(e->auto_choice(Trans::N, Trans::T, M, N, K, K, K, N, 1.0f, 1.0f), choice);
  EXPECT_NE(e->auto_choice(Trans::N, Trans::T, M, N, K, K, K, N, 1.0f, 0.0f), "");
  write_file_atomic(path, "{ not json");
  e.reset();
  e = std::make_unique<Engine>(o);
  testing::internal::CaptureStderr();
  EXPECT_EQ(e->auto_choice(Trans::N, Trans::T, M, N, K, K, K, N, 1.0f, 1.0f), "");
  gemm(*e, Trans::N, Trans::T, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(read_file(path, "plan").find("manylm-gemm-plan-1"), std::string::npos);
  std::remove(path.c_str());
}

// manylm's packed kernel for the recurrent products: every row-tile height, partial panels, both packings,
// beta 0 (C never read: NaN inside) and 1, panel ranges split over the threads as the time loop does.
TEST(PackedGemm, MatchesReferenceForEveryTileAndPanelRange) {
  CounterRng r{4, 4};
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 16, 1},
                         {5, 17, 3},
                         {6, 33, 64},
                         {7, 2600, 650},
                         {20, 650, 2600},
                         {33, 40, 13},
                         {13, 31, 7}})
    for (Trans tb : {Trans::N, Trans::T})
      for (float beta : {0.0f, 1.0f}) {
        SCOPED_TRACE(testing::Message() << M << "x" << N << "x" << K << (tb == Trans::N ? " N" : " T") << " beta "
                                        << beta);
        const int64_t lda = K + 3, ldb = (tb == Trans::N ? N : K) + 2, ldc = N + 5;
        std::vector<float> A(M * lda), B((tb == Trans::N ? K : N) * ldb), C(M * ldc), R(M * ldc);
        for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
        for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + 99999) - 0.5f;
        for (size_t i = 0; i < C.size(); ++i)
          C[i] = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : r.uniform(i + 555) - 0.5f;
        for (size_t i = 0; i < C.size(); ++i) R[i] = beta == 0.0f ? 0.0f : C[i];
        const std::vector<float> C0 = C;
        gemm_reference<float>(Trans::N, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
        PackedB W;
        W.pack(tb, B.data(), ldb, K, N);
        ASSERT_EQ(W.panels(), (N + 15) / 16);
#pragma omp parallel num_threads(2)
        {
          const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
          const int64_t half = W.panels() / 2, p0 = nt == 1 ? 0 : (tid == 0 ? 0 : half),
                        p1 = nt == 1 || tid == 1 ? W.panels() : half;
          gemm_packed(M, A.data(), lda, W, p0, p1, beta, C.data(), ldc);
        }
        for (int64_t i = 0; i < M; ++i) {
          for (int64_t j = 0; j < N; ++j) ASSERT_NEAR(C[i * ldc + j], R[i * ldc + j], 2e-6 * K) << i << "," << j;
          for (int64_t j = N; j < ldc; ++j)  // beyond N: untouched (NaN stays NaN)
            ASSERT_EQ(std::memcmp(&C[i * ldc + j], &C0[i * ldc + j], 4), 0) << i << "," << j;
        }
      }
}

TEST(Bf16, RoundsToNearestEven) {
  auto round = [](float x) {
    uint16_t b;
    to_bf16(&x, 1, &b);
    return from_bf16(b);
  };
  EXPECT_EQ(round(1.0f), 1.0f);
  EXPECT_EQ(round(1.0f + 1.0f / 256), 1.0f);                       // halfway: to even (down)
  EXPECT_EQ(round(1.0f + 3.0f / 256), 1.0f + 4.0f / 256);          // halfway: to even (up)
  EXPECT_EQ(round(1.0f + 1.0f / 256 + 1e-6f), 1.0f + 2.0f / 256);  // above halfway: up
  EXPECT_EQ(round(-3.0f), -3.0f);
  EXPECT_TRUE(std::isinf(round(INFINITY)));
  EXPECT_TRUE(std::isnan(round(NAN)));
  CounterRng r{5, 5};
  for (int i = 0; i < 100000; ++i) {  // within half an ulp of bf16 (8 significant bits)
    const float x = (r.uniform(i) - 0.5f) * std::ldexp(1.0f, i % 60 - 30);
    ASSERT_LE(std::abs(round(x) - x), std::abs(x) * (1.0f / 256) + 1e-38f) << x;
  }
}

// bf16 products are exact products of the bf16-rounded operands, accumulated in fp32: compare with the
// reference on rounded operands in double, across transposes, leading dimensions, alpha and beta.
TEST(Bf16, GemmIsTheProductOfRoundedOperands) {
  if (!__builtin_cpu_supports("avx512bf16")) GTEST_SKIP() << "no AVX512_BF16";
  const Engine e(test_util::engine_options(0, GemmBackend::OneDnn, Precision::Bf16));
  ASSERT_EQ(e.precision(), Precision::Bf16);
  CounterRng r{3, 3};
  auto rounded = [](std::vector<float> v) {
    std::vector<uint16_t> b(v.size());
    to_bf16(v.data(), static_cast<int64_t>(v.size()), b.data());
    for (size_t i = 0; i < v.size(); ++i) v[i] = from_bf16(b[i]);
    return v;
  };
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {3, 5, 7}, {20, 650, 650}, {33, 17, 129}}) {
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        const int64_t lda = (ta == Trans::N ? K : M) + 3, ldb = (tb == Trans::N ? N : K) + 1, ldc = N + 2;
        std::vector<float> A((ta == Trans::N ? M : K) * lda), B((tb == Trans::N ? K : N) * ldb), C(M * ldc);
        for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
        for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + 99999) - 0.5f;
        for (size_t i = 0; i < C.size(); ++i) C[i] = r.uniform(i + 7777777) - 0.5f;
        const std::vector<float> Ar = rounded(A), Br = rounded(B);
        const std::vector<double> Ad(Ar.begin(), Ar.end()), Bd(Br.begin(), Br.end());
        std::vector<double> Cd(C.begin(), C.end());
        gemm(e, ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C.data(), ldc);
        gemm_reference<double>(ta, tb, M, N, K, 0.7, Ad.data(), lda, Bd.data(), ldb, 0.3, Cd.data(), ldc);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j)
            ASSERT_NEAR(C[i * ldc + j], Cd[i * ldc + j], 2e-6 * std::sqrt(double(K)) + 1e-6);
      }
  }
}

// The parameter block is read from the engine's bf16 copy until the engine is told it changed; declaring
// another block makes the copy stale too.
TEST(Bf16, ConstantsCopyIsRemadeOnlyWhenTold) {
  if (!__builtin_cpu_supports("avx512bf16")) GTEST_SKIP() << "no AVX512_BF16";
  const Engine e(test_util::engine_options(0, GemmBackend::OneDnn, Precision::Bf16));
  std::vector<float> W(64 * 32, 0.5f), x(4 * 32, 1.0f), y(4 * 64);
  e.use_constants(W.data(), W.size());
  gemm(e, Trans::N, Trans::T, 4, 64, 32, 1.0f, x.data(), 32, W.data(), 32, 0.0f, y.data(), 64);
  EXPECT_EQ(y[0], 16.0f);
  std::fill(W.begin(), W.end(), 0.25f);  // an update the engine has not been told about
  gemm(e, Trans::N, Trans::T, 4, 64, 32, 1.0f, x.data(), 32, W.data(), 32, 0.0f, y.data(), 64);
  EXPECT_EQ(y[0], 16.0f) << "the copy is not being used";
  e.constants_changed();
  gemm(e, Trans::N, Trans::T, 4, 64, 32, 1.0f, x.data(), 32, W.data(), 32, 0.0f, y.data(), 64);
  EXPECT_EQ(y[0], 8.0f);
  std::fill(W.begin(), W.end(), 0.125f);
  e.use_constants(W.data(), W.size());  // the same block again: nothing changes
  gemm(e, Trans::N, Trans::T, 4, 64, 32, 1.0f, x.data(), 32, W.data(), 32, 0.0f, y.data(), 64);
  EXPECT_EQ(y[0], 8.0f);
  std::vector<float> W2(W);
  e.use_constants(W2.data(), W2.size());  // another block: its own copy
  gemm(e, Trans::N, Trans::T, 4, 64, 32, 1.0f, x.data(), 32, W2.data(), 32, 0.0f, y.data(), 64);
  EXPECT_EQ(y[0], 4.0f);
}

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {
// Where the team's threads go: never two ranks' threads on one CPU, never more threads than CPUs pinned.
TEST(PinPlan, PlacesEachRanksThreadsOnItsOwnCpus) {
  const std::vector<int> node = {0, 1, 2, 3, 4, 5, 6, 7};
  using V = std::vector<int>;
  EXPECT_EQ(pin_plan(node, 4, -1, -1, 8), (V{0, 1, 2, 3}));               // one process, no launcher
  EXPECT_EQ(pin_plan(node, 4, 0, 1, 8), (V{0, 1, 2, 3}));                 // the node's only rank
  EXPECT_EQ(pin_plan(node, 4, 1, 2, 8), (V{4, 5, 6, 7}));                 // rank 1 of 2 sharing the node
  EXPECT_EQ(pin_plan(node, 2, 3, 4, 8), (V{6, 7}));                       // rank 3 of 4
  EXPECT_EQ(pin_plan(node, 2, 2, -1, 8), (V{4, 5}));                      // Slurm without --ntasks-per-node
  EXPECT_EQ(pin_plan(node, 4, 1, 4, 8), V{});                             // 4 ranks × 4 threads on 8 CPUs: stacked
  EXPECT_EQ(pin_plan(node, 4, 2, -1, 8), V{});                            // this rank's CPUs would run past the node
  EXPECT_EQ(pin_plan(node, 9, -1, -1, 8), V{});                           // more threads than CPUs
  EXPECT_EQ(pin_plan({8, 9, 10, 11}, 4, 5, 8, 16), (V{8, 9, 10, 11}));    // bound by the launcher to 4 cores
  EXPECT_EQ(pin_plan({8, 9, 10, 11, 12, 13, 14, 15}, 4, 5, 8, 16), V{});  // a socket shared by unknown ranks
  EXPECT_EQ(pin_plan(node, 8, 1, 2, 8), V{});  // 2 unbound ranks, each with a thread per CPU: stacked
  EXPECT_EQ(pin_plan(node, 8, 0, 2, 8), V{});
  EXPECT_EQ(pin_plan({16, 17, 18, 19}, 2, 0, -1, 64), (V{16, 17}));  // srun -c4 without --ntasks-per-node
}
}  // namespace
}  // namespace manylm
