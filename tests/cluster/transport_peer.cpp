// A cluster node reduced to its transport, for tests/cluster/transport_test.cpp:
// a separate process, so that kill -9 and attacks hit a real peer and its
// RSS can be read from /proc. It issues its credentials from the cluster key
// file into --dir, listens on 127.0.0.1:--port (0: any), prints
// "READY <port>" on stdout and serves until it is killed:
//   echo    -> the payload
//   whoami  -> the authenticated node id of the requester
//   hold    -> after 300 ms, the payload's size in decimal (slow answers, for
//              the unacknowledged-bytes bound and for timeouts)
// With --connect PORT it is a client instead (an attacker, or a node of
// another version): it connects to 127.0.0.1:PORT expecting node --expect,
// prints "CONNECT ok" or "CONNECT <error code>: <message>", then, when
// connected, "WHOAMI <answer>" for a whoami request, and exits.
// --operator-tls DIR uses DIR/{ca.pem,node.pem,node.key} as operator-given
// files instead of issuing credentials from the key.
// (One transport per process: see cluster/transport.hpp.)
// Usage: transport_peer --secret-file F --node-id ID --cluster C --dir D
//                       [--port P] [--version V (default: this build's)] [--operator-tls DIR]
//                       [--connect PORT --expect ID]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "cluster/pki.hpp"
#include "cluster/transport.hpp"

using namespace yantra;
using namespace yantra::cluster;

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--port", "0"},
                                             {"--version", std::to_string(kProtocolVersion)}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  auto secret = read_cluster_secret(args["--secret-file"]);
  if (!secret) {
    std::fprintf(stderr, "%s\n", secret.status().to_string().c_str());
    return 2;
  }
  auto files = args.count("--operator-tls")
                   ? check_operator_credentials({args["--operator-tls"] + "/ca.pem",
                                                 args["--operator-tls"] + "/node.pem",
                                                 args["--operator-tls"] + "/node.key"})
                   : issue_node_credentials(*secret, args["--node-id"], args["--dir"]);
  if (!files) {
    std::fprintf(stderr, "%s\n", files.status().to_string().c_str());
    return 2;
  }
  TransportOptions o;
  o.node_id = args["--node-id"];
  o.cluster_id = args["--cluster"];
  o.secret = *secret;
  o.tls = *files;
  o.protocol_version = static_cast<uint32_t>(std::stoul(args["--version"]));
  auto t = Transport::create(o);
  if (!t) {
    std::fprintf(stderr, "%s\n", t.status().to_string().c_str());
    return 2;
  }
  Transport& transport = **t;
  if (args.count("--connect")) {
    auto h = transport.connect("127.0.0.1", static_cast<uint16_t>(std::stoul(args["--connect"])),
                               args["--expect"]);
    std::printf("CONNECT %s\n", h.ok() ? "ok" : h.status().to_string().c_str());
    if (h.ok()) {
      auto who = transport.call(*h, "whoami", "", std::chrono::seconds(2));
      std::printf("WHOAMI %s\n", who.ok() ? who->c_str() : who.status().to_string().c_str());
    }
    std::fflush(stdout);
    return 0;
  }
  transport.handle("echo", [](const std::string&, std::string payload, Reply reply) {
    reply(std::move(payload));
  });
  transport.handle("whoami",
                   [](const std::string& from, std::string, Reply reply) { reply(from); });
  transport.handle("hold", [](const std::string&, std::string payload, Reply reply) {
    std::thread([size = payload.size(), reply = std::move(reply)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      reply(std::to_string(size));
    }).detach();
  });
  auto port = transport.listen("127.0.0.1", static_cast<uint16_t>(std::stoul(args["--port"])));
  if (!port) {
    std::fprintf(stderr, "%s\n", port.status().to_string().c_str());
    return 3;
  }
  std::printf("READY %u\n", static_cast<unsigned>(*port));
  std::fflush(stdout);
  for (;;) ::pause();  // until killed
}
