// json_fields.h — plain structs to and from JSON through ONE list of their fields. A struct lists them in a
// static member template, for itself const or not:
//   template <class S, class F> static void fields(S& s, F&& f) { f("step", s.step); f("lr", s.sched.lr); }
// and JsonWriter / JsonReader are the F that write or read them:
//   nlohmann::json j;  TrainState::fields(st, JsonWriter{j});
//   TrainState::fields(st, JsonReader{j, "state.safetensors: malformed training state"});
// A field passed with kOptional may be absent (files written before it existed): it keeps its value.
// Doubles that are not finite are written as null, and null reads back as +infinity (a "none yet" loss).
// Not a serialization library: strings, booleans, integers and doubles only.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "core/error.h"

namespace manylm {

enum class FieldUse { Required, Optional };
inline constexpr FieldUse kOptional = FieldUse::Optional;

struct JsonWriter {
  nlohmann::json& j;
  template <class T>
  void operator()(const char* key, const T& v, FieldUse = FieldUse::Required) const {
    if constexpr (std::is_floating_point_v<T>) {
      j[key] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    } else {
      j[key] = v;
    }
  }
};

struct JsonReader {
  const nlohmann::json& j;
  const std::string& context;  // the start of every error message, e.g. "FILE: malformed training state"
  template <class T>
  void operator()(const char* key, T& v, FieldUse use = FieldUse::Required) const {
    const auto it = j.find(key);
    if (it == j.end()) {
      if (use == FieldUse::Optional) return;
      fail("{}: '{}' is missing", context, key);
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (it->is_null()) {  // written for a loss not known yet
        v = std::numeric_limits<T>::infinity();
        return;
      }
      if (!it->is_number()) fail("{}: '{}' is not a number", context, key);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) fail("{}: '{}' is not true or false", context, key);
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) fail("{}: '{}' is not an integer", context, key);
    } else {
      if (!it->is_string()) fail("{}: '{}' is not a string", context, key);
    }
    v = it->template get<T>();
  }
};

}  // namespace manylm
