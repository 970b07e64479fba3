// Tests for crypto/masterkey.h: where the master key comes from, and what is refused.

#include "crypto/masterkey.h"
#include "crypto/aead.h"
#include "tests/support/failure.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string>

namespace credvault::crypto {
namespace {

using support::TempDir;
using support::writeFile;

std::string readFile(kj::StringPtr path) {
  return support::readFile(path, "<missing>");
}

kj::String base64(kj::ArrayPtr<const kj::byte> bytes) {
  size_t len = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  auto out = kj::heapArray<char>(len);
  sodium_bin2base64(out.begin(), len, bytes.begin(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  return kj::heapString(out.begin());
}

using support::failureOf;
using support::has;

struct Fixture {
  TempDir dir;
  kj::String credentials = dir / "credentials";
  kj::String keyFile = dir / "credvault.key";
  Fixture() { KJ_SYSCALL(mkdir(credentials.cStr(), 0700)); }

  kj::String credentialFile() { return kj::str(credentials, "/credvault.key"); }

  MasterKeyOptions options(bool withCredentials = true, bool create = false) {
    MasterKeyOptions o;
    if (withCredentials) o.credentialsDirectory = kj::StringPtr(credentials);
    o.keyFile = keyFile;
    o.createIfMissing = create;
    return o;
  }
};

TEST(MasterKey, LoadsTheSystemdCredentialBeforeTheKeyFile) {
  Fixture f;
  auto fromCredential = Secret::random(KEY_BYTES);
  auto fromFile = Secret::random(KEY_BYTES);
  writeFile(f.credentialFile(), base64(fromCredential.reveal()));
  writeFile(f.keyFile, base64(fromFile.reveal()));

  auto loaded = loadMasterKey(f.options());
  EXPECT_TRUE(loaded.key.equals(fromCredential));
  EXPECT_FALSE(loaded.created);
  EXPECT_TRUE(has(loaded.source.cStr(), "systemd credential")) << loaded.source.cStr();
  EXPECT_TRUE(has(loaded.source.cStr(), f.credentials.cStr())) << loaded.source.cStr();
}

TEST(MasterKey, FallsBackToTheKeyFileWhenTheCredentialIsAbsent) {
  Fixture f;
  auto fromFile = Secret::random(KEY_BYTES);
  writeFile(f.keyFile, base64(fromFile.reveal()));

  auto loaded = loadMasterKey(f.options());
  EXPECT_TRUE(loaded.key.equals(fromFile));
  EXPECT_FALSE(loaded.created);
  EXPECT_TRUE(has(loaded.source.cStr(), "key file")) << loaded.source.cStr();
  EXPECT_TRUE(has(loaded.source.cStr(), f.keyFile.cStr())) << loaded.source.cStr();
}

TEST(MasterKey, UsesTheKeyFileWhenNoCredentialsDirectoryIsSet) {
  Fixture f;
  auto fromCredential = Secret::random(KEY_BYTES);
  auto fromFile = Secret::random(KEY_BYTES);
  writeFile(f.credentialFile(), base64(fromCredential.reveal()));
  writeFile(f.keyFile, base64(fromFile.reveal()));

  auto loaded = loadMasterKey(f.options(/*withCredentials=*/false));
  EXPECT_TRUE(loaded.key.equals(fromFile));
}

TEST(MasterKey, AcceptsACredentialWhateverItsMode) {
  // systemd owns the credentials directory and its modes; only the key file is checked.
  Fixture f;
  auto key = Secret::random(KEY_BYTES);
  writeFile(f.credentialFile(), base64(key.reveal()), 0644);
  EXPECT_TRUE(loadMasterKey(f.options()).key.equals(key));
}

TEST(MasterKey, AcceptsRaw32ByteAndBase64KeyFiles) {
  auto key = Secret::random(KEY_BYTES);
  {
    Fixture f;
    writeFile(f.keyFile, key.reveal());
    EXPECT_TRUE(loadMasterKey(f.options()).key.equals(key));
  }
  {
    Fixture f;
    writeFile(f.keyFile, kj::str(base64(key.reveal()), "\n"));
    EXPECT_TRUE(loadMasterKey(f.options()).key.equals(key));
  }
  {
    Fixture f;
    writeFile(f.credentialFile(), key.reveal());
    EXPECT_TRUE(loadMasterKey(f.options()).key.equals(key));
  }
}

TEST(MasterKey, RefusesAKeyFileAccessibleToOthersWithAClearMessage) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    Fixture f;
    auto content = base64(Secret::random(KEY_BYTES).reveal());
    writeFile(f.keyFile, content, mode);
    auto message = failureOf([&]() { loadMasterKey(f.options(true, /*create=*/true)); });
    EXPECT_TRUE(has(message, "accessible to group or others")) << message;
    EXPECT_TRUE(has(message, "chmod 600")) << message;
    EXPECT_TRUE(has(message, f.keyFile.cStr())) << message;
    EXPECT_FALSE(has(message, content.cStr())) << "the message shows the key";
    EXPECT_EQ(readFile(f.keyFile), content.cStr()) << "the unsafe file was replaced";
  }
}

TEST(MasterKey, RefusesAMalformedKeyFileWithoutShowingItsContent) {
  auto key = Secret::random(KEY_BYTES);
  auto b64 = base64(key.reveal());
  auto shortKey = Secret::random(31);
  auto longKey = Secret::random(33);
  kj::String bad[] = {
      kj::heapString(shortKey.revealChars()),  // 31 raw bytes
      kj::heapString(longKey.revealChars()),   // 33 raw bytes
      base64(shortKey.reveal()),               // base64 of 31 bytes
      base64(longKey.reveal()),                // base64 of 33 bytes
      kj::str(b64, "x"),                       // trailing garbage
      kj::str(b64, "\n\n\nextra"),             // a second line
      kj::str(" ", b64),                       // leading space
      kj::str("not a key at all, just some words here!!!\n"),
  };
  for (auto& content : bad) {
    Fixture f;
    writeFile(f.keyFile, content);
    auto message = failureOf([&]() { loadMasterKey(f.options()); });
    EXPECT_TRUE(has(message, "not a 32-byte key or its base64")) << message;
    EXPECT_TRUE(has(message, f.keyFile.cStr())) << message;
    EXPECT_FALSE(has(message, b64.cStr())) << "the message shows the key";
  }
}

TEST(MasterKey, RefusesAMalformedCredentialRatherThanUsingAnotherKey) {
  Fixture f;
  writeFile(f.credentialFile(), "garbage\n");
  writeFile(f.keyFile, base64(Secret::random(KEY_BYTES).reveal()));
  auto message = failureOf([&]() { loadMasterKey(f.options()); });
  EXPECT_TRUE(has(message, "systemd credential")) << message;
  EXPECT_TRUE(has(message, "not a 32-byte key")) << message;
}

TEST(MasterKey, RefusesAnEmptyOrOversizedKeyFile) {
  {
    Fixture f;
    writeFile(f.keyFile, "");
    auto message = failureOf([&]() { loadMasterKey(f.options(true, /*create=*/true)); });
    EXPECT_TRUE(has(message, "wrong size")) << message;
    EXPECT_EQ(readFile(f.keyFile), "");
  }
  {
    Fixture f;
    writeFile(f.keyFile, kj::heapString(std::string(4096, 'A').c_str()));
    auto message = failureOf([&]() { loadMasterKey(f.options()); });
    EXPECT_TRUE(has(message, "wrong size")) << message;
  }
}

TEST(MasterKey, RefusesAKeyFileThatIsASymlink) {
  Fixture f;
  auto target = f.dir / "real.key";
  writeFile(target, base64(Secret::random(KEY_BYTES).reveal()));
  KJ_SYSCALL(symlink(target.cStr(), f.keyFile.cStr()));
  EXPECT_THROW(loadMasterKey(f.options()), kj::Exception);
}

TEST(MasterKey, RefusesAKeyFileThatIsNotARegularFile) {
  Fixture f;
  KJ_SYSCALL(mkdir(f.keyFile.cStr(), 0700));
  auto message = failureOf([&]() { loadMasterKey(f.options()); });
  EXPECT_TRUE(has(message, "not a regular file")) << message;
}

TEST(MasterKey, MissingKeyIsAnErrorUnlessCreationIsAllowed) {
  Fixture f;
  auto message = failureOf([&]() { loadMasterKey(f.options()); });
  EXPECT_TRUE(has(message, "no master key")) << message;
  EXPECT_TRUE(has(message, f.keyFile.cStr())) << message;
  EXPECT_EQ(readFile(f.keyFile), "<missing>");
}

TEST(MasterKey, CreateIfMissingWritesAPrivateKeyFileThatLoadsNextTime) {
  Fixture f;
  auto first = loadMasterKey(f.options(true, /*create=*/true));
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.key.size(), KEY_BYTES);
  EXPECT_TRUE(has(first.source.cStr(), f.keyFile.cStr())) << first.source.cStr();

