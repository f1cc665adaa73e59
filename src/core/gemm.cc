// gemm.cc — see gemm.h.
#include "core/gemm.h"

#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "core/engine.h"
#include "core/error.h"
#include "core/gemm_backends.h"

namespace manylm {

bool bf16_supported() { return __builtin_cpu_supports("avx512bf16"); }

bool gemm_backend_available(GemmBackend b, std::string* why) {
  if (b == GemmBackend::Blis) return blis_available(why);
  return true;
}

void gemm_with(const Engine& e, GemmBackend b, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  switch (b) {
    case GemmBackend::OneDnn:
      gemm_onednn(*e.state().onednn, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    case GemmBackend::Libxsmm: gemm_libxsmm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Blis: gemm_blis(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Auto: gemm_auto(e, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Reference: gemm_reference<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Blas: break;
  }
  cblas_sgemm(CblasRowMajor, ta == Trans::N ? CblasNoTrans : CblasTrans, tb == Trans::N ? CblasNoTrans : CblasTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

void gemm(const Engine& e, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  Engine::State& st = e.state();
  const bool bf16 = e.precision() == Precision::Bf16;  // the engine runs Bf16 with the onednn backend only
  const auto t0 = st.profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  if (bf16)
    gemm_onednn_bf16(*st.onednn, st.constants, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_with(e, e.backend(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (!st.profiling) return;
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string sig = fmt::format("{}{} {}x{}x{}", ta == Trans::N ? 'N' : 'T', tb == Trans::N ? 'N' : 'T', M, N, K);
  GemmProfileCounter& p = st.profile[sig];
  p.M = M, p.N = N, p.K = K;
  ++p.calls;
  p.seconds += sec;
  if (bf16) {
    p.variant = "onednn-bf16";
  } else if (e.backend() == GemmBackend::Auto) {
    p.variant = e.auto_choice(ta, tb, M, N, K, lda, ldb, ldc, alpha, beta);
  } else {
    p.variant = name_of(e.backend());
  }
}

}  // namespace manylm
