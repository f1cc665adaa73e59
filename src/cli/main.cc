// main.cc — manylm's entry point: parse the command line, run the chosen subcommand, turn errors into
// one line and an exit status (2: bad input or usage, 1: internal failure).
#include <fmt/format.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/io.h"

int main(int argc, char** argv) {
  using namespace manylm;
  CLI::App app{"manylm: recurrent neural network language models (Elman RNN, LSTM, GRU), trained fast on many-core CPUs"};
  app.name("manylm");
  app.require_subcommand(1);
  std::map<std::string, Runner> runners;
  try {
    runners["train"] = add_train_command(app);
    runners["eval"] = add_eval_command(app);
    runners["sample"] = add_sample_command(app);
    runners["plot"] = add_plot_command(app);
    runners["bench"] = add_bench_command(app);
    // `train --resume RUN` reads RUN/config.json as its --config (options on the command line still win).
    std::vector<std::string> args(argv, argv + argc);
    bool has_config = false;
    std::string resume;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" || args[i].rfind("--config=", 0) == 0) has_config = true;
      if (args[i] == "--resume" && i + 1 < args.size()) resume = args[i + 1];
      if (args[i].rfind("--resume=", 0) == 0) resume = args[i].substr(9);
    }
    if (!resume.empty() && !has_config && args.size() > 1 && args[1] == "train") {
      if (!path_exists(resume + "/config.json"))
        fail("--resume: {} has no config.json: not a manylm run directory", resume);
      args.push_back("--config");
      args.push_back(resume + "/config.json");
    }
    if (args.size() > 1 && args[1].rfind("-", 0) != 0 && !runners.count(args[1]))
      fail("unknown command '{}' (expected train, eval, sample, plot or bench; see manylm --help)", args[1]);
    std::vector<std::string> rev(args.rbegin(), args.rend() - 1);
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    fmt::print(stderr, "manylm: error: {}\n", e.what());
    return 2;
  } catch (const UserError& e) {
    fmt::print(stderr, "manylm: error: {}\n", e.what());
    return 2;
  }
  for (auto* sub : app.get_subcommands()) {
    try {
      return runners.at(sub->get_name())();
    } catch (const UserError& e) {
      fmt::print(stderr, "manylm: error: {}\n", e.what());
      return 2;
    } catch (const std::exception& e) {
      fmt::print(stderr, "manylm: internal error: {}\n", e.what());
      return 1;
    }
  }
  return 2;
}
