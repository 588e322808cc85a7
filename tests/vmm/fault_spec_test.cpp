// `--fault SPEC`: what each spelling arms in the device model, and a one-line reason for
// each one that is not a spec.
#include "vmm/fault_spec.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace gf::vmm {
namespace {

using device::DeviceFault;

TEST(FaultSpec, KindsWithTheirDefaults) {
    auto s = parse_fault_spec("gen-handle").value();
    EXPECT_EQ(s.fault, DeviceFault::kGenHandle);
    EXPECT_EQ(s.schedule.skip, 0u);
    EXPECT_EQ(s.schedule.every, 1u);
    EXPECT_EQ(s.schedule.times, 0u);  // every opportunity, until the run ends
    EXPECT_EQ(s.schedule.probability, 0.0);
    EXPECT_EQ(parse_fault_spec("ping-info-readback")->fault, DeviceFault::kPingInfoReadBack);
    EXPECT_EQ(parse_fault_spec("status-above-int-max")->fault, DeviceFault::kStatusAboveIntMax);
    EXPECT_EQ(parse_fault_spec("host-memory")->fault, DeviceFault::kHostMemory);
    EXPECT_EQ(parse_fault_spec("allocate-status")->schedule.value, 0u);  // the device's ENOMEM
    EXPECT_EQ(parse_fault_spec("allocate-status=EINVAL")->schedule.value,
              static_cast<uint64_t>(EINVAL));
    EXPECT_EQ(parse_fault_spec("deallocate-status=ENOMEM")->fault, DeviceFault::kBlockDeallocation);
    EXPECT_EQ(parse_fault_spec("deallocate-status=ENOMEM")->schedule.value,
              static_cast<uint64_t>(ENOMEM));
    EXPECT_EQ(parse_fault_spec("allocate-status=0x8000000c")->schedule.value, 0x8000000Cu);
    EXPECT_EQ(parse_fault_spec("refuse-context=5")->schedule.value, 5u);
    EXPECT_EQ(parse_fault_spec("refuse-context=graphics")->schedule.value, 0u);
    EXPECT_EQ(parse_fault_spec("refuse-context=shared_slots_host_memory_allocator")->schedule.value,
              6u);
    EXPECT_EQ(parse_fault_spec("delay=250us")->schedule.value, 250u);
    EXPECT_EQ(parse_fault_spec("delay=3ms")->schedule.value, 3000u);
    EXPECT_EQ(parse_fault_spec("delay=2s")->schedule.value, 2'000'000u);
    EXPECT_EQ(parse_fault_spec("delay=40")->schedule.value, 40u);
}

TEST(FaultSpec, Schedules) {
    auto s = parse_fault_spec("allocate-status=ENOMEM,after=3,every=2,times=4").value();
    EXPECT_EQ(s.schedule.skip, 3u);
    EXPECT_EQ(s.schedule.every, 2u);
    EXPECT_EQ(s.schedule.times, 4u);
    EXPECT_EQ(s.text, "allocate-status=ENOMEM,after=3,every=2,times=4");
    auto p = parse_fault_spec("gen-handle,probability=0.25,seed=0x2a").value();
    EXPECT_EQ(p.schedule.probability, 0.25);
    EXPECT_EQ(p.schedule.seed, 42u);
}

TEST(FaultSpec, BadSpecsSayWhyInOneLine) {
    const struct {
        const char* spec;
        const char* says;
    } cases[] = {
        {"", "no such fault"},
        {"gen_handle", "no such fault (the faults: gen-handle, "},
        {"gen-handle=3", "gen-handle takes no value"},
        {"refuse-context", "refuse-context needs a context type"},
        {"refuse-context=gpu", "'gpu' is not a context type"},
        {"allocate-status=0", "'0' is not a STATUS value"},
        {"allocate-status=ENOENTX", "is not a STATUS value"},
        {"allocate-status=4294967296", "is not a STATUS value"},
        {"delay", "delay needs a duration"},
        {"delay=0", "'0' is not a duration"},
        {"delay=11s", "'11s' is not a duration"},
        {"delay=5h", "'5h' is not a duration"},
        {"gen-handle,after", "'after' is not a setting"},
        {"gen-handle,after=-1", "after=-1: not a number up to 4294967295"},
        {"gen-handle,after=4294967296", "not a number up to 4294967295"},
        {"gen-handle,every=0", "every=0: every is at least 1"},
        {"gen-handle,often=2", "unknown setting 'often'"},
        {"gen-handle,probability=0", "probability=0: a number above 0 and at most 1"},
        {"gen-handle,probability=1.5", "a number above 0 and at most 1"},
        {"gen-handle,probability=nan", "a number above 0 and at most 1"},
        {"gen-handle,probability=0.5x", "a number above 0 and at most 1"},
        {"gen-handle,every=2,probability=0.5", "every and probability do not go together"},
        {"gen-handle,seed=x", "seed=x: not a number"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.spec);
        auto s = parse_fault_spec(c.spec);
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().rfind(std::string("--fault ") + c.spec + ": ", 0), 0u) << s.error();
        EXPECT_NE(s.error().find(c.says), std::string::npos) << s.error();
        EXPECT_EQ(s.error().find('\n'), std::string::npos);
    }
}

}  // namespace
}  // namespace gf::vmm
