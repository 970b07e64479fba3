# bash completion for credvaultctl(1)
#
# Commands, sub-commands and options come from credvaultctl's own --help (so they cannot
# drift from the binary; --help never connects). TYPE arguments come from the daemon: the
# caller's own types (`credvaultctl list --format=tsv`); nothing when it cannot be reached.

# The sub-commands of `credvaultctl ARGS...`, from its help.
_credvaultctl_commands()
{
    "$1" "${@:2}" --help 2>/dev/null |
        sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# The options of `credvaultctl ARGS...`, from its help.
_credvaultctl_options()
{
    "$1" "${@:2}" --help 2>/dev/null | sed -n 's/^    \(--[a-z-]*\).*/\1/p'
}

_credvaultctl_types()
{
    "$1" "${@:2}" list --format=tsv 2>/dev/null | tail -n +2 | cut -f1 | sort -u
}

_credvaultctl()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -n = || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi
    local ctl=${words[0]} i w
    local -a path=() conn=()
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --) return ;; # exec's COMMAND: bash's own completion is better
            --socket)
                conn=(--socket "${words[i + 1]}")
                ((i++))
                ;;
            --socket=*) conn=("$w") ;;
            --format | --public | --comment | --valid-from | --valid-to | --associate | \
                --expires | --within | --field | --secret-file | --env | --uid | --name | --kind)
                ((i++))
                ;;
            -*) ;;
            *) path+=("$w") ;;
        esac
    done

    local files=0
    case $prev in
        --socket | --secret-file) files=1 ;;
        --format)
            COMPREPLY=($(compgen -W "text json tsv" -- "$cur"))
            return
            ;;
        --field)
            COMPREPLY=($(compgen -W "secret public comment valid-from valid-to active" -- "$cur"))
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
        --public | --comment | --valid-from | --valid-to | --associate | --expires | --within | \
            --env | --name)
            return
            ;;
    esac
    if ((files)); then
        if declare -F _filedir >/dev/null; then _filedir; else COMPREPLY=($(compgen -f -- "$cur")); fi
        return
    fi

    # The command words: a group (associate, token, app, ticket) takes one sub-command.
    local -a cmdpath=() args=()
    local groups=" associate token app ticket "
    if ((${#path[@]} > 0)); then
        cmdpath=("${path[0]}")
        if [[ $groups == *" ${path[0]} "* ]] && ((${#path[@]} > 1)); then
            cmdpath+=("${path[1]}")
            args=("${path[@]:2}")
        else
            args=("${path[@]:1}")
        fi
    fi

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_credvaultctl_options "$ctl" "${cmdpath[@]}")" -- "$cur"))
        return
    fi
    if ((${#cmdpath[@]} == 0)) ||
        { [[ $groups == *" ${cmdpath[0]} "* ]] && ((${#cmdpath[@]} == 1)); }; then
        COMPREPLY=($(compgen -W "$(_credvaultctl_commands "$ctl" "${cmdpath[@]}") help" \
            -- "$cur"))
        return
    fi
    case ${cmdpath[0]} in
        help)
            COMPREPLY=($(compgen -W "$(_credvaultctl_commands "$ctl")" -- "$cur"))
            ;;
        get | list | save | update | remove)
            if ((${#args[@]} == 0)); then
                COMPREPLY=($(compgen -W "$(_credvaultctl_types "$ctl" "${conn[@]}")" -- "$cur"))
            fi
            ;;
        backup | change-master-key)
            if declare -F _filedir >/dev/null; then _filedir; else COMPREPLY=($(compgen -f -- "$cur")); fi
            ;;
    esac
} &&
    complete -F _credvaultctl credvaultctl
