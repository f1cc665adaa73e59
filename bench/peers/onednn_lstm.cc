// onednn_lstm.cc — a peer, not part of manylm: times oneDNN's own LSTM primitive (dnnl::lstm_forward with
// forward_training, then dnnl::lstm_backward) on the recurrent part of a recipe's training step: L stacked
// unidirectional LSTM layers in ONE primitive, T steps, batch B, input = hidden = H, fp32.
//
//     build/onednn_lstm_peer [--layers 2] [--hidden 650] [--batch 20] [--bptt 35] [--threads N]
//                            [--steps 20] [--repeats 3] [--json] [--check]
//
// Prints per repeat and as medians: forward ms, backward ms, total ms per step, and GFLOP/s counting the
// LSTM's GEMM flops (forward 2·T·B·4H·(In+H) per layer, backward twice that: data and weights). With
// --json the last stdout line is one JSON object (what bench/peers/compare.py reads).
//
// Choices, stated because they favour the primitive: the weights are handed over in the format each
// primitive prefers (format_tag::any), reordered from the user's ldigo ONCE before the timed loop — a
// trainer updating them every step would pay these reorders each step, so they are timed separately
// (reorder_ms) and NOT counted in total_ms. The gradient buffers are zeroed outside the timed region (the
// backward primitive accumulates into them). No dropout between layers (the primitive has none).
// --check first compares forward and backward on a tiny shape with a double-precision scalar reference
// (forward output; directional derivatives of every gradient by central differences).
//
// What it deliberately is not: no embedding, no softmax, no optimizer; not linked with manylm_lib.
#include <fmt/format.h>
#include <omp.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using clk = std::chrono::steady_clock;

struct Shape {
  int64_t L = 2, H = 650, B = 20, T = 35;  // layers, hidden (= input), batch lanes, bptt steps
  double fwd_flops() const { return static_cast<double>(L) * 2.0 * T * B * 4 * H * (H + H); }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Names the layout oneDNN chose for a weights descriptor: a known tag, "rnn_packed", or the raw blocking.
std::string describe(const memory::desc& md) {
  if (md.data.format_kind == dnnl_format_kind_rnn_packed) return "rnn_packed";
  if (md.data.format_kind != dnnl_blocked) return fmt::format("format_kind {}", static_cast<int>(md.data.format_kind));
  for (auto [t, name] : {std::pair{tag::ldigo, "ldigo"},
                         {tag::ldgoi, "ldgoi"},
                         {tag::ldgo, "ldgo"},
                         {tag::ldgOi32o, "ldgOi32o"},
                         {tag::ldgOI32o2i, "ldgOI32o2i"},
                         {tag::ldgOI32o4i, "ldgOI32o4i"},
                         {tag::ldgIo32i, "ldgIo32i"}}) {
    if (md.data.ndims == 5 || t == tag::ldgo) {
      try {
        if (memory::desc(md.dims(), md.data_type(), t) == md) return name;
      } catch (const dnnl::error&) {}
    }
  }
  const auto& b = md.data.format_desc.blocking;
  std::string s = "blocked strides";
  if (b.inner_nblks == 0 && md.data.ndims == 5) {  // plain, dimensions ordered by stride (leading dims may be padded)
    std::vector<int> order{0, 1, 2, 3, 4};
    std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return b.strides[i] > b.strides[j]; });
    s.clear();
    for (int i : order) s += "ldigo"[i];
    s += " strides";
  }
  for (int i = 0; i < md.data.ndims; ++i) s += fmt::format("{}{}", i ? "," : " ", b.strides[i]);
  for (int i = 0; i < b.inner_nblks; ++i) s += fmt::format(" blk{}:{}", b.inner_idxs[i], b.inner_blks[i]);
  return s;
}

// The two primitives, their memories in the user's layouts (tnc, ldnc, ldigo, ldgo), and the weights in
// the layouts each primitive asked for.
struct LstmPeer {
  Shape s;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::lstm_forward::primitive_desc fwd_pd;
  dnnl::lstm_backward::primitive_desc bwd_pd;
  dnnl::lstm_forward fwd;
  dnnl::lstm_backward bwd;
  // user layouts
  memory x, h0, c0, wl, wi, bias, y, hT, cT;  // (T,B,H) (L,1,B,H)×2 (L,1,H,4,H)×2 (L,1,4,H) (T,B,H) (L,1,B,H)×2
  memory dx, dh0, dc0, dwl, dwi, dbias, dy, dhT, dcT;  // the same shapes, gradients
  // primitive layouts
  memory fwd_wl, fwd_wi, bwd_wl, bwd_wi, bwd_dwl, bwd_dwi, workspace;

