// `acc completion bash|zsh|fish`: a script that completes acc's commands and options (from the
// command definitions, so a new option is completed without touching this file) and, at
// completion time, instance and model names from the hidden `acc __complete`.
import path from "node:path";
import { homePaths } from "../core/paths.js";
import { AccError } from "../lib/errors.js";
import { positional, type Command, type CommandResult } from "./command.js";
import { COMMANDS } from "./commands.js";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** What a command's first argument is: names looked up when completing, or fixed words. */
export type FirstArgument = "instances" | "models" | "commands" | readonly string[] | undefined;

export interface CompletedOption {
  long: string;
  short?: string;
  takesValue: boolean;
  multiple: boolean;
  description: string;
}

export interface CompletedCommand {
  name: string;
  description: string;
  options: CompletedOption[];
  first: FirstArgument;
}

const GLOBAL_OPTIONS = [
  { long: "home", description: "the home folder of acc" },
  { long: "version", description: "print the version of acc" },
  { long: "help", description: "show help" },
  { long: "url", description: "the API of acc server there" },
  { long: "token", description: "the API token for --url" },
];

/**
 * Text safe inside a quoted word of any of the three shells and inside zsh's `[...]` and
 * `name:description`: no quotes, `$`, backslashes, brackets or colons.
 */
function plain(text: string, max = 70): string {
  const safe = text
    .replace(/: /g, " - ")
    .replace(/[^A-Za-z0-9 .,;()/=+<>_%-]/g, "")
    .replace(/\s+/g, " ")
    .trim();
  return safe.length > max ? `${safe.slice(0, max - 3).trimEnd()}...` : safe;
}

function firstSentence(summary: string): string {
  return summary.split(". ")[0]?.replace(/\.$/, "") ?? "";
}

/** The first argument, read from the usage's names: NAME, MODEL, or words such as prune. */
function firstArgument(command: Command): FirstArgument {
  if (command.positionals.max === 0) return undefined;
  const first = (command.positionals.names.split(" ")[0] ?? "").replace(/^\[|\]$/g, "");
  if (first === "NAME") return "instances";
  if (first === "MODEL") return "models";
  if (/^[a-z][a-z|-]*$/.test(first)) return first.split("|");
  return undefined;
}

function optionDescription(command: Command, long: string): string {
  const line = command.help.find((text) =>
    new RegExp(`^(?:-\\w, )?--${long}(?:[ =]\\S+)?\\s{2,}`).test(text),
  );
  return plain(line?.replace(/^\S+(?:, \S+)?(?: \S+)?\s{2,}/, "") ?? long);
}

/** The commands a person may type (hidden ones left out), with `help`, as completions see them. */
export function completedCommands(commands: readonly Command[] = COMMANDS): CompletedCommand[] {
  const out = commands
    .filter((command) => command.hidden !== true)
    .map((command): CompletedCommand => {
      const options: CompletedOption[] = Object.entries(command.options).map(([long, spec]) => {
        const option: CompletedOption = {
          long,
          takesValue: spec.type === "string",
          multiple: spec.multiple === true,
          description: optionDescription(command, long),
        };
        if (spec.short !== undefined) option.short = spec.short;
        return option;
      });
      if (command.json) {
        options.push({
          long: "json",
          takesValue: false,
          multiple: false,
          description: "print one JSON document (for scripts)",
        });
      }
      options.push({
        long: "help",
        short: "h",
        takesValue: false,
        multiple: false,
        description: "show this help",
      });
      return {
        name: command.name,
        description: plain(firstSentence(command.summary)),
        options,
        first: firstArgument(command),
      };
    });
  out.push({
    name: "help",
    description: "Show help for a command",
    options: [],
    first: "commands",
  });
  return out;
}

export function completionScript(shell: Shell, commands = completedCommands()): string {
  switch (shell) {
    case "bash":
      return bashScript(commands);
    case "zsh":
      return zshScript(commands);
    case "fish":
      return fishScript(commands);
  }
}

function valueOptions(command: CompletedCommand): string[] {
  return command.options
    .filter((option) => option.takesValue)
    .flatMap((option) => [
      `--${option.long}`,
      ...(option.short === undefined ? [] : [`-${option.short}`]),
    ]);
}

