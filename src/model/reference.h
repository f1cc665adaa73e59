// reference.h — the plain scalar reference of the whole model, templated on the number type (double for
// gradient checks). Straight loops, no GEMM, no threads, no workspace: written to be obviously right,
// not fast. The fast model (model.h) is tested against it, and it is tested against numerical gradients.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dropout.h"
#include "model/model.h"
#include "model/shape.h"

namespace manylm {

template <typename T>
using RefTensors = std::vector<std::vector<T>>;  // in param_table() order

namespace reference_detail {

template <typename T>
using Steps = std::vector<std::vector<std::vector<T>>>;  // [level or layer][t][...]

// One call of reference_loss: the inputs, and every activation forward keeps for backward. The steps are
// split by phase (embedding, one layer forward, decoder and loss, one layer backward, embedding backward)
// and, inside a layer, by lane; each is the same straight loops as one function would be.
template <typename T>
struct Run {
  const ModelShape& s;
  const RefTensors<T>& p;
  const std::vector<int32_t>& x;
  const std::vector<int32_t>& y;
  const int64_t Tn, B;
  const RefTensors<T>& h0;
  const DropoutConfig* drop;
  const ParamIndex ix;
  const int64_t E, H, V, L, G;
  // acts[l][t] (B·In) for l = 0 (embedding) .. L; acts[l+1][t] = σ(Y). ins[l][t]: what layer l (or the
  // decoder, l = L) reads: the dropped output of the level below. Per layer and step: gate
  // pre-activations gi = W_ih·x + b_ih and gh = W_hh·h + b_hh (B·G each), and for LSTM the cell state c (B·H).
  Steps<T> acts, ins, GI, GH, CS;

  Run(const ModelShape& s_, const RefTensors<T>& p_, const std::vector<int32_t>& x_, const std::vector<int32_t>& y_,
      int64_t Tn_, int64_t B_, const RefTensors<T>& h0_, const DropoutConfig* drop_)
      : s(s_),
        p(p_),
        x(x_),
        y(y_),
        Tn(Tn_),
        B(B_),
        h0(h0_),
        drop(drop_),
        ix(param_index(s_)),
        E(s_.embed),
        H(s_.hidden),
        V(s_.vocab),
        L(s_.layers),
        G(s_.gates() * s_.hidden),
        acts(L + 1, std::vector<std::vector<T>>(Tn)),
        ins(acts),
        GI(L, std::vector<std::vector<T>>(Tn)),
        GH(GI),
        CS(GI) {}

  static T sig(T v) { return T(1) / (T(1) + std::exp(-v)); }
  // Dropout multiplier of element (t, b, d) at site k: 0 or 1/(1−p).
  T keep(uint32_t k, int64_t t, int64_t b, int64_t D, int64_t d) const {
    if (!drop || drop->p == 0) return T(1);
    DropoutSite ds{drop->seed, drop->step, k, drop->p, drop->variational};
    return dropout_keep(ds, t, b, D, d, B) ? T(1) / (T(1) - T(drop->p)) : T(0);
  }
  const std::vector<T>& prev_h(int64_t l, int64_t t) const { return t == 0 ? h0[l] : acts[l + 1][t - 1]; }
  const std::vector<T>& prev_c(int64_t l, int64_t t) const {
    return t == 0 ? (s.cell == Cell::Lstm ? h0[L + l] : h0[l]) : CS[l][t - 1];
  }

  void embed() {
    for (int64_t t = 0; t < Tn; ++t) {
      acts[0][t].resize(B * E);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t e = 0; e < E; ++e)
          acts[0][t][b * E + e] = p[ix.encoder][x[t * B + b] * E + e] * keep(0, t, b, E, e);
    }
    for (int64_t t = 0; t < Tn; ++t) ins[0][t] = acts[0][t];
  }

  void dropped(int64_t l, int64_t t) {  // level l ≥ 1 is layer l−1's output
    ins[l][t] = acts[l][t];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < H; ++d) ins[l][t][b * H + d] *= keep(static_cast<uint32_t>(l), t, b, H, d);
  }

