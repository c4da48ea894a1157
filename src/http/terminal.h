/* The process terminal: GET /v1/processes/{id}/terminal/ws, an interactive
 * WebSocket (RFC 6455, framing in http/ws.c) to a `tty: true` process, as
 * the sandbox-agent SDK's connectProcessTerminal() speaks it:
 *   server -> client  text {"type":"ready","processId":id} first; the
 *                     terminal's output as binary frames; at the process's
 *                     exit {"type":"exit","exitCode":n|null} and a close
 *                     (1000); {"type":"error","message":...} for a request
 *                     that failed (the connection stays open).
 *   client -> server  text {"type":"input","data":s,"encoding":"base64"?},
 *                     {"type":"resize","cols":c,"rows":r}, {"type":"close"};
 *                     a binary frame is raw input.
 * Before the upgrade: the token (Authorization header, or the access_token
 * query parameter browsers must use), 404 for an unknown process, 409 for
 * one without a terminal, 400 for a request that is not a WebSocket
 * handshake, 503 when TERMINAL_MAX connections are open.
 *
 * Output is read from the journal, the same source as GET /logs: on
 * connecting the terminal replays the last TERMINAL_REPLAY_CHUNKS chunks of
 * the log (what the screen showed recently), then follows new ones.
 *
 * Threads and ownership.  The HTTP worker that answers the handshake hands
 * the upgraded socket to the hub; from then on ONE hub thread owns every
 * terminal socket: it alone reads, writes, and closes them (through
 * MHD_upgrade_action), polling them all without blocking on any, and it
 * reads the journal with its own reader.  No HTTP worker is held.  Each
 * socket has a bounded output buffer: the hub reads more of a log only while
 * less than TERMINAL_OUT_LOW bytes wait for that socket, so a client that
 * stops reading costs at most about TERMINAL_OUT_LOW + one chunk, falls
 * behind on its journal cursor (nothing is dropped for it but what the
 * log's byte cap drops), and is disconnected after TERMINAL_STALL_MS
 * without any byte accepted.  A client's message is bounded by
 * TERMINAL_MAX_MESSAGE (close 1009). */
#ifndef SJ_TERMINAL_H
#define SJ_TERMINAL_H

#include "base/err.h"
#include "http/request.h"
#include "journal/journal.h"
#include "workspace/processes.h"

#define TERMINAL_MAX 64
#define TERMINAL_REPLAY_CHUNKS 64
#define TERMINAL_OUT_LOW (256 * 1024)
#define TERMINAL_STALL_MS 30000
#define TERMINAL_MAX_MESSAGE (2 * 1024 * 1024)

struct terminal_hub;

/* new: *out, with its thread running.  Thread: main. */
int terminal_hub_start(journal_t *journal, processes_t *processes, struct terminal_hub **out,
                       struct err *err);
/* Says goodbye (close 1001) to every terminal, closes their sockets and
 * joins the thread; later handshakes are refused.  Before MHD_stop_daemon():
 * libmicrohttpd wants every upgraded socket closed first.  NULL is a no-op.
 * Thread: main. */
void terminal_hub_close(struct terminal_hub *hub);
/* After MHD_stop_daemon(), which ends the upgraded requests, each of which
 * still holds its terminal through the hub.  NULL is a no-op. */
void terminal_hub_free(struct terminal_hub *hub);

/* The route's handler (routes_processes.c's table). */
enum MHD_Result terminal_ws_handler(struct http_request *req);

/* GET /v1/debug/terminals: {"open", "peakBufferedBytes" (the most output
 * one socket has had waiting), "boundBytes"}, for tests; http.c serves it
 * only when SJ_TEST_DEBUG_ROUTES is set in the environment. */
extern const struct http_route terminal_debug_table[];

#endif
