// goldfish-asd: builds the emulated machine, probes the driver on its goldfish
// address space device, and serves the driver's files as a device node.
#include <grp.h>
#include <linux/goldfish_address_space.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "device/address_space_device.h"
#include "driver/driver.h"
#include "node/fuse_node.h"
#include "node/node_binding.h"
#include "node/node_lock.h"
#include "node/status.h"
#include "pci/emulated/machine.h"
#include "pci/sysfs/sysfs_device.h"

namespace {

// One line on stderr and exit status 1: every start-up failure ends here. Returned, never
// exited on the spot, so that whatever the start made (the lock, the FUSE mount, the node's
// symlink) is undone by its owner on the way out.
[[nodiscard]] int startup_error(const std::string& message) {
    std::fprintf(stderr, "goldfish-asd: %s\n", message.c_str());
    return 1;
}

std::string errno_text(const gf::Error& e) {
    const char* name = e.value() == EBUSY    ? "EBUSY"
                       : e.value() == ENOENT ? "ENOENT"
                       : e.value() == EEXIST ? "EEXIST"
                       : e.value() == EACCES ? "EACCES"
                                             : nullptr;
    std::string text = std::strerror(e.value());
    return name != nullptr ? text + " (" + name + ")" : text;
}

bool parse_mode(const std::string& text, mode_t& mode) {
    char* end = nullptr;
    unsigned long v = std::strtoul(text.c_str(), &end, 8);
    // Permission bits only: setuid, setgid and sticky mean nothing on a device node.
    if (text.empty() || *end != '\0' || v > 0777) {
        return false;
    }
    mode = static_cast<mode_t>(v);
    return true;
}

// A byte count in decimal digits only (strtoull would take "-5" as 2^64 - 5).
bool parse_bytes(const std::string& text, uint64_t& bytes) {
    if (text.empty() || text.size() > 20 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
        return false;
    }
    errno = 0;
    bytes = std::strtoull(text.c_str(), nullptr, 10);
    return errno == 0;
}

bool parse_group(const std::string& text, gid_t& gid) {
    char* end = nullptr;
    unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (!text.empty() && *end == '\0' && v < UINT32_MAX) {
        gid = static_cast<gid_t>(v);
        return true;
    }
    if (const group* g = ::getgrnam(text.c_str())) {
        gid = g->gr_gid;
        return true;
    }
    return false;
}

// vm.max_map_count, or 0 if unreadable.
uint64_t read_max_map_count() {
    std::ifstream in("/proc/sys/vm/max_map_count");
    uint64_t v = 0;
    in >> v;
    return in ? v : 0;
}

// Every BAR1 range bound to a client's memory file is a mapping of the daemon's (up to two,
// with the host memory it splits). The kernel's default of 65530 would cap the node at
// about 30,000 live mapped blocks; raise it to `want` if it is lower, and say so. Returns
// how many bindings the device may then make.
size_t prepare_map_count(uint64_t want) {
    uint64_t have = read_max_map_count();
    if (want > have) {
        std::ofstream out("/proc/sys/vm/max_map_count");
        out << want << "\n";
        out.close();
        const uint64_t now = read_max_map_count();
        if (now == want) {
            std::printf(
                "goldfish-asd: raised vm.max_map_count from %llu to %llu for BAR1's "
                "mappings\n",
                static_cast<unsigned long long>(have), static_cast<unsigned long long>(now));
        } else {
            std::printf(
                "goldfish-asd: could not raise vm.max_map_count from %llu: at most about "
                "%llu blocks can be mapped at once\n",
                static_cast<unsigned long long>(have), static_cast<unsigned long long>(have / 2));
        }
        have = now;
    }
    // Room for everything else the daemon maps (libraries, stacks, allocator arenas).
    constexpr uint64_t kReserve = 16384;
    return have > 2 * kReserve ? static_cast<size_t>((have - kReserve) / 2) : 1024;
}

// Each open file of the node keeps its memory file's fd in the daemon.
void raise_open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// The one-line error for ASG options the device would refuse (empty if it takes them). The
// sizes are taken as 64-bit so that a value over 32 bits is refused here, not wrapped.
std::string asg_option_error(const std::string& sink, uint64_t buffer_size, uint64_t write_step) {
    const std::string buffer = "--asg-buffer-size " + std::to_string(buffer_size);
    const std::string step = "--asg-write-step " + std::to_string(write_step);
    if (buffer_size > UINT32_MAX) {
        return buffer + ": more than 16 MiB (one ASG block)";
    }
    if (write_step > UINT32_MAX) {
        return step + ": more than the buffer";
    }
    gf::device::DeviceConfig config;
    config.asg_sink = sink;
    config.asg_buffer_size = static_cast<uint32_t>(buffer_size);
    config.asg_write_step = static_cast<uint32_t>(write_step);
    switch (gf::device::asg_config_problem(config)) {
        case gf::device::AsgConfigProblem::kNone:
            return {};
        case gf::device::AsgConfigProblem::kWriteStep:
            return step + ": must be at least 1";
        case gf::device::AsgConfigProblem::kBufferSize:
            return buffer + ": must be 1 to 16777216 (one 16 MiB ASG block)";
        case gf::device::AsgConfigProblem::kNotWholeSteps:
            return buffer + ": not a multiple of " + step;
        case gf::device::AsgConfigProblem::kSink:
            return "--asg-sink " + sink + ": no such sink (echo or discard)";
    }
    return "the ASG options are unusable";
}

struct Options {
    std::string node;
    std::string state_dir;
    mode_t mode = 0;
    gid_t gid = 0;
    unsigned threads = 0;
    uint64_t bar1_size = 0;
    std::string asg_sink;
    uint32_t asg_buffer_size = 0;
    uint32_t asg_write_step = 0;
    bool no_mmap = false;
    uint64_t max_map_count = 0;
    std::string pci;
    gf::pci::sysfs::SysfsConfig sysfs;
};

// Everything from taking the node's path to serving it until SIGINT or SIGTERM. Every
// owner (lock, machine, driver, mount, binding) lives in this scope, so any return undoes
// what was made, in reverse.
int serve(Options options);

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "goldfish-asd: serves /dev/goldfish_address_space on the emulated device, or with --pci "
        "on a real goldfish address space PCI function"};
    std::string node = "/dev/" GOLDFISH_ADDRESS_SPACE_DEVICE_NAME;
    std::string state_dir = "/run/goldfish-asd";
    std::string mode_text = "0660", group_text = "0";
    unsigned threads = 8;
    uint64_t bar1_size = gf::device::DeviceConfig{}.bar1_size;
    app.add_option("--node", node, "where to serve the node")->capture_default_str();
    app.add_option("--mode", mode_text, "the node's mode (octal)")->capture_default_str();
    app.add_option("--group", group_text, "the node's group (name or gid)")->capture_default_str();
    app.add_option("--state-dir", state_dir, "locks and the FUSE directory")->capture_default_str();
    app.add_option("--threads", threads, "FUSE worker threads")
        ->check(CLI::Range(1u, 256u))
        ->capture_default_str();
    app.add_option("--bar1-size", bar1_size, "emulated BAR1 size in bytes (a power of two)")
        ->capture_default_str();
    const gf::device::DeviceConfig device_defaults;
    std::string asg_sink = device_defaults.asg_sink;
    std::string asg_buffer_text = std::to_string(device_defaults.asg_buffer_size);
    std::string asg_step_text = std::to_string(device_defaults.asg_write_step);
    auto* asg_sink_option =
        app.add_option("--asg-sink", asg_sink, "what ASG (type 0) consumers feed: echo or discard")
            ->type_name("NAME")
            ->capture_default_str();
    auto* asg_buffer_option =
        app.add_option("--asg-buffer-size", asg_buffer_text,
                       "each ASG context's transfer buffer in bytes (at most 16 MiB, whole steps)")
            ->type_name("BYTES")
            ->capture_default_str();
    auto* asg_step_option = app.add_option("--asg-write-step", asg_step_text,
                                           "the ASG write step (flush_interval) in bytes")
                                ->type_name("BYTES")
                                ->capture_default_str();
    bool no_mmap = false;
    uint64_t max_map_count = 1048576;
    app.add_flag("--no-mmap", no_mmap,
                 "serve ioctls only: no mmap through FUSE passthrough (as on kernels without it)");
    app.add_option("--max-map-count", max_map_count,
                   "raise vm.max_map_count to at least this, for many mapped blocks (0: leave it)")
        ->capture_default_str();
    std::string pci;
    gf::pci::sysfs::SysfsConfig sysfs;
    app.add_option("--pci", pci,
                   "drive a real device through sysfs: a PCI address (0000:00:0b.0) or auto");
    app.add_option("--sysfs-root", sysfs.sysfs_root, "where sysfs is (for --pci)")
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return startup_error(std::string(e.what()) + " (see --help)");
    }
    Options options;
    options.node = node;
    options.state_dir = state_dir;
    options.threads = threads;
    options.bar1_size = bar1_size;
    options.no_mmap = no_mmap;
    options.max_map_count = max_map_count;
    options.pci = pci;
    options.sysfs = sysfs;
    if (!parse_mode(mode_text, options.mode)) {
        return startup_error("--mode " + mode_text +
                             ": not an octal permission mode (at most 0777)");
    }
    if (!parse_group(group_text, options.gid)) {
        return startup_error("--group " + group_text + ": no such group");
    }
    if (!pci.empty()) {
        // The host side of a real device is not ours to configure.
        for (const CLI::Option* emulated_only :
             {asg_sink_option, asg_buffer_option, asg_step_option}) {
            if (emulated_only->count() != 0) {
                return startup_error(emulated_only->get_name() +
                                     " configures the emulated device: not with --pci");
            }
        }
    }
    uint64_t asg_buffer_size = 0, asg_write_step = 0;
    if (!parse_bytes(asg_buffer_text, asg_buffer_size)) {
        return startup_error("--asg-buffer-size " + asg_buffer_text + ": not a number of bytes");
    }
    if (!parse_bytes(asg_step_text, asg_write_step)) {
        return startup_error("--asg-write-step " + asg_step_text + ": not a number of bytes");
    }
    if (std::string problem = asg_option_error(asg_sink, asg_buffer_size, asg_write_step);
        !problem.empty()) {
        return startup_error(problem);
    }
    options.asg_sink = asg_sink;
    options.asg_buffer_size = static_cast<uint32_t>(asg_buffer_size);
    options.asg_write_step = static_cast<uint32_t>(asg_write_step);
    if (::geteuid() != 0) {
        return startup_error("must run as root: mounting FUSE and binding the node need it");
    }
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
        return startup_error(
            "FUSE is unavailable: /dev/fuse: " + std::string(std::strerror(errno)) +
            " (load the fuse module; Debian package fuse3)");
    }
    return serve(std::move(options));
}

