#include "password.h"

#include <sodium.h>
#include <kj/debug.h>

namespace credvault::crypto {

namespace {

// libsodium declares the password pointer nonnull, even for an empty password, whose
// Secret has no buffer.
const char* chars(const Secret& password) {
  return password.empty() ? "" : reinterpret_cast<const char*>(password.reveal().begin());
}

}  // namespace

PasswordParams defaultPasswordParams() {
  return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

PasswordParams minimalPasswordParams() {
  return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
}

kj::String hashPassword(const Secret& password, const PasswordParams& params) {
  init();
  char out[crypto_pwhash_STRBYTES];
  int rc = crypto_pwhash_str_alg(out, chars(password), password.size(), params.opsLimit,
                                 params.memLimit, crypto_pwhash_ALG_ARGON2ID13);
  KJ_ASSERT(rc == 0, "password hashing ran out of memory");
  return kj::heapString(out);
}

bool verifyPassword(kj::StringPtr hash, const Secret& password) {
  init();
  return crypto_pwhash_str_verify(hash.cStr(), chars(password), password.size()) == 0;
}

bool passwordNeedsRehash(kj::StringPtr hash, const PasswordParams& params) {
  return crypto_pwhash_str_needs_rehash(hash.cStr(), params.opsLimit, params.memLimit) != 0;
}

}  // namespace credvault::crypto