  // Layer l, step t, lane b: the gates and the output (and the LSTM cell).
  void cell_forward(int64_t l, int64_t t, int64_t b) {
    const int64_t In = s.layer_input(l);
    const auto &Wi = p[ix.w_ih[l]], &Wh = p[ix.w_hh[l]], &bi = p[ix.b_ih[l]], &bh = p[ix.b_hh[l]];
    const std::vector<T>& prev = prev_h(l, t);
    const std::vector<T>& cprev = prev_c(l, t);
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
        const T r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j]),
                n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        h = (T(1) - z) * n + z * prev[b * H + j];
      }
    }
  }

  void forward_layer(int64_t l) {
    for (int64_t t = 0; t < Tn; ++t) {
      acts[l + 1][t].assign(B * H, T(0));
      GI[l][t].assign(B * G, T(0));
      GH[l][t].assign(B * G, T(0));
      CS[l][t].assign(B * H, T(0));
      for (int64_t b = 0; b < B; ++b) cell_forward(l, t, b);
      dropped(l + 1, t);
    }
  }

  // −log softmax(z)[target]; with dz, dz = softmax(z) − onehot(target).
  static T xent(const std::vector<T>& z, int64_t target, std::vector<T>* dz) {
    T m = z[0];
    for (T v : z) m = std::max(m, v);
    T sum = T(0);
    for (T v : z) sum += std::exp(v - m);
    if (dz)
      for (size_t v = 0; v < z.size(); ++v)
        (*dz)[v] = std::exp(z[v] - m) / sum - (static_cast<int64_t>(v) == target ? T(1) : T(0));
    return m + std::log(sum) - z[static_cast<size_t>(target)];
  }

  // out (n) = W (n, k) · a (k) (+ bias); with grads: dW += g·aᵀ, (dbias += g), da += Wᵀ·g for g = dout.
  static void linear(const std::vector<T>& W, const T* bias, const T* a, int64_t n, int64_t k, std::vector<T>& out) {
    out.assign(static_cast<size_t>(n), T(0));
    for (int64_t j = 0; j < n; ++j) {
      out[j] = bias ? bias[j] : T(0);
      for (int64_t q = 0; q < k; ++q) out[j] += W[j * k + q] * a[q];
    }
  }
  static void linear_back(const std::vector<T>& W, const T* a, const std::vector<T>& g, int64_t n, int64_t k,
                          std::vector<T>& dW, T* dbias, T* da) {
    for (int64_t j = 0; j < n; ++j) {
      if (dbias) dbias[j] += g[j];
      for (int64_t q = 0; q < k; ++q) {
        dW[j * k + q] += g[j] * a[q];
        da[q] += g[j] * W[j * k + q];
      }
    }
  }

  // The adaptive softmax of one row a (H) with target y: −log p(y) = head term + (for a tail word) the
  // cluster's term. With grads, adds the gradients times `scale` and da (H) = dE/da.
  T adaptive_row(const T* a, int32_t y, RefTensors<T>* grads, T scale, T* da) const {
    const int64_t C1 = s.shortlist(), Hs = s.head_size();
    int64_t cl = -1;
    for (int64_t i = 0; i < s.clusters(); ++i)
      if (y >= s.tail_begin(i) && y < s.tail_end(i)) cl = i;
    std::vector<T> zh, dzh(Hs);
    linear(p[ix.head_w], ix.head_b >= 0 ? p[ix.head_b].data() : nullptr, a, Hs, H, zh);
    T loss = xent(zh, cl < 0 ? y : C1 + cl, grads ? &dzh : nullptr);
    if (grads) {
      for (T& g : dzh) g *= scale;
      linear_back(p[ix.head_w], a, dzh, Hs, H, (*grads)[ix.head_w],
                  ix.head_b >= 0 ? (*grads)[ix.head_b].data() : nullptr, da);
    }
    if (cl < 0) return loss;
    const int64_t h = s.tail_hidden(cl), n = s.tail_size(cl);
    std::vector<T> pr, zt, dzt(n), dpr(h, T(0));
    linear(p[ix.tail_proj[cl]], nullptr, a, h, H, pr);
    linear(p[ix.tail_out[cl]], nullptr, pr.data(), n, h, zt);
    loss += xent(zt, y - s.tail_begin(cl), grads ? &dzt : nullptr);
    if (!grads) return loss;
    for (T& g : dzt) g *= scale;
    linear_back(p[ix.tail_out[cl]], pr.data(), dzt, n, h, (*grads)[ix.tail_out[cl]], nullptr, dpr.data());
    linear_back(p[ix.tail_proj[cl]], a, dpr, h, H, (*grads)[ix.tail_proj[cl]], nullptr, da);
    return loss;
  }

  T decode_adaptive(RefTensors<T>* grads, std::vector<std::vector<T>>& dtop) const {
    T loss = T(0);
    for (int64_t t = 0; t < Tn; ++t)
      for (int64_t b = 0; b < B; ++b) {
        std::vector<T> da(H, T(0));
        loss += adaptive_row(&ins[L][t][b * H], y[t * B + b], grads, T(1) / T(B), da.data()) / T(B);
        if (grads)
          for (int64_t k = 0; k < H; ++k) dtop[t][b * H + k] += da[k] * keep(static_cast<uint32_t>(L), t, b, H, k);
      }
    return loss;
  }

  // Decoder, softmax and loss; with grads, the decoder's gradients and dtop = dE/dA of the top layer.
  T decode(RefTensors<T>* grads, std::vector<std::vector<T>>& dtop) const {
    if (s.adaptive()) return decode_adaptive(grads, dtop);
    T loss = T(0);
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
    return loss;
  }

  // Layer l, step t, lane b: dgi, dgh from dh = dA + the carry from t+1; the LSTM's cell carry and the
  // GRU's direct path into next_ccarry / next_carry.
  void cell_backward(int64_t l, int64_t t, int64_t b, const std::vector<T>& dAt, const std::vector<T>& carry,
                     const std::vector<T>& ccarry, std::vector<T>& dgi, std::vector<T>& dgh, std::vector<T>& next_carry,
                     std::vector<T>& next_ccarry) const {
    const std::vector<T>& prev = prev_h(l, t);
    const std::vector<T>& cprev = prev_c(l, t);
    const T* gi = &GI[l][t][b * G];
    const T* gh = &GH[l][t][b * G];
    for (int64_t j = 0; j < H; ++j) {
      const T dh = dAt[b * H + j] + carry[b * H + j];
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
        const T r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j]),
                n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
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
  }

  // Layer l's weight gradients from lane b's dgi, dgh at step t; dIn[t] and next_carry receive the
  // gradients of the layer's input and of h[t-1].
  void weight_grads(int64_t l, int64_t t, int64_t b, const std::vector<T>& dgi, const std::vector<T>& dgh,
                    RefTensors<T>& grads, std::vector<T>& dInt, std::vector<T>& next_carry) const {
    const int64_t In = s.layer_input(l);
    const auto &Wi = p[ix.w_ih[l]], &Wh = p[ix.w_hh[l]];
    const std::vector<T>& prev = prev_h(l, t);
    for (int64_t j = 0; j < G; ++j) {
      grads[ix.b_ih[l]][j] += dgi[j];
      grads[ix.b_hh[l]][j] += dgh[j];
      for (int64_t k = 0; k < In; ++k) {
        grads[ix.w_ih[l]][j * In + k] += dgi[j] * ins[l][t][b * In + k];
        dInt[b * In + k] += dgi[j] * Wi[j * In + k] * keep(static_cast<uint32_t>(l), t, b, In, k);
      }
      for (int64_t k = 0; k < H; ++k) {
        grads[ix.w_hh[l]][j * H + k] += dgh[j] * prev[b * H + k];
        next_carry[b * H + k] += dgh[j] * Wh[j * H + k];
      }
    }
  }

  // Backward through time of layer l, given dE/dA of its outputs per t; returns dE/d(its input) per t.
  std::vector<std::vector<T>> backward_layer(int64_t l, const std::vector<std::vector<T>>& dA,
                                             RefTensors<T>& grads) const {
    const int64_t In = s.layer_input(l);
    std::vector<std::vector<T>> dIn(Tn, std::vector<T>(B * In, T(0)));
    std::vector<T> carry(B * H, T(0)), ccarry(B * H, T(0));  // dE/dh and (LSTM) dE/dc from step t+1
    for (int64_t t = Tn - 1; t >= 0; --t) {
      std::vector<T> next_carry(B * H, T(0)), next_ccarry(B * H, T(0));
      for (int64_t b = 0; b < B; ++b) {
        std::vector<T> dgi(G), dgh(G);
        cell_backward(l, t, b, dA[t], carry, ccarry, dgi, dgh, next_carry, next_ccarry);
        weight_grads(l, t, b, dgi, dgh, grads, dIn[t], next_carry);
      }
      carry = next_carry;  // truncated BPTT: the carry out of t = 0 is dropped
      ccarry = next_ccarry;
    }
    return dIn;
  }

  void embed_backward(const std::vector<std::vector<T>>& dA, RefTensors<T>& grads) const {
    for (int64_t t = 0; t < Tn; ++t)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t e = 0; e < E; ++e) grads[ix.encoder][x[t * B + b] * E + e] += dA[t][b * E + e];
  }
};

}  // namespace reference_detail

