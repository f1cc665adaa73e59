// names.h — the ONE name table of an enum-like setting: each value beside the word that names it on the
// command line, in config.json and in files. An enum opts in next to its own declaration:
//   inline constexpr Named<Cell> kCellNames[] = {{Cell::Elman, "elman"}, {Cell::Lstm, "lstm"}, {Cell::Gru, "gru"}};
//   constexpr std::span<const Named<Cell>> enum_names(Cell) { return kCellNames; }
// (found by argument-dependent lookup); parsing, printing, the command line's check and config.json all read
// that table, so adding a value is one line. Not a reflection library.
#pragma once
#include <concepts>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.h"

namespace manylm {

template <class E>
struct Named {
  E value;
  const char* name;
};

template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) {
  { enum_names(e) } -> std::convertible_to<std::span<const Named<E>>>;
};

template <NamedEnum E>
const char* name_of(E e) {
  for (const Named<E>& n : enum_names(E{}))
    if (n.value == e) return n.name;
  return "?";
}

template <NamedEnum E>
std::optional<E> lookup_name(std::string_view s) {
  for (const Named<E>& n : enum_names(E{}))
    if (s == n.name) return n.value;
  return std::nullopt;
}

// "elman, lstm, gru": the allowed names, for messages.
template <NamedEnum E>
std::string name_choices(const char* separator = ", ") {
  std::string s;
  for (const Named<E>& n : enum_names(E{})) s += (s.empty() ? "" : separator) + std::string(n.name);
  return s;
}

// The message for a name not in the table: "unknown value 'foo' (expected one of: elman, lstm, gru)".
template <NamedEnum E>
std::string unknown_name_message(std::string_view s) {
  return fmt::format("unknown value '{}' (expected one of: {})", s, name_choices<E>());
}

// The value named `s`; UserError "<option>: unknown value 's' (expected one of: ...)" otherwise.
template <NamedEnum E>
E parse_name(std::string_view s, std::string_view option) {
  if (std::optional<E> e = lookup_name<E>(s)) return *e;
  fail("{}: {}", option, unknown_name_message<E>(s));
}

}  // namespace manylm
