// gemm_blis.cc — the BLIS backend of the GEMM seam: BLIS's typed expert API (bli_sgemm_ex), row-major and
// the transposes expressed as general (row, column) strides, the thread count given per call in an rntm_t.
// BLIS exports the same cblas_/sgemm_ symbols as OpenBLAS, which manylm links, so it is not linked: the
// OpenMP build (libblis.so.4 from libblis4-openmp) is loaded once at run time, RTLD_LOCAL | RTLD_DEEPBIND
// so that BLIS resolves its own symbols and never OpenBLAS's. blis.h is included for the types only.
// BLIS does not split K across threads, and it is thread-safe for concurrent callers.
// Not a fallback: when the library cannot be loaded, blis_available() says why and gemm_blis() stops.
#include <dlfcn.h>
#include <omp.h>

#include <stdexcept>
#include <string>

#pragma GCC diagnostic push  // blis.h, included by path, is not treated as a system header
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include MANYLM_BLIS_HEADER  // blis.h of libblis-openmp-dev (CMake finds it; its directory also holds a cblas.h)
#pragma GCC diagnostic pop

#include "core/gemm.h"
#include "core/gemm_backends.h"

namespace manylm {

namespace {

constexpr const char* kBlisSoname = "libblis.so.4";

struct Blis {
  decltype(&bli_sgemm_ex) sgemm_ex = nullptr;
  std::string error;  // empty when loaded
};

// AddressSanitizer's runtime refuses a library opened RTLD_DEEPBIND (google/sanitizers#611): a sanitizer build
// (scripts/sanitize.sh) opens it without. BLIS needs nothing OpenBLAS defines; the names both define are the
// BLAS and CBLAS interfaces, which the bli_ path manylm calls does not go through (GemmBackends tests check it).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kDeepBind = 0;
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif

const Blis& blis() {
  static const Blis b = [] {
    Blis r;
    void* h = dlopen(kBlisSoname, RTLD_NOW | RTLD_LOCAL | kDeepBind);
    if (!h) {
      const char* e = dlerror();
      r.error = std::string(kBlisSoname) + " not found: install libblis4-openmp (" + (e ? e : "dlopen failed") + ")";
      return r;
    }
    r.sgemm_ex = reinterpret_cast<decltype(&bli_sgemm_ex)>(dlsym(h, "bli_sgemm_ex"));
    if (!r.sgemm_ex) r.error = std::string(kBlisSoname) + " lacks bli_sgemm_ex: install BLIS 0.9 (libblis4-openmp)";
    return r;  // the handle stays open for the life of the process
  }();
  return b;
}

}  // namespace

bool blis_available(std::string* why) {
  const Blis& b = blis();
  if (why) *why = b.error;
  return b.error.empty();
}

void gemm_blis(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const Blis& b = blis();
  if (!b.sgemm_ex) throw std::runtime_error("--gemm blis: " + b.error);
  rntm_t rntm;
  bli_rntm_init(&rntm);
  bli_rntm_set_num_threads(omp_in_parallel() ? 1 : omp_get_max_threads(), &rntm);
  // op(A) (M, K) and op(B) (K, N) as strided views: no BLIS transpose needed.
  const inc_t rsa = ta == Trans::N ? lda : 1, csa = ta == Trans::N ? 1 : lda;
  const inc_t rsb = tb == Trans::N ? ldb : 1, csb = tb == Trans::N ? 1 : ldb;
  b.sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &alpha, const_cast<float*>(A), rsa, csa,
             const_cast<float*>(B), rsb, csb, &beta, C, ldc, 1, nullptr, &rntm);
}

}  // namespace manylm
