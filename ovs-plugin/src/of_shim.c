/* OpenFlow through Open vSwitch's own library. See of_shim.h for the contract. */
#include "of_shim.h"

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "openvswitch/dynamic-string.h"
#include "openvswitch/list.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-actions.h"
#include "openvswitch/ofp-bundle.h"
#include "openvswitch/ofp-errors.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-meter.h"
#include "openvswitch/ofp-monitor.h"
#include "openvswitch/ofp-msgs.h"
#include "openvswitch/ofp-protocol.h"
#include "openvswitch/ofp-util.h"
#include "openvswitch/ofpbuf.h"
#include "openvswitch/vconn.h"
#include "openvswitch/vlog.h"
#include "openflow/nicira-ext.h"
#include "openflow/openflow.h"
#include "byte-order.h"
#include "dirs.h"
#include "socket-util.h"
#include "timeval.h"
#include "util.h"

struct vg_of {
    struct vconn *vconn;
    enum ofputil_protocol protocol;
    long long int last_rx;   /* time_msec() of the last message from the switch */
    long long int echo_sent; /* time_msec() of our last echo request (0: none yet) */
};

static void
init_once(void)
{
    static int done;
    if (!done) {
        done = 1;
        ovs_set_program_name("vpcguard", VERSION);
        /* Our callers report errors themselves; the library's console log would only repeat
         * them on stderr. */
        vlog_set_levels(NULL, VLF_CONSOLE, VLL_OFF);
        vlog_set_levels(NULL, VLF_SYSLOG, VLL_OFF);
    }
}

/* Note: OVS's x2nrealloc() doubles on every call; callers grow only when the array is full. */
static char *
xstrerr(const char *what, int error)
{
    return xasprintf("%s: %s", what, ovs_retval_to_string(error));
}

int
vg_of_open(const char *target, int timeout_ms, vg_of **out, char **err)
{
    init_once();
    *out = NULL;
    uint32_t versions = (1u << OFP13_VERSION) | (1u << OFP14_VERSION) | (1u << OFP15_VERSION);
    struct vconn *vconn = NULL;
    int error = vconn_open_block(target, versions, DSCP_DEFAULT, timeout_ms, &vconn);
    if (error) {
        *err = xasprintf("cannot connect to %s: %s", target, ovs_retval_to_string(error));
        return -1;
    }
    struct vg_of *of = xzalloc(sizeof *of);
    of->vconn = vconn;
    of->protocol = ofputil_protocol_from_ofp_version(vconn_get_version(vconn));
    of->last_rx = time_msec();
    *out = of;
    return 0;
}

void
vg_of_close(vg_of *of)
{
    if (of) {
        vconn_close(of->vconn);
        free(of);
    }
}

int
vg_of_version(const vg_of *of)
{
    return vconn_get_version(of->vconn);
}

static int
to_ofp_command(int command)
{
    switch (command) {
    case VG_FLOW_ADD: return OFPFC_ADD;
    case VG_FLOW_MODIFY_STRICT: return OFPFC_MODIFY_STRICT;
    case VG_FLOW_DELETE_STRICT: return OFPFC_DELETE_STRICT;
    case VG_FLOW_DELETE: return OFPFC_DELETE;
    default: return -1;
    }
}

static char *
format_ofperr_msg(const struct ofp_header *oh)
{
    enum ofperr e = ofperr_decode_msg(oh, NULL);
    if (!e) {
        return xstrdup("unknown error");
    }
    return xasprintf("%s (%s)", ofperr_get_name(e), ofperr_get_description(e));
}

/* True if an error in 'errs' (already collected) or still in 'pending' belongs to one of the
 * bundle's flow mods. */
static bool
bundle_has_attributed_error(const struct ovs_list *pending, const vg_flow_error *errs,
                            size_t n_errs, const ovs_be32 *xids, size_t n)
{
    for (size_t i = 0; i < n_errs; i++) {
        if (errs[i].index != (size_t) -1) {
            return true;
        }
    }
    const struct ofpbuf *reply;
    LIST_FOR_EACH (reply, list_node, pending) {
        const struct ofp_header *oh = reply->data;
        for (size_t i = 0; i < n; i++) {
            if (xids[i] == oh->xid) {
                return true;
            }
        }
    }
    return false;
}

