// Allocate+free pairs with N live blocks: the real AreaAllocator against the reference model
// (the emulator's array scan). Both start from the same fragmented layout: N live blocks of
// 1-4 pages with holes between them, which every pair leaves exactly as it found it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "device/area_allocator.h"
#include "device/reference_area_allocator.h"

namespace gf::device {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kArea = 64ull << 30;  // room for a million blocks of up to 4 pages

// N live blocks plus about N/4 holes, built once per N and shared by every repetition.
const AreaAllocator& layout(int64_t live) {
    static std::map<int64_t, std::unique_ptr<AreaAllocator>> cache;
    auto& slot = cache[live];
    if (!slot) {
        slot = std::make_unique<AreaAllocator>(kArea);
        std::mt19937_64 rng(static_cast<uint64_t>(live));
        const int64_t extra = live / 4;
        std::vector<uint64_t> offsets;
        offsets.reserve(static_cast<size_t>(live + extra));
        for (int64_t i = 0; i < live + extra; ++i) {
            offsets.push_back(slot->allocate(kPage * (1 + rng() % 4)).value());
        }
        std::shuffle(offsets.begin(), offsets.end(), rng);
        for (int64_t i = 0; i < extra; ++i) {
            if (!slot->free(offsets[static_cast<size_t>(i)])) {
                std::abort();
            }
        }
    }
    return *slot;
}

std::vector<uint64_t> request_sizes() {
    std::mt19937_64 rng(42);
    std::vector<uint64_t> sizes(4096);
    for (auto& size : sizes) {
        size = kPage * (1 + rng() % 4);
    }
    return sizes;
}

template <typename Allocator>
void run_pairs(benchmark::State& state, Allocator& allocator) {
    const auto sizes = request_sizes();
    size_t i = 0;
    for (auto _ : state) {
        const uint64_t offset = allocator.allocate(sizes[i++ & 4095]).value();
        benchmark::DoNotOptimize(offset);
        if (!allocator.free(offset)) {
            state.SkipWithError("free failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["live_blocks"] = static_cast<double>(state.range(0));
}

void BM_AreaAllocatorPair(benchmark::State& state) {
    // A copy, so the timed allocator owns its nodes (the cached one stays pristine).
    AreaAllocator allocator = layout(state.range(0));
    run_pairs(state, allocator);
}

void BM_ReferenceModelPair(benchmark::State& state) {
    // Built from the real allocator's tiling in O(N) instead of N quadratic allocations.
    testing::ReferenceAreaAllocator allocator(layout(state.range(0)).ranges());
    run_pairs(state, allocator);
}

// Informational: free a random live block, then allocate a random size. Unlike the pairs
// above, this touches a random part of the tree every time, so at large N it measures cache
// misses as much as the algorithm.
void BM_AreaAllocatorChurn(benchmark::State& state) {
    AreaAllocator allocator = layout(state.range(0));
    std::vector<uint64_t> live;
    for (const auto& range : allocator.ranges()) {
        if (!range.free) {
            live.push_back(range.offset);
        }
    }
    const auto sizes = request_sizes();
    std::mt19937_64 rng(7);
    size_t i = 0;
    for (auto _ : state) {
        const size_t victim = rng() % live.size();
        if (!allocator.free(live[victim])) {
            state.SkipWithError("free failed");
            break;
        }
        live[victim] = allocator.allocate(sizes[i++ & 4095]).value();
    }
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_AreaAllocatorPair)
    ->RangeMultiplier(10)
    ->Range(100, 1'000'000)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->MinTime(0.2);
BENCHMARK(BM_ReferenceModelPair)
    ->RangeMultiplier(10)
    ->Range(100, 100'000)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->MinTime(0.2);
BENCHMARK(BM_AreaAllocatorChurn)
    ->RangeMultiplier(10)
    ->Range(1000, 1'000'000)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->MinTime(0.2);

}  // namespace
}  // namespace gf::device

BENCHMARK_MAIN();
