/* Plain C interface over Open vSwitch's OpenFlow library (lib/vconn, lib/ofp-*).
 *
 * Why a C shim: several public OVS headers do not compile as C++ (g++ 12), so the only code
 * that includes them is of_shim.c. The C++ side (openflow_channel.cpp) sees just these types.
 * Strings returned through `char **` are malloc'ed; free them with vg_free(). */
#ifndef VPCGUARD_OF_SHIM_H
#define VPCGUARD_OF_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vg_of vg_of;

enum vg_flow_command {
    VG_FLOW_ADD = 0,           /* add (replaces an identical match+priority) */
    VG_FLOW_MODIFY_STRICT = 1, /* change actions/cookie of exactly this match+priority */
    VG_FLOW_DELETE_STRICT = 2, /* delete exactly this match+priority */
    VG_FLOW_DELETE = 3,        /* delete every flow the match covers (cookie/mask honoured) */
};

typedef struct {
    int command;      /* enum vg_flow_command */
    const char *text; /* ovs-ofctl syntax: "table=T,priority=P,cookie=C,<match>,actions=A" */
} vg_flow_mod;

typedef struct {
    size_t index;  /* index into the flow-mod array, or (size_t)-1 if not attributable */
    char *message; /* OpenFlow error name and description */
} vg_flow_error;

typedef struct {
    uint8_t table;
    uint16_t priority;
    uint64_t cookie;
    char *match;   /* canonical ovs-ofctl text, without priority */
    char *actions; /* canonical ovs-ofctl text */
    uint64_t n_packets;
    uint64_t n_bytes;
    uint32_t duration_sec;
    uint16_t idle_timeout;
    uint16_t hard_timeout;
} vg_flow_stat;

/* Opens an OpenFlow connection (e.g. "unix:/run/openvswitch/br-int.mgmt") negotiating
 * OpenFlow 1.3-1.5 and waits up to timeout_ms for the handshake. 0 on success. */
int vg_of_open(const char *target, int timeout_ms, vg_of **out, char **err);
void vg_of_close(vg_of *);
/* Negotiated OpenFlow version (e.g. 0x06 for 1.5). */
int vg_of_version(const vg_of *);

/* Sends mods as one OFPBF_ATOMIC|OFPBF_ORDERED bundle.
 * Returns 0 when committed; 1 when the switch rejected it (nothing changed; per-flow errors in
 * errs); -1 on a local parse error (nothing sent; errs names the flows) or a transport error
 * (err). */
int vg_of_bundle(vg_of *, const vg_flow_mod *mods, size_t n, vg_flow_error **errs,
                 size_t *n_errs, char **err);

/* The same bundle with the flow mods taken one at a time from 'source' (its 'i'th text and
 * command; the text must stay valid only until the next call): each is parsed, encoded, sent
 * and freed before the next is asked for. */
typedef const char *vg_mod_source(void *ctx, size_t i, int *command);
int vg_of_bundle_stream(vg_of *, size_t n, vg_mod_source *source, void *ctx,
                        vg_flow_error **errs, size_t *n_errs, char **err);

/* Dumps flows of one table (or all, table < 0) whose cookie matches cookie/mask, each handed to
 * 'sink' as it is decoded ('stat' and its strings are freed when the sink returns): the dump
 * never holds more than one reply of the switch. */
typedef void vg_stat_sink(void *ctx, const vg_flow_stat *stat);
int vg_of_dump_stream(vg_of *, int table, uint64_t cookie, uint64_t cookie_mask,
                      vg_stat_sink *sink, void *ctx, char **err);

/* Counts the flows of one table (or all, table < 0) whose cookie matches cookie/mask (one
 * aggregate-stats request: the switch counts, nothing is transferred per flow). */
int vg_of_count(vg_of *, int table, uint64_t cookie, uint64_t cookie_mask, uint64_t *flows,
                char **err);

/* Sends a barrier and waits for its reply: everything sent before is in effect. */
int vg_of_barrier(vg_of *, char **err);

/* Flushes the userspace conntrack entries of one zone (Nicira NXT_CT_FLUSH_ZONE). */
int vg_of_ct_flush_zone(vg_of *, uint16_t zone, char **err);
/* Creates or changes meter `id`: one drop band of `rate_pps` packets per second (burst `burst`
 * packets; 0 = the switch's default), with statistics. */
int vg_of_meter_set(vg_of *, uint32_t id, uint32_t rate_pps, uint32_t burst, char **err);
/* Packets meter `id`'s bands dropped since it was created. */
int vg_of_meter_stats(vg_of *, uint32_t id, uint64_t *band_packets, char **err);

/* Handles what the switch sent unasked: answers its echo requests and discards asynchronous
 * messages. ovs-vswitchd probes a management connection after 60 s without traffic from us and
 * drops it 60 s later if the probe goes unanswered; call this at least every ~30 s while idle.
 * 0 if the connection is alive, else -1 with *err. */
int vg_of_run(vg_of *, char **err);

/* vg_of_run(), and a liveness probe that never blocks: once the switch has sent nothing for
 * interval_ms, an echo request goes out. *unanswered_ms is how long that echo has waited for
 * any message from the switch (0 when none is outstanding): a stopped or hung ovs-vswitchd keeps
 * the connection open but never answers. 0, or -1 when the connection is lost (*err). */
int vg_of_probe(vg_of *, int interval_ms, long long int *unanswered_ms, char **err);
/* Records an answer the caller got through a request of its own (a barrier, a dump). */
void vg_of_mark_alive(vg_of *);

/* Flow monitor (OpenFlow 1.4+ OFPMP_FLOW_MONITOR): after vg_of_monitor_start() the switch
 * reports every flow added, modified or removed in any table, by any connection (use a
 * connection of its own: changes made through the monitoring connection itself would be
 * reported in abbreviated form only). */
enum vg_flow_update_event {
    VG_UPDATE_ADDED = 1,
    VG_UPDATE_REMOVED = 2,
    VG_UPDATE_MODIFIED = 3,
    VG_UPDATE_ABBREV = 4,  /* a change by this connection (not used) */
    VG_UPDATE_PAUSED = 5,  /* the switch stopped reporting: too many updates unread */
    VG_UPDATE_RESUMED = 6, /* reporting again; changes in between were not all reported */
};

typedef struct {
    int event; /* enum vg_flow_update_event */
    uint8_t table;
    uint16_t priority;
    uint64_t cookie;
    char *match;   /* canonical text as in vg_of_dump_stream; NULL for ABBREV/PAUSED/RESUMED */
    char *actions; /* NULL when not an added/modified/removed flow */
} vg_flow_update;

/* Subscribes this connection to updates of every flow of the given tables (0xff: every table).
 * 0 on success. */
int vg_of_monitor_start(vg_of *, const uint8_t *tables, size_t n_tables, char **err);

/* Receives, without blocking, up to max updates that have arrived (answering echo requests on
 * the way). 0 on success (*n may be 0), -1 if the connection is lost (*err). */
int vg_of_monitor_poll(vg_of *, size_t max, vg_flow_update **out, size_t *n, char **err);
void vg_free_updates(vg_flow_update *, size_t n);

/* Parses one flow in ovs-ofctl syntax and prints it back canonically as
 * table, priority, cookie, match and actions. 0 on success, else *err says why. */
int vg_flow_normalize(const char *text, uint8_t *table, uint16_t *priority, uint64_t *cookie,
                      char **match, char **actions, char **err);

void vg_free(void *);
void vg_free_errors(vg_flow_error *, size_t n);

#ifdef __cplusplus
}
#endif
#endif