/* Appends to 'errors' every OpenFlow error waiting on the connection, without blocking; other
 * messages are dropped (nothing else is expected while a bundle is open). */
static void
collect_pending_errors(struct vconn *vconn, struct ovs_list *errors)
{
    struct ofpbuf *msg;
    while (!vconn_recv(vconn, &msg)) {
        enum ofptype type;
        if (!ofptype_decode(&type, msg->data) && type == OFPTYPE_ERROR) {
            ovs_list_push_back(errors, &msg->list_node);
        } else {
            ofpbuf_delete(msg);
        }
    }
}

/* Sends 'request' (consumed) and blocks until the message with its xid arrives; errors with
 * other xids on the way go to 'errors'. */
static int
transact_collecting(struct vconn *vconn, struct ofpbuf *request, struct ofpbuf **replyp,
                    struct ovs_list *errors)
{
    const ovs_be32 xid = ((struct ofp_header *) request->data)->xid;
    *replyp = NULL;
    int error = vconn_send_block(vconn, request);
    if (error) {
        ofpbuf_delete(request);
        return error;
    }
    for (;;) {
        struct ofpbuf *reply;
        error = vconn_recv_block(vconn, &reply);
        if (error) {
            return error;
        }
        const struct ofp_header *oh = reply->data;
        if (oh->xid == xid) {
            *replyp = reply;
            return 0;
        }
        enum ofptype type;
        if (!ofptype_decode(&type, oh) && type == OFPTYPE_ERROR) {
            ovs_list_push_back(errors, &reply->list_node);
        } else {
            ofpbuf_delete(reply);
        }
    }
}

/* One bundle control request of 'type' and its reply. Returns 0, a positive errno for a
 * transport failure, or EPROTO when the switch answered with an error (in 'errors') or with
 * something else than the matching reply. */
static int
bundle_control(struct vconn *vconn, struct ofputil_bundle_ctrl_msg *bc, uint16_t type,
               struct ovs_list *errors)
{
    bc->type = type;
    struct ofpbuf *request = ofputil_encode_bundle_ctrl_request(vconn_get_version(vconn), bc);
    ofpmsg_update_length(request);
    struct ofpbuf *reply;
    int error = transact_collecting(vconn, request, &reply, errors);
    if (error) {
        return error;
    }
    const struct ofp_header *oh = reply->data;
    enum ofptype rtype;
    struct ofputil_bundle_ctrl_msg rbc;
    int result = EPROTO;
    if (ofptype_decode(&rtype, oh)) {
        ofpbuf_delete(reply);
    } else if (rtype == OFPTYPE_ERROR) {
        ovs_list_push_back(errors, &reply->list_node);
    } else {
        if (rtype == OFPTYPE_BUNDLE_CONTROL && !ofputil_decode_bundle_ctrl(oh, &rbc)
            && rbc.bundle_id == bc->bundle_id && rbc.type == bc->type + 1) {
            result = 0;
        }
        ofpbuf_delete(reply);
    }
    return result;
}

static void
add_error(vg_flow_error **errs, size_t *n_errs, size_t *n_alloc, size_t index, char *message)
{
    if (*n_errs == *n_alloc) {
        *errs = x2nrealloc(*errs, n_alloc, sizeof **errs);
    }
    (*errs)[*n_errs].index = index;
    (*errs)[*n_errs].message = message;
    (*n_errs)++;
}

/* Parses and encodes flow mod 'i' of 'source'. Returns the message, or NULL with '*perr'. */
static struct ofpbuf *
encode_mod(vg_of *of, vg_mod_source *source, void *ctx, size_t i, char **perr)
{
    int shim_command = -1;
    const char *text = source(ctx, i, &shim_command);
    const int command = to_ofp_command(shim_command);
    if (command < 0) {
        *perr = xasprintf("unknown flow command %d", shim_command);
        return NULL;
    }
    if (!text) {
        *perr = xstrdup("the flow mod's text could not be made");
        return NULL;
    }
    struct ofputil_flow_mod fm;
    enum ofputil_protocol usable;
    *perr = parse_ofp_flow_mod_str(&fm, text, NULL, NULL, command, &usable);
    if (*perr) {
        return NULL;
    }
    struct ofpbuf *msg = NULL;
    if (!(usable & of->protocol)) {
        *perr = xasprintf("flow needs an OpenFlow dialect this connection lacks");
    } else {
        if (fm.table_id == 0xff && (command == OFPFC_ADD || command == OFPFC_MODIFY_STRICT)) {
            fm.table_id = 0;
        }
        msg = ofputil_encode_flow_mod(&fm, of->protocol);
    }
    minimatch_destroy(&fm.match);
    free(fm.ofpacts);
    return msg;
}

