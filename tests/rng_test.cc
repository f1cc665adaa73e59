// rng_test.cc — Philox4x32-10 against Random123's own implementation (Debian's librandom123-dev) and
// its published known-answer vectors, and the uniform mapping.
#include <gtest/gtest.h>

#include <Random123/philox.h>

#include "core/rng.h"

namespace manylm {
namespace {

TEST(Philox, KnownAnswerVectors) {
  // From Random123's kat_vectors: philox4x32 10 rounds.
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (Philox4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (Philox4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (Philox4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, MatchesRandom123) {
  r123::Philox4x32_R<10> ref;
  for (uint32_t i = 0; i < 1000; ++i) {
    r123::Philox4x32_R<10>::ctr_type c = {{i, i * 7919u, ~i, i ^ 0xdeadbeefu}};
    r123::Philox4x32_R<10>::key_type k = {{i * 31u, 0x12345678u + i}};
    auto want = ref(c, k);
    auto got = philox4x32_10({c[0], c[1], c[2], c[3]}, {k[0], k[1]});
    for (int j = 0; j < 4; ++j) ASSERT_EQ(got[j], want[j]) << i;
  }
}

TEST(Philox, UniformIsInUnitIntervalWithTheRightMean) {
  CounterRng r{42, 7};
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    float u = r.uniform(i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

}  // namespace
}  // namespace manylm
