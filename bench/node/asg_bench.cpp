// An ASG (type 0) stream through goldfish-asd against memcpy, side by side in one run:
//
//   Memcpy/*       single-threaded memcpy of 4 KiB or 1 MiB into a 1 MiB buffer (the ASG
//                  buffer's size), cycling through it: the baseline.
//   Throughput/*   AsgStream::write of 4 KiB or 1 MiB into a daemon whose sink discards
//                  (goldfish-asd --asg-sink discard), a batch of writes then flush() per
//                  iteration, so every byte counted was taken by the host. kAuto sends 4 KiB
//                  as one type-1 descriptor and 1 MiB as a mode-3 transfer; the kDescriptors
//                  variant sends 1 MiB as four step-sized type-1 chunks.
//   EchoAwake      64-byte asg_echo round trips back to back (the consumer never sleeps),
//                  against --asg-sink echo; counter: notify pings per round trip.
//   EchoAsleep     the same, each round trip timed alone after the consumer has published
//                  NEED_NOTIFY (gone to sleep), so each pays one ping and a wakeup.
//
// Without --benchmark_repetitions it runs 5 repetitions, randomly interleaved, and reports
// the aggregates only; bench/node/summarize_asg.py prints medians and ratios from the JSON.
// Needs root (goldfish-asd mounts FUSE); cleans up on failure and on fatal signals.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "client/asg_stream.h"
#include "hw/asg_layout.h"

namespace {

using gf::client::AsgStream;
using gf::client::AsgTransfer;

constexpr size_t kBufferSize = 1u << 20;   // the daemon's ASG buffer (DeviceConfig default)
constexpr size_t kBatchBytes = 16u << 20;  // per Throughput iteration
constexpr size_t kEchoSize = 64;

// goldfish-asd children, one per sink, each with its own node and state directory; made on
// first use, so a --benchmark_filter run starts only what it needs.
class Fixture {
  public:
    Fixture() : tmp_(std::make_unique<gf::bench::TempDir>()) {}
    ~Fixture() {
        for (Slot& s : slots_) {
            s.daemon.reset();
        }
        tmp_.reset();
    }
    // The daemon serving with `--asg-sink sink`; nullptr (and its output on stderr, once) if
    // it did not come up.
    gf::bench::Daemon* daemon(const std::string& sink) {
        Slot& s = sink == "discard" ? slots_[0] : slots_[1];
        if (!s.daemon && !s.tried) {
            s.tried = true;
            const std::string root = tmp_->path() + "/" + sink;
            std::string out;
            auto d = gf::bench::Daemon::start(GF_DAEMON_PATH, root + "-node", root + "-state",
                                              {"--asg-sink", sink}, &out);
            if (d) {
                s.daemon = std::make_unique<gf::bench::Daemon>(std::move(*d));
            } else {
                std::fprintf(stderr, "goldfish-asd --asg-sink %s did not come up:\n%s\n",
                             sink.c_str(), out.c_str());
            }
        }
        return s.daemon.get();
    }

