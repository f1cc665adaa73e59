// gemm_test.cc — every GEMM backend (libxsmm, blis, onednn, and blas through the seam) against
// gemm_reference<double> computed from the same float inputs: all four transposes, odd sizes, leading
// dimensions longer than the rows, alpha and beta (beta = 0 over a C full of NaN), one and two threads, and
// calls made from inside a parallel region, each thread on its own column slice of C.
// Tolerance per element: 1e-5 · (|alpha| Σ|a||b| + |beta c|). Not a benchmark.
#include "core/gemm.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "core/engine.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "test_util.h"

namespace manylm {
namespace {

using test_util::engine_options;

// A backend by name (gemm_with), or — seam — the blas backend as callers reach it: through gemm() on an
// engine built with it.
struct Backend {
  const char* name;
  GemmBackend backend;
  bool seam = false;
  void fn(const Engine& e, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) const {
    if (seam)
      gemm(e, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      gemm_with(e, backend, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
};

constexpr float kPad = 12345.0f;  // the columns between N and ldc must keep it

// One product's operands, with padded leading dimensions, and its reference on a sample of C's rows:
// P = op(A)·op(B) and S = |op(A)|·|op(B)| in double (gemm_reference on the rows of op(A) and op(B)ᵀ).
struct Problem {
  Trans ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  std::vector<float> A, B, C0;  // A (M,K) or (K,M); B (K,N) or (N,K); C0 (M, ldc)
  std::vector<int64_t> rows;    // rows of C checked
  std::vector<double> P, S;     // (rows, N)

  Problem(Trans ta_, Trans tb_, int64_t M_, int64_t N_, int64_t K_, int row_step = 1)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_) {
    lda = (ta == Trans::N ? K : M) + 3;
    ldb = (tb == Trans::N ? N : K) + 5;
    ldc = N + 2;
    const CounterRng r{7,
                       static_cast<uint64_t>(M * 1000003 + N * 1009 + K) * 4 + (ta == Trans::T) * 2 + (tb == Trans::T)};
    A.resize((ta == Trans::N ? M : K) * lda);
    B.resize((tb == Trans::N ? K : N) * ldb);
    C0.resize(M * ldc);
    for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
    for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + (1ull << 40)) - 0.5f;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) C0[i * ldc + j] = j < N ? r.uniform(i * ldc + j + (2ull << 40)) - 0.5f : kPad;
    for (int64_t i = 0; i < M; i += row_step) rows.push_back(i);
    if (rows.back() != M - 1) rows.push_back(M - 1);
    const int64_t R = static_cast<int64_t>(rows.size());
    std::vector<double> a(R * K), b(N * K), aa(R * K), bb(N * K);  // rows of op(A); op(B)ᵀ
    for (int64_t q = 0; q < R; ++q)
      for (int64_t k = 0; k < K; ++k) a[q * K + k] = ta == Trans::N ? A[rows[q] * lda + k] : A[k * lda + rows[q]];
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) b[j * K + k] = tb == Trans::N ? B[k * ldb + j] : B[j * ldb + k];
    for (size_t i = 0; i < a.size(); ++i) aa[i] = std::abs(a[i]);
    for (size_t i = 0; i < b.size(); ++i) bb[i] = std::abs(b[i]);
    P.resize(R * N);
    S.resize(R * N);
    gemm_reference<double>(Trans::N, Trans::T, R, N, K, 1.0, a.data(), K, b.data(), K, 0.0, P.data(), N);
    gemm_reference<double>(Trans::N, Trans::T, R, N, K, 1.0, aa.data(), K, bb.data(), K, 0.0, S.data(), N);
  }

  // C as handed to the backend: C0, or NaN everywhere but the padding when beta = 0.
  std::vector<float> initial_c(float beta) const {
    std::vector<float> C = C0;
    if (beta == 0.0f)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
    return C;
  }