int
vg_of_bundle_stream(vg_of *of, size_t n, vg_mod_source *source, void *ctx, vg_flow_error **errs,
                    size_t *n_errs, char **err)
{
    *errs = NULL;
    *n_errs = 0;
    if (n == 0) {
        return 0;
    }
    struct vconn *vconn = of->vconn;
    /* The switch's errors, answered while the bundle is open and at its commit. */
    struct ovs_list replies;
    ovs_list_init(&replies);
    /* xid of each encoded flow_mod -> index, to attribute switch errors to flows. */
    ovs_be32 *xids = xzalloc(n * sizeof *xids);
    size_t n_alloc = 0;
    int retval = 0;

    struct ofputil_bundle_ctrl_msg bc;
    memset(&bc, 0, sizeof bc);
    bc.flags = OFPBF_ATOMIC | OFPBF_ORDERED;
    int error = bundle_control(vconn, &bc, OFPBCT_OPEN_REQUEST, &replies);
    const bool opened = !error;
    bool committing = false;
    bool sending = opened;
    bool parse_failed = false;

    /* One flow mod at a time: its text, parsed, encoded, sent and freed, so the whole bundle
     * never sits in memory in any form, and the switch works through what is sent while the
     * rest is still being parsed. After a local parse error nothing more is sent (the bundle
     * is discarded) but every flow is still parsed, so that all bad ones are named. */
    for (size_t i = 0; i < n && (sending || parse_failed); i++) {
        char *perr = NULL;
        struct ofpbuf *msg = encode_mod(of, source, ctx, i, &perr);
        if (!msg) {
            add_error(errs, n_errs, &n_alloc, i, perr);
            parse_failed = true;
            sending = false;
            retval = -1;
            continue;
        }
        if (sending) {
            xids[i] = ((struct ofp_header *) msg->data)->xid;
            ofpmsg_update_length(msg);
            struct ofputil_bundle_add_msg bam = {
                .bundle_id = bc.bundle_id, .flags = bc.flags, .msg = msg->data,
            };
            struct ofpbuf *request = ofputil_encode_bundle_add(vconn_get_version(vconn), &bam);
            error = vconn_send_block(vconn, request);
            if (error) {
                ofpbuf_delete(request);
                sending = false;
            } else {
                /* Errors come back while we send; read them so the socket never fills up. */
                collect_pending_errors(vconn, &replies);
            }
        }
        ofpbuf_delete(msg);
    }

    if (!error && !parse_failed) {
        /* A failed message is only left out of the bundle: a barrier collects every error the
         * adds caused before deciding whether to commit. */
        struct ofpbuf *barrier = ofputil_encode_barrier_request(vconn_get_version(vconn));
        struct ofpbuf *reply;
        error = transact_collecting(vconn, barrier, &reply, &replies);
        ofpbuf_delete(reply);
        if (!error && !ovs_list_is_empty(&replies)) {
            error = EPROTO;
        }
        if (!error) {
            committing = true;
            error = bundle_control(vconn, &bc, OFPBCT_COMMIT_REQUEST, &replies);
        }
    }
    if (opened && !committing && (parse_failed || error == EPROTO)) {
        /* Nothing of it may stay behind. (A failed commit discards the bundle itself; after a
         * transport failure the connection is gone, and the bundle with it.) */
        struct ovs_list ignored;
        ovs_list_init(&ignored);
        bundle_control(vconn, &bc, OFPBCT_DISCARD_REQUEST, &ignored);
        struct ofpbuf *msg;
        LIST_FOR_EACH_POP (msg, list_node, &ignored) {
            ofpbuf_delete(msg);
        }
    }

    if (!parse_failed) {
        struct ofpbuf *reply;
        LIST_FOR_EACH_POP (reply, list_node, &replies) {
            const struct ofp_header *oh = reply->data;
            /* When a message fails at commit time the switch sends that message's own error
             * and then answers the commit with OFPBFC_MSG_FAILED; the latter names no flow and
             * says nothing new, so callers would only see a duplicate without an index. */
            if (ofperr_decode_msg(oh, NULL) == OFPERR_OFPBFC_MSG_FAILED
                && bundle_has_attributed_error(&replies, *errs, *n_errs, xids, n)) {
                ofpbuf_delete(reply);
                continue;
            }
            size_t index = (size_t) -1;
            for (size_t i = 0; i < n; i++) {
                if (xids[i] == oh->xid) {
                    index = i;
                    break;
                }
            }
            add_error(errs, n_errs, &n_alloc, index, format_ofperr_msg(oh));
            ofpbuf_delete(reply);
        }
        if (error == EPROTO && *n_errs) {
            retval = 1;
        } else if (error) {
            *err = xstrerr("bundle transaction failed", error);
            retval = -1;
        }
    }
    struct ofpbuf *reply;
    LIST_FOR_EACH_POP (reply, list_node, &replies) {
        ofpbuf_delete(reply);
    }
    free(xids);
    return retval;
}

