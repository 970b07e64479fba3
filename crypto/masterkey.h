// credvault — where the master key comes from.
//
// Order: a systemd credential ($CREDENTIALS_DIRECTORY/credvault.key, which systemd may have
// decrypted with the host key or a TPM2), then a key file that must be a regular file
// owned by us and not accessible to group or others. The key is 32 raw bytes, or their
// base64 encoding with an optional trailing newline. Never logs the key.

#pragma once

#include "secret.h"
#include <kj/string.h>

namespace credvault::crypto {

struct LoadedMasterKey {
  Secret key;
  kj::String source;  // "systemd credential /run/credentials/…", "key file /var/lib/…"
  bool created;       // true when this call generated it
};

struct MasterKeyOptions {
  kj::Maybe<kj::StringPtr> credentialsDirectory;  // usually $CREDENTIALS_DIRECTORY
  kj::StringPtr keyFile;                          // fallback key file
  bool createIfMissing = false;                   // embedded default / first start
};

// Throws a KJ exception with a message an operator can act on: missing key, unsafe
// permissions, wrong size. Never includes key bytes.
LoadedMasterKey loadMasterKey(const MasterKeyOptions& options);

// Parses key material (raw 32 bytes or base64 of them). Returns null when malformed.
kj::Maybe<Secret> parseMasterKey(kj::ArrayPtr<const kj::byte> content);

// Writes a new random key to `path` (base64 + newline, mode 0600, O_EXCL: never replaces
// an existing file). Returns the key.
Secret createKeyFile(kj::StringPtr path);

}  // namespace credvault::crypto
