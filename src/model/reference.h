// reference.h — the plain scalar reference of the whole model, templated on the number type (double for
// gradient checks). Straight loops, no GEMM, no threads, no workspace: written to be obviously right,
// not fast. The fast model (model.h) is tested against it, and it is tested against numerical gradients.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dropout.h"
#include "model/model.h"
#include "model/shape.h"

namespace manylm {

template <typename T>
using RefTensors = std::vector<std::vector<T>>;  // in param_table() order

// Objective Σ_t mean_b −log p(y[t,b]); same as model_forward. h0: per layer (B·H), the initial state
// (state_table() order: h per layer, then for LSTM c per layer).
// If grads is non-null it receives the gradient (sized like params). With `drop`, every mask element
// comes from dropout_keep(), the definition.
template <typename T>
T reference_loss(const ModelShape& s, const RefTensors<T>& p, const std::vector<int32_t>& x,
                 const std::vector<int32_t>& y, int64_t Tn, int64_t B, const RefTensors<T>& h0, RefTensors<T>* grads,
                 const DropoutConfig* drop = nullptr) {
  const ParamIndex ix = param_index(s);
  const int64_t E = s.embed, H = s.hidden, V = s.vocab, L = s.layers;
  // Dropout multiplier of element (t, b, d) at site k: 0 or 1/(1−p).
  auto keep = [&](uint32_t k, int64_t t, int64_t b, int64_t D, int64_t d) -> T {
    if (!drop || drop->p == 0) return T(1);
    DropoutSite ds{drop->seed, drop->step, k, drop->p, drop->variational};
    return dropout_keep(ds, t, b, D, d, B) ? T(1) / (T(1) - T(drop->p)) : T(0);
  };
  // acts[l][t] (B·In) for l = 0 (embedding) .. L; acts[l+1][t] = σ(Y).
  std::vector<std::vector<std::vector<T>>> acts(L + 1, std::vector<std::vector<T>>(Tn));
  for (int64_t t = 0; t < Tn; ++t) {
    acts[0][t].resize(B * E);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < E; ++e) acts[0][t][b * E + e] = p[ix.encoder][x[t * B + b] * E + e] * keep(0, t, b, E, e);
  }
  // ins(l, t): what layer l (or the decoder, l = L) reads: the dropped output of the level below.
  std::vector<std::vector<std::vector<T>>> ins(L + 1, std::vector<std::vector<T>>(Tn));
  auto dropped = [&](int64_t l, int64_t t) {  // level l ≥ 1 is layer l−1's output
    ins[l][t] = acts[l][t];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < H; ++d) ins[l][t][b * H + d] *= keep(static_cast<uint32_t>(l), t, b, H, d);
  };
  for (int64_t t = 0; t < Tn; ++t) ins[0][t] = acts[0][t];
  // Per layer and step: gate pre-activations gi = W_ih·x + b_ih and gh = W_hh·h + b_hh (B·G each), and
  // for LSTM the cell state c (B·H), kept for backward.
  const int64_t G = s.gates() * H;
  using Steps = std::vector<std::vector<std::vector<T>>>;  // [l][t][...]
  Steps GI(L, std::vector<std::vector<T>>(Tn)), GH = GI, CS = GI;
  auto sig = [](T v) { return T(1) / (T(1) + std::exp(-v)); };
  for (int64_t l = 0; l < L; ++l) {
    const int64_t In = s.layer_input(l);
    const auto &Wi = p[ix.w_ih[l]], &Wh = p[ix.w_hh[l]], &bi = p[ix.b_ih[l]], &bh = p[ix.b_hh[l]];
    for (int64_t t = 0; t < Tn; ++t) {
      const std::vector<T>& prev = t == 0 ? h0[l] : acts[l + 1][t - 1];
      const std::vector<T>& cprev = t == 0 ? (s.cell == Cell::Lstm ? h0[L + l] : h0[l]) : CS[l][t - 1];
      acts[l + 1][t].assign(B * H, T(0));
      GI[l][t].assign(B * G, T(0));
      GH[l][t].assign(B * G, T(0));
      CS[l][t].assign(B * H, T(0));
      for (int64_t b = 0; b < B; ++b) {
        T* gi = &GI[l][t][b * G];
        T* gh = &GH[l][t][b * G];
        for (int64_t j = 0; j < G; ++j) {
          gi[j] = bi[j];
          gh[j] = bh[j];
          for (int64_t k = 0; k < In; ++k) gi[j] += ins[l][t][b * In + k] * Wi[j * In + k];
          for (int64_t k = 0; k < H; ++k) gh[j] += prev[b * H + k] * Wh[j * H + k];
        }
        for (int64_t j = 0; j < H; ++j) {
          T& h = acts[l + 1][t][b * H + j];
          if (s.cell == Cell::Elman) {
            h = activate(s.activation, gi[j] + gh[j]);
          } else if (s.cell == Cell::Lstm) {
            const T i = sig(gi[j] + gh[j]), f = sig(gi[H + j] + gh[H + j]), g = std::tanh(gi[2 * H + j] + gh[2 * H + j]),
                    o = sig(gi[3 * H + j] + gh[3 * H + j]);
            const T c = f * cprev[b * H + j] + i * g;
            CS[l][t][b * H + j] = c;
            h = o * std::tanh(c);
          } else {
            const T r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j]), n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
            h = (T(1) - z) * n + z * prev[b * H + j];
          }
        }
      }
      dropped(l + 1, t);
    }
  }
  T loss = T(0);
  std::vector<std::vector<T>> dtop(Tn, std::vector<T>(B * H, T(0)));
  if (grads) {
    grads->clear();
    for (auto& t : p) grads->push_back(std::vector<T>(t.size(), T(0)));
  }
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t b = 0; b < B; ++b) {
      std::vector<T> z(V);
      T m = T(-1e300);
      for (int64_t v = 0; v < V; ++v) {
        z[v] = p[ix.decoder_b][v];
        for (int64_t k = 0; k < H; ++k) z[v] += ins[L][t][b * H + k] * p[ix.decoder_w][v * H + k];
        if (z[v] > m) m = z[v];
      }
      T sum = T(0);
      for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - m);
      const int32_t target = y[t * B + b];
      loss += (m + std::log(sum) - z[target]) / T(B);
      if (!grads) continue;
      for (int64_t v = 0; v < V; ++v) {
        T dz = (std::exp(z[v] - m) / sum - (v == target ? T(1) : T(0))) / T(B);
        (*grads)[ix.decoder_b][v] += dz;
        for (int64_t k = 0; k < H; ++k) {
          (*grads)[ix.decoder_w][v * H + k] += dz * ins[L][t][b * H + k];
          dtop[t][b * H + k] += dz * p[ix.decoder_w][v * H + k] * keep(static_cast<uint32_t>(L), t, b, H, k);
        }
      }
    }
  if (!grads) return loss;
  // Backward through time, layer by layer from the top.
  std::vector<std::vector<T>> dA = dtop;  // dE/dA of the current layer's outputs, per t
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t In = s.layer_input(l);
    const auto &Wi = p[ix.w_ih[l]], &Wh = p[ix.w_hh[l]];
    std::vector<std::vector<T>> dIn(Tn, std::vector<T>(B * In, T(0)));
    std::vector<T> carry(B * H, T(0)), ccarry(B * H, T(0));  // dE/dh and (LSTM) dE/dc from step t+1
    for (int64_t t = Tn - 1; t >= 0; --t) {
      const std::vector<T>& prev = t == 0 ? h0[l] : acts[l + 1][t - 1];
      const std::vector<T>& cprev = t == 0 ? (s.cell == Cell::Lstm ? h0[L + l] : h0[l]) : CS[l][t - 1];
      std::vector<T> next_carry(B * H, T(0)), next_ccarry(B * H, T(0));
      for (int64_t b = 0; b < B; ++b) {
        const T* gi = &GI[l][t][b * G];
        const T* gh = &GH[l][t][b * G];
        std::vector<T> dgi(G), dgh(G);
        for (int64_t j = 0; j < H; ++j) {
          const T dh = dA[t][b * H + j] + carry[b * H + j];
          const T h = acts[l + 1][t][b * H + j];
          if (s.cell == Cell::Elman) {
            dgi[j] = dgh[j] = dh * activate_grad_from_output(s.activation, h);
          } else if (s.cell == Cell::Lstm) {
            const T i = sig(gi[j] + gh[j]), f = sig(gi[H + j] + gh[H + j]), g = std::tanh(gi[2 * H + j] + gh[2 * H + j]),
                    o = sig(gi[3 * H + j] + gh[3 * H + j]);
            const T tc = std::tanh(CS[l][t][b * H + j]);
            const T dc = dh * o * (T(1) - tc * tc) + ccarry[b * H + j];
            dgi[j] = dc * g * i * (T(1) - i);
            dgi[H + j] = dc * cprev[b * H + j] * f * (T(1) - f);
            dgi[2 * H + j] = dc * i * (T(1) - g * g);
            dgi[3 * H + j] = dh * tc * o * (T(1) - o);
            for (int64_t q = 0; q < 4; ++q) dgh[q * H + j] = dgi[q * H + j];
            next_ccarry[b * H + j] = dc * f;
          } else {
            const T r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j]), n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
            const T dn = dh * (T(1) - z) * (T(1) - n * n);
            const T dz = dh * (prev[b * H + j] - n) * z * (T(1) - z);
            const T dr = dn * gh[2 * H + j] * r * (T(1) - r);
            dgi[j] = dgh[j] = dr;
            dgi[H + j] = dgh[H + j] = dz;
            dgi[2 * H + j] = dn;
            dgh[2 * H + j] = dn * r;
            next_carry[b * H + j] += dh * z;  // direct path h[t-1] → h[t]
          }
        }
        for (int64_t j = 0; j < G; ++j) {
          (*grads)[ix.b_ih[l]][j] += dgi[j];
          (*grads)[ix.b_hh[l]][j] += dgh[j];
          for (int64_t k = 0; k < In; ++k) {
            (*grads)[ix.w_ih[l]][j * In + k] += dgi[j] * ins[l][t][b * In + k];
            dIn[t][b * In + k] += dgi[j] * Wi[j * In + k] * keep(static_cast<uint32_t>(l), t, b, In, k);
          }
          for (int64_t k = 0; k < H; ++k) {
            (*grads)[ix.w_hh[l]][j * H + k] += dgh[j] * prev[b * H + k];
            next_carry[b * H + k] += dgh[j] * Wh[j * H + k];
          }
        }
      }
      carry = next_carry;  // truncated BPTT: the carry out of t = 0 is dropped
      ccarry = next_ccarry;
    }
    dA = dIn;
  }
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < E; ++e) (*grads)[ix.encoder][x[t * B + b] * E + e] += dA[t][b * E + e];
  return loss;
}

}  // namespace manylm
