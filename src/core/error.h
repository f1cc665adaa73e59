// error.h — the two kinds of failure manylm distinguishes.
// UserError: bad input from the user (flag, file, checkpoint). main() prints its one line and exits 2.
// Anything else (std::exception) is a bug or an environment failure and exits 1.
// Not a logging facility.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace manylm {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw UserError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace manylm
