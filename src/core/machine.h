// machine.h — what this machine can do, measured: FP32 FMA peak and (where the CPU has AVX512_BF16)
// bf16 dot-product peak, for any thread count, and memory bandwidth (STREAM triad). Every percentage
// manylm prints is of these measured numbers, not of a datasheet. Not a benchmark harness (cli/bench).
#pragma once
#include <string>

namespace manylm {

struct PeakResult {
  double gflops = 0;   // total over the threads
  double seconds = 0;  // measured duration
};

// Runs `threads` threads of independent FMA chains for about `seconds`; the best of `windows` windows (0: windows
// of 3 ms). Short windows find the machine's capability also where the clock drops under sustained AVX-512 load
// or a neighbour takes turns on the cores: what a product timed for a few ms also gets.
PeakResult measure_fp32_peak(int threads, double seconds, int windows = 0);
bool cpu_has_avx512_bf16();
PeakResult measure_bf16_peak(int threads, double seconds, int windows = 0);  // gflops = 0 without AVX512_BF16
// a[i] = b[i] + s·c[i] over arrays of `mib` MiB each; returns GB/s counting 3 arrays' traffic.
double measure_triad_gbs(int threads, int mib, int repeats);
std::string cpu_model();  // /proc/cpuinfo's model name, for people ("AMD EPYC" names both Zen 3 and Zen 5 guests)
// What identifies a machine for measured choices (the GEMM plan): model name, family, model, stepping and a
// hash of the feature flags.
std::string cpu_key();

// The memory this process may use, in bytes: its cgroup's limit where one is set (v2 memory.max, v1
// memory.limit_in_bytes), else physical memory (MemTotal), the smaller where both; `source` says which.
double memory_limit_bytes(std::string* source = nullptr);

}  // namespace manylm
