// Tests for base/config-file.h: the one configuration dialect of credvaultd and the gateway.

#include "base/config-file.h"

#include <gtest/gtest.h>
#include <string.h>
#include <kj/debug.h>
#include <kj/vector.h>

namespace credvault::base {
namespace {

const kj::StringPtr KEYS[] = {"log_level", "listen", "state_dir", "tls_certificate", "tls_key"};

struct Applied {
  kj::Vector<kj::String> seen;  // "key=value" in order
  kj::Maybe<kj::String> read(kj::StringPtr text) {
    return readConfigText("/etc/x.conf", text, KEYS, [this](kj::StringPtr k, kj::StringPtr v) {
      if (v == "refuse-me") return kj::Maybe<kj::String>(kj::str(k, " must not be refuse-me"));
      seen.add(kj::str(k, "=", v));
      return kj::Maybe<kj::String>(nullptr);
    });
  }
  kj::Maybe<kj::String> option(kj::StringPtr kv) {
    return readConfigSetting("--set", kv, KEYS, [this](kj::StringPtr k, kj::StringPtr v) {
      seen.add(kj::str(k, "=", v));
      return kj::Maybe<kj::String>(nullptr);
    });
  }
  kj::String all() { return kj::strArray(seen, ";"); }
};

TEST(ConfigFile, CommentsAnywhereBlankLinesAndSpaces) {
  Applied a;
  EXPECT_TRUE(a.read("\xef\xbb\xbf# leading comment\n"
                     "\n"
                     "log_level = info  # default\n"
                     "  listen=127.0.0.1:1#no space\r\n"
                     "\tlisten =  [::1]:2 \t\n"
                     "state_dir =\n"
                     "   # indented = comment\n"
                     "tls_key = /k") == nullptr);
  EXPECT_EQ(a.all(), "log_level=info;listen=127.0.0.1:1;listen=[::1]:2;state_dir=;tls_key=/k");
}

TEST(ConfigFile, ErrorsAreFileLineMessage) {
  Applied a;
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("log_level = info\n\njust words\n")),
            "/etc/x.conf:3: expected `key = value`");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("= value\n")),
            "/etc/x.conf:1: expected `key = value`, found no key before '='");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("Log_Level = info\n")),
            "/etc/x.conf:1: 'Log_Level' is not a setting name (lower-case letters, digits and _)");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("\nlisten = refuse-me\n")),
            "/etc/x.conf:2: listen must not be refuse-me");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("listen = a\x01"
                                     "b\n")),
            "/etc/x.conf:1: listen: the value has a control character");
}

TEST(ConfigFile, UnknownKeysAreRefusedWithASuggestion) {
  Applied a;
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("lgo_level = info\n")),
            "/etc/x.conf:1: unknown setting 'lgo_level' (did you mean 'log_level'?)");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("tls_cert = /c\n")),
            "/etc/x.conf:1: unknown setting 'tls_cert' (did you mean 'tls_certificate'?)");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.read("colour = blue\n")),
            "/etc/x.conf:1: unknown setting 'colour'");
  // Lines before the bad one were applied, none after it.
  Applied b;
  EXPECT_TRUE(b.read("listen = a\nlisten_on = b\nlisten = c\n") != nullptr);
  EXPECT_EQ(b.all(), "listen=a");
}

TEST(ConfigFile, MessagesNeverRepeatAValue) {
  Applied a;
  auto e = KJ_ASSERT_NONNULL(a.read("https://user:hunter2@example.com\n"));
  EXPECT_EQ(e, "/etc/x.conf:1: expected `key = value`");
  e = KJ_ASSERT_NONNULL(a.read("password hunter2 = x\n"));
  EXPECT_EQ(strstr(e.cStr(), "hunter2"), nullptr) << e.cStr();
}

TEST(ConfigFile, SetReadsLikeAFileLine) {
  Applied a;
  EXPECT_TRUE(a.option("log_level=debug") == nullptr);
  EXPECT_TRUE(a.option(" listen = x:1   # comment") == nullptr);
  EXPECT_EQ(a.all(), "log_level=debug;listen=x:1");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.option("log_level")), "--set: expected key=value");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.option("state_dr=/x")),
            "--set: unknown setting 'state_dr' (did you mean 'state_dir'?)");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.option("listen=a\nb")),
            "--set: expected one key=value, found a line break");
}

TEST(ConfigFile, OversizedFilesAreRefused) {
  Applied a;
  auto big = kj::heapString(MAX_CONFIG_FILE_BYTES + 1);
  for (auto& c : big) c = '#';
  EXPECT_NE(a.read(big), nullptr);
  big = kj::heapString(MAX_CONFIG_FILE_BYTES);
  for (auto& c : big) c = '#';
  EXPECT_EQ(a.read(big), nullptr);
}

TEST(ConfigFile, NearestKey) {
  EXPECT_EQ(KJ_ASSERT_NONNULL(nearestKey("statedir", KEYS)), "state_dir");
  EXPECT_EQ(KJ_ASSERT_NONNULL(nearestKey("tls", KEYS)), "tls_certificate");
  EXPECT_EQ(nearestKey("zz", KEYS), nullptr);
}

}  // namespace
}  // namespace credvault::base