  explicit LstmPeer(const Shape& shape) : s(shape) {
    const memory::dims tnc_d{s.T, s.B, s.H}, ldnc_d{s.L, 1, s.B, s.H}, w_d{s.L, 1, s.H, 4, s.H}, b_d{s.L, 1, 4, s.H};
    const auto f32 = memory::data_type::f32;
    const memory::desc tnc(tnc_d, f32, tag::tnc), ldnc(ldnc_d, f32, tag::ldnc), ldigo(w_d, f32, tag::ldigo),
        ldgo(b_d, f32, tag::ldgo), any_w(w_d, f32, tag::any);
    const auto dir = dnnl::rnn_direction::unidirectional_left2right;
    dnnl::lstm_forward::desc fd(dnnl::prop_kind::forward_training, dir, tnc, ldnc, ldnc, any_w, any_w, ldgo, tnc, ldnc,
                                ldnc);
    fwd_pd = dnnl::lstm_forward::primitive_desc(fd, eng);
    dnnl::lstm_backward::desc bd(dnnl::prop_kind::backward, dir, tnc, ldnc, ldnc, any_w, any_w, ldgo, tnc, ldnc, ldnc,
                                 tnc, ldnc, ldnc, any_w, any_w, ldgo, tnc, ldnc, ldnc);
    bwd_pd = dnnl::lstm_backward::primitive_desc(bd, eng, fwd_pd);
    fwd = dnnl::lstm_forward(fwd_pd);
    bwd = dnnl::lstm_backward(bwd_pd);
    for (memory* m : {&x, &y, &dx, &dy}) *m = memory(tnc, eng);
    for (memory* m : {&h0, &c0, &hT, &cT, &dh0, &dc0, &dhT, &dcT}) *m = memory(ldnc, eng);
    for (memory* m : {&wl, &wi, &dwl, &dwi}) *m = memory(ldigo, eng);
    for (memory* m : {&bias, &dbias}) *m = memory(ldgo, eng);
    fwd_wl = memory(fwd_pd.weights_layer_desc(), eng);
    fwd_wi = memory(fwd_pd.weights_iter_desc(), eng);
    bwd_wl = memory(bwd_pd.weights_layer_desc(), eng);
    bwd_wi = memory(bwd_pd.weights_iter_desc(), eng);
    bwd_dwl = memory(bwd_pd.diff_weights_layer_desc(), eng);
    bwd_dwi = memory(bwd_pd.diff_weights_iter_desc(), eng);
    workspace = memory(fwd_pd.workspace_desc(), eng);
  }

  // user ldigo weights → the layouts the forward and the backward primitive prefer
  void reorder_weights() {
    for (auto [from, to] : {std::pair{&wl, &fwd_wl}, {&wi, &fwd_wi}, {&wl, &bwd_wl}, {&wi, &bwd_wi}})
      dnnl::reorder(*from, *to).execute(strm, *from, *to);
    strm.wait();
  }
  void zero_grads() {
    for (memory* m : {&bwd_dwl, &bwd_dwi, &dbias}) std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
  }
  void forward() {
    fwd.execute(strm, {{DNNL_ARG_SRC_LAYER, x},
                       {DNNL_ARG_SRC_ITER, h0},
                       {DNNL_ARG_SRC_ITER_C, c0},
                       {DNNL_ARG_WEIGHTS_LAYER, fwd_wl},
                       {DNNL_ARG_WEIGHTS_ITER, fwd_wi},
                       {DNNL_ARG_BIAS, bias},
                       {DNNL_ARG_DST_LAYER, y},
                       {DNNL_ARG_DST_ITER, hT},
                       {DNNL_ARG_DST_ITER_C, cT},
                       {DNNL_ARG_WORKSPACE, workspace}});
    strm.wait();
  }
  // accumulates into bwd_dwl, bwd_dwi, dbias (zero_grads first)
  void backward() {
    bwd.execute(strm, {{DNNL_ARG_SRC_LAYER, x},
                       {DNNL_ARG_SRC_ITER, h0},
                       {DNNL_ARG_SRC_ITER_C, c0},
                       {DNNL_ARG_WEIGHTS_LAYER, bwd_wl},
                       {DNNL_ARG_WEIGHTS_ITER, bwd_wi},
                       {DNNL_ARG_BIAS, bias},
                       {DNNL_ARG_DST_LAYER, y},
                       {DNNL_ARG_DST_ITER, hT},
                       {DNNL_ARG_DST_ITER_C, cT},
                       {DNNL_ARG_WORKSPACE, workspace},
                       {DNNL_ARG_DIFF_SRC_LAYER, dx},
                       {DNNL_ARG_DIFF_SRC_ITER, dh0},
                       {DNNL_ARG_DIFF_SRC_ITER_C, dc0},
                       {DNNL_ARG_DIFF_WEIGHTS_LAYER, bwd_dwl},
                       {DNNL_ARG_DIFF_WEIGHTS_ITER, bwd_dwi},
                       {DNNL_ARG_DIFF_BIAS, dbias},
                       {DNNL_ARG_DIFF_DST_LAYER, dy},
                       {DNNL_ARG_DIFF_DST_ITER, dhT},
                       {DNNL_ARG_DIFF_DST_ITER_C, dcT}});
    strm.wait();
  }
  // the weight gradients back in the user's ldigo
  void grads_to_user() {
    dnnl::reorder(bwd_dwl, dwl).execute(strm, bwd_dwl, dwl);
    dnnl::reorder(bwd_dwi, dwi).execute(strm, bwd_dwi, dwi);
    strm.wait();
  }
};

