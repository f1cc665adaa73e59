// gemm.cc — see gemm.h.
#include "core/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include "core/error.h"

namespace manylm {

namespace {
GemmBackend g_backend = GemmBackend::Blas;  // set once at start-up by the CLI or a test, never in a loop
Precision g_precision = Precision::Fp32;    // likewise

struct Prof {
  int64_t M, N, K;
  int64_t calls = 0;
  double seconds = 0;
  std::string variant;
};
bool g_profile = false;
std::map<std::string, Prof> g_prof;
}  // namespace

// Defined in gemm_tune.cc.
void gemm_auto(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

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
  if (s == "libxsmm") return GemmBackend::Libxsmm;
  if (s == "blis") return GemmBackend::Blis;
  if (s == "auto") return GemmBackend::Auto;
  if (s == "reference") return GemmBackend::Reference;
  fail("--gemm: unknown backend '{}' (expected blas, onednn, libxsmm, blis, auto or reference)", s);
}

const char* gemm_backend_name(GemmBackend b) {
  switch (b) {
    case GemmBackend::Blas: return "blas";
    case GemmBackend::OneDnn: return "onednn";
    case GemmBackend::Libxsmm: return "libxsmm";
    case GemmBackend::Blis: return "blis";
    case GemmBackend::Auto: return "auto";
    case GemmBackend::Reference: return "reference";
  }
  return "?";
}
GemmBackend gemm_backend() { return g_backend; }

bool gemm_backend_available(GemmBackend b, std::string* why) {
  if (b == GemmBackend::Blis) return blis_available(why);
  return true;
}

void gemm_with(GemmBackend b, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  switch (b) {
    case GemmBackend::OneDnn: gemm_onednn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Libxsmm: gemm_libxsmm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Blis: gemm_blis(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Auto: gemm_auto(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Reference: gemm_reference<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case GemmBackend::Blas: break;
  }
  cblas_sgemm(CblasRowMajor, ta == Trans::N ? CblasNoTrans : CblasTrans,
              tb == Trans::N ? CblasNoTrans : CblasTrans, static_cast<blasint>(M), static_cast<blasint>(N),
              static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta,
              C, static_cast<blasint>(ldc));
}

void gemm_profile(bool on) {
  g_profile = on;
  g_prof.clear();
}

std::vector<GemmProfileEntry> gemm_profile_entries() {
  std::vector<GemmProfileEntry> v;
  for (const auto& [sig, p] : g_prof) v.push_back({sig, p.M, p.N, p.K, p.calls, p.seconds, p.variant});
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  return v;
}

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const auto t0 = g_profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  if (g_precision == Precision::Bf16)  // validated to come with the onednn backend
    gemm_onednn_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_with(g_backend, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (!g_profile) return;
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string sig = fmt::format("{}{} {}x{}x{}", ta == Trans::N ? 'N' : 'T', tb == Trans::N ? 'N' : 'T', M, N, K);
  Prof& p = g_prof[sig];
  p.M = M, p.N = N, p.K = K;
  ++p.calls;
  p.seconds += sec;
  if (g_precision == Precision::Bf16) {
    p.variant = "onednn-bf16";
  } else if (g_backend == GemmBackend::Auto) {
    p.variant = gemm_auto_choice(ta, tb, M, N, K, lda, ldb, ldc, alpha, beta);
  } else {
    p.variant = gemm_backend_name(g_backend);
  }
}

}  // namespace manylm
