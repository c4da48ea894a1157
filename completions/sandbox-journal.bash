# bash completion for sandbox-journal.
#
# Printed by 'sandbox-journal completion bash'.  Load it from ~/.bashrc with
#   source <(sandbox-journal completion bash)
# or install it for every shell with
#   sandbox-journal completion bash \
#       > /usr/share/bash-completion/completions/sandbox-journal

# Succeeds when option $2 takes a value in the command $1 ("api sessions create").
_sandbox_journal_takes_value()
{
    case "$1" in
        server*)
            case "$2" in
                -H|--host|-p|--port|-t|--token|--data-dir|--durability|\
                -O|--cors-allow-origin|-M|--cors-allow-method|\
                -A|--cors-allow-header|--mock-delay-ms|--http-threads|\
                --max-body-bytes|--max-upload-bytes|--sse-heartbeat-ms|--idempotency-ttl-s|\
                --agents-dir|--export-to|\
                --webhook-secret-file|--export-batch) return 0 ;;
            esac ;;
        api*)
            case "$2" in
                -e|--endpoint|-t|--token|--idempotency-key) return 0 ;;
            esac
            case "$1" in
                "api sessions create"*)
                    case "$2" in
                        -a|--agent|-g|--agent-mode|-p|--permission-mode|\
                        -m|--model|-v|--variant|-A|--agent-version) return 0 ;;
                    esac ;;
                "api sessions send-message"*)
                    case "$2" in -m|--message) return 0 ;; esac ;;
                "api sessions events"*|"api sessions get-messages"*)
                    case "$2" in -o|--offset|-l|--limit) return 0 ;; esac ;;
                "api sessions reply-question"*)
                    case "$2" in -a|--answers) return 0 ;; esac ;;
                "api sessions reply-permission"*)
                    case "$2" in -r|--reply) return 0 ;; esac ;;
                "api config "*)
                    case "$2" in -d|--directory|-N|--name|-c|--config) return 0 ;; esac ;;
                "api fs cat"*|"api fs put"*|"api fs upload"*)
                    case "$2" in -o|--output|-i|--input) return 0 ;; esac ;;
            esac ;;
        "credentials extract-env"*)
            case "$2" in -d|--home-dir) return 0 ;; esac ;;
        "credentials extract"*)
            case "$2" in -a|--agent|-p|--provider|-d|--home-dir) return 0 ;; esac ;;
        sessions*)
            case "$2" in -d|--data-dir) return 0 ;; esac ;;
        export*)
            case "$2" in
                --to|--session|--batch|--data-dir|--webhook-secret-file) return 0 ;;
            esac ;;
        import*)
            case "$2" in --data-dir) return 0 ;; esac ;;
        install-agent*)
            case "$2" in --data-dir|--agents-dir|--npm) return 0 ;; esac ;;
    esac
    return 1
}

