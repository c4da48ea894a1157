/* `sandbox-journal completion bash`: prints the bash completion script.
 *
 * The script is kept here, one line per string (a single literal would pass
 * the length ISO C requires compilers to accept), and committed as
 * completions/sandbox-journal.bash, which a test compares with this output.
 * "@COMMANDS@" stands for the command names of commands.def, so a new
 * command is completed as soon as it is listed there; its options and
 * values need lines below.  After any change, regenerate the file:
 *   build/sandbox-journal completion bash > completions/sandbox-journal.bash */
#include "cli/cmd.h"
#include "base/opts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char cmd_completion_usage[] =
    "usage: sandbox-journal completion bash\n"
    "\n"
    "Prints a bash completion script for commands, subcommands, options and their\n"
    "values (agents, permission modes, replies, directories; session ids of the\n"
    "default journal for 'sessions show' and 'sessions tail').\n"
    "\n"
    "examples:\n"
    "  sandbox-journal completion bash > /etc/bash_completion.d/sandbox-journal\n"
    "  source <(sandbox-journal completion bash)     # in ~/.bashrc\n";

/* " server api ...": every command of commands.def, in its order. */
static const char cmd_completion_commands[] =
#define COMMAND(name, summary) " " #name
#include "cli/commands.def"
#undef COMMAND
    ;

#define CMD_COMPLETION_MARK "@COMMANDS@"

