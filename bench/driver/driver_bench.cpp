// In-process round trips through the driver and the device model on the
// emulated machine: PING (driver file -> device -> context -> back) and an
// ALLOCATE_BLOCK + DEALLOCATE_BLOCK pair.
#include <benchmark/benchmark.h>

#include <linux/goldfish_address_space.h>
#include <cstdlib>
#include <memory>

#include "driver/driver.h"
#include "driver/file.h"
#include "pci/emulated/machine.h"

namespace gf::driver {
namespace {

constexpr uint64_t kSharedSlots = 6;
constexpr uint64_t kCheckIfSharedSlotsSupported = 3;

struct Bound {
    std::unique_ptr<pci::emulated::Machine> machine;
    std::unique_ptr<Driver> driver;
    std::shared_ptr<File> file;

    Bound() {
        machine = std::move(pci::emulated::Machine::create().value());
        driver = std::move(Driver::probe(machine->pci_device()).value());
        file = std::move(driver->open().value());
    }
    ~Bound() {
        file.reset();
        driver.reset();
    }
};

goldfish_address_space_ping make_ping(uint64_t metadata) {
    goldfish_address_space_ping ping{};
    ping.metadata = metadata;
    ping.version = sizeof(ping);
    return ping;
}

void BM_PingRoundTrip(benchmark::State& state) {
    Bound bound;
    if (bound.file->ping(make_ping(kSharedSlots))->metadata != 0) {
        state.SkipWithError("context creation failed");
        return;
    }
    const goldfish_address_space_ping request = make_ping(kCheckIfSharedSlotsSupported);
    for (auto _ : state) {
        auto reply = bound.file->ping(request);
        benchmark::DoNotOptimize(reply);
    }
}
BENCHMARK(BM_PingRoundTrip)->Repetitions(10)->ReportAggregatesOnly(true);

void BM_PingRoundTripIoctl(benchmark::State& state) {
    Bound bound;
    if (bound.file->ping(make_ping(kSharedSlots))->metadata != 0) {
        state.SkipWithError("context creation failed");
        return;
    }
    goldfish_address_space_ping arg = make_ping(kCheckIfSharedSlotsSupported);
    const std::span<std::byte> bytes(reinterpret_cast<std::byte*>(&arg), sizeof(arg));
    for (auto _ : state) {
        arg.offset = 0;
        arg.metadata = kCheckIfSharedSlotsSupported;
        const int result = bound.file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes);
        benchmark::DoNotOptimize(result);
    }
}
BENCHMARK(BM_PingRoundTripIoctl)->Repetitions(10)->ReportAggregatesOnly(true);

void BM_AllocateDeallocate(benchmark::State& state) {
    Bound bound;
    const uint64_t size = static_cast<uint64_t>(state.range(0));
    for (auto _ : state) {
        auto block = bound.file->allocate_block(size);
        if (!block || !bound.file->deallocate_block(block->offset)) {
            state.SkipWithError("allocate/deallocate failed");
            break;
        }
    }
}
BENCHMARK(BM_AllocateDeallocate)
    ->Arg(4096)
    ->Arg(1 << 20)
    ->Repetitions(10)
    ->ReportAggregatesOnly(true);

// The same pair with 1,000 other blocks held by the file, so lookups are not trivial.
void BM_AllocateDeallocateWithHeldBlocks(benchmark::State& state) {
    Bound bound;
    for (int i = 0; i < 1000; ++i) {
        if (!bound.file->allocate_block(4096)) {
            state.SkipWithError("setup failed");
            return;
        }
    }
    for (auto _ : state) {
        auto block = bound.file->allocate_block(4096);
        if (!block || !bound.file->deallocate_block(block->offset)) {
            state.SkipWithError("allocate/deallocate failed");
            break;
        }
    }
}
BENCHMARK(BM_AllocateDeallocateWithHeldBlocks)->Repetitions(10)->ReportAggregatesOnly(true);

void BM_OpenRelease(benchmark::State& state) {
    Bound bound;
    for (auto _ : state) {
        auto file = bound.driver->open();
        if (!file) {
            state.SkipWithError("open failed");
            break;
        }
        (*file)->release();
    }
}
BENCHMARK(BM_OpenRelease)->Repetitions(10)->ReportAggregatesOnly(true);

}  // namespace
}  // namespace gf::driver

BENCHMARK_MAIN();