static const char *
array_source(void *ctx, size_t i, int *command)
{
    const vg_flow_mod *mods = ctx;
    *command = mods[i].command;
    return mods[i].text;
}

int
vg_of_bundle(vg_of *of, const vg_flow_mod *mods, size_t n, vg_flow_error **errs,
             size_t *n_errs, char **err)
{
    return vg_of_bundle_stream(of, n, array_source, (void *) mods, errs, n_errs, err);
}

static char *
format_actions(const struct ofpact *ofpacts, size_t len)
{
    struct ds s = DS_EMPTY_INITIALIZER;
    struct ofpact_format_params fp = { .s = &s };
    ofpacts_format(ofpacts, len, &fp);
    return ds_steal_cstr(&s);
}

static char *
format_match(const struct match *m)
{
    struct ds s = DS_EMPTY_INITIALIZER;
    match_format(m, NULL, &s, OFP_DEFAULT_PRIORITY);
    return ds_steal_cstr(&s);
}

/* A flow (or, with aggregate, aggregate) stats request for every flow of one table (all, table
 * < 0) whose cookie matches cookie/mask. */
static void
init_stats_request(struct ofputil_flow_stats_request *fsr, bool aggregate, int table,
                   uint64_t cookie, uint64_t cookie_mask)
{
    memset(fsr, 0, sizeof *fsr);
    fsr->aggregate = aggregate;
    match_init_catchall(&fsr->match);
    fsr->cookie = htonll(cookie);
    fsr->cookie_mask = htonll(cookie_mask);
    fsr->out_port = OFPP_ANY;
    fsr->out_group = OFPG_ANY;
    fsr->table_id = table < 0 ? 0xff : (uint8_t) table;
}

/* One flow of a flow stats reply, as the caller gets it: text, no OVS structures. */
static void
fill_stat(vg_flow_stat *stat, const struct ofputil_flow_stats *fs)
{
    stat->table = fs->table_id;
    stat->priority = fs->priority;
    stat->cookie = ntohll(fs->cookie);
    stat->match = format_match(&fs->match);
    stat->actions = format_actions(fs->ofpacts, fs->ofpacts_len);
    stat->n_packets = fs->packet_count == UINT64_MAX ? 0 : fs->packet_count;
    stat->n_bytes = fs->byte_count == UINT64_MAX ? 0 : fs->byte_count;
    stat->duration_sec = fs->duration_sec;
    stat->idle_timeout = fs->idle_timeout;
    stat->hard_timeout = fs->hard_timeout;
}

/* Each reply of the dump is formatted and freed as it arrives, and each flow is handed to 'sink'
 * and freed at once, so the dump's peak memory is one reply. (Collecting the decoded flows first,
 * as vconn_dump_flows() does, holds a struct match of over a kilobyte per flow, in one array
 * that doubles as it grows: hundreds of megabytes at 100k flows.) */
