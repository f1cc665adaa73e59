// bench_cmd.cc — `manylm bench peak | gemm | rng | train`: the measurements behind every figure in
// docs/RESULTS.md. Each prints a table (or --csv / --json), medians of --repeats runs, and percentages of
// the peak measured on this machine in the same run. Kernels are checked against their reference
// before they are timed.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <vector>

#include "cli/bench.h"
#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/machine.h"
#include "core/parallel.h"
#include "train/options.h"

namespace manylm {

std::vector<int> parse_int_list(const std::string& s, const char* opt) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      size_t used = 0;
      const int v = std::stoi(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      fail("--{}: '{}' is not a comma-separated list of positive integers", opt, s);
    }
  }
  if (out.empty()) fail("--{}: empty list", opt);
  return out;
}

std::vector<std::string> backend_list(const BenchOptions& o) {
  std::vector<std::string> out;
  std::stringstream in(o.backends);
  for (std::string item; std::getline(in, item, ',');) {
    std::string why;
    if (item == "manylm" && o.allow_engine) {  // bench gemm: the trainer's engine (Auto + packed recurrent kernel)
      out.push_back(item);
      continue;
    }
    if (!gemm_backend_available(parse_name<GemmBackend>(item, "--backend-list"),
                                &why)) {  // UserError on an unknown name
      fmt::print(stderr, "bench: backend {} skipped: {}\n", item, why);
      continue;
    }
    out.push_back(item);
  }
  if (out.empty()) fail("--backend-list: no usable backend in '{}'", o.backends);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

GemmCeiling measure_gemm_ceiling(const Engine& e, int repeats) {
  constexpr int64_t n = 1536;
  std::vector<float> a(n * n), b(n * n), c(n * n);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto* v : {&a, &b})
    for (float& x : *v) x = u(rng);
  GemmCeiling best;
  for (GemmBackend be : {GemmBackend::Blas, GemmBackend::OneDnn, GemmBackend::Blis, GemmBackend::Libxsmm}) {
    if (!gemm_backend_available(be, nullptr)) continue;
    auto once = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      gemm_with(e, be, Trans::N, Trans::N, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    once();  // warm-up: library threads, JIT, pages
    std::vector<double> g;
    for (int r = 0; r < std::max(3, repeats); ++r) g.push_back(2.0 * n * n * n / once() / 1e9);
    const double m = median(g);
    if (m > best.gflops) best = {m, name_of(be)};
  }
  return best;
}

namespace {
// A cell as JSON: a number when the whole cell is one, null for "n/a" or nothing, else the text.
nlohmann::json json_cell(const std::string& cell) {
  if (cell.empty() || cell == "n/a") return nullptr;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  if (end != cell.c_str() + cell.size() || !std::isfinite(v)) return cell;
  if (cell.find_first_of(".eE") == std::string::npos) return static_cast<int64_t>(std::llround(v));
  return v;
}
constexpr char kSuspectNote[] =
    "! above 100 % of the peak measured in this run: a measurement problem, not a result (something else ran "
    "while the peak or the row was measured); rerun on a quiet machine";
}  // namespace

bool BenchTable::suspect(size_t column, const std::string& cell) const {
  const std::string& c = columns_[column];
  const bool of_peak = c == "gemm_ceiling_pct" || (c.size() >= 8 && c.compare(c.size() - 8, 8, "pct_peak") == 0);
  if (!of_peak) return false;
  const nlohmann::json v = json_cell(cell);
  return v.is_number() && v.get<double>() > 100.0;
}

void BenchTable::print_json() const {
  nlohmann::json rows = nlohmann::json::array(), warnings = nlohmann::json::array();
  for (const auto& r : rows_) {
    nlohmann::json j = nlohmann::json::object(), bad = nlohmann::json::array();
    for (size_t i = 0; i < columns_.size(); ++i) {
      j[columns_[i]] = json_cell(r[i]);
      if (suspect(i, r[i])) bad.push_back(columns_[i]);
    }
    if (!bad.empty()) j["suspect"] = bad;
    if (!bad.empty() && warnings.empty()) warnings.push_back(kSuspectNote + 2);
    rows.push_back(j);
  }
  nlohmann::json out{{"command", "bench"}, {"bench", name_}, {"cpu", cpu_model()}, {"rows", rows}};
  if (!warnings.empty()) out["warnings"] = warnings;
  fmt::print("{}\n", out.dump());
}

void BenchTable::print_text(bool csv) const {
  bool any_suspect = false;
  std::vector<std::vector<std::string>> shown = rows_;
  for (auto& r : shown)
    for (size_t i = 0; i < r.size(); ++i)
      if (suspect(i, r[i])) r[i] += "!", any_suspect = true;
  std::vector<size_t> w(columns_.size(), 0);
  for (size_t i = 0; i < columns_.size() && !csv; ++i) {
    w[i] = columns_[i].size();
    for (const auto& r : shown) w[i] = std::max(w[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i)
      l += csv ? (i ? "," : "") + cells[i] : fmt::format("{:>{}}  ", cells[i], w[i]);
    fmt::print("{}\n", l);
  };
  if (!csv) fmt::print("# {} on {} ({} hardware threads)\n", name_, cpu_model(), omp_procs());
  line(columns_);
  for (const auto& r : shown) line(r);
  if (any_suspect) fmt::print(stderr, "{}\n", kSuspectNote);
}

void BenchTable::print(const BenchOptions& o) const {
  if (o.json)
    print_json();
  else
    print_text(o.csv);
}

double PeakTracker::measure(int threads, bool bf16) {
  const double g = bf16 ? measure_bf16_peak(threads, 0.12).gflops : measure_fp32_peak(threads, 0.12).gflops;
  double& best = best_[{threads, bf16}];
  return best = std::max(best, g);
}

double PeakTracker::best(int threads, bool bf16) const {
  const auto it = best_.find({threads, bf16});
  return it == best_.end() ? 0.0 : it->second;
}

Runner add_bench_command(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "Measure this machine and manylm's kernels (peak, gemm, rng, train, comm)");
  sub->require_subcommand(1);
  auto o = std::make_shared<BenchOptions>();
  auto common = [&](CLI::App* s) {
    s->add_option("--threads-list", o->threads, "Thread counts to measure, comma-separated (default: 1 and all)");
    s->add_option("--repeats", o->repeats, "Runs per figure; the median is reported")->capture_default_str();
    s->add_flag("--csv", o->csv, "Print CSV");
    s->add_flag("--json", o->json, "Print one JSON object");
  };
  auto* peak =
      sub->add_subcommand("peak", "FP32 FMA and bf16 dot-product peak per thread count, memory bandwidth (triad)");
  common(peak);
  auto* gemm =
      sub->add_subcommand("gemm", "The seed's GEMM chains: one shape, and the GEMMs of RNN/LSTM training steps");
  common(gemm);
  gemm->add_option("--batch-list", o->batches, "Batch sizes (B)")->capture_default_str();
  gemm->add_option("--hidden-list", o->hiddens, "Hidden sizes (H)")->capture_default_str();
  gemm->add_option("--bptt", o->bptt, "Steps per window (T)")->capture_default_str();
  gemm->add_option("--vocab", o->vocab, "Vocabulary size (V)")->capture_default_str();
  gemm->add_option("--cutoffs", o->gemm_cutoffs,
                   "Also time an adaptive softmax's output layer with these cutoffs (C1,C2,...; div-value 4)");
  gemm->add_option("--backend-list", o->backends,
                   "GEMM backends, comma-separated (blas, onednn, libxsmm, blis, auto; manylm: the trainer's engine)")
      ->capture_default_str();
  auto* rng = sub->add_subcommand("rng", "Dropout mask generation: ns per element and share of a training step");
  common(rng);
  auto* train = sub->add_subcommand("train", "Training step of a recipe: tokens/s, GFLOP/s, % of peak, time per phase");
  common(train);
  train->add_option("--recipe", o->recipe, "Recipe JSON file (as for train --config)")->required();
  train->add_option("--steps", o->steps, "Timed steps per repeat")->capture_default_str();
  train->add_option("--data", o->data, "Data directory");
  train->add_option("--backend-list", o->backends, "GEMM backends, comma-separated (blas, onednn, libxsmm, blis, auto)")
      ->capture_default_str();
  train->add_option("--precision-list", o->precisions, "Precisions, comma-separated (fp32, bf16: onednn only)")
      ->capture_default_str();
  train->add_flag("--gemm-profile", o->gemm_profile,
                  "Also print each GEMM signature's calls, time and % of peak per step");
  train->add_flag("--no-packed-recurrent", o->no_packed,
                  "Recurrent products through gemm() per step instead of the packed kernel (A/B measurements)");
  train->add_flag("--ceiling", o->ceiling,
                  "Also measure the GEMM ceiling (bench peak) per thread count and print the step as % of it");
  train->add_option("--vocab", o->train_vocab,
                    "Vocabulary size: train on synthetic ids drawn from Zipf(1) over it instead of the corpus");
  for (const char* name : {"output", "cutoffs", "div-value", "head-bias", "sparse-updates"})
    train->add_option(std::string("--") + name, o->model_options[name],
                      std::string("As for train, over the recipe's: ") + find_train_option(name)->help);
  auto* comm = sub->add_subcommand(
      "comm", "Under mpirun: gradient reduction time and bytes per scheme, and how much hides behind backward");
  common(comm);
  comm->add_option("--schemes", o->schemes, "Schemes, comma-separated (none, fp16, int8, dyn8, threshold)")
      ->capture_default_str();
  comm->add_option("--recipe", o->recipe, "Recipe whose training step is timed")->default_val("recipes/ptb-small.json");
  comm->add_option("--steps", o->steps, "Timed steps per repeat")->capture_default_str();
  comm->add_option("--data", o->data, "Data directory");
  comm->add_option("--part", o->part, "sizes (message sizes), step (the recipe's step) or all")->capture_default_str();
  return [o, peak, gemm, rng, train, comm] {
    if (o->repeats <= 0) fail("--repeats: must be positive (got {})", o->repeats);
    if (o->steps <= 0) fail("--steps: must be positive (got {})", o->steps);
    if (o->bptt <= 0) fail("--bptt: must be positive (got {})", o->bptt);
    if (o->vocab <= 1) fail("--vocab: must be at least 2 (got {})", o->vocab);
    if (o->train_vocab < 0 || o->train_vocab == 1 || o->train_vocab > INT32_MAX)
      fail("--vocab: must be at least 2 (got {})", o->train_vocab);
    if (peak->parsed()) return bench_peak(*o);
    if (gemm->parsed()) {
      if (gemm->count("--backend-list") == 0) o->backends = "blas,onednn,blis,libxsmm,auto,manylm";
      o->allow_engine = true;
      return bench_gemm(*o);
    }
    if (rng->parsed()) return bench_rng(*o);
    if (train->parsed()) return bench_train(*o);
    if (comm->parsed()) return bench_comm(*o);
    return 2;
  };
}

}  // namespace manylm
