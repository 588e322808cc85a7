// goldfish-as: a command-line client of a goldfish address space node.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

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