  ::testing::AssertionResult check(const std::vector<float>& C, float alpha, float beta) const {
    int bad = 0;
    std::string first;
    for (size_t q = 0; q < rows.size(); ++q) {
      const int64_t i = rows[q];
      for (int64_t j = 0; j < ldc; ++j) {
        const float got = C[i * ldc + j];
        bool ok;
        double want, tol = 0;
        if (j >= N) {
          want = kPad;
          ok = got == kPad;
        } else {
          const double c0 = C0[i * ldc + j];
          want = alpha * P[q * N + j] + (beta == 0.0f ? 0.0 : beta * c0);
          tol = 1e-5 * (std::abs(alpha) * S[q * N + j] + std::abs(beta * c0));
          ok = std::abs(got - want) <= tol;  // false for NaN
        }
        if (!ok && bad++ == 0) first = fmt::format("C({},{}) = {}, want {} ± {}", i, j, got, want, tol);
      }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << bad << " wrong elements; first: " << first;
  }

  std::string what(float alpha, float beta) const {
    return fmt::format("ta={} tb={} M={} N={} K={} alpha={} beta={}", ta == Trans::N ? "N" : "T",
                       tb == Trans::N ? "N" : "T", M, N, K, alpha, beta);
  }
};

// The small shapes: mixes of 1, 7, 20, 33, 130, and a few that cross LIBXSMM's 64 × 64 × 256 tiles.
const std::vector<std::tuple<int64_t, int64_t, int64_t>>& small_shapes() {
  static const std::vector<std::tuple<int64_t, int64_t, int64_t>> s{
      {1, 1, 1},     {1, 7, 20},    {7, 1, 33},   {20, 33, 7},   {33, 130, 1},   {130, 20, 33},
      {7, 130, 130}, {130, 33, 20}, {33, 7, 130}, {130, 130, 7}, {65, 129, 300}, {20, 130, 513}};
  return s;
}

// Restores the thread count the test started with (an Engine sizes the process's team).
struct ThreadsGuard {
  int saved = num_threads();
  ~ThreadsGuard() { Engine restore(engine_options(saved)); }
};

void check_backend(const Backend& be) {
  ThreadsGuard guard;
  for (auto [M, N, K] : small_shapes())
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        const Problem p(ta, tb, M, N, K);
        for (int threads : {1, 2}) {
          const Engine e(engine_options(threads, be.backend));
          for (float alpha : {1.0f, 0.5f})
            for (float beta : {0.0f, 1.0f, 0.3f}) {
              std::vector<float> C = p.initial_c(beta);
              be.fn(e, ta, tb, M, N, K, alpha, p.A.data(), p.lda, p.B.data(), p.ldb, beta, C.data(), p.ldc);
              ASSERT_TRUE(p.check(C, alpha, beta)) << be.name << " " << p.what(alpha, beta) << " threads=" << threads;
            }
        }
      }
}

TEST(GemmBackends, LibxsmmMatchesReference) { check_backend({"libxsmm", GemmBackend::Libxsmm}); }

TEST(GemmBackends, BlisMatchesReference) {
  std::string why;
  if (!gemm_backend_available(GemmBackend::Blis, &why)) GTEST_SKIP() << why;
  check_backend({"blis", GemmBackend::Blis});
}

TEST(GemmBackends, OneDnnMatchesReference) { check_backend({"onednn", GemmBackend::OneDnn}); }

TEST(GemmBackends, BlasThroughSeamMatchesReference) { check_backend({"blas", GemmBackend::Blas, true}); }

std::vector<Backend> backends() {
  std::vector<Backend> v{
      {"libxsmm", GemmBackend::Libxsmm}, {"blas", GemmBackend::Blas, true}, {"onednn", GemmBackend::OneDnn}};
  if (gemm_backend_available(GemmBackend::Blis)) v.push_back({"blis", GemmBackend::Blis});
  return v;
}

// The training shapes: the forward product of a 2600-wide layer, and a large one for the weight gradient.
TEST(GemmBackends, LargeShapesMatchReference) {
  ThreadsGuard guard;
  const Engine e(engine_options(2));
  const Problem forward(Trans::N, Trans::T, 20, 2600, 650);
  const Problem large(Trans::T, Trans::N, 700, 650, 2600, /*row_step=*/5);  // every 5th row checked
  for (const Problem* p : {&forward, &large})
    for (const Backend& be : backends())
      for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.5f, 0.3f}}) {
        std::vector<float> C = p->initial_c(beta);
        be.fn(e, p->ta, p->tb, p->M, p->N, p->K, alpha, p->A.data(), p->lda, p->B.data(), p->ldb, beta, C.data(),
              p->ldc);
        EXPECT_TRUE(p->check(C, alpha, beta)) << be.name << " " << p->what(alpha, beta);
      }
}

// manylm's own scheduling: inside a parallel region each thread multiplies into its own columns of C,
// and the backend must run on the calling thread alone, safely beside the others.
TEST(GemmBackends, ConcurrentCallsInsideParallelRegion) {
  ThreadsGuard guard;
  const Engine e(engine_options(2));
  for (const Backend& be : backends())
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        const Problem p(ta, tb, 130, 257, 300);
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.5f, 0.3f}, std::pair{1.0f, 1.0f}}) {
          std::vector<float> C = p.initial_c(beta);
          int team = 0;
#pragma omp parallel
          {
            const int nt = omp_get_num_threads();
            const auto [c0, c1] = static_range(p.N, omp_get_thread_num(), nt);
            if (omp_get_thread_num() == 0) team = nt;
            const float* B = p.B.data() + (tb == Trans::N ? c0 : c0 * p.ldb);  // columns c0.. of op(B)
            if (c1 > c0)
              be.fn(e, ta, tb, p.M, c1 - c0, p.K, alpha, p.A.data(), p.lda, B, p.ldb, beta, C.data() + c0, p.ldc);
          }
          EXPECT_EQ(team, 2);
          EXPECT_TRUE(p.check(C, alpha, beta)) << be.name << " " << p.what(alpha, beta);
        }
      }
}

// LIBXSMM's tiles are split statically and each element is computed by one thread in a fixed order.
TEST(GemmBackends, LibxsmmSameBitsForOneAndTwoThreads) {
  ThreadsGuard guard;
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      const Problem p(ta, tb, 130, 257, 300);
      std::vector<float> by[2];
      for (int threads : {1, 2}) {
        const Engine e(engine_options(threads));
        std::vector<float>& C = by[threads - 1];
        C = p.C0;
        gemm_with(e, GemmBackend::Libxsmm, ta, tb, p.M, p.N, p.K, 0.5f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.3f,
                  C.data(), p.ldc);
      }
      EXPECT_EQ(by[0], by[1]) << p.what(0.5f, 0.3f);
    }
}

}  // namespace
}  // namespace manylm
