// goldfish-as: a command-line client of a goldfish address space node.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/asg_stream.h"
#include "client/conformance.h"
#include "client/host_memory.h"
#include "client/session.h"
#include "node/node_lock.h"
#include "node/status.h"

namespace {

using gf::client::Session;

int report(const char* what, const gf::Error& e) {
    std::fprintf(stderr, "goldfish-as: %s: %s\n", what, std::strerror(e.value()));
    return 1;
}

// Accepts decimal, 0x-hex, and K/M/G suffixes (powers of 1024).
bool parse_u64(const std::string& text, uint64_t& out) {
    if (text.empty() || text[0] == '-') {
        return false;
    }
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text.c_str(), &end, 0);
    if (errno != 0 || end == text.c_str()) {
        return false;
    }
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k') {
        shift = 10, ++end;
    } else if (*end == 'M' || *end == 'm') {
        shift = 20, ++end;
    } else if (*end == 'G' || *end == 'g') {
        shift = 30, ++end;
    }
    if (*end != '\0' || (shift && (v >> (64 - shift)) != 0)) {
        return false;
    }
    out = v << shift;
    return true;
}

CLI::Validator u64_validator() {
    return CLI::Validator(
        [](std::string& s) {
            uint64_t v;
            return parse_u64(s, v) ? std::string() : "not a number: " + s;
        },
        "NUMBER");
}

uint64_t u64(const std::string& s) {
    uint64_t v = 0;
    parse_u64(s, v);
    return v;
}

unsigned long long ull(uint64_t v) {
    return v;
}

void print_ping(const gf::client::Ping& p) {
    std::printf("offset 0x%llx size %llu metadata 0x%llx version %u\n", ull(p.offset), ull(p.size),
                ull(p.metadata), p.version);
}

// The reference guest's stream, as it is.
gf::client::AsgStreamOptions stream_options() {
    return {};
}

gf::client::AsgTransfer transfer_from(const std::string& name) {
    if (name == "descriptors") {
        return gf::client::AsgTransfer::kDescriptors;
    }
    if (name == "large") {
        return gf::client::AsgTransfer::kLarge;
    }
    if (name == "async") {
        return gf::client::AsgTransfer::kLargeAsync;
    }
    return gf::client::AsgTransfer::kAuto;
}

