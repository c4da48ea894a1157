/* The workspace configuration: MCP servers and skills per directory
 * (/v1/config/mcp, /v1/config/skills), checked here and kept in the journal
 * (journal_config_*()).  The session layer reads them back straight from the
 * journal when a session starts in that directory (sessions.c); the
 * directory key is what wsconfig_directory() makes of the client's path, and
 * a session's working directory (getcwd()) is already in that form. */
#ifndef SJ_WSCONFIG_H
#define SJ_WSCONFIG_H

#include "base/err.h"
#include "journal/journal.h"

#include <jansson.h>

enum wsconfig_kind { WSCONFIG_MCP, WSCONFIG_SKILLS };

/* The journal's name of the kind: "mcp", "skills". */
const char *wsconfig_kind_name(enum wsconfig_kind kind);

/* The key a directory is stored under: absolute (a relative one is taken
 * from the server's working directory), symlinks resolved when it exists,
 * else "." / ".." / repeated and trailing slashes folded lexically.
 * new: *out (free()).  ERR_INVALID for an empty or over-long path. */
int wsconfig_directory(const char *dir, char **out, struct err *err);

/* ERR_INVALID unless `name` is 1..128 bytes of printable text: it becomes a
 * key in agents' own config files (Codex's TOML, Claude's JSON). */
int wsconfig_name_check(const char *name, struct err *err);

/* ERR_INVALID (with what is wrong) unless `body` is a McpServerConfig
 * (kind MCP) or a SkillsConfig (kind SKILLS) as the v0.4 SDK sends them. */
int wsconfig_check(enum wsconfig_kind kind, const json_t *body, struct err *err);

/* Checks and stores `body` (borrowed) for (kind, directory, name),
 * replacing an older entry; `directory` as the client sent it. */
int wsconfig_put(journal_t *j, enum wsconfig_kind kind, const char *directory,
                 const char *name, const json_t *body, struct err *err);

/* The stored entry.  new: *out.  ERR_CONFIG_NOT_FOUND if there is none. */
int wsconfig_get(journal_t *j, enum wsconfig_kind kind, const char *directory,
                 const char *name, json_t **out, struct err *err);

/* Deletes the entry; 0 whether or not there was one. */
int wsconfig_delete(journal_t *j, enum wsconfig_kind kind, const char *directory,
                    const char *name, struct err *err);

#endif
