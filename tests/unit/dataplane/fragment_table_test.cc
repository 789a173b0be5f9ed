// FragmentTable: pieces merge and overlaps are caught whatever the order,
// held fragments come back first in first out, bounds hold, and the oldest
// datagram is the one that expires or is evicted.
#include "l4lb/dataplane/fragment_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace l4lb::dataplane {
namespace {

using Piece = FragmentTable::Piece;

FragmentKey key(uint16_t id) { return FragmentKey{0x0A000001, 0x0A000064, id, 17}; }

TEST(FragmentTable, InOrderFragmentsMergeIntoOnePieceAndComplete) {
  FragmentTable t(4, 8);
  const uint32_t d = t.insert(key(1), 0);
  EXPECT_EQ(t.add_piece(d, 0, 1480, false), Piece::kAdded);
  EXPECT_EQ(t.add_piece(d, 1480, 1480, false), Piece::kAdded);
  EXPECT_EQ(t.at(d).pieces, 1);
  EXPECT_EQ(t.add_piece(d, 2960, 1048, true), Piece::kComplete);
}

TEST(FragmentTable, EveryOrderOfSevenFragmentsCompletesOnTheLastOne) {
  // A 9000-byte UDP datagram at MTU 1500: six of 1480 and one of 128.
  std::vector<int> order(7);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    FragmentTable t(4, 8);
    const uint32_t d = t.insert(key(2), 0);
    for (size_t i = 0; i < order.size(); ++i) {
      const uint32_t offset = uint32_t(order[i]) * 1480;
      const bool last = order[i] == 6;
      const Piece got = t.add_piece(d, offset, last ? 128 : 1480, last);
      ASSERT_EQ(got, i + 1 == order.size() ? Piece::kComplete : Piece::kAdded) << "round " << round << " step " << i;
      ASSERT_LE(t.at(d).pieces, 4);
    }
  }
}

TEST(FragmentTable, OverlapsAndDuplicatesAreCaught) {
  struct Case {
    const char* name;
    std::vector<std::tuple<uint32_t, uint32_t, bool>> before;
    std::tuple<uint32_t, uint32_t, bool> piece;
  };
  const Case cases[] = {
      {"duplicate first", {{0, 1480, false}}, {0, 1480, false}},
      {"starts inside the first", {{0, 1480, false}}, {8, 1480, false}},
      {"ends inside a later one", {{1480, 1480, false}}, {1000, 488, false}},
      {"covers a piece", {{1480, 8, false}}, {1000, 1000, false}},
      {"bridges two pieces too far", {{0, 16, false}, {32, 16, false}}, {16, 24, false}},
      {"a second, different end", {{2960, 100, true}}, {2960, 200, true}},
      {"data past the end", {{2960, 100, true}}, {4000, 8, false}},
      {"an end before data already seen", {{4000, 8, false}}, {2960, 100, true}},
  };
  for (const auto& c : cases) {
    FragmentTable t(4, 8);
    const uint32_t d = t.insert(key(3), 0);
    for (const auto& [offset, length, last] : c.before) ASSERT_EQ(t.add_piece(d, offset, length, last), Piece::kAdded) << c.name;
    const auto& [offset, length, last] = c.piece;
    EXPECT_EQ(t.add_piece(d, offset, length, last), Piece::kOverlap) << c.name;
  }
}

TEST(FragmentTable, AGapFilledExactlyJoinsBothSides) {
  FragmentTable t(4, 8);
  const uint32_t d = t.insert(key(4), 0);
  EXPECT_EQ(t.add_piece(d, 0, 16, false), Piece::kAdded);
  EXPECT_EQ(t.add_piece(d, 32, 8, true), Piece::kAdded);
  EXPECT_EQ(t.at(d).pieces, 2);
  EXPECT_EQ(t.add_piece(d, 16, 16, false), Piece::kComplete);
}

TEST(FragmentTable, MoreSeparatePiecesThanTheLimitAreRefused) {
  FragmentTable t(4, 8);
  const uint32_t d = t.insert(key(5), 0);
  // Every other 8-byte block: none touches another.
  for (uint32_t i = 0; i < FragmentTable::kMaxPieces; ++i)
    ASSERT_EQ(t.add_piece(d, 8 + i * 16, 8, false), Piece::kAdded);
  EXPECT_EQ(t.add_piece(d, 8 + FragmentTable::kMaxPieces * 16, 8, false), Piece::kTooMany);
  // One that joins an existing piece still fits.
  EXPECT_EQ(t.add_piece(d, 0, 8, false), Piece::kAdded);
}

TEST(FragmentTable, HeldFragmentsComeBackInOrderWithinBounds) {
  FragmentTable t(4, 3);
  const uint32_t a = t.insert(key(6), 0);
  const uint32_t b = t.insert(key(7), 0);
  int x[4];
  EXPECT_TRUE(t.hold(a, &x[0]));
  EXPECT_TRUE(t.hold(b, &x[1]));
  EXPECT_TRUE(t.hold(a, &x[2]));
  EXPECT_FALSE(t.hold(a, &x[3])) << "the table holds three";
  EXPECT_EQ(t.held(), 3u);
  EXPECT_EQ(t.release(a), &x[0]);
  EXPECT_EQ(t.release(a), &x[2]);
  EXPECT_EQ(t.release(a), nullptr);
  EXPECT_EQ(t.release(b), &x[1]);
  EXPECT_EQ(t.held(), 0u);

  FragmentTable one(1, 1000);
  const uint32_t d = one.insert(key(8), 0);
  uint32_t held = 0;
  while (one.hold(d, &x[0])) ++held;
  EXPECT_EQ(held, FragmentTable::kMaxHeldPerDatagram);
}

TEST(FragmentTable, OldestFirstForExpiryAndEviction) {
  FragmentTable t(3, 8);
  const uint32_t a = t.insert(key(10), 0);
  const uint32_t b = t.insert(key(11), 50);
  const uint32_t c = t.insert(key(12), 60);
  EXPECT_TRUE(t.full());
  EXPECT_EQ(t.oldest(), a);
  EXPECT_TRUE(t.expired(a, 100, 100));
  EXPECT_FALSE(t.expired(b, 100, 100));
  t.remove(a);
  EXPECT_EQ(t.oldest(), b);
  EXPECT_EQ(t.find(key(10)), FragmentTable::kNone);
  EXPECT_EQ(t.find(key(11)), b);
  t.remove(c);  // from the middle of nothing: youngest
  const uint32_t d = t.insert(key(13), 70);
  EXPECT_EQ(t.find(key(13)), d);
  EXPECT_EQ(t.oldest(), b);
  t.remove(b);
  EXPECT_EQ(t.oldest(), d);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FragmentTable, KeysDifferingInOneFieldAreDifferentDatagrams) {
  FragmentTable t(8, 8);
  const FragmentKey base = key(20);
  FragmentKey other_src = base, other_dst = base, other_id = base, other_proto = base;
  other_src.src_ip ^= 1;
  other_dst.dst_ip ^= 1;
  other_id.id ^= 1;
  other_proto.proto = 6;
  const uint32_t d = t.insert(base, 0);
  for (const auto& k : {other_src, other_dst, other_id, other_proto}) EXPECT_EQ(t.find(k), FragmentTable::kNone);
  EXPECT_EQ(t.find(base), d);
}

}  // namespace
}  // namespace l4lb::dataplane