static const char *const cmd_completion_bash[] = {
    "# bash completion for sandbox-journal.",
    "#",
    "# Printed by 'sandbox-journal completion bash'.  Load it from ~/.bashrc with",
    "#   source <(sandbox-journal completion bash)",
    "# or install it for every shell with",
    "#   sandbox-journal completion bash \\",
    "#       > /usr/share/bash-completion/completions/sandbox-journal",
    "",
    "# Succeeds when option $2 takes a value in the command $1 (\"api sessions create\").",
    "_sandbox_journal_takes_value()",
    "{",
    "    case \"$1\" in",
    "        server*)",
    "            case \"$2\" in",
    "                -H|--host|-p|--port|-t|--token|--data-dir|--durability|\\",
    "                -O|--cors-allow-origin|-M|--cors-allow-method|\\",
    "                -A|--cors-allow-header|--mock-delay-ms|--http-threads|\\",
    "                --max-body-bytes|--max-upload-bytes|--sse-heartbeat-ms|--idempotency-ttl-s|\\",
    "                --agents-dir|--export-to|\\",
    "                --webhook-secret-file|--export-batch) return 0 ;;",
    "            esac ;;",
    "        api*)",
    "            case \"$2\" in",
    "                -e|--endpoint|-t|--token|--idempotency-key) return 0 ;;",
    "            esac",
    "            case \"$1\" in",
    "                \"api sessions create\"*)",
    "                    case \"$2\" in",
    "                        -a|--agent|-g|--agent-mode|-p|--permission-mode|\\",
    "                        -m|--model|-v|--variant|-A|--agent-version) return 0 ;;",
    "                    esac ;;",
    "                \"api sessions send-message\"*)",
    "                    case \"$2\" in -m|--message) return 0 ;; esac ;;",
    "                \"api sessions events\"*|\"api sessions get-messages\"*)",
    "                    case \"$2\" in -o|--offset|-l|--limit) return 0 ;; esac ;;",
    "                \"api sessions reply-question\"*)",
    "                    case \"$2\" in -a|--answers) return 0 ;; esac ;;",
    "                \"api sessions reply-permission\"*)",
    "                    case \"$2\" in -r|--reply) return 0 ;; esac ;;",
    "                \"api config \"*)",
    "                    case \"$2\" in -d|--directory|-N|--name|-c|--config) return 0 ;; esac ;;",
    "                \"api fs cat\"*|\"api fs put\"*|\"api fs upload\"*)",
    "                    case \"$2\" in -o|--output|-i|--input) return 0 ;; esac ;;",
    "            esac ;;",
    "        \"credentials extract-env\"*)",
    "            case \"$2\" in -d|--home-dir) return 0 ;; esac ;;",
    "        \"credentials extract\"*)",
    "            case \"$2\" in -a|--agent|-p|--provider|-d|--home-dir) return 0 ;; esac ;;",
    "        sessions*)",
    "            case \"$2\" in -d|--data-dir) return 0 ;; esac ;;",
    "        export*)",
    "            case \"$2\" in",
    "                --to|--session|--batch|--data-dir|--webhook-secret-file) return 0 ;;",
    "            esac ;;",
    "        import*)",
    "            case \"$2\" in --data-dir) return 0 ;; esac ;;",
    "        install-agent*)",
    "            case \"$2\" in --data-dir|--agents-dir|--npm) return 0 ;; esac ;;",
    "    esac",
    "    return 1",
    "}",
    "",
    "_sandbox_journal()",
    "{",
    "    local cur=${COMP_WORDS[COMP_CWORD]}",
    "    local path= expect= word i",
    "    for ((i = 1; i < COMP_CWORD; i++)); do",
    "        word=${COMP_WORDS[i]}",
    "        if [[ -n $expect ]]; then",
    "            expect=",
    "            continue",
    "        fi",
    "        case $word in",
    "            --*=*) ;;",
    "            -*) _sandbox_journal_takes_value \"$path\" \"$word\" && expect=$word ;;",
    "            *) path=${path:+$path }$word ;;",
    "        esac",
    "    done",
    "    COMPREPLY=()",
    "",
    "    # The word being completed is an option's value.",
    "    if [[ -n $expect ]]; then",
    "        case \"$path:$expect\" in",
    "            *:--data-dir|*:--home-dir|*:--agents-dir|sessions*:-d|credentials*:-d)",
    "                COMPREPLY=($(compgen -d -- \"$cur\")) ;;",
    "            install-agent*:--npm)",
    "                COMPREPLY=($(compgen -f -- \"$cur\")) ;;",
    "            export*:--to|server*:--export-to)",
    "                COMPREPLY=($(compgen -W \"postgres:// clickhouse+http:// clickhouse+https://",
    "                                         jsonl: http:// https://\" -- \"$cur\")) ;;",
    "            *:--webhook-secret-file)",
    "                COMPREPLY=($(compgen -f -- \"$cur\")) ;;",
    "            export*:--session)",
    "                COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" sessions list --quiet \\",
    "                                           2>/dev/null)\" -- \"$cur\")) ;;",
    "            credentials*:-a|credentials*:--agent)",
    "                COMPREPLY=($(compgen -W \"claude codex opencode amp\" -- \"$cur\")) ;;",
    "            credentials*:-p|credentials*:--provider)",
    "                COMPREPLY=($(compgen -W \"anthropic openai\" -- \"$cur\")) ;;",
    "            \"api sessions create\"*:-a|\"api sessions create\"*:--agent)",
    "                COMPREPLY=($(compgen -W \"claude codex opencode amp mock\" -- \"$cur\")) ;;",
    "            \"api sessions create\"*:-p|\"api sessions create\"*:--permission-mode)",
    "                COMPREPLY=($(compgen -W \"default plan bypass\" -- \"$cur\")) ;;",
    "            \"api config \"*:-d|\"api config \"*:--directory)",
    "                COMPREPLY=($(compgen -d -- \"$cur\")) ;;",
    "            \"api sessions reply-permission\"*:-r|\"api sessions reply-permission\"*:--reply)",
    "                COMPREPLY=($(compgen -W \"once always reject\" -- \"$cur\")) ;;",
    "            server*:--durability)",
    "                COMPREPLY=($(compgen -W \"full normal\" -- \"$cur\")) ;;",
    "        esac",
    "        return 0",
    "    fi",
    "",
    "    local words= opts=\"--help\"",
    "    local api_opts=\"--endpoint --token --no-token --idempotency-key --help\"",
    "    local agents=\"claude codex opencode amp mock\"",
    "    case $path in",
    "        \"\")",
    "            words=\"@COMMANDS@ help version\"",
    "            opts=\"--help --version\" ;;",
    "        server)",
    "            opts=\"--host --port --token --token-file --no-token --data-dir --durability",
    "                  --cors-allow-origin --cors-allow-method --cors-allow-header",
    "                  --cors-allow-credentials",
    "                  --no-inspector-cors --no-telemetry --mock-delay-ms --http-threads",
    "                  --max-body-bytes --max-upload-bytes --sse-heartbeat-ms --idempotency-ttl-s",
    "                  --agents-dir --export-to",
    "                  --webhook-secret-file --export-batch --help\" ;;",
    "        api)",
    "            words=\"agents sessions processes fs config\"",
    "            opts=$api_opts ;;",
    "        \"api agents\")",
    "            words=\"list install modes\"",
    "            opts=$api_opts ;;",
    "        \"api sessions\")",
    "            words=\"list create send-message send-message-stream terminate events",
    "                   get-messages events-sse reply-question reject-question",
    "                   reply-permission\"",
    "            opts=$api_opts ;;",
    "        \"api processes\")",
    "            words=\"run start ls get stop kill rm logs input\"",
    "            opts=$api_opts ;;",
    "        \"api fs\")",
    "            words=\"cat ls put rm mkdir mv stat upload\"",
    "            opts=$api_opts ;;",
    "        \"api agents install\"|\"api agents modes\")",
    "            words=$agents ;;",
    "        \"api config\")",
    "            words=\"mcp skills\"",
    "            opts=$api_opts ;;",
    "        \"api config mcp\"|\"api config skills\")",
    "            words=\"get set rm\" ;;",
    "    esac",
    "    case $path in",
    "        \"api agents install\"*)",
    "            opts=\"--reinstall $api_opts\" ;;",
    "        \"api sessions create\"*)",
    "            opts=\"--agent --agent-mode --permission-mode --model --variant --agent-version",
    "                  $api_opts\" ;;",
    "        \"api sessions send-message-stream\"*)",
    "            opts=\"--message --include-raw $api_opts\" ;;",
    "        \"api sessions send-message\"*)",
    "            opts=\"--message $api_opts\" ;;",
    "        \"api sessions events-sse\"*)",
    "            opts=\"--offset --include-raw $api_opts\" ;;",
    "        \"api sessions events\"*|\"api sessions get-messages\"*)",
    "            opts=\"--offset --limit --include-raw $api_opts\" ;;",
    "        \"api sessions reply-question\"*)",
    "            opts=\"--answers $api_opts\" ;;",
    "        \"api sessions reply-permission\"*)",
    "            opts=\"--reply $api_opts\" ;;",
    "        \"api processes run\"*)",
    "            opts=\"--timeout-ms --max-output-bytes --cwd $api_opts\" ;;",
    "        \"api processes start\"*)",
    "            opts=\"--tty --interactive --cwd $api_opts\" ;;",
    "        \"api processes stop\"*|\"api processes kill\"*)",
    "            opts=\"--wait-ms $api_opts\" ;;",
    "        \"api processes logs\"*)",
    "            opts=\"--since --tail --stream --follow $api_opts\" ;;",
    "        \"api processes input\"*)",
    "            opts=\"--data --base64 $api_opts\" ;;",
    "        \"api config mcp\"*|\"api config skills\"*)",
    "            opts=\"--directory --name --config $api_opts\" ;;",
    "        \"api fs cat\"*)",
    "            opts=\"--output $api_opts\" ;;",
    "        \"api fs put\"*|\"api fs upload\"*)",
    "            opts=\"--input $api_opts\" ;;",
    "        \"api fs rm\"*)",
    "            opts=\"--recursive $api_opts\" ;;",
    "        \"api fs mv\"*)",
    "            opts=\"--overwrite $api_opts\" ;;",
    "        \"api \"*)",
    "            opts=$api_opts ;;",
    "        credentials)",
    "            words=\"extract extract-env\" ;;",
    "        \"credentials extract-env\"*)",
    "            opts=\"--export --reveal --home-dir --no-oauth --help\" ;;",
    "        \"credentials extract\"*)",
    "            opts=\"--agent --provider --reveal --home-dir --no-oauth --help\" ;;",
    "        sessions)",
    "            words=\"list show tail\" ;;",
    "        \"sessions list\"*)",
    "            opts=\"--data-dir --json --quiet --help\" ;;",
    "        \"sessions show\"*|\"sessions tail\"*)",
    "            opts=\"--data-dir --json --help\" ;;",
    "        completion)",
    "            words=\"bash\" ;;",
    "        help)",
    "            words=\"@COMMANDS@\" ;;",
    "        export*)",
    "            opts=\"--to --session --follow --batch --data-dir --reset --quiet",
    "                  --webhook-secret-file --help\" ;;",
    "        import)",
    "            words=\"jsonl:\"",
    "            opts=\"--data-dir --quiet --help\" ;;",
    "        import*)",
    "            opts=\"--data-dir --quiet --help\" ;;",
    "        install-agent)",
    "            words=\"claude codex\"",
    "            opts=\"--reinstall --data-dir --agents-dir --npm --help\" ;;",
    "        install-agent*)",
    "            opts=\"--reinstall --data-dir --agents-dir --npm --help\" ;;",
    "    esac",
    "    case $path in",
    "        \"sessions show\"|\"sessions tail\")",
    "            # The sessions of the default journal, if there is one.",
    "            words=$(\"${COMP_WORDS[0]}\" sessions list --quiet 2>/dev/null) ;;",
    "    esac",
    "",
    "    if [[ $cur == -* ]]; then",
    "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))",
    "    else",
    "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))",
    "    fi",
    "    return 0",
    "}",
    "",
    "complete -F _sandbox_journal sandbox-journal",
};

