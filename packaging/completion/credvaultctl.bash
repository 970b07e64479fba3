# bash completion for credvaultctl(1)

_credvaultctl()
{
    local cur prev words cword
    _init_completion || return

    local global_opts="--socket --json --help"
    local commands="whoami status get save remove associate login ticket token app backup
                    audit-hash rotate-key change-master-key"

    # Find the command and subcommand, skipping global options and their arguments.
    local i cmd="" sub=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --socket) ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=${words[i]}
                elif [[ -z $sub ]]; then
                    sub=${words[i]}
                fi
                ;;
        esac
    done

    case $prev in
        --socket)
            _filedir
            return
            ;;
        --secret-file)
            _filedir
            return
            ;;
        --kind)
            COMPREPLY=($(compgen -W "user system" -- "$cur"))
            return
            ;;
        --uid)
            COMPREPLY=($(compgen -W "$(getent passwd | cut -d: -f3)" -- "$cur"))
            return
            ;;
        --public | --comment | --valid-from | --valid-to | --associate | --expires | --name)
            return
            ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts=""
    case $cmd in
        get) opts="--associate" ;;
        save)
            opts="--public --secret-stdin --secret-file --comment --valid-from --valid-to
                  --inactive --associate"
            ;;
        remove) opts="--associate" ;;
        login) opts="--password-stdin" ;;
        backup)
            [[ $cur != -* ]] && _filedir
            return
            ;;
        audit-hash)
            return
            ;;
        associate)
            if [[ -z $sub ]]; then
                COMPREPLY=($(compgen -W "add list show set remove passwd" -- "$cur"))
                return
            fi
            case $sub in
                add) opts="--uid --system --user-admin --password-stdin" ;;
                set)
                    opts="--name --kind --user-admin --no-user-admin --uid --no-uid --active
                          --inactive"
                    ;;
                passwd) opts="--password-stdin" ;;
            esac
            ;;
        ticket)
            [[ -z $sub ]] && COMPREPLY=($(compgen -W "revoke" -- "$cur"))
            return
            ;;
        token)
            if [[ -z $sub ]]; then
                COMPREPLY=($(compgen -W "add list revoke" -- "$cur"))
                return
            fi
            case $sub in
                add) opts="--expires --associate" ;;
                list | revoke) opts="--associate" ;;
            esac
            ;;
        app)
            [[ -z $sub ]] && COMPREPLY=($(compgen -W "add list remove" -- "$cur"))
            return
            ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
} &&
    complete -F _credvaultctl credvaultctl

# ex: filetype=sh
