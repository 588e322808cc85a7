// The area allocator against the emulator's measured placement (docs/allocator.md#worked-trace)
// and, over long random runs, against the plain reference model.
#include "device/area_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>
#include <vector>

#include "device/reference_area_allocator.h"

namespace gf::device {
namespace {

using testing::ReferenceAreaAllocator;

constexpr uint64_t k16GiB = 16ull << 30;

TEST(AreaAllocatorTest, ReproducesTheEmulatorPlacementTrace) {
    AreaAllocator area(k16GiB);
    EXPECT_EQ(area.allocate(4096).value(), 0x3fffff000u);
    const uint64_t second = area.allocate(8192).value();
    EXPECT_EQ(second, 0x3ffffd000u);
    EXPECT_EQ(area.allocate(12288).value(), 0x3ffffa000u);
    ASSERT_TRUE(area.free(second));
    // The high page of the freed 8 KiB gap, then the big free range again.
    EXPECT_EQ(area.allocate(4096).value(), 0x3ffffe000u);
    EXPECT_EQ(area.allocate(8192).value(), 0x3ffff8000u);
}

TEST(AreaAllocatorTest, OfTwoEqualGapsTheLowerWins) {
    AreaAllocator area(1 << 20);
    std::vector<uint64_t> blocks;
    for (int i = 0; i < 6; ++i) {
        blocks.push_back(area.allocate(4096).value());
    }
    // blocks[] grow downward; free two non-adjacent ones to make two equal 4 KiB gaps.
    ASSERT_TRUE(area.free(blocks[1]));
    ASSERT_TRUE(area.free(blocks[4]));
    EXPECT_EQ(area.allocate(4096).value(), blocks[4]);
    EXPECT_EQ(area.allocate(4096).value(), blocks[1]);
}

TEST(AreaAllocatorTest, BestFitPrefersTheSmallestSufficientGap) {
    AreaAllocator area(1 << 20);
    std::vector<uint64_t> blocks;
    for (uint64_t size : {4096, 4096, 12288, 4096, 8192, 4096}) {
        blocks.push_back(area.allocate(size).value());
    }
    ASSERT_TRUE(area.free(blocks[2]));  // a 12 KiB gap
    ASSERT_TRUE(area.free(blocks[4]));  // an 8 KiB gap
    // 6 KiB fits both; the 8 KiB gap is the best fit, carved from its high end.
    EXPECT_EQ(area.allocate(6144).value(), blocks[4] + 2048);
}

TEST(AreaAllocatorTest, AnExactFitIsNotSplit) {
    AreaAllocator area(1 << 20);
    const uint64_t a = area.allocate(8192).value();
    area.allocate(4096).value();
    ASSERT_TRUE(area.free(a));
    const size_t ranges_before = area.range_count();
    EXPECT_EQ(area.allocate(8192).value(), a);
    EXPECT_EQ(area.range_count(), ranges_before);
}

TEST(AreaAllocatorTest, FreeMergesBothNeighboursBackIntoOneRange) {
    AreaAllocator area(1 << 20);
    const uint64_t a = area.allocate(4096).value();
    const uint64_t b = area.allocate(4096).value();
    const uint64_t c = area.allocate(4096).value();
    ASSERT_TRUE(area.free(a));
    ASSERT_TRUE(area.free(c));
    ASSERT_TRUE(area.free(b));
    ASSERT_EQ(area.range_count(), 1u);
    EXPECT_EQ(area.ranges()[0], (AreaAllocator::Range{0, 1 << 20, true}));
    EXPECT_EQ(area.free_bytes(), 1u << 20);
}

TEST(AreaAllocatorTest, RefusesDoubleFreeUnknownOffsetsAndMidBlockOffsets) {
    AreaAllocator area(1 << 20);
    const uint64_t a = area.allocate(8192).value();
    EXPECT_EQ(area.free(a + 4096).error(), Error(EINVAL));
    EXPECT_EQ(area.free(12345).error(), Error(EINVAL));
    EXPECT_EQ(area.free(0).error(), Error(EINVAL));  // the start of a free range
    ASSERT_TRUE(area.free(a));
    EXPECT_EQ(area.free(a).error(), Error(EINVAL));
}

TEST(AreaAllocatorTest, RefusesZeroAndOversizedRequests) {
    AreaAllocator area(1 << 20);
    EXPECT_EQ(area.allocate(0).error(), Error(EINVAL));
    EXPECT_EQ(area.allocate((1 << 20) + 1).error(), Error(ENOMEM));
    EXPECT_EQ(area.allocate(~uint64_t{0}).error(), Error(ENOMEM));
    EXPECT_EQ(area.allocate(1 << 20).value(), 0u);  // the whole area fits exactly
    EXPECT_EQ(area.allocate(1).error(), Error(ENOMEM));
    EXPECT_EQ(area.free_bytes(), 0u);
}

TEST(AreaAllocatorTest, LooksUpRangesByStartAndByContainment) {
    AreaAllocator area(1 << 20);
    const uint64_t a = area.allocate(8192).value();
    EXPECT_EQ(area.allocated_at(a), (AreaAllocator::Range{a, 8192, false}));
    EXPECT_FALSE(area.allocated_at(a + 1));
    EXPECT_FALSE(area.allocated_at(0));
    EXPECT_EQ(area.range_containing(a + 8191), (AreaAllocator::Range{a, 8192, false}));
    EXPECT_EQ(area.range_containing(5), (AreaAllocator::Range{0, a, true}));
    EXPECT_FALSE(area.range_containing(1 << 20));
}

TEST(AreaAllocatorTest, ResetReturnsToOneFreeRange) {
    AreaAllocator area(1 << 20);
    area.allocate(4096).value();
    area.allocate(100).value();
    area.reset();
    EXPECT_EQ(area.range_count(), 1u);
    EXPECT_EQ(area.free_bytes(), 1u << 20);
    EXPECT_EQ(area.allocate(4096).value(), (1u << 20) - 4096);
}

TEST(AreaAllocatorTest, AnEmptyAreaRefusesEverything) {
    AreaAllocator area(0);
    EXPECT_EQ(area.allocate(1).error(), Error(ENOMEM));
    EXPECT_EQ(area.range_count(), 0u);
    EXPECT_FALSE(area.range_containing(0));
}

// Random allocate/free steps; every result and, periodically, the whole tiling must match.
void run_differential(uint32_t seed, uint64_t area_size, int steps) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    AreaAllocator real(area_size);
    ReferenceAreaAllocator reference(area_size);
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> live;
    size_t successes = 0, failures = 0, max_live = 0;
    // Page multiples make equal-size ties common; odd sizes exercise byte granularity.
    auto pick_size = [&]() -> uint64_t {
        switch (rng() % 4) {
            case 0:
                return 4096 * (1 + rng() % 4);
            case 1:
                return 4096 * (1 + rng() % 64);
            case 2:
                return 1 + rng() % 20000;
            default:
                return rng() % 16 == 0 ? area_size / (1 + rng() % 8) : 8192;
        }
    };
    for (int step = 0; step < steps; ++step) {
        // Drift the live count up and down so the area both fills and empties.
        const bool grow = ((step / 5000) % 2 == 0) ? rng() % 100 < 60 : rng() % 100 < 40;
        if (grow || live.empty()) {
            const uint64_t size = pick_size();
            auto got = real.allocate(size);
            auto want = reference.allocate(size);
            ASSERT_EQ(got.has_value(), want.has_value()) << "step " << step << " size " << size;
            if (got) {
                ASSERT_EQ(*got, *want) << "step " << step << " size " << size;
                live.push_back(*got);
                ++successes;
                max_live = std::max(max_live, live.size());
            } else {
                ASSERT_EQ(got.error(), want.error());
                ++failures;
            }
        } else if (rng() % 50 == 0) {
            // A bogus free: both must refuse it the same way.
            const uint64_t offset = rng() % area_size;
            auto got = real.free(offset);
            auto want = reference.free(offset);
            ASSERT_EQ(got.has_value(), want.has_value()) << "step " << step;
            if (got) {
                std::erase(live, offset);
            }
        } else {
            const size_t index = rng() % live.size();
            const uint64_t offset = live[index];
            live[index] = live.back();
            live.pop_back();
            ASSERT_TRUE(real.free(offset)) << "step " << step;
            ASSERT_TRUE(reference.free(offset)) << "step " << step;
        }
        if (step % 997 == 0) {
            ASSERT_EQ(real.ranges(), reference.ranges()) << "step " << step;
        }
    }
    ASSERT_EQ(real.ranges(), reference.ranges());
    // The run must have exercised both outcomes and a real population of live blocks.
    std::printf("seed %u: %zu allocations, %zu refusals, max %zu live\n", seed, successes, failures,
                max_live);
    EXPECT_GT(successes, static_cast<size_t>(steps) / 4);
    EXPECT_GT(max_live, 300u);
    uint64_t reference_free = 0;
    for (const auto& r : reference.ranges()) {
        reference_free += r.free ? r.size : 0;
    }
    EXPECT_EQ(real.free_bytes(), reference_free);
    EXPECT_EQ(real.free_range_count(), static_cast<size_t>(std::count_if(
                                           reference.ranges().begin(), reference.ranges().end(),
                                           [](const auto& r) { return r.free; })));
}

TEST(AreaAllocatorDifferentialTest, MatchesTheReferenceModelOnSeed1) {
    run_differential(1, 64ull << 20, 120000);
}
TEST(AreaAllocatorDifferentialTest, MatchesTheReferenceModelOnSeed2) {
    run_differential(2, 16ull << 30, 120000);
}
TEST(AreaAllocatorDifferentialTest, MatchesTheReferenceModelOnSeed3) {
    run_differential(3, 8ull << 20, 120000);  // small: ENOMEM is frequent
}
TEST(AreaAllocatorDifferentialTest, MatchesTheReferenceModelOnSeed4) {
    run_differential(4, (32ull << 20) + 12345, 120000);  // an area that is not page aligned
}

}  // namespace
}  // namespace gf::device