  struct stat st;
  ASSERT_EQ(lstat(f.keyFile.cStr(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  // base64 + newline, so an operator can copy it into a credential or a backup.
  EXPECT_EQ(readFile(f.keyFile), std::string(base64(first.key.reveal()).cStr()) + "\n");

  auto second = loadMasterKey(f.options(true, /*create=*/true));
  EXPECT_FALSE(second.created);
  EXPECT_TRUE(second.key.equals(first.key));
  auto third = loadMasterKey(f.options(false, /*create=*/false));
  EXPECT_TRUE(third.key.equals(first.key));
}

TEST(MasterKey, CreateIfMissingNeverOverwritesAnExistingKeyFile) {
  Fixture f;
  auto existing = Secret::random(KEY_BYTES);
  auto content = base64(existing.reveal());
  writeFile(f.keyFile, content);
  auto loaded = loadMasterKey(f.options(true, /*create=*/true));
  EXPECT_FALSE(loaded.created);
  EXPECT_TRUE(loaded.key.equals(existing));
  EXPECT_EQ(readFile(f.keyFile), content.cStr());
}

TEST(MasterKey, CreateIfMissingDoesNotReplaceAMalformedKeyFile) {
  // A damaged key file means lost data unless the operator restores it; replacing it with a
  // fresh key would make that permanent.
  Fixture f;
  writeFile(f.keyFile, "damaged\n");
  EXPECT_THROW(loadMasterKey(f.options(true, /*create=*/true)), kj::Exception);
  EXPECT_EQ(readFile(f.keyFile), "damaged\n");
}

TEST(MasterKey, CreateIfMissingIsNotNeededWhenACredentialExists) {
  Fixture f;
  auto key = Secret::random(KEY_BYTES);
  writeFile(f.credentialFile(), base64(key.reveal()));
  auto loaded = loadMasterKey(f.options(true, /*create=*/true));
  EXPECT_FALSE(loaded.created);
  EXPECT_TRUE(loaded.key.equals(key));
  EXPECT_EQ(readFile(f.keyFile), "<missing>");
}

TEST(CreateKeyFile, RefusesAnExistingFileAndLeavesItAlone) {
  Fixture f;
  writeFile(f.keyFile, "precious\n");
  EXPECT_THROW(createKeyFile(f.keyFile), kj::Exception);
  EXPECT_EQ(readFile(f.keyFile), "precious\n");
}

TEST(CreateKeyFile, DoesNotWriteThroughASymlink) {
  Fixture f;
  auto target = f.dir / "elsewhere";
  KJ_SYSCALL(symlink(target.cStr(), f.keyFile.cStr()));  // dangling
  EXPECT_THROW(createKeyFile(f.keyFile), kj::Exception);
  EXPECT_EQ(readFile(target), "<missing>");
}

TEST(CreateKeyFile, ReturnsTheKeyItWrote) {
  Fixture f;
  auto key = createKeyFile(f.keyFile);
  auto content = readFile(f.keyFile);
  KJ_IF_MAYBE(parsed, parseMasterKey(kj::StringPtr(content.c_str()).asBytes())) {
    EXPECT_TRUE(parsed->equals(key));
  } else {
    FAIL() << "the written key file does not parse";
  }
}

TEST(ParseMasterKey, AcceptsRaw32Bytes) {
  auto key = Secret::random(KEY_BYTES);
  key.revealMut()[KEY_BYTES - 1] = '\n';  // raw bytes may end in anything
  KJ_IF_MAYBE(parsed, parseMasterKey(key.reveal())) {
    EXPECT_TRUE(parsed->equals(key));
  } else {
    FAIL() << "raw key refused";
  }
}

TEST(ParseMasterKey, AcceptsBase64WithOrWithoutATrailingNewline) {
  auto key = Secret::random(KEY_BYTES);
  auto b64 = base64(key.reveal());
  kj::String texts[] = {kj::str(b64), kj::str(b64, "\n"), kj::str(b64, "\r\n")};
  for (auto& text : texts) {
    KJ_IF_MAYBE(parsed, parseMasterKey(text.asBytes())) {
      EXPECT_TRUE(parsed->equals(key)) << text.cStr();
    } else {
      ADD_FAILURE() << "base64 key refused: " << text.cStr();
    }
  }
}

TEST(ParseMasterKey, RefusesWrongSizesAndNonBase64) {
  EXPECT_TRUE(parseMasterKey(nullptr) == nullptr);
  EXPECT_TRUE(parseMasterKey(Secret::random(31).reveal()) == nullptr);
  EXPECT_TRUE(parseMasterKey(Secret::random(33).reveal()) == nullptr);
  EXPECT_TRUE(parseMasterKey(base64(Secret::random(16).reveal()).asBytes()) == nullptr);
  EXPECT_TRUE(parseMasterKey(base64(Secret::random(48).reveal()).asBytes()) == nullptr);
  EXPECT_TRUE(parseMasterKey("\n"_kj.asBytes()) == nullptr);
  EXPECT_TRUE(parseMasterKey("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!="_kj.asBytes()) ==
              nullptr);
}

}  // namespace
}  // namespace credvault::crypto