/* The command names as typed: "install_agent" in commands.def is
 * "install-agent" on the command line (see main.c). */
static int cmd_completion_put_commands(void)
{
    for (const char *p = cmd_completion_commands + 1; *p; p++)
        if (putchar(*p == '_' ? '-' : *p) == EOF)
            return -1;
    return 0;
}

int cmd_completion(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(cmd_completion_usage, stdout);
        return 0;
    }
    if (argc < 2)
        return opts_fail("missing shell: bash (see 'sandbox-journal completion --help')");
    if (argc > 2)
        return opts_fail("unexpected argument '%s' (see 'sandbox-journal completion --help')",
                         argv[2]);
    if (strcmp(argv[1], "bash") != 0)
        return opts_fail("no completion for '%s': only bash is supported", argv[1]);
    for (size_t i = 0; i < sizeof cmd_completion_bash / sizeof cmd_completion_bash[0]; i++) {
        const char *line = cmd_completion_bash[i];
        const char *mark = strstr(line, CMD_COMPLETION_MARK);
        if (!mark) {
            if (printf("%s\n", line) < 0)
                break;
            continue;
        }
        if (printf("%.*s", (int)(mark - line), line) < 0 ||
            cmd_completion_put_commands() != 0 ||
            printf("%s\n", mark + strlen(CMD_COMPLETION_MARK)) < 0)
            break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
