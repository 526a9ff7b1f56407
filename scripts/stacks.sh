#!/bin/sh
# The stacks CI plans, previews and deploys (.github/workflows): every Pulumi.<stack>.yaml except
# Pulumi.lab.yaml (the topology `npm run lab` runs on this machine; never deployed). Adding a region
# is adding a file. The workflows and test/workflows.test.ts call this script; nothing else lists them.
#   scripts/stacks.sh                        the stacks as a JSON array, sorted: ["prod","us"]
#   scripts/stacks.sh --changed-since <ref>  those whose config or program changed between <ref> and
#                                            HEAD (git diff <ref>...HEAD); a change to the program
#                                            (PROGRAM_PATHS) is a change to every stack
#   scripts/stacks.sh --prefix-clash         true when a stack's name starts with another's, else
#                                            false (pulumi/actions#1165 edits PR comments by prefix)
set -eu
cd "$(dirname "$0")/.."

# What the program reads besides Pulumi.<stack>.yaml: a file, or a directory when it ends in /.
PROGRAM_PATHS="index.ts Pulumi.yaml tsconfig.json package.json package-lock.json components/ lib/ relay-image/"

usage() {
    echo "usage: scripts/stacks.sh [--changed-since <git-ref> | --prefix-clash]" >&2
    exit 2
}

stacks() {
    names=
    for file in Pulumi.*.yaml; do
        [ -f "$file" ] || continue
        stack=${file#Pulumi.}
        stack=${stack%.yaml}
        [ "$stack" = lab ] && continue
        case $stack in
            *[!a-z0-9-]*)
                echo "scripts/stacks.sh: $file: a stack's name here is lower-case letters, digits and '-'" >&2
                return 1
                ;;
        esac
        names="$names$stack
"
    done
    printf '%s' "$names" | LC_ALL=C sort
}

json() {
    separator=
    printf '['
    for stack in "$@"; do
        printf '%s"%s"' "$separator" "$stack"
        separator=,
    done
    printf ']\n'
}

all=$(stacks)
# The names are checked above (no spaces, no glob characters), so $all splits into one word each.
case ${1-} in
    "")
        # shellcheck disable=SC2086
        json $all
        ;;
    --changed-since)
        [ $# -eq 2 ] || usage
        # --no-renames: a file moved out of the program shows as deleted there, not only added elsewhere.
        changed=$(git diff --no-renames --name-only "$2...HEAD")
        program_changed=false
        for path in $PROGRAM_PATHS; do
            case $path in
                */) printf '%s\n' "$changed" | grep -q "^$path" && program_changed=true ;;
                *) printf '%s\n' "$changed" | grep -qxF "$path" && program_changed=true ;;
            esac
        done
        selected=
        for stack in $all; do
            if [ "$program_changed" = true ] || printf '%s\n' "$changed" | grep -qxF "Pulumi.$stack.yaml"; then
                selected="$selected $stack"
            fi
        done
        # shellcheck disable=SC2086
        json $selected
        ;;
    --prefix-clash)
        [ $# -eq 1 ] || usage
        clash=false
        for a in $all; do
            for b in $all; do
                [ "$a" = "$b" ] && continue
                case $b in "$a"*) clash=true ;; esac
            done
        done
        echo "$clash"
        ;;
    *) usage ;;
esac
