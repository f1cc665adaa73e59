// gemm_onednn.cc — the oneDNN backend of the GEMM seam: oneDNN's matmul primitive (brgemm kernels, AVX-512
// on this machine). Primitive creation costs milliseconds, so each distinct call signature
// (transposes, M, N, K, leading dimensions, alpha, beta, thread count) creates its primitive once and caches it; a call
// only rebinds the data pointers. Row-major strides express the transposes; beta ≠ 0 is a sum post-op.
// Not thread-safe across concurrent callers: manylm calls gemm() from one thread at a time.
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <memory>
#include <tuple>

#include "core/gemm.h"

namespace manylm {

namespace {

// A primitive is planned for the thread count current at its creation, so the count is part of the key.
using Key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, int>;

struct Prim {
  dnnl::matmul matmul;
  dnnl::memory a, b, c;
};

struct OneDnn {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, std::unique_ptr<Prim>> cache;
};

OneDnn& onednn() {
  static OneDnn d;  // created on first use; lives for the process
  return d;
}

}  // namespace

void gemm_onednn(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  using dnnl::memory;
  OneDnn& d = onednn();
  const Key key{static_cast<int>(ta), static_cast<int>(tb), M, N, K, lda, ldb, ldc, alpha, beta, omp_get_max_threads()};
  auto it = d.cache.find(key);
  if (it == d.cache.end()) {
    const auto f32 = memory::data_type::f32;
    memory::desc a_md({M, K}, f32, ta == Trans::N ? memory::dims{lda, 1} : memory::dims{1, lda});
    memory::desc b_md({K, N}, f32, tb == Trans::N ? memory::dims{ldb, 1} : memory::dims{1, ldb});
    memory::desc c_md({M, N}, f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops po;
      po.append_sum(beta);
      attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, d.engine);
    auto p = std::make_unique<Prim>(Prim{dnnl::matmul(pd), memory(a_md, d.engine, nullptr),
                                         memory(b_md, d.engine, nullptr), memory(c_md, d.engine, nullptr)});
    it = d.cache.emplace(key, std::move(p)).first;
  }
  Prim& p = *it->second;
  p.a.set_data_handle(const_cast<float*>(A));
  p.b.set_data_handle(const_cast<float*>(B));
  p.c.set_data_handle(C);
  p.matmul.execute(d.stream, {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_DST, p.c}});
  d.stream.wait();
}

}  // namespace manylm