  private:
    struct Slot {
        std::unique_ptr<gf::bench::Daemon> daemon;
        bool tried = false;
    };
    std::unique_ptr<gf::bench::TempDir> tmp_;
    Slot slots_[2];
};

std::unique_ptr<Fixture> g_fixture;

// A stream to the daemon with `sink`, or a skip saying why not.
std::optional<AsgStream> stream_or_skip(benchmark::State& state, const std::string& sink) {
    if (::geteuid() != 0) {
        state.SkipWithError("needs root (goldfish-asd mounts FUSE)");
        return std::nullopt;
    }
    gf::bench::Daemon* daemon = g_fixture->daemon(sink);
    if (daemon == nullptr) {
        state.SkipWithError(("goldfish-asd --asg-sink " + sink + " did not come up").c_str());
        return std::nullopt;
    }
    // Re-pings a host that sleeps mid-transfer (issue 21 item 1); drop once goldfish-asd's
    // consumer no longer does, to measure the reference guest's way.
    gf::client::AsgStreamOptions options;
    options.reping_while_full = std::chrono::milliseconds(1);
    auto stream = AsgStream::open(daemon->node(), options);
    if (!stream) {
        state.SkipWithError(
            ("ASG stream: " + std::string(std::strerror(stream.error().value()))).c_str());
        return std::nullopt;
    }
    return std::move(*stream);
}

// The 10th and 50th percentile of single round trips, as counters: on a loaded machine the
// mean mixes trips where both threads ran with trips that waited for a CPU.
void trip_percentiles(benchmark::State& state, std::vector<double>& trips_ns) {
    if (trips_ns.empty()) {
        return;
    }
    std::sort(trips_ns.begin(), trips_ns.end());
    state.counters["p10_us"] = trips_ns[trips_ns.size() / 10] / 1e3;
    state.counters["p50_us"] = trips_ns[trips_ns.size() / 2] / 1e3;
}

void skip_on(benchmark::State& state, const char* what, const gf::Error& e) {
    state.SkipWithError((std::string(what) + ": " + std::strerror(e.value())).c_str());
}

std::vector<std::byte> pattern(size_t size) {
    std::vector<std::byte> bytes(size);
    for (size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::byte>(i * 131 + 7);
    }
    return bytes;
}

// ==================================== 1. memcpy ====================================

void BM_Memcpy(benchmark::State& state) {
    const size_t size = static_cast<size_t>(state.range(0));
    const std::vector<std::byte> src = pattern(size);
    void* p =
        ::mmap(nullptr, kBufferSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        state.SkipWithError("mmap failed");
        return;
    }
    auto* dst = static_cast<std::byte*>(p);
    std::memset(dst, 0, kBufferSize);  // steady state: every page present before timing
    size_t at = 0;
    for (auto _ : state) {
        std::memcpy(dst + at, src.data(), size);
        benchmark::DoNotOptimize(dst);
        benchmark::ClobberMemory();
        at = (at + size) % kBufferSize;
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
    ::munmap(p, kBufferSize);
}

// ================================ 2. guest -> host ================================

// Arguments: the write size and the AsgTransfer.
void BM_Throughput(benchmark::State& state) {
    const size_t size = static_cast<size_t>(state.range(0));
    const auto how = static_cast<AsgTransfer>(state.range(1));
    std::optional<AsgStream> stream = stream_or_skip(state, "discard");
    if (!stream) {
        return;
    }
    const std::vector<std::byte> bytes = pattern(size);
    const size_t writes = std::max<size_t>(1, kBatchBytes / size);
    const uint64_t notifies_before = stream->stats().notifies;
    for (auto _ : state) {
        for (size_t i = 0; i < writes; ++i) {
            if (auto done = stream->write(bytes.data(), bytes.size(), how); !done) {
                skip_on(state, "write", done.error());
                return;
            }
        }
        if (auto done = stream->flush(); !done) {
            skip_on(state, "flush", done.error());
            return;
        }
    }
    const auto total_writes = static_cast<double>(state.iterations() * writes);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * writes * size));
    state.counters["notifies/write"] =
        static_cast<double>(stream->stats().notifies - notifies_before) / total_writes;
}

// =============================== 3, 4. echo round trips ===============================

