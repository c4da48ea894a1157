/* What a built-in ACP agent needs in its private HOME and environment
 * before it starts, beyond the variables acp_agents.def passes through.
 * Pi: pi-acp runs `pi`, which reads its model providers from ~/.pi/agent/
 * rather than from the environment.  Qwen Code and Gemini CLI: one process
 * (they otherwise re-run themselves in a child node). */
#ifndef SJ_ADAPTERS_ACP_HOME_H
#define SJ_ADAPTERS_ACP_HOME_H

#include "agents/agent_env.h"
#include "base/err.h"

/* Prepares agent `agent` (an acp_agents.def id; others are left alone)
 * started as `binary` with HOME `home`, for a session asking for `model`
 * (NULL: none).  For "pi": the `pi` installed beside pi-acp is named in
 * PI_ACP_PI_COMMAND (it is not on PATH, so pi-acp's update check, which
 * runs `pi` and `npm view`, never reaches the network), PI_OFFLINE is set,
 * and when OPENAI_BASE_URL is set a provider "sj" at that endpoint becomes
 * pi's default in home/.pi/agent/{models,settings}.json (the key is named,
 * OPENAI_API_KEY, never written).  For "qwen" and "gemini": their
 * *_NO_RELAUNCH variable, and usage statistics off in
 * home/.qwen|.gemini/settings.json unless that file exists (gemini's also
 * turns telemetry and the update check off).  For "gemini" also:
 * GEMINI_MODEL=`model` when given, and its chat files in
 * home/.gemini/tmp/<project>/chats/ renamed so that session/load finds
 * them (see acp_home.c).  0, or an error for the journal. */
int adapter_acp_home_prepare(const char *agent, const char *binary, const char *home,
                             const char *model, struct agent_env *env, struct err *err);

#endif