_sandbox_journal()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local path= expect= word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -n $expect ]]; then
            expect=
            continue
        fi
        case $word in
            --*=*) ;;
            -*) _sandbox_journal_takes_value "$path" "$word" && expect=$word ;;
            *) path=${path:+$path }$word ;;
        esac
    done
    COMPREPLY=()

    # The word being completed is an option's value.
    if [[ -n $expect ]]; then
        case "$path:$expect" in
            *:--data-dir|*:--home-dir|*:--agents-dir|sessions*:-d|credentials*:-d)
                COMPREPLY=($(compgen -d -- "$cur")) ;;
            install-agent*:--npm)
                COMPREPLY=($(compgen -f -- "$cur")) ;;
            export*:--to|server*:--export-to)
                COMPREPLY=($(compgen -W "postgres:// clickhouse+http:// clickhouse+https://
                                         jsonl: http:// https://" -- "$cur")) ;;
            *:--webhook-secret-file)
                COMPREPLY=($(compgen -f -- "$cur")) ;;
            export*:--session)
                COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" sessions list --quiet \
                                           2>/dev/null)" -- "$cur")) ;;
            credentials*:-a|credentials*:--agent)
                COMPREPLY=($(compgen -W "claude codex opencode amp" -- "$cur")) ;;
            credentials*:-p|credentials*:--provider)
                COMPREPLY=($(compgen -W "anthropic openai" -- "$cur")) ;;
            "api sessions create"*:-a|"api sessions create"*:--agent)
                COMPREPLY=($(compgen -W "claude codex opencode amp mock" -- "$cur")) ;;
            "api sessions create"*:-p|"api sessions create"*:--permission-mode)
                COMPREPLY=($(compgen -W "default plan bypass" -- "$cur")) ;;
            "api config "*:-d|"api config "*:--directory)
                COMPREPLY=($(compgen -d -- "$cur")) ;;
            "api sessions reply-permission"*:-r|"api sessions reply-permission"*:--reply)
                COMPREPLY=($(compgen -W "once always reject" -- "$cur")) ;;
            server*:--durability)
                COMPREPLY=($(compgen -W "full normal" -- "$cur")) ;;
        esac
        return 0
    fi

    local words= opts="--help"
    local api_opts="--endpoint --token --no-token --idempotency-key --help"
    local agents="claude codex opencode amp mock"
    case $path in
        "")
            words="server api credentials sessions completion export import install-agent help version"
            opts="--help --version" ;;
        server)
            opts="--host --port --token --token-file --no-token --data-dir --durability
                  --cors-allow-origin --cors-allow-method --cors-allow-header
                  --cors-allow-credentials
                  --no-inspector-cors --no-telemetry --mock-delay-ms --http-threads
                  --max-body-bytes --max-upload-bytes --sse-heartbeat-ms --idempotency-ttl-s
                  --agents-dir --export-to
                  --webhook-secret-file --export-batch --help" ;;
        api)
            words="agents sessions processes fs config"
            opts=$api_opts ;;
        "api agents")
            words="list install modes"
            opts=$api_opts ;;
        "api sessions")
            words="list create send-message send-message-stream terminate events
                   get-messages events-sse reply-question reject-question
                   reply-permission"
            opts=$api_opts ;;
        "api processes")
            words="run start ls get stop kill rm logs input"
            opts=$api_opts ;;
        "api fs")
            words="cat ls put rm mkdir mv stat upload"
            opts=$api_opts ;;
        "api agents install"|"api agents modes")
            words=$agents ;;
        "api config")
            words="mcp skills"
            opts=$api_opts ;;
        "api config mcp"|"api config skills")
            words="get set rm" ;;
    esac
    case $path in
        "api agents install"*)
            opts="--reinstall $api_opts" ;;
        "api sessions create"*)
            opts="--agent --agent-mode --permission-mode --model --variant --agent-version
                  $api_opts" ;;
        "api sessions send-message-stream"*)
            opts="--message --include-raw $api_opts" ;;
        "api sessions send-message"*)
            opts="--message $api_opts" ;;
        "api sessions events-sse"*)
            opts="--offset --include-raw $api_opts" ;;
        "api sessions events"*|"api sessions get-messages"*)
            opts="--offset --limit --include-raw $api_opts" ;;
        "api sessions reply-question"*)
            opts="--answers $api_opts" ;;
        "api sessions reply-permission"*)
            opts="--reply $api_opts" ;;
        "api processes run"*)
            opts="--timeout-ms --max-output-bytes --cwd $api_opts" ;;
        "api processes start"*)
            opts="--tty --interactive --cwd $api_opts" ;;
        "api processes stop"*|"api processes kill"*)
            opts="--wait-ms $api_opts" ;;
        "api processes logs"*)
            opts="--since --tail --stream --follow $api_opts" ;;
        "api processes input"*)
            opts="--data --base64 $api_opts" ;;
        "api config mcp"*|"api config skills"*)
            opts="--directory --name --config $api_opts" ;;
        "api fs cat"*)
            opts="--output $api_opts" ;;
        "api fs put"*|"api fs upload"*)
            opts="--input $api_opts" ;;
        "api fs rm"*)
            opts="--recursive $api_opts" ;;
        "api fs mv"*)
            opts="--overwrite $api_opts" ;;
        "api "*)
            opts=$api_opts ;;
        credentials)
            words="extract extract-env" ;;
        "credentials extract-env"*)
            opts="--export --reveal --home-dir --no-oauth --help" ;;
        "credentials extract"*)
            opts="--agent --provider --reveal --home-dir --no-oauth --help" ;;
        sessions)
            words="list show tail" ;;
        "sessions list"*)
            opts="--data-dir --json --quiet --help" ;;
        "sessions show"*|"sessions tail"*)
            opts="--data-dir --json --help" ;;
        completion)
            words="bash" ;;
        help)
            words="server api credentials sessions completion export import install-agent" ;;
        export*)
            opts="--to --session --follow --batch --data-dir --reset --quiet
                  --webhook-secret-file --help" ;;
        import)
            words="jsonl:"
            opts="--data-dir --quiet --help" ;;
        import*)
            opts="--data-dir --quiet --help" ;;
        install-agent)
            words="claude codex"
            opts="--reinstall --data-dir --agents-dir --npm --help" ;;
        install-agent*)
            opts="--reinstall --data-dir --agents-dir --npm --help" ;;
    esac
    case $path in
        "sessions show"|"sessions tail")
            # The sessions of the default journal, if there is one.
            words=$("${COMP_WORDS[0]}" sessions list --quiet 2>/dev/null) ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
    return 0
}

complete -F _sandbox_journal sandbox-journal