void BM_EchoAwake(benchmark::State& state) {
    std::optional<AsgStream> stream = stream_or_skip(state, "echo");
    if (!stream) {
        return;
    }
    const std::vector<std::byte> in = pattern(kEchoSize);
    std::vector<std::byte> out(kEchoSize);
    // The first round trip wakes the consumer; back to back it stays awake.
    if (auto done = gf::client::asg_echo(*stream, in.data(), out.data(), in.size()); !done) {
        skip_on(state, "echo", done.error());
        return;
    }
    const uint64_t notifies_before = stream->stats().notifies;
    std::vector<double> trips_ns;
    for (auto _ : state) {
        const auto begin = std::chrono::steady_clock::now();
        auto done = gf::client::asg_echo(*stream, in.data(), out.data(), in.size());
        trips_ns.push_back(
            std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - begin)
                .count());
        if (!done) {
            skip_on(state, "echo", done.error());
            return;
        }
        if (std::memcmp(in.data(), out.data(), kEchoSize) != 0) {
            state.SkipWithError("the echo differs");
            return;
        }
    }
    state.counters["notifies/trip"] =
        benchmark::Counter(static_cast<double>(stream->stats().notifies - notifies_before),
                           benchmark::Counter::kAvgIterations);
    trip_percentiles(state, trips_ns);
}

// Each round trip starts with the consumer asleep: the wait for NEED_NOTIFY is untimed
// (manual time), and bounded.
void BM_EchoAsleep(benchmark::State& state) {
    std::optional<AsgStream> stream = stream_or_skip(state, "echo");
    if (!stream) {
        return;
    }
    const std::vector<std::byte> in = pattern(kEchoSize);
    std::vector<std::byte> out(kEchoSize);
    uint64_t notifies = 0;
    std::vector<double> trips_ns;
    for (auto _ : state) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (stream->host_state() != gf::hw::asg::NeedNotify) {
            if (std::chrono::steady_clock::now() > deadline) {
                state.SkipWithError("the consumer did not go to sleep within 5 s");
                return;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
        const uint64_t before = stream->stats().notifies;
        const auto begin = std::chrono::steady_clock::now();
        auto done = gf::client::asg_echo(*stream, in.data(), out.data(), in.size());
        const auto end = std::chrono::steady_clock::now();
        if (!done) {
            skip_on(state, "echo", done.error());
            return;
        }
        notifies += stream->stats().notifies - before;
        state.SetIterationTime(std::chrono::duration<double>(end - begin).count());
        trips_ns.push_back(std::chrono::duration<double, std::nano>(end - begin).count());
        if (std::memcmp(in.data(), out.data(), kEchoSize) != 0) {
            state.SkipWithError("the echo differs");
            return;
        }
    }
    state.counters["notifies/trip"] =
        benchmark::Counter(static_cast<double>(notifies), benchmark::Counter::kAvgIterations);
    trip_percentiles(state, trips_ns);
}

constexpr int64_t kAuto = static_cast<int64_t>(AsgTransfer::kAuto);
constexpr int64_t kDescriptors = static_cast<int64_t>(AsgTransfer::kDescriptors);

BENCHMARK(BM_Memcpy)->Arg(4096)->Arg(1 << 20)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Throughput)
    ->ArgNames({"size", "transfer"})
    ->Args({4096, kAuto})
    ->Args({1 << 20, kAuto})
    ->Args({1 << 20, kDescriptors})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EchoAwake)->UseRealTime()->Unit(benchmark::kMicrosecond);
// Each iteration also waits (untimed) for the consumer's idle rounds: a fixed count.
BENCHMARK(BM_EchoAsleep)->Iterations(2000)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
    gf::bench::install_cleanup_handlers();
    // Medians by default: 5 repetitions, interleaved so a drifting load hits every case.
    std::vector<char*> args(argv, argv + argc);
    bool repetitions_given = false;
    for (int i = 1; i < argc; ++i) {
        repetitions_given |= std::strncmp(argv[i], "--benchmark_repetitions", 23) == 0;
    }
    char reps[] = "--benchmark_repetitions=5";
    char interleave[] = "--benchmark_enable_random_interleaving=true";
    char aggregates[] = "--benchmark_report_aggregates_only=true";
    if (!repetitions_given) {
        args.insert(args.begin() + 1, {reps, interleave, aggregates});
    }
    int n = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) {
        return 1;
    }
    g_fixture = std::make_unique<Fixture>();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_fixture.reset();  // stops the daemons, unmounts
    return 0;
}