float* f(memory& m) { return static_cast<float*>(m.get_data_handle()); }
size_t n_of(const memory& m) { return m.get_desc().get_size() / sizeof(float); }

void fill(memory& m, std::mt19937& g, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  for (size_t i = 0; i < n_of(m); ++i) f(m)[i] = u(g);
}

// ---- the scalar reference (double): oneDNN's LSTM, gates in its order i, f, c̃, o ----
// g = x·Wl + h·Wi + b;  i,f,o = σ(g);  c̃ = tanh(g);  c' = f·c + i·c̃;  h' = o·tanh(c')
struct RefParams {
  std::vector<double> x, h0, c0, wl, wi, b;  // (T,B,H) (L,B,H) (L,B,H) (L,H,4,H) (L,H,4,H) (L,4,H)
};

// Returns Σ y·dy over the top layer's outputs y (the loss whose gradients the check compares); y into *top.
double ref_loss(const Shape& s, const RefParams& p, const std::vector<double>& dy, std::vector<double>* top = nullptr) {
  const int64_t L = s.L, H = s.H, B = s.B, T = s.T, G = 4 * H;
  std::vector<double> in(p.x), out(T * B * H), h(B * H), c(B * H), g(G);
  for (int64_t l = 0; l < L; ++l) {
    std::copy_n(&p.h0[l * B * H], B * H, h.begin());
    std::copy_n(&p.c0[l * B * H], B * H, c.begin());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < B; ++n) {
        for (int64_t j = 0; j < G; ++j) {
          double a = p.b[l * G + j];
          for (int64_t k = 0; k < H; ++k)
            a += in[(t * B + n) * H + k] * p.wl[(l * H + k) * G + j] + h[n * H + k] * p.wi[(l * H + k) * G + j];
          g[j] = a;
        }
        for (int64_t k = 0; k < H; ++k) {
          auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
          const double i = sig(g[k]), fg = sig(g[H + k]), cc = std::tanh(g[2 * H + k]), o = sig(g[3 * H + k]);
          c[n * H + k] = fg * c[n * H + k] + i * cc;
          h[n * H + k] = o * std::tanh(c[n * H + k]);
          out[(t * B + n) * H + k] = h[n * H + k];
        }
      }
    in = out;
  }
  double loss = 0;
  for (int64_t i = 0; i < T * B * H; ++i) loss += out[i] * dy[i];
  if (top) *top = out;
  return loss;
}

std::vector<double> to_double(memory& m) { return std::vector<double>(f(m), f(m) + n_of(m)); }