function bashScript(commands: CompletedCommand[]): string {
  const names = commands.map((command) => command.name).join(" ");
  const arms = commands.map((command) => {
    const first = command.first;
    const set = [
      `opts="${command.options.map((option) => `--${option.long}`).join(" ")}"`,
      ...(valueOptions(command).length > 0 ? [`values="${valueOptions(command).join(" ")}"`] : []),
      ...(typeof first === "string" ? [`lookup=${first}`] : []),
      ...(Array.isArray(first) ? [`words="${first.join(" ")}"`] : []),
    ];
    return `        ${command.name}) ${set.join("; ")} ;;`;
  });
  return `# acc completion for bash: commands, options, instance and model names.
# This shell:  source <(acc completion bash)
# Every shell: acc completion bash > /etc/bash_completion.d/acc

_acc_commands="${names}"

# Names come from acc itself, from the home given on the line (--home DIR) or the default one.
_acc_names() {
    if [[ $1 == commands ]]; then
        echo "$_acc_commands"
    else
        "\${COMP_WORDS[0]}" "\${_acc_home[@]}" __complete "$1" 2>/dev/null
    fi
}

_acc() {
    local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" w cmd="" i at=0 n=0
    local opts="" values="" lookup="" words=""
    local -a _acc_home=()
    COMPREPLY=()
    if ((COMP_CWORD > 0)); then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="\${COMP_WORDS[i]}"
        case "$w" in
            --home) _acc_home=(--home "\${COMP_WORDS[i+1]}"); i=$((i + 1)) ;;
            --home=*) _acc_home=("$w") ;;
            -*) ;;
            *) cmd="$w"; at=$i; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        if [[ $prev == --home ]]; then
            COMPREPLY=($(compgen -d -- "$cur"))
        elif [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "${GLOBAL_OPTIONS.map((o) => `--${o.long}`).join(" ")}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_acc_commands" -- "$cur"))
        fi
        return 0
    fi
    case "$cmd" in
${arms.join("\n")}
        *) return 0 ;;
    esac
    # The word before the cursor is an option that takes a value: acc cannot guess it.
    if ((COMP_CWORD - 1 > at)) && [[ " $values " == *" $prev "* ]]; then return 0; fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi
    # Only the first argument is completed: count those before the cursor, skipping options
    # and the values they take.
    for ((i = at + 1; i < COMP_CWORD; i++)); do
        w="\${COMP_WORDS[i]}"
        if [[ " $values " == *" $w "* ]]; then
            i=$((i + 1))
        elif [[ $w != -* ]]; then
            n=$((n + 1))
        fi
    done
    ((n == 0)) || return 0
    if [[ -n $lookup ]]; then
        COMPREPLY=($(compgen -W "$(_acc_names "$lookup")" -- "$cur"))
    elif [[ -n $words ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
    return 0
}

complete -F _acc acc
`;
}

function zshOptionSpecs(command: CompletedCommand): string[] {
  return command.options.map((option) => {
    const description = `[${option.description}]`;
    const value = option.takesValue ? `:${option.long}: ` : "";
    const repeat = option.multiple ? "*" : "";
    if (option.long === "help") return `'(- *)'{-h,--help}'${description}'`;
    if (option.short === undefined) {
      return `'${repeat}--${option.long}${option.takesValue ? "=" : ""}${description}${value}'`;
    }
    const exclusive = option.multiple ? "" : `(-${option.short} --${option.long})`;
    return (
      `'${exclusive}${repeat}'{-${option.short}${option.takesValue ? "+" : ""},` +
      `--${option.long}${option.takesValue ? "=" : ""}}'${description}${value}'`
    );
  });
}

function zshFirst(command: CompletedCommand, commands: CompletedCommand[]): string[] {
  const first = command.first;
  if (first === undefined) return [];
  if (first === "instances") return ["'1:instance:_acc_instances'"];
  if (first === "models") return ["'1:model:_acc_models'"];
  if (first === "commands") return [`'1:command:(${commands.map((c) => c.name).join(" ")})'`];
  return [`'1:argument:(${first.join(" ")})'`];
}

