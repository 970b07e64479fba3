#include "aead.h"

#include <sodium.h>
#include <kj/debug.h>

namespace credvault::crypto {

static_assert(KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(KEY_BYTES == crypto_kdf_KEYBYTES);

kj::Array<kj::byte> seal(const Secret& key, kj::ArrayPtr<const kj::byte> plaintext,
                         kj::ArrayPtr<const kj::byte> ad) {
  KJ_REQUIRE(key.size() == KEY_BYTES, "sealing key has the wrong size");
  auto out = kj::heapArray<kj::byte>(NONCE_BYTES + plaintext.size() + TAG_BYTES);
  randombytes_buf(out.begin(), NONCE_BYTES);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.begin() + NONCE_BYTES, &written, plaintext.begin(),
                                             plaintext.size(), ad.begin(), ad.size(), nullptr,
                                             out.begin(), key.reveal().begin());
  KJ_ASSERT(written == plaintext.size() + TAG_BYTES);
  return out;
}

kj::Maybe<Secret> open(const Secret& key, kj::ArrayPtr<const kj::byte> sealed,
                       kj::ArrayPtr<const kj::byte> ad) {
  KJ_REQUIRE(key.size() == KEY_BYTES, "opening key has the wrong size");
  if (sealed.size() < SEAL_OVERHEAD) return nullptr;
  Secret plain(sealed.size() - SEAL_OVERHEAD);
  unsigned long long written = 0;
  // libsodium needs a writable pointer even for an empty plaintext.
  kj::byte dummy = 0;
  kj::byte* dst = plain.size() > 0 ? plain.revealMut().begin() : &dummy;
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      dst, &written, nullptr, sealed.begin() + NONCE_BYTES, sealed.size() - NONCE_BYTES, ad.begin(),
      ad.size(), sealed.begin(), key.reveal().begin());
  if (rc != 0) return nullptr;
  KJ_ASSERT(written == plain.size());
  return kj::mv(plain);
}

kj::Array<kj::byte> keyedHash(const Secret& key, kj::ArrayPtr<const kj::byte> message) {
  KJ_REQUIRE(key.size() >= crypto_generichash_KEYBYTES_MIN &&
                 key.size() <= crypto_generichash_KEYBYTES_MAX,
             "hash key has the wrong size");
  auto out = kj::heapArray<kj::byte>(MAC_BYTES);
  crypto_generichash(out.begin(), out.size(), message.begin(), message.size(), key.reveal().begin(),
                     key.size());
  return out;
}

Secret deriveKey(const Secret& masterKey, uint64_t id, const char (&context)[9]) {
  KJ_REQUIRE(masterKey.size() == KEY_BYTES, "key has the wrong size");
  Secret out(KEY_BYTES);
  crypto_kdf_derive_from_key(out.revealMut().begin(), KEY_BYTES, id, context,
                             masterKey.reveal().begin());
  return out;
}

kj::String randomBase64(size_t bytes, bool urlSafe) {
  auto raw = Secret::random(bytes);
  int variant = urlSafe ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
  size_t len = sodium_base64_ENCODED_LEN(bytes, variant);
  auto out = kj::heapString(len - 1);
  sodium_bin2base64(out.begin(), len, raw.reveal().begin(), bytes, variant);
  return out;
}

}  // namespace credvault::crypto
