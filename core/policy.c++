#include "policy.h"
#include "error.h"

namespace credvault::core {

namespace {

Refusal denied(kj::StringPtr why) {
  return refuse(ErrorCode::PERMISSION_DENIED, "", kj::str(why));
}

Refusal notAuthenticated() {
  return refuse(ErrorCode::NOT_AUTHENTICATED, "", kj::str("not authenticated"));
}

bool authenticated(const Principal& who) {
  return who.method != AuthMethod::NONE;
}

}  // namespace

kj::StringPtr operationName(Operation op) {
  switch (op) {
    case Operation::WHOAMI:
      return "whoami";
    case Operation::AUTHENTICATE:
      return "authenticate";
    case Operation::REVOKE_TICKET:
      return "revoke-ticket";
    case Operation::HEALTH:
      return "health";
    case Operation::OPEN_SESSION:
      return "open-session";
    case Operation::STATUS:
      return "status";
    case Operation::METRICS:
      return "metrics";
    case Operation::CREATE_DEFAULT:
      return "create-default";
    case Operation::GET:
      return "get";
    case Operation::SAVE:
      return "save";
    case Operation::REMOVE:
      return "remove";
    case Operation::ADMIN:
      return "admin";
    case Operation::LOGOUT:
      return "logout";
    case Operation::MANAGE_TOKENS:
      return "manage-tokens";
    case Operation::CREATE_TOKEN:
      return "create-token";
    case Operation::LIST_ALL:
      return "list-all";
    case Operation::LIST_ASSOCIATES:
      return "list-associates";
    case Operation::CHANGE_ASSOCIATES:
      return "change-associates";
    case Operation::SET_PASSWORD:
      return "set-password";
    case Operation::MAINTAIN:
      return "maintain";
  }
  return "unknown";
}

Access accessTo(const Principal& who, int32_t target) {
  if (who.partnerApp || !authenticated(who)) return Access::NONE;
  if (who.associateId != 0 && who.associateId == target) return Access::FULL;
  if (who.isSystem()) return Access::FULL;
  if (who.userAdmin) return Access::MANAGE;
  return Access::NONE;
}

kj::Maybe<Refusal> requireSystem(const Principal& who, kj::StringPtr what) {
  if (who.partnerApp || !who.isSystem() || !authenticated(who)) {
    return denied(kj::str(what, " needs a system user"));
  }
  return nullptr;
}

bool openToAnyone(Operation op) {
  switch (op) {
    case Operation::WHOAMI:
    case Operation::AUTHENTICATE:
    case Operation::REVOKE_TICKET:
    case Operation::HEALTH:
      return true;
    default:
      return false;
  }
}

Result<Access> authorize(const Principal& who, Operation op, int32_t target) {
  if (openToAnyone(op)) return Access::FULL;
  if (op == Operation::METRICS) {
    // Counts and queue lengths, no names or values: a front end (which may not otherwise
    // be anyone) exports them for monitoring; a system user sees more than this anyway.
    if (who.partnerApp) return denied("not allowed for partner apps");
    if (who.frontEnd || (authenticated(who) && who.isSystem())) return Access::FULL;
    if (!authenticated(who)) return notAuthenticated();
    return denied("the daemon's metrics need a system user or a front end (gateway_uids)");
  }
  if (!authenticated(who)) return notAuthenticated();
  switch (op) {
    case Operation::WHOAMI:
    case Operation::AUTHENTICATE:
    case Operation::REVOKE_TICKET:
    case Operation::HEALTH:
    case Operation::METRICS:
    case Operation::OPEN_SESSION:
    case Operation::STATUS:
    case Operation::LOGOUT:
      return Access::FULL;
    case Operation::CREATE_DEFAULT:
      if (who.partnerApp) return denied("User management is not allowed for partner apps");
      return Access::FULL;
    case Operation::GET:
    case Operation::SAVE:
    case Operation::REMOVE: {
      if (who.partnerApp) return denied("User management is not allowed for partner apps");
      auto access = accessTo(who, target);
      if (access == Access::NONE) {
        return denied(op == Operation::GET
                          ? "not allowed to read another associate's credentials"
                          : "not allowed to change another associate's credentials");
      }
      return access;
    }
    case Operation::ADMIN:
      if (who.partnerApp || !(who.isSystem() || who.userAdmin)) {
        return denied("administration needs a system user or a user administrator");
      }
      return Access::FULL;
    case Operation::LIST_ASSOCIATES:
      if (who.partnerApp || !(who.isSystem() || who.userAdmin)) {
        return denied("listing associates needs a system user or a user administrator");
      }
      return Access::FULL;
    case Operation::LIST_ALL:
      // The permission table's "another associate's list", for every associate at once.
      if (who.partnerApp || !(who.isSystem() || who.userAdmin)) {
        return denied(
            "listing every associate's credentials needs a system user or a user "
            "administrator");
      }
      return Access::MANAGE;
    case Operation::CREATE_TOKEN:
      // A ticket dies with the password; a token minted from it would outlive it (tokens
      // survive password changes). So bearer sessions cannot mint tokens.
      if (who.method == AuthMethod::TICKET || who.method == AuthMethod::API_TOKEN) {
        return denied(
            "API tokens are created from a password or peer-credential session, not from a "
            "ticket or another token");
      }
      [[fallthrough]];
    case Operation::MANAGE_TOKENS:
      if (who.partnerApp) return denied("not allowed for partner apps");
      if (!((who.associateId != 0 && who.associateId == target) || who.isSystem())) {
        return denied("only the associate or a system user manages its API tokens");
      }
      return Access::FULL;
    case Operation::SET_PASSWORD:
      if (!who.partnerApp && who.associateId != 0 && who.associateId == target) {
        return Access::FULL;
      }
      KJ_IF_MAYBE(r, requireSystem(who, "setting a password")) { return kj::mv(*r); }
      return Access::FULL;
    case Operation::CHANGE_ASSOCIATES:
      KJ_IF_MAYBE(r, requireSystem(who, "changing associates")) { return kj::mv(*r); }
      return Access::FULL;
    case Operation::MAINTAIN:
      KJ_IF_MAYBE(r, requireSystem(who, "this operation")) { return kj::mv(*r); }
      return Access::FULL;
  }
  return denied("unknown operation");
}

}  // namespace credvault::core