double micros(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

// `asg echo`: round trips against the echo sink, each checked byte for byte.
int asg_echo(const std::string& node, uint64_t size, uint64_t count, const std::string& mode) {
    auto stream = gf::client::AsgStream::open(node, stream_options());
    if (!stream) {
        return report("ASG stream", stream.error());
    }
    std::vector<std::byte> in(size), out(size);
    for (size_t i = 0; i < in.size(); ++i) {
        in[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
    }
    std::vector<double> us;
    us.reserve(count);
    for (uint64_t n = 0; n < count; ++n) {
        in[0] = static_cast<std::byte>(n);  // each round trip its own bytes
        const auto start = std::chrono::steady_clock::now();
        if (auto done = gf::client::asg_echo(*stream, in.data(), out.data(), in.size(),
                                             transfer_from(mode));
            !done) {
            return report("echo", done.error());
        }
        us.push_back(micros(std::chrono::steady_clock::now() - start));
        if (out != in) {
            std::fprintf(stderr, "goldfish-as: echo: round trip %llu came back different\n",
                         ull(n));
            return 1;
        }
    }
    std::sort(us.begin(), us.end());
    std::printf(
        "echo: %llu round trips of %llu bytes (%s) through a %u-byte buffer, step %u: median "
        "%.1f us, min %.1f us, max %.1f us, %llu notify pings\n",
        ull(count), ull(size), mode.c_str(), stream->buffer_size(), stream->write_step(),
        us[us.size() / 2], us.front(), us.back(), ull(stream->stats().notifies));
    if (auto closed = stream->close(); !closed) {
        return report("close", closed.error());
    }
    return 0;
}

// A sink that replies (echo) stops taking input once 64 MiB of replies wait unread, and this
// command reads none: its writes then time out.
int throughput_failed(const char* what, const gf::Error& error) {
    if (error.value() == ETIMEDOUT) {
        std::fprintf(stderr,
                     "goldfish-as: a replying sink (echo) takes no input past 64 MiB of unread "
                     "replies, and this command reads none: serve with --asg-sink discard\n");
    }
    return report(what, error);
}

// `asg throughput`: guest-to-host bytes in writes of one size, for the discard sink.
int asg_throughput(const std::string& node, uint64_t write_size, uint64_t total,
                   const std::string& mode) {
    auto stream = gf::client::AsgStream::open(node, stream_options());
    if (!stream) {
        return report("ASG stream", stream.error());
    }
    std::vector<std::byte> bytes(write_size, std::byte{0x5a});
    const uint64_t writes = std::max<uint64_t>(1, total / write_size);
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t n = 0; n < writes; ++n) {
        if (auto done = stream->write(bytes.data(), bytes.size(), transfer_from(mode)); !done) {
            return throughput_failed("write", done.error());
        }
    }
    if (auto done = stream->flush(); !done) {
        return throughput_failed("flush", done.error());
    }
    const double seconds = micros(std::chrono::steady_clock::now() - start) / 1e6;
    const double mib = static_cast<double>(writes * write_size) / (1 << 20);
    std::printf(
        "throughput: %llu writes of %llu bytes (%s): %.1f MiB in %.3f s, %.0f MiB/s, %llu "
        "notify pings\n",
        ull(writes), ull(write_size), mode.c_str(), mib, seconds, mib / seconds,
        ull(stream->stats().notifies));
    if (auto closed = stream->close(); !closed) {
        return report("close", closed.error());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"goldfish-as: talk to a goldfish address space node"};
    // --node and --state-dir may come before or after the command, as people type them.
    app.fallthrough();
    app.require_subcommand(1);
    std::string node = gf::client::kDefaultNodePath;
    std::string state_dir = "/run/goldfish-asd";
    app.add_option("--node", node, "the node to use")->capture_default_str();
    app.add_option("--state-dir", state_dir, "goldfish-asd's state directory (for status)")
        ->capture_default_str();

    bool json = false;
    CLI::App* status = app.add_subcommand("status", "the serving daemon's live state");
    status->add_flag("--json", json, "print the JSON document as served");

    std::string alloc_size;
    CLI::App* alloc = app.add_subcommand("alloc", "allocate a block, print it, free it on exit");
    alloc->add_option("SIZE", alloc_size, "bytes")->required()->check(u64_validator());

    std::string type, metadata, offset = "0", size = "0";
    CLI::App* ping = app.add_subcommand("ping", "create a context, optionally send one ping");
    ping->add_option("--type", type, "context type (5 host memory, 6 shared slots)")
        ->required()
        ->check(u64_validator());
    CLI::Option* metadata_opt =
        ping->add_option("--metadata", metadata, "command to send after creation")
            ->check(u64_validator());
    ping->add_option("--offset", offset, "BAR1 offset")->check(u64_validator());
    ping->add_option("--size", size, "size")->check(u64_validator());

    std::string host_size;
    bool shared_slots = false;
    CLI::App* host_alloc = app.add_subcommand("host-alloc", "allocate host memory (type 5 or 6)");
    host_alloc->add_option("SIZE", host_size, "bytes")->required()->check(u64_validator());
    host_alloc->add_flag("--shared-slots", shared_slots, "use shared slots (type 6)");
    bool no_map = false;
    host_alloc->add_flag("--no-map", no_map, "do not map the memory (an ioctl-only node)");

    std::string map_size, fill = "0xa5";
    unsigned hold = 0;
    CLI::App* map = app.add_subcommand(
        "map", "allocate a block, write it through a mapping, read it back, free it");
    map->add_option("SIZE", map_size, "bytes")->required()->check(u64_validator());
    map->add_option("--fill", fill, "the byte to write")->check(u64_validator());
    map->add_option("--hold", hold,
                    "seconds to keep the block mapped (to look at it from the host)");

    CLI::App* selftest = app.add_subcommand("selftest", "run the conformance sequences");

    CLI::App* asg =
        app.add_subcommand("asg", "an ASG (type 0) stream, as gfxstream's guest opens it");
    asg->require_subcommand(1);
    std::string asg_mode = "auto";
    const std::vector<std::string> modes = {"auto", "descriptors", "large", "async"};
    std::string echo_size = "64", echo_count = "1000";
    CLI::App* asg_echo_cmd =
        asg->add_subcommand("echo", "round trips through the echo sink, each checked");
    asg_echo_cmd->add_option("SIZE", echo_size, "bytes per round trip")
        ->capture_default_str()
        ->check(u64_validator());
    asg_echo_cmd->add_option("--count", echo_count, "round trips")
        ->capture_default_str()
        ->check(u64_validator());
    asg_echo_cmd
        ->add_option(
            "--transfer", asg_mode,
            "descriptors (type 1, a step at a time), large (mode 3, writeFully), async (mode 3, "
            "writeFullyAsync) or auto")
        ->capture_default_str()
        ->check(CLI::IsMember(modes));
    std::string write_size = "1M", total = "1G";
    CLI::App* asg_throughput_cmd = asg->add_subcommand(
        "throughput", "guest-to-host bytes per second (serve with --asg-sink discard)");
    asg_throughput_cmd->add_option("--write-size", write_size, "bytes per write")
        ->capture_default_str()
        ->check(u64_validator());
    asg_throughput_cmd->add_option("--total", total, "bytes in all")
        ->capture_default_str()
        ->check(u64_validator());
    asg_throughput_cmd
        ->add_option("--transfer", asg_mode,
                     "descriptors (type 1), large (mode 3) or auto (type 1 up to a step)")
        ->capture_default_str()
        ->check(CLI::IsMember(modes));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "goldfish-as: %s (see --help)\n", e.what());
        return 2;
    }

    if (*status) {
        gf::Result<std::string> canonical = gf::node::canonical_node_path(node);
        if (!canonical) {
            return report(node.c_str(), canonical.error());
        }
        std::string path =
            gf::node::NodeLock::mount_dir_for(state_dir, *canonical) + "/" + "status";
        std::ifstream in(path);
        if (!in) {
            std::fprintf(stderr, "goldfish-as: no daemon serves %s (no %s)\n", canonical->c_str(),
                         path.c_str());
            return 1;
        }
        std::stringstream text;
        text << in.rdbuf();
        if (json) {
            std::fputs(text.str().c_str(), stdout);
            return 0;
        }
        gf::Result<gf::node::Status> s = gf::node::status_from_json(text.str());
        if (!s) {
            return report("status document", s.error());
        }
        std::fputs(gf::node::to_text(*s).c_str(), stdout);
        return 0;
    }

    if (*asg) {
        if (*asg_echo_cmd) {
            if (u64(echo_size) == 0 || u64(echo_size) > (1ull << 32) - 1 || u64(echo_count) == 0) {
                std::fprintf(stderr,
                             "goldfish-as: asg echo: SIZE must be 1 to 4 GiB - 1 and --count at "
                             "least 1\n");
                return 2;
            }
            return asg_echo(node, u64(echo_size), u64(echo_count), asg_mode);
        }
        if (u64(write_size) == 0 || u64(write_size) > (1ull << 32) - 1) {
            std::fprintf(stderr,
                         "goldfish-as: asg throughput: --write-size must be 1 to 4 GiB - 1\n");
            return 2;
        }
        return asg_throughput(node, u64(write_size), u64(total), asg_mode);
    }

    if (*selftest) {
        return gf_conformance_run(node.c_str(), stdout) == 0 ? 0 : 1;
    }

    if (*host_alloc) {
        auto allocator = gf::client::HostMemoryAllocator::open(node, shared_slots, !no_map);
        if (!allocator) {
            return report("open", allocator.error());
        }
        auto allocation = allocator->allocate(u64(host_size));
        if (!allocation) {
            return report("host allocation", allocation.error());
        }
        const gf::hw::ContextType type = shared_slots
                                             ? gf::hw::ContextType::SharedSlotsHostMemoryAllocator
                                             : gf::hw::ContextType::HostMemoryAllocator;
        std::printf("type %u: offset 0x%llx size %llu%s\n", static_cast<unsigned>(type),
                    ull(allocation->offset()), ull(allocation->size()),
                    allocation->data() != nullptr ? ", mapped" : "");
        if (auto freed = allocation->free(); !freed) {
            return report("host free", freed.error());
        }
        return 0;
    }

    gf::Result<Session> session = Session::open(node);
    if (!session) {
        return report(node.c_str(), session.error());
    }
    if (*alloc) {
        auto block = session->allocate(u64(alloc_size));
        if (!block) {
            return report("ALLOCATE_BLOCK", block.error());
        }
        std::printf("offset 0x%llx size %llu phys_addr 0x%llx\n", ull(block->offset()),
                    ull(block->size()), ull(block->phys_addr()));
        if (auto freed = block->free(); !freed) {
            return report("DEALLOCATE_BLOCK", freed.error());
        }
        return 0;
    }
    if (*map) {
        auto block = session->allocate(u64(map_size));
        if (!block) {
            return report("ALLOCATE_BLOCK", block.error());
        }
        auto mapping = block->map();
        if (!mapping) {
            return report("mmap", mapping.error());
        }
        const auto byte = static_cast<unsigned char>(u64(fill));
        std::memset(mapping->data(), byte, mapping->length());
        size_t same = 0;
        for (size_t i = 0; i < mapping->length(); ++i) {
            same += static_cast<unsigned char>(mapping->data()[i]) == byte;
        }
        std::printf("offset 0x%llx size %llu: wrote 0x%02x to every byte, read %zu of %zu back\n",
                    ull(block->offset()), ull(block->size()), byte, same, mapping->length());
        if (hold > 0) {
            std::printf("holding it for %u s (the host sees it at bar1 offset 0x%llx)\n", hold,
                        ull(block->offset()));
            std::fflush(stdout);
            ::sleep(hold);
        }
        mapping->reset();
        if (auto freed = block->free(); !freed) {
            return report("DEALLOCATE_BLOCK", freed.error());
        }
        return same == mapping->length() ? 0 : 1;
    }
    // ping
    auto created = session->ping(u64(type));
    if (!created) {
        return report("PING", created.error());
    }
    std::printf("create: ");
    print_ping(*created);
    if (*metadata_opt) {
        auto reply = session->ping(u64(metadata), u64(offset), u64(size));
        if (!reply) {
            return report("PING", reply.error());
        }
        std::printf("reply: ");
        print_ping(*reply);
    }
    return 0;
}
