/* Plain C interface over Open vSwitch's unixctl client (what ovs-appctl does), for appctl.cpp.
 *
 * Why not lib/unixctl.h's unixctl_client_transact(): it waits for the reply without a deadline,
 * so a hung ovs-vswitchd would hang the caller. This speaks the same JSON-RPC with OVS's own
 * stream and jsonrpc code, but with one deadline over connect, send and receive.
 * Strings returned through `char **` are malloc'ed; free them with vg_appctl_free(). */
#ifndef VPCGUARD_APPCTL_SHIM_H
#define VPCGUARD_APPCTL_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vg_appctl_status {
    VG_APPCTL_OK = 0,           /* the server ran the command: *result is its output */
    VG_APPCTL_SERVER_ERROR = 1, /* the server refused or failed it: *err is its error reply */
    VG_APPCTL_FAILED = -1,      /* no answer (connect, I/O, timeout, bad reply): *err says why */
};

/* Sends `command` with `argc` string arguments to the unixctl server listening on the unix
 * socket `socket_path` and waits up to timeout_ms in all for its reply. Does not raise SIGPIPE
 * when the server has gone away. */
int vg_appctl_transact(const char *socket_path, const char *command, size_t argc,
                       const char *const *argv, int timeout_ms, char **result, char **err);

void vg_appctl_free(void *);

#ifdef __cplusplus
}
#endif
#endif