int
vg_of_dump_stream(vg_of *of, int table, uint64_t cookie, uint64_t cookie_mask,
                  vg_stat_sink *sink, void *ctx, char **err)
{
    struct ofputil_flow_stats_request fsr;
    init_stats_request(&fsr, false, table, cookie, cookie_mask);
    struct ofpbuf *request = ofputil_encode_flow_stats_request(&fsr, of->protocol);
    const ovs_be32 xid = ((const struct ofp_header *) request->data)->xid;
    int error = vconn_send_block(of->vconn, request);
    if (error) {
        ofpbuf_delete(request);  /* not sent: still ours */
        *err = xstrerr("flow dump failed", error);
        return -1;
    }

    struct ofpbuf ofpacts;
    ofpbuf_init(&ofpacts, 0);
    char *failure = NULL;
    bool more = true;
    while (more && !failure) {
        struct ofpbuf *reply = NULL;
        error = vconn_recv_xid(of->vconn, xid, &reply);
        if (error) {
            failure = xstrerr("flow dump failed", error);
            break;
        }
        const struct ofp_header *oh = reply->data;
        enum ofptype type;
        const enum ofperr undecodable = ofptype_decode(&type, oh);
        if (undecodable || type != OFPTYPE_FLOW_STATS_REPLY) {
            failure = !undecodable && type == OFPTYPE_ERROR
                          ? format_ofperr_msg(oh)
                          : xstrdup("flow dump failed: unexpected reply");
            ofpbuf_delete(reply);
            break;
        }
        more = ofpmp_more(oh);
        for (;;) {
            struct ofputil_flow_stats fs;
            const int decoded = ofputil_decode_flow_stats_reply(&fs, reply, false, &ofpacts);
            if (decoded == EOF) {
                break;
            }
            if (decoded) {
                failure = xasprintf("flow dump failed: bad reply (%s)",
                                    ofperr_to_string(decoded));
                break;
            }
            vg_flow_stat stat;
            fill_stat(&stat, &fs);
            sink(ctx, &stat);
            free(stat.match);
            free(stat.actions);
        }
        ofpbuf_delete(reply);
    }
    ofpbuf_uninit(&ofpacts);
    if (failure) {
        *err = failure;
        return -1;
    }
    return 0;
}

int
vg_of_count(vg_of *of, int table, uint64_t cookie, uint64_t cookie_mask, uint64_t *flows,
            char **err)
{
    struct ofputil_flow_stats_request fsr;
    init_stats_request(&fsr, true, table, cookie, cookie_mask);

    struct ofpbuf *request = ofputil_encode_flow_stats_request(&fsr, of->protocol);
    struct ofpbuf *reply = NULL;
    int error = vconn_transact(of->vconn, request, &reply);
    if (error) {
        *err = xstrerr("flow count failed", error);
        return -1;
    }
    struct ofputil_aggregate_stats stats;
    enum ofperr ofperr = ofputil_decode_aggregate_stats_reply(&stats, reply->data);
    if (ofperr) {
        *err = format_ofperr_msg(reply->data);
        ofpbuf_delete(reply);
        return -1;
    }
    ofpbuf_delete(reply);
    *flows = stats.flow_count;
    return 0;
}

int
vg_of_barrier(vg_of *of, char **err)
{
    struct ofpbuf *request = ofputil_encode_barrier_request(vconn_get_version(of->vconn));
    struct ofpbuf *reply = NULL;
    int error = vconn_transact(of->vconn, request, &reply);
    if (error) {
        *err = xstrerr("barrier failed", error);
        return -1;
    }
    ofpbuf_delete(reply);
    return 0;
}

int
vg_of_ct_flush_zone(vg_of *of, uint16_t zone, char **err)
{
    struct ofpbuf *msg = ofpraw_alloc(OFPRAW_NXT_CT_FLUSH_ZONE, vconn_get_version(of->vconn), 0);
    struct nx_zone_id *nzi = ofpbuf_put_zeros(msg, sizeof *nzi);
    nzi->zone_id = htons(zone);
    struct ofpbuf *reply = NULL;
    int error = vconn_transact_noreply(of->vconn, msg, &reply);
    if (error) {
        *err = xstrerr("conntrack zone flush failed", error);
        return -1;
    }
    if (reply) {
        *err = format_ofperr_msg(reply->data);
        ofpbuf_delete(reply);
        return -1;
    }
    return 0;
}

/* Sends one meter mod and waits for the switch's verdict: 0, or the OpenFlow error's code
 * (*err set), or -1 when the transaction failed. */
