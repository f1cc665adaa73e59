// gemm_tune.cc — the Auto backend of the GEMM seam: for each call signature (transposes, M, N, K, leading
// dimensions, alpha ≠ 1, beta, thread count) the variant that ran fastest on this machine, chosen by
// measurement the first time the signature is met and kept in a plan file (JSON, one entry per machine —
// cpu_key(): model name, family, model, stepping and feature flags —, thread count and signature), so later
// runs reuse the choice and give the same numbers.
//
// A variant is a backend (onednn, blas, libxsmm, blis) with one of two thread partitions: `team` — the
// library parallelizes the product itself — or `split` — manylm's scheduling: the team divides C's columns
// (rows when C is narrow) statically, in multiples of 16, and each thread runs the backend alone on its
// slice. Measurement runs on the call's own operands; C is saved first and restored after the trials,
// so the call's result is exactly what the chosen variant computes. Called from inside a parallel region,
// Auto runs oneDNN on the calling thread (no tuning there: the threads would race).
// The plan is an Engine's (AutoPlan): made with the engine from its plan path, read from disk at first use.
// Not thread-safe across concurrent callers outside parallel regions, like the rest of the seam.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/engine.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/gemm_backends.h"
#include "core/io.h"
#include "core/machine.h"
#include "core/parallel.h"

