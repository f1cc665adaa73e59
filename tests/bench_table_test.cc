// bench_table_test.cc — the bench result table: JSON numbers, and percentages of the peak above 100 flagged
// as a measurement problem instead of clamped.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/bench.h"

namespace manylm {
namespace {

BenchTable sample_table() {
  BenchTable t("bench test",
               {"backend", "threads", "gflops", "pct_peak", "ceiling_pct_peak", "pct_of_ceiling", "note"});
  t.add({"onednn", "2", "123.4", "64.2", "n/a", "101.5", ""});
  t.add({"blas", "1", "80.0", "103.7", "100.4", "99.0", "x"});
  return t;
}

TEST(BenchTable, JsonValuesAreNumbersAndSuspectPercentagesAreListed) {
  BenchOptions o;
  o.json = true;
  testing::internal::CaptureStdout();
  sample_table().print(o);
  const nlohmann::json j = nlohmann::json::parse(testing::internal::GetCapturedStdout());
  const auto& rows = j.at("rows");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0]["threads"].is_number_integer());
  EXPECT_DOUBLE_EQ(rows[0]["gflops"].get<double>(), 123.4);
  EXPECT_DOUBLE_EQ(rows[0]["pct_peak"].get<double>(), 64.2);  // not a string
  EXPECT_TRUE(rows[0]["ceiling_pct_peak"].is_null());         // "n/a"
  EXPECT_TRUE(rows[0]["note"].is_null());
  EXPECT_EQ(rows[0]["backend"], "onednn");
  EXPECT_FALSE(rows[0].contains("suspect"));  // pct_of_ceiling may pass 100: the ceiling is not a bound
  EXPECT_DOUBLE_EQ(rows[1]["pct_peak"].get<double>(), 103.7);  // kept as measured, not clamped
  EXPECT_EQ(rows[1]["suspect"], nlohmann::json::array({"pct_peak", "ceiling_pct_peak"}));
  ASSERT_TRUE(j.contains("warnings"));
  EXPECT_NE(j["warnings"][0].get<std::string>().find("measurement problem"), std::string::npos);
}

TEST(BenchTable, TextMarksPercentagesAbovePeak) {
  BenchOptions o;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  sample_table().print(o);
  const std::string out = testing::internal::GetCapturedStdout(), err = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("103.7!"), std::string::npos) << out;
  EXPECT_NE(out.find("100.4!"), std::string::npos) << out;
  EXPECT_EQ(out.find("64.2!"), std::string::npos) << out;
  EXPECT_EQ(out.find("101.5!"), std::string::npos) << out;
  EXPECT_NE(err.find("measurement problem"), std::string::npos) << err;
}

}  // namespace
}  // namespace manylm
