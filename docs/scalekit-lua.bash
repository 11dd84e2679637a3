# bash completion for scalekit-lua: options, commands and their options,
# and tool names after --call and --schema (asked from `scalekit-lua --tools`;
# full names and short ones).
# Installed by `make install` as share/bash-completion/completions/scalekit-lua.

_scalekit_lua() {
  local cur prev command i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  command=
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --tools|--schema|--call|--request|--upload|--mcp) command=${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
    --env-file|--token-file|--upload)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --call|--schema)
      # full names, and the short names the commands take as well
      local names
      names=$("${COMP_WORDS[0]}" --no-env --tools 2>/dev/null | cut -f1)
      COMPREPLY=($(compgen -W "$names ${names//twitter_/}" -- "$cur"))
      return ;;
    --request)
      COMPREPLY=($(compgen -W "GET POST PUT DELETE PATCH" -- "$cur")); return ;;
    -e|-l|--limit|--identifier|--param|--body|--media-type|--media-category)
      return ;;
  esac
  local words
  case $command in
    --call) words="--all --limit --identifier" ;;
    --request) words="--param --body --identifier" ;;
    --upload) words="--media-type --media-category --identifier" ;;
    --mcp) words="--read-only --tools --confirm-writes" ;;
    --tools|--schema) words= ;;
    *) words="-e -i -l -v -W -h --help --env-file --no-env --token-file --tools --schema --call --request --upload --mcp" ;;
  esac
  if [[ $command == --mcp && $cur != -* ]]; then       # the script of tools
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [[ $cur == -* || -z $command ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    [[ -z $command && $cur != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))
  fi
}
complete -F _scalekit_lua scalekit-lua
