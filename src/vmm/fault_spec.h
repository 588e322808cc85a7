// `--fault SPEC` of goldfish-vmm-device (docs/vm.md#fault-injection): the device model's
// own fault injection (device/fault_injection.h), spelled on a command line.
//
//   KIND[=VALUE][,after=N][,every=N][,times=N][,probability=P][,seed=S]
//
// A fault fires on every opportunity (every=1, times=0: forever) after the first `after`
// succeed, or with probability P from a generator seeded with S.
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "device/fault_injection.h"

namespace gf::vmm {

struct FaultSpec {
    device::DeviceFault fault;
    device::FaultSchedule schedule;
    std::string text;  // as given, for the log
};

// The spec, or a one-line reason it is not one.
tl::expected<FaultSpec, std::string> parse_fault_spec(std::string_view text);

// The kinds, for --help: "gen-handle, ping-info-readback, ...".
std::string fault_kinds();

}  // namespace gf::vmm
