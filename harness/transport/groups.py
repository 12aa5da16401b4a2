"""Commands on a target run in their own process group, so a timeout or Ctrl-C can stop all of it.

Every `Transport.run` starts the command through `WRAPPER` (POSIX sh, on the device):

- the command runs in a new session (`setsid`), so it is a process group of its own; its group id
  is written to a pid file `<workdir>/.harness/run/<token>.pid` (removed when it ends);
- a watchdog reads the wrapper's stdin, which the controller keeps open and never writes: when it
  reaches end of file (the controller closed the channel after a timeout, the controller died, or
  its SSH connection was closed), the whole group gets SIGTERM, then SIGKILL 2 s later. A runner
  never outlives the controller that started it;
- the command itself reads /dev/null, and its exit status is returned (128 + N when a signal N
  killed it, on every transport).

On a timeout or a cancellation the transport also stops the group explicitly (`KILL_SCRIPT`, over a
fresh channel for SSH): SIGTERM, SIGKILL after a grace period, then it checks the group is gone and
says so if it is not. `REAP_SCRIPT` kills groups that an earlier controller left behind (pid files
whose process still runs in this work dir), run once the device lock is held.
"""

from __future__ import annotations

import secrets
import signal

from harness.errors import InfraError

RUN_DIR = ".harness/run"  # pid files, relative to the work dir
GRACE_S = 2  # SIGTERM, then SIGKILL this many seconds later

# Shell functions. alive: is a process of group $pg alive? Zombies do not count (a slow init may
# take a while to reap an orphan); without /proc, `kill -0` decides. now: a clock in 1/100 s.
_FUNCTIONS = r'''
alive() {
  { kill -0 -$pg || kill -0 $pg; } 2>/dev/null || return 1
  [ -r /proc/self/stat ] || return 0
  for d in /proc/[0-9]*; do
    read -r line 2>/dev/null < "$d/stat" || continue
    set -- ${line##*) }
    [ "$3" = "$pg" ] && [ "$1" != Z ] && return 0
  done
  return 1
}
now() {
  if read -r up _ 2>/dev/null < /proc/uptime; then echo "${up%.*}${up#*.}"
  else echo $(($(date +%s) * 100)); fi
}
'''

# $1 pid file; $2... the command. Stdin is the watchdog's line to the controller.
WRAPPER = _FUNCTIONS + r'''
pidfile=$1; shift
mkdir -p "${pidfile%/*}" 2>/dev/null
exec 3<&0
if command -v setsid >/dev/null 2>&1; then
  setsid sh -c '{ echo $$ > "$0"; } 2>/dev/null; exec "$@"' "$pidfile" "$@" </dev/null &
else
  sh -c '{ echo $$ > "$0"; } 2>/dev/null; exec "$@"' "$pidfile" "$@" </dev/null &
fi
pg=$!
(
  while read -r _ <&3; do :; done
  kill -TERM -$pg 2>/dev/null || kill -TERM $pg 2>/dev/null
  i=0
  while [ $i -lt 20 ] && alive; do sleep 0.1; i=$((i+1)); done
  kill -KILL -$pg 2>/dev/null || kill -KILL $pg 2>/dev/null
) >/dev/null 2>&1 &
watch=$!
exec 3<&-
wait $pg 2>/dev/null  # a shell may say "Terminated": not on a closed channel (SIGPIPE)
rc=$?
kill $watch 2>/dev/null
rm -f "$pidfile"
exit $rc
'''

# $1 pid file, $2 grace seconds. Prints "gone <pg>" or "alive <pg>" (then exit 1) and what is left.
KILL_SCRIPT = _FUNCTIONS + r'''
pg=$(cat "$1" 2>/dev/null)
case $pg in ''|*[!0-9]*) echo "gone"; exit 0;; esac
kill -TERM -$pg 2>/dev/null || kill -TERM $pg 2>/dev/null
start=$(now); killed=
while alive; do
  t=$(($(now) - start))
  if [ -z "$killed" ] && [ $t -ge $(($2 * 100)) ]; then
    kill -KILL -$pg 2>/dev/null || kill -KILL $pg 2>/dev/null; killed=1
  fi
  if [ $t -ge $(($2 * 100 + 300)) ]; then
    echo "alive $pg"; ps -o pid=,stat=,args= -g $pg 2>/dev/null; exit 1
  fi
  sleep 0.1
done
rm -f "$1"
echo "gone $pg"
'''

# $1 the pid file directory. Kills process groups left by a controller that is gone: a pid file
# whose group still runs with this work dir as its current directory. Prints one line per group.
REAP_SCRIPT = r'''
here=$(pwd -P)
for f in "$1"/*.pid; do
  [ -f "$f" ] || continue
  pg=$(cat "$f" 2>/dev/null)
  case $pg in ''|*[!0-9]*) rm -f "$f"; continue;; esac
  [ "$pg" = "$$" ] && continue
  if kill -0 -$pg 2>/dev/null && [ "$(readlink /proc/$pg/cwd 2>/dev/null)" = "$here" ]; then
    echo "$pg $(tr '\0' ' ' < /proc/$pg/cmdline 2>/dev/null | cut -c1-200)"
    kill -KILL -$pg 2>/dev/null
  fi
  rm -f "$f"
done
'''


def new_pidfile() -> str:
    """A fresh pid file path, relative to the work dir."""
    return f"{RUN_DIR}/{secrets.token_hex(6)}.pid"


def wrapped(argv: list[str], pidfile: str) -> list[str]:
    """The argv that runs `argv` through the wrapper."""
    return ["sh", "-c", WRAPPER, "sh", pidfile, *[str(a) for a in argv]]


def describe_exit(code: int) -> str:
    """'exit 1', or 'killed by SIGKILL (exit 137)' for a status that means a signal.

    128 + N is how a shell reports a process killed by signal N; a negative code is how Python's
    subprocess does; -1 is an SSH command that ended without any status.
    """
    number = -code if code < -1 else code - 128 if 128 < code < 160 else None
    if code == -1:
        return "killed by a signal (no exit status)"
    if number is None:
        return f"exit {code}"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"killed by {name} (exit {code})"


def interrupted_error(name: str) -> InfraError:
    """The error a cancelled command raises."""
    return InfraError(f"{name}: interrupted (Ctrl-C)", kind="interrupted", phase="run",
                      hint="`harness run --resume RUN_DIR` runs it again")
