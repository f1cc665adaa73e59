// machine.cc — see machine.h.
#include "core/machine.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <vector>

#include <fmt/format.h>

namespace manylm {

namespace {
using Clock = std::chrono::steady_clock;

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#else
constexpr int kLanes = 8;
#endif
typedef float vec __attribute__((vector_size(kLanes * 4)));
constexpr int kChains = 12;  // independent accumulators: enough to cover FMA latency × ports
constexpr long kInner = 1 << 16;

// Returns FLOPs done: kInner iterations × kChains FMAs × kLanes lanes × 2.
__attribute__((noinline)) double fma_block(float seed, vec* sink) {
  vec acc[kChains];
  vec a, b;
  for (int l = 0; l < kLanes; ++l) a[l] = 1.0f + 1e-7f * seed, b[l] = 1e-7f;
  for (int c = 0; c < kChains; ++c) acc[c] = a * (float)c;
  for (long i = 0; i < kInner; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
  vec s = acc[0];
  for (int c = 1; c < kChains; ++c) s += acc[c];
  *sink = s;
  return double(kInner) * kChains * kLanes * 2;
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_block(float seed, float* sink) {
  __m512 acc[kChains];
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f + seed * 1e-3f), _mm512_set1_ps(1.0f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-7f), _mm512_set1_ps(1e-7f));
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
  for (long i = 0; i < kInner; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  *sink = out[0] + out[15];
  return double(kInner) * kChains * 16 * 2 * 2;  // 16 lanes × 2 bf16 pairs × (mul + add)
}

template <typename Block>
PeakResult run_peak(int threads, double seconds, Block block) {
  double flops = 0;
  const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
  {
    vec sink = {};
    float fsink = 0;
    const float seed = static_cast<float>(omp_get_thread_num());
    while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) flops += block(seed, &sink, &fsink);
    if (sink[0] == 12345.0f || fsink == 12345.0f) std::abort();  // keep the results alive
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return {flops / s * 1e-9, s};
}
}  // namespace

// Peak is a capability: the best of many short windows. The clock drops after some ms of heavy AVX-512 work
// and neighbours take turns on the cores; a GEMM timed for a few ms gets the fast moments too, so a peak
// averaged over long windows would be lower than what a product reaches (Xeon guest, 2026-12-06: 50 ms windows
// gave 153.5 GFLOP/s on 1 thread, 3 ms windows 157–161, OpenBLAS on 1536³ 155–163).
constexpr double kWindowSeconds = 0.003;
template <typename Block>
PeakResult best_of(int threads, double seconds, int windows, Block block) {
  PeakResult best;
  for (int w = 0; w < windows; ++w) {
    PeakResult r = run_peak(threads, seconds / windows, block);
    if (r.gflops > best.gflops) best = r;
  }
  return best;
}

PeakResult measure_fp32_peak(int threads, double seconds, int windows) {
  if (windows <= 0) windows = std::max(6, static_cast<int>(seconds / kWindowSeconds));
  return best_of(threads, seconds, windows, [](float seed, vec* sink, float*) { return fma_block(seed, sink); });
}

bool cpu_has_avx512_bf16() { return __builtin_cpu_supports("avx512bf16"); }

PeakResult measure_bf16_peak(int threads, double seconds, int windows) {
  if (!cpu_has_avx512_bf16()) return {};
  if (windows <= 0) windows = std::max(6, static_cast<int>(seconds / kWindowSeconds));
  return best_of(threads, seconds, windows, [](float seed, vec*, float* sink) { return bf16_block(seed, sink); });
}

double measure_triad_gbs(int threads, int mib, int repeats) {
  const size_t n = static_cast<size_t>(mib) << 18;  // floats
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 3.0 * n * sizeof(float) / s * 1e-9);
  }
  if (a[n / 2] != 2.0f) std::abort();
  return best;
}

namespace {
// The value of the first "key : value" line of /proc/cpuinfo whose key is `key` ("" when there is none).
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k == key) return colon + 2 <= line.size() ? line.substr(colon + 2) : "";
  }
  return "";
}
}  // namespace

std::string cpu_model() {
  const std::string m = cpuinfo_field("model name");
  return m.empty() ? "unknown" : m;
}

std::string cpu_key() {
  // FNV-1a of the feature flags: two CPUs (or two guests of one) that differ in any flag are different machines.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : cpuinfo_field("flags")) h = (h ^ ch) * 1099511628211ull;
  return fmt::format("{} (family {} model {} stepping {}, flags {:016x})", cpu_model(), cpuinfo_field("cpu family"),
                     cpuinfo_field("model"), cpuinfo_field("stepping"), h);
}

namespace {
// The first number in a file (0 when absent or not a number, e.g. cgroup v2's "max").
double number_in(const char* path) {
  std::ifstream in(path);
  double v = 0;
  return in >> v ? v : 0;
}
}  // namespace

double memory_limit_bytes(std::string* source) {
  double total = 0;
  std::ifstream in("/proc/meminfo");
  for (std::string key; in >> key;) {
    double kb = 0;
    in >> kb;
    if (key == "MemTotal:") total = kb * 1024;
    in.ignore(1 << 10, '\n');
  }
  double cg = number_in("/sys/fs/cgroup/memory.max");
  if (cg <= 0) cg = number_in("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  const bool limited = cg > 0 && cg < 1e18 && (total <= 0 || cg < total);
  if (source) *source = limited ? "the cgroup's limit" : "physical memory";
  return limited ? cg : total;
}

}  // namespace manylm
