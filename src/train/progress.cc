// progress.cc — see progress.h.
#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train/config.h"
#include "train/trainer.h"

namespace manylm {

void StepReport::set_eta(int64_t window_tokens, int64_t max_steps) {
  const double per_window = static_cast<double>(window_tokens) / std::max(tokens_per_sec, 1e-9);  // seconds
  int64_t epoch_left = windows - window;
  int64_t left = epoch_left + std::max<int64_t>(0, epochs - epoch - 1) * windows;
  if (max_steps > 0) epoch_left = std::min(epoch_left, max_steps - step), left = std::min(left, max_steps - step);
  epoch_eta_seconds = static_cast<double>(epoch_left) * per_window;
  run_eta_seconds = static_cast<double>(left) * per_window;
}

std::string start_line(const Config& c, int64_t vocab, int64_t params, int threads, int ranks, int64_t train_tokens,
                       bool cached_ids, const std::string& run_dir) {
  // The activation only where it is a choice (Elman); LSTM and GRU gates are fixed.
  const std::string act = c.cell == Cell::Elman ? fmt::format(" ({})", name_of(c.activation)) : "";
  return fmt::format("manylm: {} {}x{}{}, vocab {}, {} parameters, {} threads{}, train {} tokens{}; run {}",
                     name_of(c.cell), c.layers, c.hidden, act, vocab, params, threads,
                     ranks > 1 ? fmt::format(" x {} ranks (gradients: {})", ranks, name_of(c.grad_compress)) : "",
                     train_tokens, cached_ids ? " (cached ids)" : "", run_dir);
}

Progress::Progress(double every_seconds, std::string metrics_path, bool silent)
    : every_(every_seconds),
      metrics_(silent ? std::string() : std::move(metrics_path)),
      tty_(::isatty(2) == 1),
      silent_(silent) {
  last_print_ = last_record_ = std::chrono::steady_clock::now();
}

void Progress::step(const StepReport& r) {
  if (silent_) return;
  interval_loss_ += r.loss;
  interval_tokens_ += r.tokens;
  auto now = std::chrono::steady_clock::now();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const double since_record = std::chrono::duration<double>(now - last_record_).count();
  const double pct = 100.0 * static_cast<double>(r.window) / static_cast<double>(r.windows);
  if (since_record >= every_) {
    last_record_ = now;
    record(nlohmann::json{{"type", "train"},
                          {"step", r.step},
                          {"epoch", r.epoch + 1},
                          {"lr", r.lr},
                          {"ppl", std::exp(interval_loss_ / static_cast<double>(interval_tokens_))},
                          {"tokens_per_sec", r.tokens_per_sec}}
               .dump());
    interval_loss_ = 0;
    interval_tokens_ = 0;
  }
  if (tty_ ? since_print < 0.25 : since_print < every_) return;
  last_print_ = now;
  const int64_t eta = static_cast<int64_t>(r.epoch_eta_seconds), run_eta = static_cast<int64_t>(r.run_eta_seconds / 60);
  std::string s =
      fmt::format("epoch {}/{} {:5.1f}% | step {} | lr {:.4g} | {:.0f} tok/s | train ppl {:.2f} | epoch ETA {}:{:02d}",
                  r.epoch + 1, r.epochs, pct, r.step, r.lr, r.tokens_per_sec, r.epoch_ppl, eta / 60, eta % 60);
  // The whole run's remaining training at this rate (validation not counted; newbob may stop it sooner).
  if (r.run_eta_seconds > r.epoch_eta_seconds + 1)
    s += run_eta >= 60 ? fmt::format(" | run ETA {}h{:02d}m", run_eta / 60, run_eta % 60)
                       : fmt::format(" | run ETA {}m", run_eta);
  if (tty_) {
    fmt::print(stderr, "\r\033[K{}", s);
    live_ = true;
  } else {
    fmt::print(stderr, "{}\n", s);
  }
  std::fflush(stderr);
}

void Progress::line(const std::string& text) {
  if (silent_) return;
  if (live_) fmt::print(stderr, "\r\033[K");
  live_ = false;
  fmt::print(stderr, "{}\n", text);
  std::fflush(stderr);
}

void Progress::record(const std::string& json_line) {
  if (metrics_.empty()) return;
  std::ofstream f(metrics_, std::ios::app);
  f << json_line << '\n';
}

void Progress::epoch_end(const EpochReport& r) {
  line(fmt::format("epoch {:3d} | lr {:.4g} | train ppl {:8.2f} | valid ppl {:8.2f}{} | {:.0f} tok/s", r.epoch, r.lr,
                   r.train_ppl, r.valid_ppl, r.averaged_updates > 0 ? " (averaged)" : "", r.tokens_per_sec));
  nlohmann::json j{{"type", "valid"},
                   {"step", r.step},
                   {"epoch", r.epoch},
                   {"lr", r.lr},
                   {"train_ppl", r.train_ppl},
                   {"valid_ppl", r.valid_ppl},
                   {"epoch_train_seconds", r.epoch_train_seconds},
                   {"train_seconds", r.train_seconds}};
  if (r.averaged_updates > 0) j["averaged_updates"] = r.averaged_updates;  // valid_ppl is the average's
  record(j.dump());
}

void Progress::finish(const TrainResult& r, int64_t step, const char* codec) {
  record(nlohmann::json{{"type", "test"},
                        {"step", step},
                        {"valid_ppl", r.valid_ppl},
                        {"test_ppl", r.test_ppl},
                        {"best_epoch", r.best_epoch}}
             .dump());
  line(fmt::format("done: {} steps, {} epochs | valid ppl {:.2f} | test ppl {:.2f}{} | {:.0f} tok/s | {:.1f} s",
                   r.steps, r.epochs, r.valid_ppl, r.test_ppl,
                   r.best_epoch > 0 ? fmt::format(" (epoch {})", r.best_epoch) : "", r.tokens_per_sec, r.wall_seconds));
  if (r.ranks > 1)  // with sparse updates the embedding's rows travel apart from the block: their bytes too
    line(fmt::format(
        "gradients ({}): {:.2f} MB sent per step per rank ({:.1f}x less than fp32 all-reduce){}, "
        "{:.1f} ms per step in flight, {:.1f} ms exposed",
        codec, r.wire_bytes_per_step / 1e6,
        2.0 * (r.ranks - 1) / r.ranks * r.raw_bytes_per_step / std::max(r.wire_bytes_per_step, 1.0),
        r.row_bytes_per_step > 0 ? fmt::format(" + {:.3f} MB of embedding rows", r.row_bytes_per_step / 1e6) : "",
        r.comm_ms_per_step, r.wait_ms_per_step));
}

void Progress::resumed(int64_t step, int64_t epoch, int64_t window) {
  line(fmt::format("resumed at step {} (epoch {}, window {})", step, epoch + 1, window));
}

void Progress::stopped_by_signal(int64_t step, const std::string& run_dir) {
  line(fmt::format("manylm: signal at step {}: checkpoint saved in {}; continue with --resume {}", step, run_dir,
                   run_dir));
}

void Progress::averaging_starts(int64_t from, int64_t best_epoch, int64_t nonmono) {
  line(
      fmt::format("averaging the weights from epoch {} on: the best validation loss (epoch {}) is {} epochs old "
                  "(--average-nonmono {})",
                  from, best_epoch, from - 1 - best_epoch, nonmono));
}

void Progress::scoring_best(int64_t epoch, const std::string& path) {
  line(fmt::format("scoring the weights of epoch {}, the best on validation ({})", epoch, path));
}

void Progress::scoring_average(int64_t updates, int64_t from_epoch) {
  line(fmt::format("scoring the mean of the weights after each of the {} updates since epoch {}", updates, from_epoch));
}

}  // namespace manylm
