// kernels_test.cc — element-wise kernels against their scalar definitions: exp_fast against std::exp
// across its range, activations and their derivatives, column sums, the GEMM seam against the
// reference loops across transposes, odd sizes and leading dimensions.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/gemm.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/vmath.h"

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

TEST(Gemm, BackendsMatchReferenceAcrossShapes) {
  CounterRng r{2, 2};
  for (GemmBackend backend : {GemmBackend::Blas, GemmBackend::OneDnn}) {
  set_gemm_backend(backend);
  SCOPED_TRACE(gemm_backend_name(backend));
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {3, 5, 7}, {20, 650, 650}, {33, 17, 129}}) {
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        const int64_t lda = (ta == Trans::N ? K : M) + 3, ldb = (tb == Trans::N ? N : K) + 1, ldc = N + 2;
        std::vector<float> A((ta == Trans::N ? M : K) * lda), B((tb == Trans::N ? K : N) * ldb), C(M * ldc), C2;
        for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
        for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + 99999) - 0.5f;
        for (size_t i = 0; i < C.size(); ++i) C[i] = r.uniform(i + 7777777) - 0.5f;
        C2 = C;
        gemm(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C.data(), ldc);
        gemm_reference<float>(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C2.data(), ldc);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) ASSERT_NEAR(C[i * ldc + j], C2[i * ldc + j], 1e-4 * std::sqrt(double(K)));
      }
  }
  }
  set_gemm_backend(GemmBackend::Blas);
}

}  // namespace
}  // namespace manylm