namespace manylm {

namespace {

struct Variant {
  GemmBackend backend;
  bool split;
};

std::string variant_name(const Variant& v) {
  return fmt::format("{}/{}", name_of(v.backend), v.split ? "split" : "team");
}

bool parse_variant(const std::string& s, Variant* v) {
  const auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  const std::string b = s.substr(0, slash), part = s.substr(slash + 1);
  if (part != "team" && part != "split") return false;
  for (GemmBackend cand : {GemmBackend::OneDnn, GemmBackend::Blas, GemmBackend::Libxsmm, GemmBackend::Blis})
    if (b == name_of(cand)) {
      *v = {cand, part == "split"};
      return true;
    }
  return false;
}

// The signature as numbers: the in-memory lookup of every call, without formatting a string.
using Sig = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, int>;

}  // namespace

struct AutoPlan {
  bool loaded = false;
  std::string path;
  nlohmann::json file = nlohmann::json::object();  // everything on disk, other machines' entries included
  std::map<std::string, Variant> choice;           // this machine's, by key
  std::map<Sig, Variant> fast;                     // choices already looked up in this process
};

void StateDeleter::operator()(AutoPlan* p) const { delete p; }
std::unique_ptr<AutoPlan, StateDeleter> make_auto_plan(const std::string& path) {
  std::unique_ptr<AutoPlan, StateDeleter> p(new AutoPlan);
  p->path = path;
  return p;
}

namespace {

using Plan = AutoPlan;

std::string machine_prefix() {
  static const std::string cpu = cpu_key();  // read /proc/cpuinfo once; model name alone is ambiguous
  return fmt::format("{}|{} threads|", cpu, num_threads());
}

std::string signature(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                      float alpha, float beta) {
  return fmt::format("{}{} {}x{}x{} ld {},{},{} alpha {} beta {}", ta == Trans::N ? 'N' : 'T',
                     tb == Trans::N ? 'N' : 'T', M, N, K, lda, ldb, ldc, alpha, beta);
}

void load(Plan& p) {
  if (p.loaded) return;
  p.loaded = true;
  if (p.path.empty()) p.path = default_cache_dir() + "/gemm-plan.json";
  if (!path_exists(p.path)) return;
  try {
    p.file = nlohmann::json::parse(read_file(p.path, "GEMM plan"));
    if (!p.file.is_object() || p.file.value("format", "") != "manylm-gemm-plan-1")
      throw std::runtime_error("not a manylm GEMM plan");
    const std::string prefix = machine_prefix();
    for (const auto& [key, e] : p.file["entries"].items()) {
      Variant v;
      if (key.rfind(prefix, 0) == 0 && parse_variant(e.value("choice", ""), &v) && gemm_backend_available(v.backend))
        p.choice[key] = v;
    }
  } catch (const std::exception& e) {
    // A cache: a damaged one is measured again and rewritten, never trusted.
    fmt::print(stderr, "warning: {}: ignoring the GEMM plan ({}); shapes will be measured again\n", p.path, e.what());
    p.file = nlohmann::json::object();
    p.choice.clear();
  }
}

// Writes the plan with the entries another process or Engine saved since this one read the file (read, merge,
// rename: the last writer no longer drops the others' measurements; two writers at the same instant can still
// lose one entry, which is then measured again).
void save(Plan& p) {
  try {
    const nlohmann::json disk = nlohmann::json::parse(read_file(p.path, "GEMM plan"));
    if (disk.is_object() && disk.value("format", "") == "manylm-gemm-plan-1" && disk.contains("entries"))
      for (const auto& [key, e] : disk["entries"].items())
        if (!p.file["entries"].contains(key)) p.file["entries"][key] = e;
  } catch (const std::exception&) {  // none yet, or damaged: this one's entries replace it
  }
  p.file["format"] = "manylm-gemm-plan-1";
  try {
    make_directories(p.path.substr(0, p.path.find_last_of('/')));
    write_file_atomic(p.path, p.file.dump(1) + "\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: {}: cannot save the GEMM plan ({}); it stays in memory\n", p.path, e.what());
  }
}

void run_variant(const Engine& e, const Variant& v, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!v.split) {
    gemm_with(e, v.backend, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    if (N >= 16 * nt) {  // columns, in whole vectors of 16
      auto [p0, p1] = static_range((N + 15) / 16, tid, nt);
      const int64_t n0 = p0 * 16, n1 = std::min<int64_t>(N, p1 * 16);
      const float* Bs = tb == Trans::N ? B + n0 : B + n0 * ldb;
      if (n1 > n0) gemm_with(e, v.backend, ta, tb, M, n1 - n0, K, alpha, A, lda, Bs, ldb, beta, C + n0, ldc);
    } else {  // rows
      auto [m0, m1] = static_range(M, tid, nt);
      const float* As = ta == Trans::N ? A + m0 * lda : A + m0;
      if (m1 > m0) gemm_with(e, v.backend, ta, tb, m1 - m0, N, K, alpha, As, lda, B, ldb, beta, C + m0 * ldc, ldc);
    }
  }
}

std::vector<Variant> candidates() {
  std::vector<Variant> cands;
  for (GemmBackend b : {GemmBackend::OneDnn, GemmBackend::Blas, GemmBackend::Libxsmm, GemmBackend::Blis}) {
    if (!gemm_backend_available(b)) continue;
    cands.push_back({b, false});
    if (num_threads() > 1) cands.push_back({b, true});
  }
  return cands;
}

// The variant Auto takes: the fastest, except that one within kTie of the fastest and earlier in the list
// (oneDNN's own threading first, the default backend) is preferred: a difference that small is within the
// noise of the measurement, and a stable plan is worth more than it.
size_t choose(const std::vector<double>& seconds) {
  constexpr double kTie = 0.01;
  const double fastest = *std::min_element(seconds.begin(), seconds.end());
  for (size_t i = 0; i < seconds.size(); ++i)
    if (seconds[i] <= fastest * (1 + kTie)) return i;
  return 0;
}

// Seconds per call of every candidate: rounds that run each variant in an order rotated each round, so that a
// burst of load from another process (this may be a shared machine) slows all variants alike instead of one
// variant's whole turn. Round 0 plans/JITs and warms caches and sizes the samples: a sample repeats the call
// until it lasts about 0.2 ms, so that small products are not timed at the clock's resolution. Then the
// fastest sample of each variant over 5 timed rounds (2 for products over 50 ms).
std::vector<double> time_variants(const Engine& e, const std::vector<Variant>& cands, Trans ta, Trans tb, int64_t M,
                                  int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                                  int64_t ldb, float beta, float* C, int64_t ldc) {
  const size_t nv = cands.size();
  std::vector<double> fastest(nv, 1e30);
  std::vector<int> reps(nv, 1);
  for (int r = 0; r < 6; ++r) {
    for (size_t j = 0; j < nv; ++j) {
      const size_t i = (j + static_cast<size_t>(r)) % nv;
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < reps[i]; ++k) run_variant(e, cands[i], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps[i];
      if (r == 0)
        reps[i] = static_cast<int>(std::clamp(2e-4 / std::max(s, 1e-9), 1.0, 64.0));
      else
        fastest[i] = std::min(fastest[i], s);
    }
    if (r >= 2 && *std::min_element(fastest.begin(), fastest.end()) > 0.05) break;  // large products: two timed rounds
  }
  return fastest;
}

Variant tune(const Engine& e, Plan& p, const std::string& key, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K,
             float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const std::vector<Variant> cands = candidates();
  // C is kept and restored: the trials overwrite (or, with beta ≠ 0, accumulate into) it, and the caller
  // then runs the chosen variant on the original.
  std::vector<float> saved(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i) std::copy(C + i * ldc, C + i * ldc + N, saved.begin() + i * N);
  const std::vector<double> seconds = time_variants(e, cands, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  for (int64_t i = 0; i < M; ++i) std::copy(saved.begin() + i * N, saved.begin() + (i + 1) * N, C + i * ldc);
  nlohmann::json times = nlohmann::json::object();
  for (size_t i = 0; i < cands.size(); ++i) times[variant_name(cands[i])] = std::round(seconds[i] * 1e7) / 10;  // µs
  const size_t best = choose(seconds);
  p.file["entries"][key] = {{"choice", variant_name(cands[best])}, {"us", times}};
  if (std::getenv("MANYLM_GEMM_VERBOSE"))
    fmt::print(stderr, "gemm: {} → {} ({:.1f} µs; {})\n", key, variant_name(cands[best]), seconds[best] * 1e6,
               times.dump());
  save(p);
  return cands[best];
}

}  // namespace

std::string auto_plan_path(AutoPlan& p) {
  load(p);
  return p.path;
}

std::string auto_choice(AutoPlan& p, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                        int64_t ldc, float alpha, float beta) {
  load(p);
  auto it = p.choice.find(machine_prefix() + signature(ta, tb, M, N, K, lda, ldb, ldc, alpha, beta));
  return it == p.choice.end() ? "" : variant_name(it->second);
}

void gemm_auto(const Engine& e, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (omp_in_parallel()) {
    gemm_onednn(*e.state().onednn, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  Plan& p = *e.state().plan;
  load(p);
  const Sig sig{static_cast<int>(ta), static_cast<int>(tb), M, N, K, lda, ldb, ldc, alpha, beta, num_threads()};
  auto fast = p.fast.find(sig);
  if (fast == p.fast.end()) {
    const std::string key = machine_prefix() + signature(ta, tb, M, N, K, lda, ldb, ldc, alpha, beta);
    auto it = p.choice.find(key);
    if (it == p.choice.end()) {
      const Variant v = tune(e, p, key, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      it = p.choice.emplace(key, v).first;
    }
    fast = p.fast.emplace(sig, it->second).first;
  }
  run_variant(e, fast->second, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace manylm
