// average_cmd.cc — `manylm average`: the element-wise mean of several weight files of one model (checkpoint
// averaging: the last epochs' weights of an SGD run, as fairseq's average_checkpoints.py does), written as a
// new weights file that `eval`/`sample --weights FILE` read. Not a training method: nothing is re-trained.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "train/checkpoint.h"

namespace manylm {

namespace {
struct AverageOptions {
  std::vector<std::string> inputs;
  std::string out;
  bool json = false;
};
}  // namespace

Runner add_average_command(CLI::App& app) {
  auto o = std::make_shared<AverageOptions>();
  auto* sub = app.add_subcommand("average", "Average the weights of several safetensors files of one model");
  sub->add_option("inputs", o->inputs, "Weight files (model.safetensors, best.safetensors, copies of epochs)")
      ->required();
  sub->add_option("--out", o->out, "The averaged weights file to write (must not exist)")->required();
  sub->add_flag("--json", o->json, "Print one JSON object with the results on stdout");
  return [o] {
    if (path_exists(o->out)) fail("--out: {} exists; choose another name", o->out);  // before reading the inputs
    const SafeTensorsFile first = load_safetensors(o->inputs.front());
    std::map<std::string, std::vector<double>> sum;
    for (const auto& [name, t] : first.tensors) sum[name].assign(t.values.begin(), t.values.end());
    for (size_t i = 1; i < o->inputs.size(); ++i) {
      const std::string& path = o->inputs[i];
      const SafeTensorsFile f = load_safetensors(path);
      // Tensors of equal shapes from different models (tanh and relu Elman cells, say) must not be averaged.
      if (const std::string a = described_model(f), b = described_model(first); a != b)
        fail("{}: describes another model than {} ({} against {})", path, o->inputs.front(),
             a.empty() ? "no description" : a, b.empty() ? "no description" : b);
      if (f.tensors.size() != first.tensors.size())
        fail("{}: has {} tensors but {} has {}: not the same model", path, f.tensors.size(), o->inputs.front(),
             first.tensors.size());
      for (const auto& [name, t] : f.tensors) {
        auto it = first.tensors.find(name);
        if (it == first.tensors.end())
          fail("{}: tensor {} is not in {}: not the same model", path, name, o->inputs.front());
        if (it->second.shape != t.shape)
          fail("{}: tensor {} has another shape than in {}", path, name, o->inputs.front());
        std::vector<double>& s = sum[name];
        for (size_t k = 0; k < s.size(); ++k) s[k] += t.values[k];
      }
    }
    const double n = static_cast<double>(o->inputs.size());
    std::map<std::string, SafeTensor> mean;
    std::map<std::string, const SafeTensor*> refs;
    for (const auto& [name, t] : first.tensors) {
      SafeTensor& m = mean[name];
      m.shape = t.shape;
      m.values.resize(t.values.size());
      const std::vector<double>& s = sum[name];
      for (size_t k = 0; k < s.size(); ++k) m.values[k] = static_cast<float>(s[k] / n);
      refs[name] = &m;
    }
    // The model description stays; what named one checkpoint (its step, epoch, score) does not.
    std::map<std::string, std::string> metadata;
    for (const char* key : {"format", "manylm"})
      if (auto it = first.metadata.find(key); it != first.metadata.end()) metadata[key] = it->second;
    metadata["manylm.averaged_from"] = nlohmann::json(o->inputs).dump();
    write_file_new(o->out, encode_safetensors(refs, metadata));  // nor if it appeared meanwhile
    if (o->json)
      fmt::print(
          "{}\n",
          nlohmann::json{{"command", "average"}, {"out", o->out}, {"inputs", o->inputs}, {"tensors", mean.size()}}
              .dump());
    else
      fmt::print("{}: the mean of {} weight files ({} tensors)\n", o->out, o->inputs.size(), mean.size());
    return 0;
  };
}

}  // namespace manylm