static int
meter_mod(vg_of *of, uint16_t command, uint32_t id, uint32_t rate_pps, uint32_t burst,
          enum ofperr *ofp_error, char **err)
{
    struct ofputil_meter_band band;
    memset(&band, 0, sizeof band);
    band.type = OFPMBT13_DROP;
    band.rate = rate_pps;
    band.burst_size = burst;
    struct ofputil_meter_mod mm;
    memset(&mm, 0, sizeof mm);
    mm.command = command;
    mm.meter.meter_id = id;
    mm.meter.flags = OFPMF13_PKTPS | OFPMF13_STATS | (burst ? OFPMF13_BURST : 0);
    mm.meter.n_bands = 1;
    mm.meter.bands = &band;
    struct ofpbuf *msg = ofputil_encode_meter_mod(vconn_get_version(of->vconn), &mm);
    struct ofpbuf *reply = NULL;
    *ofp_error = 0;
    int error = vconn_transact_noreply(of->vconn, msg, &reply);
    if (error) {
        *err = xstrerr("meter mod failed", error);
        return -1;
    }
    if (reply) {
        *ofp_error = ofperr_decode_msg(reply->data, NULL);
        *err = format_ofperr_msg(reply->data);
        ofpbuf_delete(reply);
        return 1;
    }
    return 0;
}

int
vg_of_meter_set(vg_of *of, uint32_t id, uint32_t rate_pps, uint32_t burst, char **err)
{
    enum ofperr ofp_error;
    int r = meter_mod(of, OFPMC13_MODIFY, id, rate_pps, burst, &ofp_error, err);
    if (r == 1 && ofp_error == OFPERR_OFPMMFC_UNKNOWN_METER) {
        free(*err);
        *err = NULL;
        r = meter_mod(of, OFPMC13_ADD, id, rate_pps, burst, &ofp_error, err);
    }
    return r == 0 ? 0 : -1;
}

int
vg_of_meter_stats(vg_of *of, uint32_t id, uint64_t *band_packets, char **err)
{
    struct ofpbuf *request = ofputil_encode_meter_request(vconn_get_version(of->vconn),
                                                          OFPUTIL_METER_STATS, id);
    struct ofpbuf *reply = NULL;
    int error = vconn_transact(of->vconn, request, &reply);
    if (error) {
        *err = xstrerr("meter stats request failed", error);
        return -1;
    }
    enum ofptype type;
    const bool decoded = !ofptype_decode(&type, reply->data);
    if (!decoded || type != OFPTYPE_METER_STATS_REPLY) {
        *err = decoded && type == OFPTYPE_ERROR
                   ? format_ofperr_msg(reply->data)
                   : xstrdup("unexpected reply to a meter stats request");
        ofpbuf_delete(reply);
        return -1;
    }
    struct ofpbuf bands;
    ofpbuf_init(&bands, 64);
    struct ofputil_meter_stats ms;
    int found = -1;
    *band_packets = 0;
    while (!ofputil_decode_meter_stats(reply, &ms, &bands)) {
        if (ms.meter_id == id) {
            for (size_t i = 0; i < ms.n_bands; i++) {
                *band_packets += ms.bands[i].packet_count;
            }
            found = 0;
        }
    }
    ofpbuf_uninit(&bands);
    ofpbuf_delete(reply);
    if (found) {
        *err = xasprintf("meter %u not found", id);
    }
    return found;
}

/* Receives one message without blocking, answering echo requests on the way (EAGAIN when the
 * switch sent nothing more). 0 with *msg set, EAGAIN, or -1 when the connection is lost. */
static int
recv_unasked(vg_of *of, struct ofpbuf **msg, enum ofptype *type, char **err)
{
    for (;;) {
        *msg = NULL;
        int error = vconn_recv(of->vconn, msg);
        if (error == EAGAIN) {
            return EAGAIN;
        }
        if (error) {
            *err = xstrerr("OpenFlow connection lost", error);
            return -1;
        }
        of->last_rx = time_msec();
        if (ofptype_decode(type, (*msg)->data)) {
            ofpbuf_delete(*msg);
            continue;
        }
        if (*type == OFPTYPE_ECHO_REQUEST) {
            /* EAGAIN (send queue full) is fine: the switch probes again. */
            struct ofpbuf *reply = ofputil_encode_echo_reply((*msg)->data);
            if (vconn_send(of->vconn, reply)) {
                ofpbuf_delete(reply);
            }
        }
        return 0;
    }
}