function zshScript(commands: CompletedCommand[]): string {
  const described = commands.map((command) => `        '${command.name}:${command.description}'`);
  const arms = commands.map((command) => {
    const specs = [...zshOptionSpecs(command), ...zshFirst(command, commands)];
    const body =
      specs.length === 0
        ? "ret=0"
        : `_arguments -s ${specs.map((spec) => `\\\n                ${spec}`).join(" ")} && ret=0`;
    return `            ${command.name})\n                ${body}\n                ;;`;
  });
  return `#compdef acc
# acc completion for zsh: commands, options, instance and model names.
# This shell:  source <(acc completion zsh)     (after compinit)
# Every shell: acc completion zsh > "\${fpath[1]}/_acc"   (then start a new shell)

# Names come from acc itself, from the home given on the line (--home DIR) or the default one.
# _arguments calls these with compadd's options (the description, the group) as arguments.
_acc_names() {
    local list=$1 names
    shift
    names=(\${(f)"$(_call_program acc-names \${_acc_bin} \${_acc_home} __complete $list 2>/dev/null)"})
    compadd "$@" -a names
}
_acc_instances() { _acc_names instances "$@"; }
_acc_models() { _acc_names models "$@"; }

_acc() {
    local -a _acc_home
    local _acc_bin=\${words[1]} i
    for ((i = 2; i < CURRENT; i++)); do
        case \${words[i]} in
            --home) _acc_home=(--home \${words[i+1]}) ;;
            --home=*) _acc_home=(\${words[i]}) ;;
            -*) ;;
            *) break ;;
        esac
    done
    local curcontext=$curcontext state state_descr line ret=1
    typeset -A opt_args
    _arguments -C \\
        '--home=[${GLOBAL_OPTIONS[0]!.description}]:folder:_files -/' \\
        '--version[${GLOBAL_OPTIONS[1]!.description}]' \\
        '(- *)'{-h,--help}'[${GLOBAL_OPTIONS[2]!.description}]' \\
        '1:command:->command' \\
        '*::argument:->argument' && ret=0
    case $state in
        command)
            local -a commands
            commands=(
${described.join("\n")}
            )
            _describe -t commands 'acc command' commands && ret=0
            ;;
        argument)
            curcontext=\${curcontext%:*:*}:acc-\${words[1]}:
            case \${words[1]} in
${arms.join("\n")}
            esac
            ;;
    esac
    return ret
}

if [[ \${funcstack[1]} == _acc ]]; then
    _acc "$@"
else
    compdef _acc acc
fi
`;
}

function fishScript(commands: CompletedCommand[]): string {
  const lines: string[] = [];
  for (const command of commands) {
    lines.push(
      `complete -c acc -n '__acc_command_is ""' -a ${command.name} -d '${command.description}'`,
    );
  }
  for (const command of commands) {
    const when = `-n '__acc_command_is ${command.name}'`;
    for (const option of command.options) {
      const short = option.short === undefined ? "" : ` -s ${option.short}`;
      const value = option.takesValue ? " -x" : "";
      lines.push(
        `complete -c acc ${when}${short} -l ${option.long}${value} -d '${option.description}'`,
      );
    }
    const first = command.first;
    if (first === undefined) continue;
    const wants = `-n '__acc_wants_first ${[command.name, ...valueOptions(command)].join(" ")}'`;
    const values =
      first === "commands"
        ? commands.map((c) => c.name).join(" ")
        : typeof first === "string"
          ? `(__acc_names ${first})`
          : first.join(" ");
    lines.push(`complete -c acc ${wants} -a '${values}'`);
  }
  return `# acc completion for fish: commands, options, instance and model names.
# This shell:  acc completion fish | source
# Every shell: acc completion fish > ~/.config/fish/completions/acc.fish

# The command on the line (the first word that is not an option or --home's folder).
function __acc_command
    set -l tokens (commandline -opc)
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case --home
                set skip 1
            case '-*'
            case '*'
                echo $t
                return 0
        end
    end
    return 1
end

function __acc_command_is
    set -l command (__acc_command)
    test "$command" = "$argv[1]"
end

# True when the cursor is at the first argument of command $argv[1]; $argv[2..] are its
# options that take a value (their value is not an argument).
function __acc_wants_first
    __acc_command_is $argv[1]; or return 1
    set -l values $argv[2..-1]
    set -l tokens (commandline -opc)
    set -l seen 0
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if test $seen = 0
            switch $t
                case --home
                    set skip 1
                case '-*'
                case '*'
                    set seen 1
            end
        else if contains -- $t $values
            set skip 1
        else if not string match -q -- '-*' $t
            return 1
        end
    end
    return 0
end

# Names come from acc itself, from the home given on the line (--home DIR) or the default one.
function __acc_names
    set -l tokens (commandline -opc)
    set -l home
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case --home
                if test $i -lt (count $tokens)
                    set home --home $tokens[(math $i + 1)]
                end
            case '--home=*'
                set home $tokens[$i]
        end
    end
    $tokens[1] $home __complete $argv[1] 2>/dev/null
end

complete -c acc -f
complete -c acc -n '__acc_command_is ""' -l home -x -a '(__fish_complete_directories)' -d '${GLOBAL_OPTIONS[0]!.description}'
complete -c acc -n '__acc_command_is ""' -l version -d '${GLOBAL_OPTIONS[1]!.description}'
complete -c acc -n '__acc_command_is ""' -s h -l help -d '${GLOBAL_OPTIONS[2]!.description}'
${lines.join("\n")}
`;
}

