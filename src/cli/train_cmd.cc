// train_cmd.cc — `manylm train`: binds the training options, runs the trainer, prints the result.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "mpi/comm.h"
#include "train/json_fields.h"
#include "train/trainer.h"

namespace manylm {

namespace {
// --json: the result's fields, and with ranks the gradient traffic under "gradients".
nlohmann::json result_json(const TrainResult& r, const Config& c) {
  nlohmann::json j = {{"command", "train"}};
  TrainResult::fields(r, JsonWriter{j});
  if (r.ranks > 1) {
    nlohmann::json g = {{"compress", name_of(c.grad_compress)}};
    TrainResult::gradient_fields(r, JsonWriter{g});
    j["gradients"] = g;
  }
  return j;
}
}  // namespace

Runner add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Train a model (or continue one with --resume)");
  struct Args {
    Config config;
    std::string config_file;
  };
  auto a = std::make_shared<Args>();
  bind_train_options(*sub, a->config, a->config_file);
  return [a, sub] {
    apply_config_file(*sub, a->config, a->config_file);
    install_stop_signals();
    const TrainResult r = run_training(a->config);
    if (a->config.json && Comm::world().root()) fmt::print("{}\n", result_json(r, a->config).dump());
    return r.interrupted ? 128 + r.signal : 0;
  };
}

}  // namespace manylm
