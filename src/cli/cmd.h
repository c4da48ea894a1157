/* The commands of the command line (see commands.def). */
#ifndef SJ_CMD_H
#define SJ_CMD_H

#define COMMAND(name, summary) int cmd_##name(int argc, char **argv);
#include "cli/commands.def"
#undef COMMAND

#endif
