// credvaultd — conversions between core's model and the wire schema.

#pragma once

#include "core/model.h"
#include "core/error.h"
#include "ipc/credvault.capnp.h"

namespace credvault::daemon {

core::Credential fromWire(rpc::Credential::Reader in);
void toWire(const core::Credential& in, rpc::Credential::Builder out);
void toWire(const core::Associate& in, rpc::Associate::Builder out);
void toWire(const core::Principal& in, rpc::Principal::Builder out);
rpc::ErrorCode toWire(core::ErrorCode code);
core::Kind fromWire(rpc::Kind kind);

}  // namespace credvault::daemon