int
vg_of_run(vg_of *of, char **err)
{
    vconn_run(of->vconn);
    for (;;) {
        struct ofpbuf *msg;
        enum ofptype type;
        int retval = recv_unasked(of, &msg, &type, err);
        if (retval) {
            return retval == EAGAIN ? 0 : -1;
        }
        /* Everything else is asynchronous (port status, flow removed): not used. */
        ofpbuf_delete(msg);
    }
}

int
vg_of_probe(vg_of *of, int interval_ms, long long int *unanswered_ms, char **err)
{
    *unanswered_ms = 0;
    if (vg_of_run(of, err)) {
        return -1;
    }
    long long int now = time_msec();
    if (of->echo_sent > of->last_rx) {
        *unanswered_ms = now - of->echo_sent;
    } else if (now - of->last_rx >= interval_ms) {
        /* Not blocking: a full send queue (EAGAIN) is a switch that does not read, which the
         * unanswered time shows all the same. */
        struct ofpbuf *echo = ofputil_encode_echo_request(vconn_get_version(of->vconn));
        if (vconn_send(of->vconn, echo)) {
            ofpbuf_delete(echo);
        }
        of->echo_sent = now;
    }
    return 0;
}

void
vg_of_mark_alive(vg_of *of)
{
    of->last_rx = time_msec();
}

int
vg_of_monitor_start(vg_of *of, const uint8_t *tables, size_t n_tables, char **err)
{
    /* One monitor per table: the owner's tables only, so that busy tables of others (flows
     * learned per connection) neither cost reading nor make the switch pause the monitor. */
    for (size_t i = 0; i < n_tables; i++) {
        struct ofputil_flow_monitor_request fmr;
        memset(&fmr, 0, sizeof fmr);
        fmr.id = (uint32_t) i + 1;
        fmr.command = OFPFMC_ADD;
        /* No OFPFMF_INITIAL: the owner reads the table with a dump when it needs it. */
        fmr.flags = OFPFMF_ADD | OFPFMF_REMOVED | OFPFMF_MODIFY | OFPFMF_INSTRUCTIONS;
        fmr.out_port = OFPP_ANY;
        fmr.out_group = OFPG_ANY;
        fmr.table_id = tables[i];
        match_init_catchall(&fmr.match);

        struct ofpbuf *request = ofpbuf_new(0);
        ofputil_append_flow_monitor_request(&fmr, request, of->protocol);
        ofpmsg_update_length(request);
        struct ofpbuf *reply = NULL;
        int error = vconn_transact(of->vconn, request, &reply);
        if (error) {
            *err = xstrerr("flow monitor request failed", error);
            return -1;
        }
        enum ofptype type;
        if (!ofptype_decode(&type, reply->data) && type == OFPTYPE_ERROR) {
            *err = format_ofperr_msg(reply->data);
            ofpbuf_delete(reply);
            return -1;
        }
        ofpbuf_delete(reply);
    }
    return 0;
}

/* Appends the updates in one flow-monitor reply to *out. */
static void
decode_updates(const struct ofpbuf *msg, vg_flow_update **out, size_t *n, size_t *n_alloc)
{
    struct ofpbuf b = ofpbuf_const_initializer(msg->data, msg->size);
    struct ofpbuf ofpacts;
    ofpbuf_init(&ofpacts, 64);
    for (;;) {
        struct ofputil_flow_update fu;
        int retval = ofputil_decode_flow_update(&fu, &b, &ofpacts);
        if (retval) {
            /* EOF: all read. A malformed update would only hide drift, which the periodic
             * comparison still finds; report it as a pause so the owner compares at once. */
            if (retval != EOF) {
                if (*n == *n_alloc) {
                    *out = x2nrealloc(*out, n_alloc, sizeof **out);
                }
                memset(&(*out)[*n], 0, sizeof **out);
                (*out)[(*n)++].event = VG_UPDATE_PAUSED;
            }
            break;
        }
        if (*n == *n_alloc) {
            *out = x2nrealloc(*out, n_alloc, sizeof **out);
        }
        vg_flow_update *u = &(*out)[(*n)++];
        memset(u, 0, sizeof *u);
        switch (fu.event) {
        case OFPFME_INITIAL:
        case OFPFME_ADDED: u->event = VG_UPDATE_ADDED; break;
        case OFPFME_REMOVED: u->event = VG_UPDATE_REMOVED; break;
        case OFPFME_MODIFIED: u->event = VG_UPDATE_MODIFIED; break;
        case OFPFME_ABBREV: u->event = VG_UPDATE_ABBREV; break;
        case OFPFME_PAUSED: u->event = VG_UPDATE_PAUSED; break;
        case OFPFME_RESUMED: u->event = VG_UPDATE_RESUMED; break;
        default: u->event = VG_UPDATE_PAUSED; break;
        }
        if (u->event == VG_UPDATE_ADDED || u->event == VG_UPDATE_REMOVED
            || u->event == VG_UPDATE_MODIFIED) {
            u->table = fu.table_id;
            u->priority = fu.priority;
            u->cookie = ntohll(fu.cookie);
            u->match = format_match(&fu.match);
            u->actions = format_actions(fu.ofpacts, fu.ofpacts_len);
        }
    }
    ofpbuf_uninit(&ofpacts);
}

