// progress.cc — see progress.h.
#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace manylm {

Progress::Progress(double every_seconds, std::string metrics_path, bool silent)
    : every_(every_seconds), metrics_(silent ? std::string() : std::move(metrics_path)), tty_(::isatty(2) == 1), silent_(silent) {
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
    record(nlohmann::json{{"type", "train"}, {"step", r.step}, {"epoch", r.epoch + 1}, {"lr", r.lr},
                          {"ppl", std::exp(interval_loss_ / static_cast<double>(interval_tokens_))}, {"tokens_per_sec", r.tokens_per_sec}}
               .dump());
    interval_loss_ = 0;
    interval_tokens_ = 0;
  }
  if (tty_ ? since_print < 0.25 : since_print < every_) return;
  last_print_ = now;
  const int64_t eta = static_cast<int64_t>(r.epoch_eta_seconds), run_eta = static_cast<int64_t>(r.run_eta_seconds / 60);
  std::string s = fmt::format("epoch {}/{} {:5.1f}% | step {} | lr {:.4g} | {:.0f} tok/s | train ppl {:.2f} | epoch ETA {}:{:02d}",
                              r.epoch + 1, r.epochs, pct, r.step, r.lr, r.tokens_per_sec, r.epoch_ppl, eta / 60, eta % 60);
  // The whole run's remaining training at this rate (validation not counted; newbob may stop it sooner).
  if (r.run_eta_seconds > r.epoch_eta_seconds + 1)
    s += run_eta >= 60 ? fmt::format(" | run ETA {}h{:02d}m", run_eta / 60, run_eta % 60) : fmt::format(" | run ETA {}m", run_eta);
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

}  // namespace manylm