export const completionCommand: Command = {
  name: "completion",
  summary:
    "Print a completion script for bash, zsh or fish: commands, options, instance and model names.",
  usage: "bash|zsh|fish",
  help: [
    "bash                source <(acc completion bash), or save it as /etc/bash_completion.d/acc",
    'zsh                 source <(acc completion zsh), or save it as "${fpath[1]}/_acc"',
    "fish                acc completion fish | source, or save it as ~/.config/fish/completions/acc.fish",
  ],
  options: {},
  positionals: { min: 1, max: 1, names: "bash|zsh|fish" },
  json: false,
  run(args): Promise<CommandResult> {
    const shell = positional(args, 0);
    if (!(SHELLS as readonly string[]).includes(shell)) {
      throw new AccError("ACC_USAGE", `acc completion: unknown shell ${JSON.stringify(shell)}`, {
        hint: "use bash, zsh or fish",
      });
    }
    const script = completionScript(shell as Shell).trimEnd();
    return Promise.resolve({ data: script, text: script });
  },
};

/** What `acc __complete` lists. */
const LISTS = ["instances", "models"] as const;

/**
 * `acc __complete instances|models`: one name per line, for the completion scripts. A home it
 * cannot read (another user's, none yet, a store it cannot open) lists nothing and exits 0:
 * whatever went wrong would otherwise be printed in the middle of the user's command line.
 */
export const completeCommand: Command = {
  name: "__complete",
  summary: "Print instance or model names, one per line, for the completion scripts.",
  usage: "instances|models",
  help: [],
  options: {},
  positionals: { min: 1, max: 1, names: "instances|models" },
  json: false,
  hidden: true,
  async run(args, cli): Promise<CommandResult> {
    const list = positional(args, 0);
    if (!(LISTS as readonly string[]).includes(list)) {
      throw new AccError("ACC_USAGE", `acc __complete: unknown list ${JSON.stringify(list)}`, {
        hint: "instances or models",
      });
    }
    let names: string[] = [];
    try {
      if (list === "models") {
        // Folder names and manifests only: no config, no store. Loaded here: every command
        // loads this file, and the registry brings the manifest parser.
        const { createModelRegistry } = await import("../services/models.js");
        const registry = createModelRegistry({
          bundledDir: path.join(cli.accRoot, "models"),
          userDir: homePaths(cli.home).models,
        });
        names = (await registry.list()).map((model) => model.name);
      } else {
        const ctx = await cli.open();
        names = (await ctx.store.listInstances()).map((instance) => instance.name).sort();
      }
    } catch {
      // Deliberately everything (see above): a completion prints names or nothing.
      names = [];
    }
    return Promise.resolve({ data: names, text: names.join("\n") });
  },
};
