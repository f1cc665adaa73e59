// gemm.cc — see gemm.h.
#include "core/gemm.h"

#include <cblas.h>

#include "core/error.h"

namespace manylm {

namespace {
GemmBackend g_backend = GemmBackend::Blas;  // set once at start-up by the CLI or a test, never in a loop
Precision g_precision = Precision::Fp32;    // likewise
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::Fp32;
  if (s == "bf16") return Precision::Bf16;
  fail("--precision: unknown precision '{}' (expected fp32 or bf16)", s);
}

bool set_gemm_precision(Precision p) {
  if (p == Precision::Bf16 && !__builtin_cpu_supports("avx512bf16")) return false;
  g_precision = p;
  return true;
}
Precision gemm_precision() { return g_precision; }

void set_gemm_backend(GemmBackend b) { g_backend = b; }

GemmBackend parse_gemm_backend(const std::string& s) {
  if (s == "blas") return GemmBackend::Blas;
  if (s == "onednn") return GemmBackend::OneDnn;
  if (s == "reference") return GemmBackend::Reference;
  fail("--gemm: unknown backend '{}' (expected blas, onednn or reference)", s);
}

const char* gemm_backend_name(GemmBackend b) {
  switch (b) {
    case GemmBackend::Blas: return "blas";
    case GemmBackend::OneDnn: return "onednn";
    case GemmBackend::Reference: return "reference";
  }
  return "?";
}
GemmBackend gemm_backend() { return g_backend; }

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (g_precision == Precision::Bf16) {  // validated to come with the onednn backend
    gemm_onednn_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (g_backend == GemmBackend::OneDnn) {
    gemm_onednn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (g_backend == GemmBackend::Reference) {
    gemm_reference<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta == Trans::N ? CblasNoTrans : CblasTrans,
              tb == Trans::N ? CblasNoTrans : CblasTrans, static_cast<blasint>(M), static_cast<blasint>(N),
              static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta,
              C, static_cast<blasint>(ldc));
}

}  // namespace manylm
