/* The skills configured for a session (/v1/config/skills: {name:
 * SkillsConfig} for its working directory), found on disk and laid out for
 * the agents that take them.
 *
 * A skill is a directory holding SKILL.md, whose YAML front matter names it
 * (`name`, else the directory's name) and says what it is for
 * (`description`).  A source of a SkillsConfig is
 *
 *   local  `source` is a directory on this machine (absolute, or relative to
 *          the session's working directory), `subpath` a directory inside
 *          it: that directory is one skill when it holds SKILL.md, else each
 *          of its subdirectories holding SKILL.md is one;
 *   git    `source` is a repository URL cloned with the system's git, at
 *          `ref` when given (a branch, tag or commit), into
 *          <cache>/<digest of source and ref>; later sessions reuse the
 *          clone (delete it to fetch again); then as `local` inside it;
 *
 * and `skills`, when given, keeps only the skills so named.  Anything else
 * (type `github`, a missing directory, a filtered name not found, two
 * skills of one name) is a problem: reported, the rest still used.
 *
 * A resolved skill is {"name", "description", "path"}: path is the skill's
 * absolute directory, which the agents read in place (nothing is written
 * into the user's project). */
#ifndef SJ_SKILLS_H
#define SJ_SKILLS_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

/* Pure.  Reads the front matter of a SKILL.md (`text`, `len` bytes): the
 * lines between a first line "---" and the next "---", `key: value` with
 * plain, quoted or folded (`>`, `|`) values.  new: *name and *description
 * (free()), each NULL when the key is absent.  ERR_INVALID without front
 * matter, ERR_NOMEM. */
int skills_front_matter(const char *text, size_t len, char **name, char **description,
                        struct err *err);

/* Pure.  1 if `name` can be a skill's name: 1..64 of [A-Za-z0-9._-], not
 * starting with '.' (it becomes a directory name in agents' layouts). */
int skills_name_ok(const char *name);

/* Pure.  1 if the source's `skills` filter (absent: all) keeps `name`. */
int skills_selected(const json_t *source, const char *name);

/* Pure.  The directory name of a git source's clone: 32 hex digits of the
 * digest of source and ref (ref NULL: the default branch). */
void skills_git_key(const char *source, const char *ref, char out[33]);

/* Resolves every source of `configs` ({name: SkillsConfig}, borrowed) for a
 * session in `working_dir`: skills are appended to `skills` (an array of
 * {name, description, path}) in the configs' and sources' order, the first
 * of a name kept; each problem is appended to `problems` as a string.
 * Clones git sources into `git_cache` (made if missing).  0, or ERR_NOMEM.
 * Blocks (file system, git): an HTTP worker or start-up, never the loop. */
int skills_resolve(const json_t *configs, const char *working_dir, const char *git_cache,
                   json_t *skills, json_t *problems);

/* Pure.  new: the .claude-plugin/plugin.json of the plugin that carries a
 * session's skills to Claude Code; NULL when out of memory. */
json_t *skills_claude_manifest(void);

/* (Re)writes `dir` as a Claude Code plugin holding `skills` (borrowed, as
 * resolved above): dir/.claude-plugin/plugin.json and dir/skills/<name>, a
 * symbolic link to each skill's directory.  Whatever was in `dir` before is
 * replaced.  ERR_INTERNAL with the failing path. */
int skills_write_claude_plugin(const char *dir, const json_t *skills, struct err *err);

#endif
