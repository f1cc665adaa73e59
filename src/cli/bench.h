// bench.h — shared pieces of the `manylm bench` subcommands: options, a result table printed as text,
// CSV or JSON, medians, thread lists. Each bench lives in its own bench_*.cc.
#pragma once
#include <omp.h>

#include <map>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/parallel.h"

namespace manylm {

struct BenchOptions {
  std::string threads;  // "1,2"; empty: 1 and all
  int repeats = 5;
  bool csv = false, json = false;
  std::string batches = "20,64,128", hiddens = "200,650,1500";
  int bptt = 20, vocab = 10000;
  std::string recipe, data;
  int steps = 20;
  std::string backends = "blas,onednn";  // GEMM backends to compare
  std::string precisions = "fp32";       // bench train: fp32, bf16
  bool gemm_profile = false;             // bench train: per-signature GEMM table
  bool ceiling = false;                  // bench train: also measure the GEMM ceiling, and the step as % of it
  bool no_packed = false;                // bench train: gemm() per recurrent step instead of the packed kernel (A/B)
  bool allow_engine = false;             // bench gemm: backend "manylm" (the trainer's engine) is allowed
  std::string gemm_cutoffs;              // bench gemm: adaptive softmax cutoffs for the output-layer chain
  int64_t train_vocab = 0;               // bench train: > 0: synthetic Zipf(1) ids over this vocabulary
  std::map<std::string, std::string> model_options;       // bench train: output-layer options over the recipe's
  std::string schemes = "none,fp16,int8,dyn8,threshold";  // bench comm
  std::string part = "all";                               // bench comm: sizes | step | all
};
std::vector<std::string> backend_list(const BenchOptions& o);

// A table of results. Cells are text as printed; with --json every cell that is a number is written as a JSON
// number ("n/a" and empty cells as null). A percentage of the measured peak above 100 (columns named
// *pct_peak, and gemm_ceiling_pct) is a measurement problem, never clamped: it is printed with a "!" and a
// note under the table, and in JSON listed in the row's "suspect" array and the table's "warnings".
class BenchTable {
 public:
  BenchTable(std::string name, std::vector<std::string> columns)
      : name_(std::move(name)), columns_(std::move(columns)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(const BenchOptions& o) const;

 private:
  bool suspect(size_t column, const std::string& cell) const;
  void print_json() const;
  void print_text(bool csv) const;
  std::string name_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// The FP32 (or bf16 dot-product) peak of a thread count as the best of every measurement this process made
// of it: a bench measures it again between its rows, since a busy neighbour can only lower a measurement
// and a denominator measured low would inflate every percentage printed with it.
class PeakTracker {
 public:
  double measure(int threads, bool bf16);  // one more measurement (~0.15 s); returns the best so far
  double best(int threads, bool bf16) const;

 private:
  std::map<std::pair<int, bool>, double> best_;  // by (threads, bf16)
};

inline int omp_procs() { return cpu_count(); }  // the process's CPUs, not the (pinned) calling thread's
std::vector<int> parse_int_list(const std::string& s, const char* opt);
inline std::vector<int> thread_list(const BenchOptions& o) {
  if (!o.threads.empty()) return parse_int_list(o.threads, "threads-list");
  return omp_procs() > 1 ? std::vector<int>{1, omp_procs()} : std::vector<int>{1};
}
double median(std::vector<double> v);

// The GEMM ceiling: the fastest that any GEMM library here runs one large, well-shaped FP32 product
// (1536³, every available backend, median of max(3, repeats) each) on the current team — what a training
// step made of GEMMs can hope for on this machine, as opposed to what its FMA units can do.
struct GemmCeiling {
  double gflops = 0;
  std::string backend = "n/a";
};
GemmCeiling measure_gemm_ceiling(const Engine& e, int repeats);

int bench_peak(const BenchOptions& o);
int bench_gemm(const BenchOptions& o);
int bench_rng(const BenchOptions& o);
int bench_train(const BenchOptions& o);
int bench_comm(const BenchOptions& o);

}  // namespace manylm
