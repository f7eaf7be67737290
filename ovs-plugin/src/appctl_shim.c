/* unixctl requests through Open vSwitch's own library. See appctl_shim.h for the contract. */
#include "appctl_shim.h"

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openvswitch/json.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "jsonrpc.h"
#include "socket-util.h"
#include "stream.h"
#include "timeval.h"
#include "util.h"

static void
init_once(void)
{
    static int done;
    if (!done) {
        done = 1;
        /* of_shim.c may have named the program already; either name will do. */
        if (!program_name) {
            ovs_set_program_name("vpcguard", VERSION);
        }
        /* Our callers report errors themselves; the library's console log would only repeat
         * them on stderr. */
        vlog_set_levels(NULL, VLF_CONSOLE, VLL_OFF);
        vlog_set_levels(NULL, VLF_SYSLOG, VLL_OFF);
    }
}

/* OVS's stream code writes with send(..., 0): a server that closed the connection would kill
 * the caller with SIGPIPE. The signal is blocked for this thread while we talk to the server,
 * and one that our writes raised is consumed before the mask is restored, so the caller's
 * SIGPIPE disposition is neither relied on nor changed. */
struct sigpipe_guard {
    sigset_t old_mask;
    bool was_pending;
};

static void
sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &g->old_mask);
    sigset_t pending;
    sigemptyset(&pending);
    g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

static void
sigpipe_restore(struct sigpipe_guard *g)
{
    if (!g->was_pending) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &zero) == SIGPIPE) {
            continue;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
}

static char *
json_text(const struct json *json)
{
    if (!json || json->type == JSON_NULL) {
        return xstrdup("");
    }
    if (json->type == JSON_STRING) {
        return xstrdup(json_string(json));
    }
    return json_to_string(json, 0);
}

static int
transact(const char *socket_path, const char *command, size_t argc, const char *const *argv,
         int timeout_ms, char **result, char **err)
{
    const long long int deadline = time_msec() + (timeout_ms > 0 ? timeout_ms : 0);

    /* 1. Connect (a unix socket whose server does not accept can leave this pending). */
    char *name = xasprintf("unix:%s", socket_path);
    struct stream *stream = NULL;
    int error = stream_open(name, &stream, DSCP_DEFAULT);
    free(name);
    long long int left = deadline - time_msec();
    error = stream_open_block(error, left > 0 ? left : 0, &stream);
    if (error == EPROTO) {
        /* What OVS makes of EAGAIN from connect(): the server's accept queue is full. */
        *err = xstrdup("cannot connect: the server is not accepting connections (its backlog "
                       "is full: is it hung?)");
        return VG_APPCTL_FAILED;
    } else if (error) {
        *err = xasprintf("cannot connect: %s",
                         error == ETIMEDOUT ? "timed out" : ovs_retval_to_string(error));
        return VG_APPCTL_FAILED;
    }
    struct jsonrpc *rpc = jsonrpc_open(stream);

    /* 2. Send the request (queued; jsonrpc_run() pushes what the socket did not take). */
    struct json **args = xmalloc((argc ? argc : 1) * sizeof *args);
    for (size_t i = 0; i < argc; i++) {
        args[i] = json_string_create(argv[i]);
    }
    struct json *id = NULL;
    struct jsonrpc_msg *request =
        jsonrpc_create_request(command, json_array_create(args, argc), &id);
    error = jsonrpc_send(rpc, request);

    /* 3. Wait for the reply with our id, until the deadline. */
    struct jsonrpc_msg *reply = NULL;
    while (!error) {
        jsonrpc_run(rpc);
        struct jsonrpc_msg *msg = NULL;
        error = jsonrpc_recv(rpc, &msg);
        if (!error) {
            if ((msg->type == JSONRPC_REPLY || msg->type == JSONRPC_ERROR)
                && json_equal(id, msg->id)) {
                reply = msg;
                break;
            }
            jsonrpc_msg_destroy(msg);
            continue;
        }
        if (error != EAGAIN) {
            break;
        }
        error = 0;
        if (time_msec() >= deadline) {
            error = ETIMEDOUT;
            break;
        }
        jsonrpc_wait(rpc);
        jsonrpc_recv_wait(rpc);
        poll_timer_wait_until(deadline);
        poll_block();
    }
    json_destroy(id);
    jsonrpc_close(rpc);

    if (!reply) {
        if (error == ETIMEDOUT) {
            *err = xasprintf("no reply within %d ms", timeout_ms);
        } else if (error == EOF) {
            *err = xstrdup("the server closed the connection without replying");
        } else {
            *err = xasprintf("connection failed: %s", ovs_retval_to_string(error));
        }
        return VG_APPCTL_FAILED;
    }
    int status;
    if (reply->type == JSONRPC_ERROR) {
        *err = json_text(reply->error);
        status = VG_APPCTL_SERVER_ERROR;
    } else {
        *result = json_text(reply->result);
        status = VG_APPCTL_OK;
    }
    jsonrpc_msg_destroy(reply);
    return status;
}

int
vg_appctl_transact(const char *socket_path, const char *command, size_t argc,
                   const char *const *argv, int timeout_ms, char **result, char **err)
{
    init_once();
    *result = NULL;
    *err = NULL;
    struct sigpipe_guard guard;
    sigpipe_block(&guard);
    int status = transact(socket_path, command, argc, argv, timeout_ms, result, err);
    sigpipe_restore(&guard);
    return status;
}

void
vg_appctl_free(void *p)
{
    free(p);
}
