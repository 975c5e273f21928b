"""The command line's argument parser: a mistake gets one line that says what is wrong and the nearest right spelling.

argparse's own answer to a typo is the command's whole usage (twenty lines for `train`) above the one line that
matters, and it names the hidden `worker` command among the choices.
"""

import argparse
import difflib
import re

HIDDEN_COMMANDS = ("worker",)  # started by the job queue, not by people


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with short errors (`error`); its subcommands' parsers are of this class too."""

    def error(self, message: str):
        for hidden in HIDDEN_COMMANDS:
            message = message.replace(f", '{hidden}'", "")
        hint = nearest_spelling(message, self)
        choice = invalid_choice(message)
        if choice and re.match(r"argument (\{.*\}|\w+_command): ", message):  # a command, not an option's value
            message = f"'{choice[0]}' is not a command; the commands are {', '.join(choice[1])}"
        self.exit(2, f"{self.prog}: error: {message}.{hint}\n`{self.prog} --help` shows what it takes.\n")


def invalid_choice(message: str) -> tuple[str, list[str]] | None:
    """(what was typed, the choices offered) from argparse's "invalid choice" message, or None for another one."""
    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    return (found.group(1), re.findall(r"'([^']*)'", found.group(2))) if found else None


def nearest_spelling(message: str, parser: argparse.ArgumentParser) -> str:
    """" Did you mean …?" for an invalid choice or an unknown option in argparse's `message`, or ""."""
    if choice := invalid_choice(message):
        wanted, offered = choice
        close = difflib.get_close_matches(wanted, offered, n=1) or [
            name for name in offered if name.lower() == wanted.lower()]
        return f" Did you mean '{close[0]}'?" if close else ""
    if unknown := re.search(r"unrecognized arguments: (.*)", message):
        options = sorted(option_strings(parser))
        for word in unknown.group(1).split():
            close = difflib.get_close_matches(word.split("=")[0], options, n=1) if word.startswith("--") else []
            if close:
                return f" Did you mean {close[0]}?"
    return ""


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every `--option` of `parser` and of its subcommands."""
    found = set()
    for action in parser._actions:
        found.update(option for option in action.option_strings if option.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                found |= option_strings(command)
    return found


def chosen_parser(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command `arguments` chose (`datasets import`), whose errors name its own --help."""
    while parser._subparsers:
        action = parser._subparsers._group_actions[0]
        chosen = getattr(arguments, action.dest, None)
        if chosen not in action.choices:
            break
        parser = action.choices[chosen]
    return parser