int
vg_of_monitor_poll(vg_of *of, size_t max, vg_flow_update **out, size_t *n, char **err)
{
    *out = NULL;
    *n = 0;
    size_t n_alloc = 0;
    vconn_run(of->vconn);
    while (*n < max) {
        struct ofpbuf *msg;
        enum ofptype type;
        int retval = recv_unasked(of, &msg, &type, err);
        if (retval) {
            return retval == EAGAIN ? 0 : -1;
        }
        if (type == OFPTYPE_FLOW_MONITOR_STATS_REPLY) {
            decode_updates(msg, out, n, &n_alloc);
        }
        ofpbuf_delete(msg);
    }
    return 0;
}

void
vg_free_updates(vg_flow_update *updates, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(updates[i].match);
        free(updates[i].actions);
    }
    free(updates);
}

int
vg_flow_normalize(const char *text, uint8_t *table, uint16_t *priority, uint64_t *cookie,
                  char **match, char **actions, char **err)
{
    init_once();
    struct ofputil_flow_mod fm;
    enum ofputil_protocol usable;
    char *perr = parse_ofp_flow_mod_str(&fm, text, NULL, NULL, OFPFC_ADD, &usable);
    if (perr) {
        *err = perr;
        return -1;
    }
    if (fm.table_id == 0xff) {
        fm.table_id = 0;
    }
    /* Round-trip through the wire encoding the channel negotiates (OpenFlow 1.5): the switch
     * keeps what it decodes, not what we parsed, so e.g. "load:1->NXM_NX_REG1[0..7]" comes back
     * from a dump as "set_field:0x1/0xff->reg1". Formatting the parsed flow directly would never
     * compare equal to a dump for such flows. */
    enum ofputil_protocol protocol = OFPUTIL_P_OF15_OXM;
    if (!(usable & protocol)) {
        minimatch_destroy(&fm.match);
        free(fm.ofpacts);
        *err = xasprintf("flow cannot be expressed in OpenFlow 1.5");
        return -1;
    }
    struct ofpbuf *msg = ofputil_encode_flow_mod(&fm, protocol);
    minimatch_destroy(&fm.match);
    free(fm.ofpacts);

    struct ofputil_flow_mod decoded;
    struct ofpbuf ofpacts;
    ofpbuf_init(&ofpacts, 64);
    enum ofperr error = ofputil_decode_flow_mod(&decoded, msg->data, protocol, NULL, NULL,
                                                &ofpacts, OFPP_MAX, 255);
    ofpbuf_delete(msg);
    if (error) {
        ofpbuf_uninit(&ofpacts);
        *err = xasprintf("flow does not decode back: %s", ofperr_to_string(error));
        return -1;
    }
    struct match m;
    minimatch_expand(&decoded.match, &m);
    *table = decoded.table_id;
    *priority = decoded.priority;
    *cookie = ntohll(decoded.new_cookie);
    *match = format_match(&m);
    *actions = format_actions(decoded.ofpacts, decoded.ofpacts_len);
    minimatch_destroy(&decoded.match);
    ofpbuf_uninit(&ofpacts);
    return 0;
}

void
vg_free(void *p)
{
    free(p);
}

void
vg_free_errors(vg_flow_error *errs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(errs[i].message);
    }
    free(errs);
}
