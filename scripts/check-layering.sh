#!/usr/bin/env bash
# Usage: scripts/check-layering.sh [ROOT]
# Checks every #include "layer/file.h" (and the UAPI header) in ROOT/src and ROOT/tools
# against the layering rule: no layer reaches past the next one down; only the emulated
# backend and the daemon's wiring know both sides of the bus. Prints FILE:LINE and the rule
# broken for each include that breaks it; exits 1 if any does. ROOT defaults to the repository.
# The build enforces most of this too (each target sees only the include roots of the
# layers it links), but not what arrives through a linked layer's own dependencies.
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}

# What each layer may include: layers, or single headers ("node/status.h"); "*" is anything.
# "uapi" is <linux/goldfish_address_space.h>.
declare -A allowed=(
    [base]="base"
    [hw]="hw base"
    [device]="device hw base"
    [pci]="pci hw base"
    [pci/emulated]="pci/emulated pci device hw base"
    [pci/sysfs]="pci/sysfs pci hw base"
    [driver]="driver pci hw base uapi"
    [client]="client hw base uapi"
    [node]="node driver base uapi"
    [vmm]="vmm device hw base"
    [tools/goldfish-as]="client node/status.h node/node_lock.h base hw uapi"
    [tools/goldfish-asd]="*"
)

# layer_of PATH: the layer a path below src/ or tools/ (or an include's path) belongs to.
layer_of() {
    local path=$1
    case $path in
        src/pci/emulated/* | pci/emulated/*) echo pci/emulated ;;
        src/pci/sysfs/* | pci/sysfs/*) echo pci/sysfs ;;
        src/*/*) path=${path#src/} && echo "${path%%/*}" ;;
        tools/*/*) path=${path#tools/} && echo "tools/${path%%/*}" ;;
        */*) echo "${path%%/*}" ;;
        *) echo "" ;;
    esac
}

include_pattern='[[:space:]]*#[[:space:]]*include[[:space:]]*("[^"]*"|<linux/goldfish_address_space\.h>)'
violations=0
report() {
    echo "$1: $2"
    violations=$((violations + 1))
}

cd "$root"
while IFS= read -r file; do
    layer=$(layer_of "$file")
    if [[ -z $layer || -z ${allowed[$layer]+set} ]]; then
        report "$file" "no layering rule for '${layer:-$file}' (add it to scripts/check-layering.sh)"
        continue
    fi
    rule=${allowed[$layer]}
    # Every quoted include and every include of the UAPI header, as LINE:TEXT.
    while IFS= read -r match; do
        line=${match%%:*}
        [[ ${match#*:} =~ $include_pattern ]]
        header=${BASH_REMATCH[1]}
        if [[ $header == "<linux/goldfish_address_space.h>" ]]; then
            target=uapi
        else
            header=${header#\"} header=${header%\"}
            target=$(layer_of "$header")
            if [[ -z $target || -z ${allowed[$target]+set} ]]; then
                report "$file:$line" "\"$header\" names no layer (include headers as \"layer/file.h\")"
                continue
            fi
        fi
        [[ $rule == "*" ]] && continue
        ok=0
        for entry in $rule; do
            if [[ $entry == "$target" || $entry == "$header" ]]; then
                ok=1
                break
            fi
        done
        if ((!ok)); then
            report "$file:$line" "$layer may not include $header ($layer may include: $rule)"
        fi
    done < <(grep -nE "^$include_pattern" "$file")
done < <(find src tools -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.c' \) 2>/dev/null | sort)

if ((violations)); then
    echo "layering: $violations include(s) break the rule"
    exit 1
fi
echo "layering: every include in src/ and tools/ keeps to its layer"
