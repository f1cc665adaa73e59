// plot_cmd.cc — `manylm plot RUN_DIR`: learning curves (train and validation perplexity against
// updates) from metrics.jsonl, drawn by gnuplot into RUN_DIR/curves.png.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/io.h"
#include "train/checkpoint.h"

namespace manylm {

Runner add_plot_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("plot", "Draw a run's learning curves to RUN_DIR/curves.png (needs gnuplot)");
  sub->add_option("run_dir", *dir, "Run directory")->required();
  return [dir] {
    RunPaths run{*dir};
    std::istringstream in(read_file(run.metrics(), "metrics"));
    std::string train, valid, line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object()) fail("{}:{}: not a JSON object", run.metrics(), lineno);
      const std::string type = j.value("type", "");
      if (type == "train") train += fmt::format("{} {}\n", j.value("step", 0), j.value("ppl", 0.0));
      if (type == "valid") valid += fmt::format("{} {}\n", j.value("step", 0), j.value("valid_ppl", 0.0));
    }
    if (train.empty() && valid.empty()) fail("{}: no train or valid records to plot", run.metrics());
    if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
      fail("plot: gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)");
    const std::string tmp = fmt::format("/tmp/manylm-plot-{}", ::getpid());
    make_directories(tmp);
    write_file_atomic(tmp + "/train.dat", train.empty() ? "0 0\n" : train);
    write_file_atomic(tmp + "/valid.dat", valid.empty() ? "0 0\n" : valid);
    const std::string png = *dir + "/curves.png";
    write_file_atomic(tmp + "/plot.gp",
                      fmt::format("set terminal png size 900,560 noenhanced\n"
                                  "set output '{}.tmp'\nset title '{}'\nset xlabel 'updates'\nset ylabel 'perplexity'\n"
                                  "set logscale y\nset grid\nset key top right\n"
                                  "plot '{}/train.dat' using 1:2 with lines lw 1 title 'train', "
                                  "'{}/valid.dat' using 1:2 with linespoints lw 2 pt 7 title 'valid'\n",
                                  png, *dir, tmp, tmp));
    const int rc = std::system(fmt::format("gnuplot '{}/plot.gp'", tmp).c_str());
    std::system(fmt::format("rm -rf '{}'", tmp).c_str());
    if (rc != 0 || !path_exists(png + ".tmp")) fail("plot: gnuplot failed to draw {}", png);
    if (std::rename((png + ".tmp").c_str(), png.c_str()) != 0) fail("{}: cannot rename into place", png);
    fmt::print("{}\n", png);
    return 0;
  };
}

}  // namespace manylm