namespace {

int serve(Options options) {
    const std::string& state_dir = options.state_dir;
    const std::string& pci = options.pci;
    const bool no_mmap = options.no_mmap;
    gf::Result<std::string> canonical = gf::node::canonical_node_path(options.node);
    if (!canonical) {
        return startup_error("--node " + options.node + ": " + errno_text(canonical.error()));
    }
    const std::string node = *canonical;

    int holder = 0;
    gf::node::NodeLock::Failure failure{};
    gf::Result<gf::node::NodeLock> lock =
        gf::node::NodeLock::acquire(state_dir, node, &holder, &failure);
    if (!lock) {
        switch (failure) {
            case gf::node::NodeLock::Failure::kStateDir:
                return startup_error("--state-dir " + state_dir +
                                     ": cannot hold the daemon's locks and FUSE directories: " +
                                     errno_text(lock.error()));
            case gf::node::NodeLock::Failure::kServed:
                return startup_error(
                    node + " is already served by another daemon" +
                    (holder > 0 ? " (pid " + std::to_string(holder) + ")" : std::string()) + ": " +
                    errno_text(lock.error()));
            case gf::node::NodeLock::Failure::kMountDir:
                return startup_error(
                    "cannot prepare the FUSE directory " +
                    gf::node::NodeLock::mount_dir_for(state_dir, node) + ": " +
                    errno_text(lock.error()) +
                    (lock.error() == gf::Error(EBUSY) ? " (something else is mounted there)" : ""));
        }
        return startup_error("cannot take " + node + ": " + errno_text(lock.error()));
    }

    // Signals: SIGINT/SIGTERM are taken by this thread with sigwait; every thread
    // started from here on inherits the blocked set. A client gone is not our death.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    // The PCI function: the emulated machine's, or a real one through sysfs.
    std::unique_ptr<gf::pci::emulated::Machine> machine;
    std::unique_ptr<gf::pci::Device> real_device;
    gf::pci::Device* pci_device = nullptr;
    std::string device_name = "emulated";
    raise_open_file_limit();
    if (pci.empty()) {
        gf::pci::emulated::MachineConfig machine_config;
        machine_config.device.bar1_size = options.bar1_size;
        machine_config.device.asg_sink = options.asg_sink;
        machine_config.device.asg_buffer_size = options.asg_buffer_size;
        machine_config.device.asg_write_step = options.asg_write_step;
        if (!no_mmap) {
            machine_config.device.max_bar1_bindings = prepare_map_count(options.max_map_count);
        }
        auto made = gf::pci::emulated::Machine::create(machine_config);
        if (!made) {
            return startup_error("cannot build the emulated machine: " + errno_text(made.error()));
        }
        machine = std::move(*made);
        pci_device = &machine->pci_device();
    } else {
        std::string message;
        auto bdf = gf::pci::sysfs::find_device(options.sysfs, pci, &message);
        if (!bdf) {
            return startup_error(message.empty() ? "--pci " + pci + ": " + errno_text(bdf.error())
                                                 : message);
        }
        auto opened = gf::pci::sysfs::open_device(options.sysfs, *bdf, &message);
        if (!opened) {
            return startup_error(message.empty() ? *bdf + ": " + errno_text(opened.error())
                                                 : message);
        }
        real_device = std::move(*opened);
        pci_device = real_device.get();
        device_name = *bdf;
    }
    auto driver = gf::driver::Driver::probe(*pci_device);
    if (!driver) {
        return startup_error("the driver did not bind to the " + device_name +
                             " device: " + errno_text(driver.error()));
    }

    gf::node::Status fixed;
    fixed.node = node;
    fixed.device = device_name;
    fixed.bar1_phys_start = (*driver)->bar1_phys_start();
    fixed.bar1_size = (*driver)->bar1_size();
    gf::device::AddressSpaceDevice* device = machine ? &machine->device() : nullptr;
    if (device != nullptr) {
        fixed.asg.emplace();
        fixed.asg->sink = options.asg_sink;
        fixed.asg->buffer_size = options.asg_buffer_size;
        fixed.asg->write_step = options.asg_write_step;
    }
    gf::driver::Driver& bound = **driver;
    auto status = [&fixed, device, &bound](const gf::node::FuseNode* node) {
        gf::node::Status s = fixed;
        if (node != nullptr) {
            s.mmap = node->mmap_available();
            s.mmap_reason = node->mmap_unavailable_reason();
            s.lingering_files = node->lingering_files();
            s.mapping_scans = node->mapping_scans();
        }
        gf::driver::DriverStats d = bound.stats();
        s.open_files = d.open_files;
        s.blocks = d.blocks;
        s.block_bytes = d.block_bytes;
        s.claims = d.claims;
        if (device != nullptr) {
            gf::device::DeviceStats h = device->stats();
            s.handles = h.handles;
            s.contexts = h.contexts_by_type;
            s.area_free_bytes = h.area_free_bytes;
            s.asg->blocks = h.asg_blocks;
            s.asg->protocol_errors = h.asg_protocol_errors;
            s.asg->bytes_in = h.asg_bytes_in;
            s.asg->bytes_out = h.asg_bytes_out;
            s.asg->reply_refused = h.asg_reply_refused;
            s.seal_checks = h.file_seal_checks;
            s.remap_failures = h.file_remap_failures;
            s.stalled_contexts = h.stalled_contexts;
        } else {
            // A real device shows the driver only its own side: one live handle
            // per open file, and the BAR1 bytes its files do not hold (host
            // regions and contexts are invisible from the guest).
            s.handles = d.open_files;
            s.area_free_bytes = s.bar1_size - d.block_bytes;
        }
        return gf::node::to_json(s);
    };

    gf::node::FuseNodeConfig fuse_config;
    fuse_config.mount_dir = lock->mount_dir();
    fuse_config.mode = options.mode;
    fuse_config.gid = options.gid;
    fuse_config.threads = options.threads;
    fuse_config.node_size = fixed.bar1_size;
    if (no_mmap) {
        fuse_config.no_mmap_reason = "turned off (--no-mmap)";
    } else if (device == nullptr) {
        // A real device's BAR1 is one region: the platform cannot give each open file a view
        // that shows only what that file owns.
        fuse_config.no_mmap_reason =
            "a real PCI function's BAR1 cannot be isolated per open file through FUSE";
    }
    if (device != nullptr) {
        fuse_config.bar1 =
            gf::node::Bar1Access{device->bar1_size(),
                                 [device](uint64_t offset, std::span<std::byte> out) {
                                     return device->read_bar1(offset, out);
                                 },
                                 [device](uint64_t offset, std::span<const std::byte> in) {
                                     return device->write_bar1(offset, in);
                                 }};
    }
    // The status document reads the node's own state too, once it exists.
    // Set once mount() returns, read by workers that may already serve the status file.
    std::atomic<gf::node::FuseNode*> served{nullptr};
    auto node_status = [&status, &served] { return status(served.load()); };
    auto fuse = gf::node::FuseNode::mount(fuse_config, bound, node_status);
    if (!fuse) {
        return startup_error("cannot mount FUSE at " + lock->mount_dir() + ": " +
                             errno_text(fuse.error()) +
                             " (is the fuse3 package installed and the fuse module loaded?)");
    }
    served.store(fuse->get());
    auto binding = gf::node::NodeBinding::bind((*fuse)->node_file(), node, state_dir);
    if (!binding) {
        // EEXIST: something that is not our own stale node is there; it is left alone.
        return startup_error("cannot bind the node at " + node + ": " +
                             errno_text(binding.error()));
    }
    struct stat st;
    if (::stat(node.c_str(), &st) != 0) {
        return startup_error("the node at " + node + " does not answer: " + std::strerror(errno));
    }
    if (!(*fuse)->mmap_available()) {
        std::printf(
            "goldfish-asd: mmap is unavailable: %s; serving ioctls only (mmap gives "
            "ENODEV)\n",
            (*fuse)->mmap_unavailable_reason().c_str());
    }
    std::printf(
        "goldfish-asd: serving %s on the %s device 607d:f153 rev 1, BAR1 at %s (%llu MiB)%s\n",
        node.c_str(), device_name.c_str(), hex(fixed.bar1_phys_start).c_str(),
        static_cast<unsigned long long>(fixed.bar1_size >> 20),
        (*fuse)->mmap_available() ? ", mmap through FUSE passthrough" : "");
    std::fflush(stdout);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    // The driver's remove sequence, with the node taken away first: no new opens,
    // running calls finish, live files are revoked, the device is disabled.
    binding->unbind();
    bound.remove();
    (*fuse)->stop();
    return 0;
}

}  // namespace
