// options.cc — see options.h.
#include "cli/options.h"

#include <optional>
#include <set>
#include <type_traits>

#include "core/error.h"
#include "core/io.h"
#include "train/options.h"

namespace manylm {

namespace {

// Checks a name against E's table and hands CLI11 the enum's number, which it reads into the field.
template <NamedEnum E>
CLI::Validator name_check() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const std::optional<E> e = lookup_name<E>(s);
        if (!e) return unknown_name_message<E>(s);
        s = std::to_string(static_cast<std::underlying_type_t<E>>(*e));
        return {};
      },
      "", "name");
}

CLI::Option* bind(CLI::App& app, const TrainOption& o, Config& c) {
  const std::string name = std::string("--") + o.name;
  return std::visit(
      [&](auto field) -> CLI::Option* {
        using T = std::remove_cvref_t<decltype(c.*field)>;
        if constexpr (std::is_same_v<T, bool>)
          if (o.flag()) return app.add_flag(name, c.*field, o.help);
        if constexpr (std::is_same_v<T, std::vector<int64_t>>)  // one value, "2000,10000", read as config files do
          return app.add_option_function<std::string>(
              name, [&c, &o](const std::string& v) { set_option(o, c, nlohmann::json(v)); }, o.help);
        CLI::Option* opt = app.add_option(name, c.*field, o.help);
        if constexpr (NamedEnum<T>) opt->transform(name_check<T>())->type_name("TEXT");
        return opt;
      },
      o.field);
}

}  // namespace

void bind_train_options(CLI::App& app, Config& c, std::string& config_file) {
  for (const TrainOption& o : train_options()) bind(app, o, c)->default_str(option_text(o, c))->group(o.group);
  app.add_option("--config", config_file, "Read options from a JSON file whose keys are the long option names")
      ->type_name("");
}

void apply_config_file(const CLI::App& app, Config& c, const std::string& config_file) {
  std::string file = config_file;
  if (file.empty() && !c.resume.empty()) {  // `train --resume RUN` reads RUN/config.json as its --config
    file = c.resume + "/config.json";
    if (!path_exists(file)) fail("--resume: {} has no config.json: not a manylm run directory", c.resume);
  }
  if (file.empty()) return;
  std::set<std::string> given;
  for (const TrainOption& o : train_options())
    if (app.get_option(std::string("--") + o.name)->count() > 0) given.insert(o.name);
  read_config_file(file, c, given);
}

}  // namespace manylm
