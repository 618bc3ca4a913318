"""One long-lived Python process that runs `postmeister` commands one after the other.

Starting the real `postmeister` executable costs about 2.5 s, nearly all of it importing the
application; a test that runs a dozen verbs spends half a minute on imports. This worker
imports the command once and then runs each request through the same click entry point the
console script calls (`postmeister.cli.main:main`, standalone mode: click's own exit codes
and error messages), with the request's environment, and answers with the exit code, stdout
and stderr of that one command.

Tests use it through `tests.support.processes.CliWorker`. Every test file that uses it still
runs the real executable (`tests.support.processes.cli`) for the behaviour that depends on
the process itself: exit codes, stdout and stderr of a real `postmeister` process.

Protocol: one JSON request per line on stdin (`{"args": [...], "env": {...}}`), one JSON
answer per line on the file descriptor given as the only argument (stdout stays free for
anything a command or its children write there directly).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from click.testing import CliRunner

from postmeister.cli.main import main as postmeister


def serve(answers: int) -> None:
    runner = CliRunner()
    with os.fdopen(answers, "w", encoding="utf-8") as out:
        for line in sys.stdin:
            request = json.loads(line)
            env: dict[str, str] = request["env"]
            # The command sees exactly the request's environment, as a new process would.
            overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
            overrides.update(env)
            result = runner.invoke(
                postmeister, request["args"], env=overrides, prog_name="postmeister"
            )
            stderr = result.stderr
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                # What the interpreter prints for an uncaught exception (exit code 1).
                stderr += "".join(traceback.format_exception(result.exception))
            answer = {"returncode": result.exit_code, "stdout": result.stdout, "stderr": stderr}
            out.write(json.dumps(answer) + "\n")
            out.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
