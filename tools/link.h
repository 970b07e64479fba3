// credvaultctl — the connection to credvaultd, and how its answers become exit codes.
//
// Connecting tells apart what a person fixes differently: no socket at the path, a socket
// that refuses (daemon stopped), a socket this user may not use. Every typed error of the
// daemon maps to one exit code (exit-codes.h); with --format=json it is also printed on
// stdout as {"Error", "Field", "Message"}. Messages never carry a secret (the daemon's never
// do; ours name paths and ids only).

#pragma once

#include "cli.h"
#include "ipc/client.h"

#include <kj/async-io.h>
#include <stdio.h>

namespace credvault::ctl {

// Prints "credvaultctl: MESSAGE" on stderr (and the JSON error object with --format=json),
// then ends the command with `code`.
[[noreturn]] void failWith(Format format, int code, kj::StringPtr name, kj::StringPtr message,
                           kj::StringPtr field = nullptr);

class Link {
 public:
  explicit Link(const Common& common);
  KJ_DISALLOW_COPY(Link);

  // Connects (once); exits NO_SOCKET, NOT_RUNNING or SOCKET_DENIED with a message saying
  // what to do.
  void connect();
  rpc::Vault::Client vault();
  // A session for the calling uid, or for $CREDVAULT_TICKET's associate when set.
  rpc::Session::Client session();
  rpc::Admin::Client admin();

  // Waits for an answer; a broken connection or an unknown method ends the command.
  template<typename Promise>
  auto wait(Promise&& p) {
    try {
      return p.wait(io_.waitScope);
    } catch (const kj::Exception& e) { brokenCall(e); }
  }

  // Ends the command when the answer carries an error.
  template<typename Results>
  void check(const Results& results) {
    if (!results.hasError()) return;
    auto err = results.getError();
    failed(err.getCode(), err.getField(), err.getMessage());
  }

  Format format() const { return format_; }
  kj::AsyncIoContext& io() { return io_; }

 private:
  kj::Maybe<kj::StringPtr> socket_;
  Format format_;
  kj::AsyncIoContext io_;
  kj::Own<ipc::Connection> conn_;

  [[noreturn]] void brokenCall(const kj::Exception& e);
  [[noreturn]] void failed(rpc::ErrorCode code, kj::StringPtr field, kj::StringPtr message);
};

}  // namespace credvault::ctl
