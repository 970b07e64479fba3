#include "tls.h"
#include "ipc/forwarding-stream.h"

#include <kj/compat/tls.h>
#include <kj/debug.h>
#include <kj/refcount.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace credvault::http {

using kj::uint;

const kj::StringPtr PLAIN_HTTP_ON_TLS_PORT =
    "This port speaks HTTPS: send the request to https:// instead of http://.\n"_kj;

namespace {

// Mozilla "intermediate" for TLS 1.2: ECDHE key exchange, AEAD ciphers. (TLS 1.3 suites are
// OpenSSL's defaults, all of which are fine.)
constexpr kj::StringPtr CIPHERS =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"_kj;

constexpr size_t MAX_PEM_BYTES = 1 << 20;
constexpr size_t MAX_PLAIN_REQUEST_BYTES = 16 * 1024;

// Reads a PEM file; the content, or a message. `secret`: the file must be private.
kj::OneOf<kj::Array<char>, kj::String> readPem(kj::StringPtr what, kj::StringPtr path,
                                               bool secret) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    return kj::str("cannot read the TLS ", what, " ", path, ": ", strerror(error),
                   error == EACCES ? "; make it readable by the gateway's user (or load it "
                                     "with LoadCredential=)"
                                   : "");
  }
  KJ_DEFER(close(fd));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return kj::str("the TLS ", what, " ", path, " is not a regular file");
  }
  if (secret && (st.st_mode & 077) != 0) {
    return kj::str("the TLS key ", path,
                   " is accessible to group or others; chmod 600 it (or load it with "
                   "LoadCredential=)");
  }
  if (st.st_size <= 0 || static_cast<size_t>(st.st_size) > MAX_PEM_BYTES) {
    return kj::str("the TLS ", what, " ", path, " is empty or too large to be PEM");
  }
  auto buf = kj::heapArray<char>(st.st_size + 1);
  size_t got = 0;
  while (got < static_cast<size_t>(st.st_size)) {
    ssize_t n = read(fd, buf.begin() + got, st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  buf[got] = '\0';
  return kj::mv(buf);
}

// A stream that returns `prefix` before what `inner` yields (the byte read to tell TLS from
// plain HTTP).
class PrefixedStream final : public ipc::ForwardingStream {
 public:
  PrefixedStream(kj::Own<kj::AsyncIoStream> inner, kj::Array<kj::byte> prefix)
      : ForwardingStream(kj::mv(inner)), prefix_(kj::mv(prefix)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    if (offset_ < prefix_.size()) {
      size_t n = kj::min(maxBytes, prefix_.size() - offset_);
      memcpy(buffer, prefix_.begin() + offset_, n);
      offset_ += n;
      if (n >= minBytes) return n;
      return inner()
          .tryRead(static_cast<kj::byte*>(buffer) + n, minBytes - n, maxBytes - n)
          .then([n](size_t more) { return n + more; });
    }
    return inner().tryRead(buffer, minBytes, maxBytes);
  }

 private:
  kj::Array<kj::byte> prefix_;
  size_t offset_ = 0;
};

// Whether the first certificate of `certPem` is for the private key in `keyPem` (kj-tls does
// not check; a mismatch would only show at the first handshake).
bool keyMatches(kj::StringPtr certPem, kj::StringPtr keyPem) {
  BIO* certBio = BIO_new_mem_buf(certPem.begin(), static_cast<int>(certPem.size()));
  BIO* keyBio = BIO_new_mem_buf(keyPem.begin(), static_cast<int>(keyPem.size()));
  KJ_DEFER({
    BIO_free(certBio);
    BIO_free(keyBio);
  });
  if (certBio == nullptr || keyBio == nullptr) return false;
  X509* cert = PEM_read_bio_X509(certBio, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(keyBio, nullptr, nullptr, nullptr);
  KJ_DEFER({
    X509_free(cert);
    EVP_PKEY_free(key);
  });
  return cert != nullptr && key != nullptr && X509_check_private_key(cert, key) == 1;
}

bool looksLikeHttp(kj::byte b) {
  return b >= 'A' && b <= 'Z';  // the first letter of a method
}

}  // namespace

class TlsServer::Context final : public kj::Refcounted {
 public:
  Context(kj::TlsKeypair pair, kj::Timer& timer) : pair_(kj::mv(pair)), tls_(options(timer)) {}
  kj::TlsContext& tls() { return tls_; }

 private:
  kj::TlsKeypair pair_;
  kj::TlsContext tls_;

  kj::TlsContext::Options options(kj::Timer& timer) {
    kj::TlsContext::Options o;
    o.useSystemTrustStore = false;  // a server that verifies no client certificates
    o.minVersion = kj::TlsVersion::TLS_1_2;
    o.cipherList = CIPHERS;
    o.defaultKeypair = pair_;
    return o;
  }
};

namespace {

kj::OneOf<kj::Own<TlsServer::Context>, kj::String> loadContext(const TlsFiles& files,
                                                               kj::Timer& timer) {
  auto cert = readPem("certificate", files.certificate, false);
  KJ_IF_MAYBE(e, cert.tryGet<kj::String>()) { return kj::mv(*e); }
  auto key = readPem("key", files.key, true);
  KJ_IF_MAYBE(e, key.tryGet<kj::String>()) { return kj::mv(*e); }
  auto& keyText = key.get<kj::Array<char>>();
  KJ_DEFER(explicit_bzero(keyText.begin(), keyText.size()));
  auto& certText = cert.get<kj::Array<char>>();

  kj::Maybe<kj::TlsCertificate> certificate;
  if (kj::runCatchingExceptions([&]() {
        certificate = kj::TlsCertificate(kj::StringPtr(certText.begin(), certText.size() - 1));
      }) != nullptr) {
    return kj::str("the TLS certificate ", files.certificate,
                   " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  kj::Maybe<kj::TlsPrivateKey> privateKey;
  if (kj::runCatchingExceptions([&]() {
        privateKey = kj::TlsPrivateKey(kj::StringPtr(keyText.begin(), keyText.size() - 1));
      }) != nullptr) {
    return kj::str("the TLS key ", files.key,
                   " holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)");
  }
  if (!keyMatches(kj::StringPtr(certText.begin(), certText.size() - 1),
                  kj::StringPtr(keyText.begin(), keyText.size() - 1))) {
    return kj::str("the TLS key ", files.key, " does not belong to the certificate ",
                   files.certificate, " (the first certificate in the file must be the server's)");
  }
  kj::Own<TlsServer::Context> context;
  if (kj::runCatchingExceptions([&]() {
        context = kj::refcounted<TlsServer::Context>(
            kj::TlsKeypair{KJ_ASSERT_NONNULL(kj::mv(privateKey)),
                           KJ_ASSERT_NONNULL(kj::mv(certificate))},
            timer);
      }) != nullptr) {
    return kj::str("the TLS certificate ", files.certificate, " and key ", files.key,
                   " cannot be used together");
  }
  return kj::mv(context);
}

}  // namespace

kj::OneOf<kj::Own<TlsServer>, kj::String> TlsServer::load(TlsFiles files, kj::Timer& timer,
                                                          kj::Duration handshakeTimeout) {
  auto loaded = loadContext(files, timer);
  KJ_IF_MAYBE(e, loaded.tryGet<kj::String>()) { return kj::mv(*e); }
  return kj::heap<TlsServer>(kj::mv(files), timer, handshakeTimeout,
                             kj::mv(loaded.get<kj::Own<Context>>()));
}

TlsServer::TlsServer(TlsFiles files, kj::Timer& timer, kj::Duration handshakeTimeout,
                     kj::Own<Context> context)
    : files_(kj::mv(files)),
      timer_(timer),
      handshakeTimeout_(handshakeTimeout),
      current_(kj::mv(context)) {}

TlsServer::~TlsServer() noexcept(false) {}

kj::Maybe<kj::String> TlsServer::reload() {
  auto loaded = loadContext(files_, timer_);
  KJ_IF_MAYBE(e, loaded.tryGet<kj::String>()) { return kj::mv(*e); }
  current_ = kj::mv(loaded.get<kj::Own<Context>>());
  ++generation_;
  return nullptr;
}

kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> TlsServer::upgrade(
    kj::Own<kj::AsyncIoStream> stream) {
  auto context = kj::addRef(*current_);
  auto first = kj::heapArray<kj::byte>(1);
  auto& s = *stream;
  auto read = s.tryRead(first.begin(), 1, 1);
  auto work =
      read.then([this, stream = kj::mv(stream), first = kj::mv(first), context = kj::mv(context)](
                    size_t n) mutable -> kj::Promise<kj::Maybe<kj::Own<kj::AsyncIoStream>>> {
        if (n == 0) return kj::Maybe<kj::Own<kj::AsyncIoStream>>(nullptr);
        if (looksLikeHttp(first[0])) {
          // Read what the client sends (bounded) so that closing does not reset the connection
          // before it has read the answer, then answer in plain HTTP.
          auto sink = kj::heapArray<kj::byte>(MAX_PLAIN_REQUEST_BYTES);
          auto& in = *stream;
          auto drained = in.tryRead(sink.begin(), 1, sink.size()).ignoreResult();
          auto answer = kj::str(
              "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
              "Connection: close\r\nContent-Length: ",
              PLAIN_HTTP_ON_TLS_PORT.size(), "\r\n\r\n", PLAIN_HTTP_ON_TLS_PORT);
          return timer_.timeoutAfter(kj::SECONDS, kj::mv(drained))
              .catch_([](kj::Exception&&) {})
              .then([&in, answer = kj::mv(answer)]() mutable {
                auto& a = answer;
                return in.write(a.begin(), a.size()).attach(kj::mv(answer));
              })
              .then([&in]() {
                in.shutdownWrite();
                return kj::Maybe<kj::Own<kj::AsyncIoStream>>(nullptr);
              })
              .attach(kj::mv(stream), kj::mv(sink));
        }
        auto prefixed = kj::heap<PrefixedStream>(kj::mv(stream), kj::mv(first));
        auto& ctx = *context;
        return ctx.tls()
            .wrapServer(kj::mv(prefixed))
            .then([context = kj::mv(context)](kj::Own<kj::AsyncIoStream> secure) mutable {
              // The pair this connection was made with lives as long as the connection.
              return kj::Maybe<kj::Own<kj::AsyncIoStream>>(secure.attach(kj::mv(context)));
            });
      });
  // A failed or slow handshake (a scanner, an old client, a wrong port) is the client's
  // business: the connection closes, the client has its TLS alert, and the log stays quiet.
  return timer_.timeoutAfter(handshakeTimeout_, kj::mv(work))
      .catch_([](kj::Exception&&) -> kj::Maybe<kj::Own<kj::AsyncIoStream>> { return nullptr; });
}

}  // namespace credvault::http
