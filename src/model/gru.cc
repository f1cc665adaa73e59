// gru.cc — see gru.h.
#include "model/gru.h"

#include "core/gemm.h"
#include "core/kernels.h"
#include "core/vmath.h"

namespace manylm {

void gru_forward(int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w, float* S,
                 float* Gi, float* Gh) {
  const int64_t G = 3 * H;
  gemm(Trans::N, Trans::T, T * B, G, In, 1.0f, X, In, w.w_ih, In, 0.0f, Gi, G);
  add_bias_rows(Gi, T * B, G, w.b_ih, nullptr);
  for (int64_t t = 0; t < T; ++t) {
    const float* hp = S + t * B * H;
    float* hn = S + (t + 1) * B * H;
    float* gi = Gi + t * B * G;
    float* gh = Gh + t * B * G;
    gemm(Trans::N, Trans::T, B, G, H, 1.0f, hp, H, w.w_hh, H, 0.0f, gh, G);
    add_bias_rows(gh, B, G, w.b_hh, nullptr);
#pragma omp parallel for schedule(static) if (B * H > (1 << 13))
    for (int64_t b = 0; b < B; ++b) {
      float* a = gi + b * G;
      const float* c = gh + b * G;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float r = sigmoid_fast(a[j] + c[j]), z = sigmoid_fast(a[H + j] + c[H + j]);
        const float n = tanh_fast(a[2 * H + j] + r * c[2 * H + j]);
        a[j] = r;
        a[H + j] = z;
        a[2 * H + j] = n;
        hn[b * H + j] = (1.0f - z) * n + z * hp[b * H + j];
      }
    }
  }
}

void gru_backward(int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w, const float* S,
                  const float* Gi, const float* Gh, float* dA, float* dGi, float* dGh, ElmanGrads& g, float* dX) {
  const int64_t G = 3 * H;
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* hp = S + t * B * H;
    const float* gi = Gi + t * B * G;
    const float* gh = Gh + t * B * G;
    float* dh = dA + t * B * H;
    float* di = dGi + t * B * G;
    float* dd = dGh + t * B * G;
    float* dprev = t > 0 ? dA + (t - 1) * B * H : nullptr;
#pragma omp parallel for schedule(static) if (B * H > (1 << 13))
    for (int64_t b = 0; b < B; ++b) {
      const float* a = gi + b * G;
      const float* c = gh + b * G;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float r = a[j], z = a[H + j], n = a[2 * H + j], d = dh[b * H + j];
        const float dn = d * (1.0f - z) * (1.0f - n * n);           // dE/d(pre-tanh of n)
        const float dz = d * (hp[b * H + j] - n) * z * (1.0f - z);  // dE/d(pre-σ of z)
        const float dr = dn * c[2 * H + j] * r * (1.0f - r);        // dE/d(pre-σ of r)
        di[b * G + j] = dr;
        di[b * G + H + j] = dz;
        di[b * G + 2 * H + j] = dn;
        dd[b * G + j] = dr;
        dd[b * G + H + j] = dz;
        dd[b * G + 2 * H + j] = dn * r;
        if (dprev) dprev[b * H + j] += d * z;  // the direct path h[t-1] → h[t]
      }
    }
    // dh[t-1] += dGh[t] · W_hh
    if (dprev) gemm(Trans::N, Trans::N, B, H, G, 1.0f, dd, G, w.w_hh, H, 1.0f, dprev, H);
  }
  recurrent_weight_grads(T, B, In, H, G, X, S, dGi, dGh, w, g, dX);
}

}  // namespace manylm
