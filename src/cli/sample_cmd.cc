// sample_cmd.cc — `manylm sample`: generate text from a trained model (prompt, length, temperature,
// top-k, seed). Every draw is a pure function of (seed, position): same seed, same text.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "train/checkpoint.h"
#include "train/generate.h"

namespace manylm {

namespace {
struct SampleOptions {
  std::string model, prompt;
  std::string weights = "auto";
  int64_t length = 50, top_k = 0;
  double temperature = 1.0;
  uint64_t seed = 1;
  int threads = 1;
  bool json = false;
};

}  // namespace

Runner add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* sub = app.add_subcommand("sample", "Generate text from a trained model");
  sub->add_option("--model", o->model, "Run directory of a trained model")->required();
  sub->add_option("--weights", o->weights, kWeightsHelp)->capture_default_str();
  sub->add_option("--prompt", o->prompt, "Text to continue (default: start of a sentence)");
  sub->add_option("--length", o->length, "Tokens to generate")->capture_default_str();
  sub->add_option("--temperature", o->temperature, "Softmax temperature (lower: more conservative)")
      ->capture_default_str();
  sub->add_option("--top-k", o->top_k, "Sample only among the k most likely tokens (0: all)")->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads")->capture_default_str()->check(CLI::Range(0, 65536));
  sub->add_flag("--json", o->json, "Print one JSON object on stdout");
  return [o] {
    if (o->length <= 0) fail("--length: must be positive (got {})", o->length);
    if (!(o->temperature > 0) || !std::isfinite(o->temperature))
      fail("--temperature: must be a positive number (got {})", o->temperature);
    if (o->top_k < 0) fail("--top-k: must be 0 or positive (got {})", o->top_k);
    LoadedModel m = load_run_model(o->model, o->weights);
    // The run's backend: the same numbers as training.
    EngineOptions eo;
    eo.threads = o->threads;
    eo.backend = m.config.gemm;
    eo.precision = m.config.precision;
    const Engine engine(eo);
    if (!valid_utf8(o->prompt)) fail("--prompt: not valid UTF-8");
    const std::string text = generate(engine, m, {o->prompt, o->length, o->temperature, o->top_k, o->seed});
    if (o->json)
      fmt::print("{}\n", nlohmann::json{{"command", "sample"}, {"text", text}, {"tokens", o->length}}.dump(
                             -1, ' ', false, nlohmann::json::error_handler_t::replace));
    else
      fmt::print("{}\n", text);
    return 0;
  };
}

}  // namespace manylm
