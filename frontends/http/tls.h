// credvault-gateway HTTP layer — TLS on the listening sockets (KJ's kj-tls over OpenSSL).
//
// TLS 1.2 and 1.3 only; TLS 1.2 with forward-secret AEAD suites only (Mozilla's
// "intermediate" list), TLS 1.3 with OpenSSL's defaults. The certificate (PEM, chain allowed,
// leaf first) and the private key (PEM, unencrypted) are read from files; the key file must
// not be accessible to group or others. reload() reads both again: connections accepted
// afterwards use the new pair, connections already open keep theirs (nothing is dropped),
// and a pair that fails to load leaves the current one in place.
//
// A client that speaks plain HTTP to a TLS port gets a plain "400 Bad Request" saying to use
// https:// instead of a handshake failure it cannot read. The handshake is bounded in time;
// a handshake that fails or takes too long closes the connection without a log line.
//
// Never logs; key material is wiped from our buffers once OpenSSL has parsed it.

#pragma once

#include <kj/async-io.h>
#include <kj/one-of.h>
#include <kj/timer.h>

namespace credvault::http {

// What the server does with an accepted stream before HTTP is read from it.
class StreamUpgrade {
 public:
  virtual ~StreamUpgrade() noexcept(false) = default;
  // The stream to read HTTP from, or null when the connection was answered already and is to
  // be closed.
  virtual kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> upgrade(
      kj::Own<kj::AsyncIoStream> stream) = 0;
};

struct TlsFiles {
  kj::String certificate;  // PEM path
  kj::String key;          // PEM path
};

class TlsServer final : public StreamUpgrade {
 public:
  // Loads the pair; an error message an operator can act on (which file, what is wrong).
  static kj::OneOf<kj::Own<TlsServer>, kj::String> load(TlsFiles files, kj::Timer& timer,
                                                        kj::Duration handshakeTimeout);
  ~TlsServer() noexcept(false);

  // Reads both files again; on failure the current pair stays and the message is returned.
  kj::Maybe<kj::String> reload();
  // How many times a pair was loaded (1 after load(); +1 per successful reload).
  uint64_t generation() const { return generation_; }

  kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> upgrade(
      kj::Own<kj::AsyncIoStream> stream) override;

  class Context;  // a TlsContext and its pair, shared by the connections made with it

  TlsServer(TlsFiles files, kj::Timer& timer, kj::Duration handshakeTimeout,
            kj::Own<Context> context);

 private:
  TlsFiles files_;
  kj::Timer& timer_;
  kj::Duration handshakeTimeout_;
  kj::Own<Context> current_;
  uint64_t generation_ = 1;
};

// The answer given to plain HTTP on a TLS port (for tests).
extern const kj::StringPtr PLAIN_HTTP_ON_TLS_PORT;

}  // namespace credvault::http