// Forward output against the reference, then each gradient's directional derivative against central
// differences of the reference loss. Returns false (and says which) on a mismatch.
bool check(int threads) {
  const Shape s{2, 8, 3, 5};
  LstmPeer p(s);
  std::mt19937 gen(7);
  for (memory* m : {&p.x, &p.h0, &p.c0, &p.dy}) fill(*m, gen, 1.0f);
  for (memory* m : {&p.wl, &p.wi, &p.bias}) fill(*m, gen, 0.5f);
  std::memset(f(p.dhT), 0, n_of(p.dhT) * sizeof(float));
  std::memset(f(p.dcT), 0, n_of(p.dcT) * sizeof(float));
  p.reorder_weights();
  p.zero_grads();
  p.forward();
  p.backward();
  p.grads_to_user();
  RefParams r{to_double(p.x), to_double(p.h0), to_double(p.c0), to_double(p.wl), to_double(p.wi), to_double(p.bias)};
  const std::vector<double> dy = to_double(p.dy);
  bool ok = true;
  {  // forward: the top layer's output, element by element
    std::vector<double> want;
    ref_loss(s, r, dy, &want);
    double err = 0;
    for (size_t i = 0; i < want.size(); ++i) err = std::max(err, std::abs(f(p.y)[i] - want[i]));
    fmt::print(stderr, "check forward  dst_layer ({} values): max abs err {:.1e}\n", want.size(), err);
    ok &= err < 1e-5;
  }
  std::mt19937 vg(11);
  std::uniform_real_distribution<double> u(-1, 1);
  auto dir_check = [&](const char* name, std::vector<double> RefParams::*field, memory& grad) {
    std::vector<double>& v = r.*field;
    std::vector<double> dir(v.size());
    double analytic = 0;
    for (size_t i = 0; i < v.size(); ++i) analytic += (dir[i] = u(vg)) * f(grad)[i];
    const double eps = 1e-5;
    const std::vector<double> saved = v;
    for (size_t i = 0; i < v.size(); ++i) v[i] = saved[i] + eps * dir[i];
    const double lp = ref_loss(s, r, dy);
    for (size_t i = 0; i < v.size(); ++i) v[i] = saved[i] - eps * dir[i];
    const double lm = ref_loss(s, r, dy);
    v = saved;
    const double numeric = (lp - lm) / (2 * eps);
    const double err = std::abs(analytic - numeric) / std::max(1.0, std::abs(numeric));
    fmt::print(stderr, "check backward {:<18} onednn {:+.7f} central difference {:+.7f}  rel err {:.1e}\n", name,
               analytic, numeric, err);
    ok &= err < 1e-4;
  };
  dir_check("diff_src_layer", &RefParams::x, p.dx);
  dir_check("diff_src_iter", &RefParams::h0, p.dh0);
  dir_check("diff_src_iter_c", &RefParams::c0, p.dc0);
  dir_check("diff_weights_layer", &RefParams::wl, p.dwl);
  dir_check("diff_weights_iter", &RefParams::wi, p.dwi);
  dir_check("diff_bias", &RefParams::b, p.dbias);
  fmt::print(stderr, "check ({} threads, L {} H {} B {} T {}): {}\n", threads, s.L, s.H, s.B, s.T,
             ok ? "passes" : "FAILS");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Shape s;
  int threads = omp_get_max_threads(), steps = 20, repeats = 3;
  bool json = false, run_check = false;
  CLI::App app{"Times oneDNN's LSTM primitive (forward_training + backward) on the recurrent part of a training step"};
  app.add_option("--layers", s.L, "stacked LSTM layers")->check(CLI::Range(1, 64));
  app.add_option("--hidden", s.H, "hidden size (= input size)")->check(CLI::Range(1, 1 << 16));
  app.add_option("--batch", s.B, "batch lanes")->check(CLI::Range(1, 1 << 16));
  app.add_option("--bptt", s.T, "time steps")->check(CLI::Range(1, 1 << 16));
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::Range(1, 4096));
  app.add_option("--steps", steps, "timed steps per repeat")->check(CLI::Range(1, 1 << 20));
  app.add_option("--repeats", repeats, "repeats (medians are reported)")->check(CLI::Range(1, 1000));
  app.add_flag("--json", json, "last stdout line: one JSON object");
  app.add_flag("--check", run_check, "first check forward and backward against a scalar reference on a tiny shape");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  const dnnl::version_t* ver = dnnl::version();
  const std::string version = fmt::format("{}.{}.{}", ver->major, ver->minor, ver->patch);
  try {
    if (run_check && !check(threads)) return 1;
    LstmPeer p(s);
    std::mt19937 gen(1);
    for (memory* m : {&p.x, &p.h0, &p.c0, &p.dy, &p.dhT, &p.dcT}) fill(*m, gen, 1.0f);
    for (memory* m : {&p.wl, &p.wi, &p.bias}) fill(*m, gen, 0.05f);  // the recipes' init
    p.reorder_weights();
    const std::string formats =
        fmt::format("forward weights {} / {}, backward weights {} / {}, diff weights {} / {}",
                    describe(p.fwd_pd.weights_layer_desc()), describe(p.fwd_pd.weights_iter_desc()),
                    describe(p.bwd_pd.weights_layer_desc()), describe(p.bwd_pd.weights_iter_desc()),
                    describe(p.bwd_pd.diff_weights_layer_desc()), describe(p.bwd_pd.diff_weights_iter_desc()));
    fmt::print("oneDNN {} LSTM primitive ({} / {}), {} threads, L {} H {} B {} T {}, fp32\n", version,
               p.fwd_pd.impl_info_str(), p.bwd_pd.impl_info_str(), threads, s.L, s.H, s.B, s.T);
    fmt::print("weights in the primitives' preferred formats (format_tag::any), reordered once before timing: {}\n",
               formats);
    auto step = [&](double* fwd_s, double* bwd_s) {
      p.zero_grads();
      const auto t0 = clk::now();
      p.forward();
      const auto t1 = clk::now();
      p.backward();
      const auto t2 = clk::now();
      *fwd_s += std::chrono::duration<double>(t1 - t0).count();
      *bwd_s += std::chrono::duration<double>(t2 - t1).count();
    };
    {
      double a = 0, b = 0;
      for (int i = 0; i < 3; ++i) step(&a, &b);  // warm-up
    }
    const double flops = 3 * s.fwd_flops();
    std::vector<double> fwd_ms, bwd_ms, total_ms, gflops;
    fmt::print("{:>6} {:>10} {:>10} {:>10} {:>8}\n", "repeat", "fwd_ms", "bwd_ms", "total_ms", "GFLOP/s");
    for (int r = 0; r < repeats; ++r) {
      double a = 0, b = 0;
      for (int i = 0; i < steps; ++i) step(&a, &b);
      fwd_ms.push_back(a / steps * 1e3);
      bwd_ms.push_back(b / steps * 1e3);
      total_ms.push_back((a + b) / steps * 1e3);
      gflops.push_back(flops / ((a + b) / steps) * 1e-9);
      fmt::print("{:>6} {:>10.2f} {:>10.2f} {:>10.2f} {:>8.1f}\n", r + 1, fwd_ms.back(), bwd_ms.back(), total_ms.back(),
                 gflops.back());
      std::fflush(stdout);  // progress shows even if a slow run is stopped
    }
    // What a trainer would add per step if it kept the weights in ldigo and updated them there.
    std::vector<double> reorder;
    for (int i = 0; i < std::max(3, steps / 4); ++i) {
      const auto t0 = clk::now();
      p.reorder_weights();
      reorder.push_back(std::chrono::duration<double>(clk::now() - t0).count() * 1e3);
    }
    const double med_total = median(total_ms);
    fmt::print("{:>6} {:>10.2f} {:>10.2f} {:>10.2f} {:>8.1f}   (forward {:.1f}, backward {:.1f} GFLOP/s)\n", "median",
               median(fwd_ms), median(bwd_ms), med_total, flops / med_total * 1e-6,
               s.fwd_flops() / median(fwd_ms) * 1e-6, 2 * s.fwd_flops() / median(bwd_ms) * 1e-6);
    fmt::print(
        "weights reorder ldigo → forward and backward formats: {:.2f} ms per step if done every step (not "
        "in total_ms)\n",
        median(reorder));
    if (json) {
      nlohmann::json j = {{"peer", "onednn-lstm"},
                          {"dnnl_version", version},
                          {"impl", {p.fwd_pd.impl_info_str(), p.bwd_pd.impl_info_str()}},
                          {"threads", threads},
                          {"layers", s.L},
                          {"hidden", s.H},
                          {"batch", s.B},
                          {"bptt", s.T},
                          {"steps", steps},
                          {"repeats", repeats},
                          {"fwd_ms", median(fwd_ms)},
                          {"bwd_ms", median(bwd_ms)},
                          {"total_ms", med_total},
                          {"gflops", flops / med_total * 1e-6},
                          {"reorder_ms", median(reorder)},
                          {"weights_formats", formats},
                          {"runs", {{"fwd_ms", fwd_ms}, {"bwd_ms", bwd_ms}, {"total_ms", total_ms}}}};
      fmt::print("{}\n", j.dump());
    }
  } catch (const dnnl::error& e) {
    fmt::print(stderr, "onednn_lstm_peer: oneDNN error {}: {}\n", static_cast<int>(e.status), e.what());
    return 1;
  }
  return 0;
}
