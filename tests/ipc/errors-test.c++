// Tests for ipc/errors.h, the one error table: every code of the schema has a complete row,
// and each column says what the clients document (docs/soap.md, docs/rest.md,
// docs/credvaultctl.md), so a change to a row is a change to a documented contract.

#include "ipc/errors.h"

#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

namespace credvault::ipc {
namespace {

TEST(ErrorTable, EveryCodeOfTheSchemaHasEveryColumn) {
  auto enumerants = capnp::Schema::from<rpc::ErrorCode>().getEnumerants();
  ASSERT_EQ(enumerants.size(), ERROR_CODE_COUNT);
  std::set<std::string> names;
  for (auto e : enumerants) {
    auto code = static_cast<rpc::ErrorCode>(e.getOrdinal());
    auto& info = errorInfo(code);
    SCOPED_TRACE(e.getProto().getName().cStr());
    EXPECT_EQ(info.code, code);
    EXPECT_GT(info.name.size(), 0u);
    EXPECT_GT(info.defaultMessage.size(), 0u);
    EXPECT_GE(info.httpStatus, 400);
    EXPECT_LE(info.httpStatus, 599);
    EXPECT_GT(info.httpMessage.size(), 0u);
    EXPECT_GT(info.soapExceptionType.size(), 0u);
    EXPECT_GE(info.exitCode, 3);  // 0-2 are success, local and usage errors
    EXPECT_LE(info.exitCode, 12);
    names.insert(info.name.cStr());
  }
  EXPECT_EQ(names.size(), ERROR_CODE_COUNT) << "two codes share a name";
}

TEST(ErrorTable, NamesAreTheSchemaNamesInKebabCase) {
  // "permissionDenied" in credvault.capnp is "permission-denied" in logs, audit and JSON.
  for (auto e : capnp::Schema::from<rpc::ErrorCode>().getEnumerants()) {
    std::string kebab;
    for (char c : std::string(e.getProto().getName().cStr())) {
      if (c >= 'A' && c <= 'Z') {
        kebab += '-';
        kebab += static_cast<char>(c - 'A' + 'a');
      } else {
        kebab += c;
      }
    }
    EXPECT_EQ(errorCodeName(static_cast<rpc::ErrorCode>(e.getOrdinal())).cStr(), kebab);
  }
}

TEST(ErrorTable, ExitCodesAreDistinct) {
  std::set<int> codes;
  for (auto& info : ERRORS) codes.insert(info.exitCode);
  EXPECT_EQ(codes.size(), ERROR_CODE_COUNT);
}

struct Expected {
  rpc::ErrorCode code;
  const char* name;
  unsigned httpStatus;
  const char* soapType;
  int exitCode;
  bool retryAfter;
  bool namesField;
};

// As docs/rest.md (status table), docs/soap.md (ExceptionType table) and docs/credvaultctl.md
// (exit codes) state them.
constexpr Expected DOCUMENTED[] = {
    {rpc::ErrorCode::INTERNAL, "internal", 500, "SoServerException", 10, false, false},
    {rpc::ErrorCode::NOT_AUTHENTICATED, "not-authenticated", 401, "SoSecurityException", 12, false,
     false},
    {rpc::ErrorCode::PERMISSION_DENIED, "permission-denied", 403, "SoAccessDeniedException", 3,
     false, false},
    {rpc::ErrorCode::INVALID_ARGUMENT, "invalid-argument", 400, "ArgumentException", 4, false,
     true},
    {rpc::ErrorCode::NOT_FOUND, "not-found", 404, "SoNotFoundException", 5, false, false},
    {rpc::ErrorCode::LIMIT_EXCEEDED, "limit-exceeded", 400, "ArgumentOutOfRangeException", 6, false,
     true},
    {rpc::ErrorCode::UNAVAILABLE, "unavailable", 503, "SoServerUnavailableException", 7, true,
     false},
    {rpc::ErrorCode::INTEGRITY, "integrity", 500, "SoIntegrityException", 8, false, false},
    {rpc::ErrorCode::CONFLICT, "conflict", 409, "SoConflictException", 9, false, false},
    {rpc::ErrorCode::THROTTLED, "throttled", 429, "SoThrottledException", 11, true, false},
};

TEST(ErrorTable, ColumnsAreWhatTheDocsSay) {
  ASSERT_EQ(sizeof(DOCUMENTED) / sizeof(DOCUMENTED[0]), ERROR_CODE_COUNT);
  for (auto& d : DOCUMENTED) {
    auto& info = errorInfo(d.code);
    SCOPED_TRACE(d.name);
    EXPECT_EQ(info.name, d.name);
    EXPECT_EQ(info.httpStatus, d.httpStatus);
    EXPECT_EQ(info.soapExceptionType, d.soapType);
    EXPECT_EQ(info.exitCode, d.exitCode);
    EXPECT_EQ(info.httpRetryAfter, d.retryAfter);
    EXPECT_EQ(info.httpNamesField, d.namesField);
  }
}

TEST(ErrorTable, AnUnknownCodeReadsAsInternal) {
  // A newer daemon may send a code this build does not know.
  auto unknown = static_cast<rpc::ErrorCode>(ERROR_CODE_COUNT + 3);
  EXPECT_EQ(errorInfo(unknown).code, rpc::ErrorCode::INTERNAL);
  EXPECT_EQ(errorCodeName(unknown), "internal");
  EXPECT_EQ(errorInfo(static_cast<rpc::ErrorCode>(0xffff)).exitCode, 10);
}

TEST(ErrorTable, DefaultMessagesAreTheGatewaysWording) {
  // The text a SOAP ExceptionInfo or REST MessageDetail carries when the daemon sent none.
  EXPECT_EQ(errorInfo(rpc::ErrorCode::UNAVAILABLE).defaultMessage,
            "The credential vault is unavailable");
  EXPECT_EQ(errorInfo(rpc::ErrorCode::THROTTLED).defaultMessage,
            "Too many attempts; try again later");
  EXPECT_EQ(errorInfo(rpc::ErrorCode::INTEGRITY).defaultMessage,
            "A stored record failed verification");
  EXPECT_EQ(errorInfo(rpc::ErrorCode::NOT_AUTHENTICATED).httpMessage,
            "Authorization has been denied for this request.");
}

}  // namespace
}  // namespace credvault::ipc