// Objective Σ_t mean_b −log p(y[t,b]); same as model_forward. h0: per layer (B·H), the initial state
// (state_table() order: h per layer, then for LSTM c per layer).
// If grads is non-null it receives the gradient (sized like params). With `drop`, every mask element
// comes from dropout_keep(), the definition.
template <typename T>
T reference_loss(const ModelShape& s, const RefTensors<T>& p, const std::vector<int32_t>& x,
                 const std::vector<int32_t>& y, int64_t Tn, int64_t B, const RefTensors<T>& h0, RefTensors<T>* grads,
                 const DropoutConfig* drop = nullptr) {
  reference_detail::Run<T> run(s, p, x, y, Tn, B, h0, drop);
  run.embed();
  for (int64_t l = 0; l < s.layers; ++l) run.forward_layer(l);
  std::vector<std::vector<T>> dA(Tn, std::vector<T>(B * s.hidden, T(0)));  // dE/dA of the top layer, per t
  if (grads) {
    grads->clear();
    for (auto& t : p) grads->push_back(std::vector<T>(t.size(), T(0)));
  }
  const T loss = run.decode(grads, dA);
  if (!grads) return loss;
  // Backward through time, layer by layer from the top.
  for (int64_t l = s.layers - 1; l >= 0; --l) dA = run.backward_layer(l, dA, *grads);
  run.embed_backward(dA, *grads);
  return loss;
}

}  // namespace manylm
