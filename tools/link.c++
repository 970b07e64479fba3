#include "link.h"
#include "base/json-writer.h"

#include <kj/debug.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace credvault::ctl {

void failWith(Format format, int code, kj::StringPtr name, kj::StringPtr message,
              kj::StringPtr field) {
  if (format == Format::JSON) {
    base::JsonWriter w;
    w.beginObject();
    w.key("Error").string(name);
    w.key("Field").string(field == nullptr ? kj::StringPtr("") : field);
    w.key("Message").string(message);
    w.endObject();
    fwrite(w.text().begin(), 1, w.text().size(), stdout);
    fputc('\n', stdout);
    fflush(stdout);
  }
  if (field != nullptr && field.size() > 0) {
    fprintf(stderr, "credvaultctl: %s (%s): %s\n", name.cStr(), field.cStr(), message.cStr());
  } else {
    fprintf(stderr, "credvaultctl: %s: %s\n", name.cStr(), message.cStr());
  }
  throw ExitWith{code};
}

Link::Link(const Common& common) : format_(common.formatOr()), io_(kj::setupAsyncIo()) {
  KJ_IF_MAYBE(s, common.socket) { socket_ = s->asPtr(); }
}

void Link::connect() {
  if (conn_.get() != nullptr) return;
  auto path = ipc::socketPath(socket_);
  struct stat st;
  if (stat(path.cStr(), &st) != 0) {
    int err = errno;
    if (err == EACCES) {
      failWith(format_, SOCKET_DENIED, "socket-denied",
               kj::str("cannot reach ", path, ": a directory on the path does not let uid ",
                       getuid(), " in"));
    }
    failWith(format_, NO_SOCKET, "no-socket",
             kj::str("no socket at ", path, " (", strerror(err),
                     "): is credvaultd installed and started (systemctl status "
                     "credvaultd.socket)? Or name another with --socket or $CREDVAULT_SOCKET"));
  }
  if (!S_ISSOCK(st.st_mode)) {
    failWith(format_, NO_SOCKET, "no-socket", kj::str(path, " is not a socket"));
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    failWith(format_, NO_SOCKET, "no-socket", kj::str("the socket path is too long: ", path));
  }
  memcpy(addr.sun_path, path.begin(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failWith(format_, LOCAL, "local", kj::str("cannot make a socket: ", strerror(errno)));
  }
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    if (err == EACCES || err == EPERM) {
      failWith(format_, SOCKET_DENIED, "socket-denied",
               kj::str(path, " does not let uid ", getuid(),
                       " connect (permission denied); the socket's mode or group decides who "
                       "may use the vault"));
    }
    if (err == ECONNREFUSED) {
      failWith(format_, NOT_RUNNING, "not-running",
               kj::str("credvaultd is not running: nothing accepts connections on ", path,
                       " (systemctl start credvaultd)"));
    }
    failWith(format_, UNAVAILABLE, "unavailable",
             kj::str("cannot reach credvaultd at ", path, ": ", strerror(err)));
  }
  auto stream =
      io_.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                 kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  conn_ = kj::heap<ipc::Connection>(kj::mv(stream));
}

rpc::Vault::Client Link::vault() {
  connect();
  return conn_->vault();
}

rpc::Session::Client Link::session() {
  const char* ticket = getenv("CREDVAULT_TICKET");
  if (ticket != nullptr && *ticket != '\0') {
    auto req = vault().authenticateTicketRequest();
    req.setTicket(ticket);
    auto results = wait(req.send());
    check(results);
    return results.getSession();
  }
  auto results = wait(vault().sessionRequest().send());
  check(results);
  return results.getSession();
}

rpc::Admin::Client Link::admin() {
  auto results = wait(session().adminRequest().send());
  check(results);
  return results.getAdmin();
}

void Link::brokenCall(const kj::Exception& e) {
  if (e.getType() == kj::Exception::Type::DISCONNECTED) {
    failWith(format_, UNAVAILABLE, "unavailable", "lost the connection to credvaultd");
  }
  if (e.getType() == kj::Exception::Type::UNIMPLEMENTED) {
    failWith(format_, UNAVAILABLE, "unavailable",
             "this credvaultd does not know the request (is it older than credvaultctl?)");
  }
  failWith(format_, INTERNAL, "internal", e.getDescription());
}

void Link::failed(rpc::ErrorCode code, kj::StringPtr field, kj::StringPtr message) {
  // `unavailable` naming the store: the daemon is up but its disk is full or failing.
  int exit =
      code == rpc::ErrorCode::UNAVAILABLE && field == "storage" ? STORAGE_FAILING : exitFor(code);
  failWith(format_, exit, ipc::errorCodeName(code), message, field);
}

}  // namespace credvault::ctl
