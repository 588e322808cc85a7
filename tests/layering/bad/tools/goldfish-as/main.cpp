// goldfish-as may see the node's status and lock, not the daemon's node.
#include "client/session.h"
#include "node/fuse_node.h"
#include "node/node_lock.h"
#include "node/status.h"
